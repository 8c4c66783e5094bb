"""Shared fixtures: the offline model is loaded once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from langchain_core.embeddings import Embeddings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm() -> Iterator[Embeddings]:
    """The real all-MiniLM-L6-v2 model from the offline package (384 dimensions)."""
    from vectordb_manager import EmbeddingService, VectorDBConfig

    yield EmbeddingService.from_config(VectorDBConfig()).embeddings
