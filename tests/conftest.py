"""Shared fixtures (the offline model is loaded once per test process) and the test order.

``make test`` runs the suite in two processes (pytest-xdist, ``-n 2 --dist loadfile``, see
pyproject.toml): each module, its test classes included, runs whole in one process, so
module-scoped fixtures (a server process, an embedded corpus) are built once. (With
``loadscope`` each test class was a unit of its own: a module's classes could run in both
processes, each starting the module's server.) The modules holding tests marked
``slow`` (the long ones: up to a minute) are handed out first, in collection order, and the
~60 short ones after them, so that the two processes finish within seconds of each other
instead of one starting a long module when the other is nearly done.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from vectordb_manager.processing import DocumentProcessor

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm() -> Iterator[Embeddings]:
    """The real all-MiniLM-L6-v2 model from the offline package (384 dimensions)."""
    from vectordb_manager import EmbeddingService, VectorDBConfig

    yield EmbeddingService.from_config(VectorDBConfig()).embeddings


@pytest.fixture
def processor() -> DocumentProcessor:
    """The DocumentProcessor of test_processing*.py: small chunks, so that files split."""
    from vectordb_manager.processing import DocumentProcessor

    return DocumentProcessor(chunk_size=200, chunk_overlap=20)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (a stable sort: otherwise in collection order)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
