"""LangChain's standard vector store tests, for every way of running LocalVectorStore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from vectordb_manager import LocalVectorStore


class TestInMemory(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:
        yield LocalVectorStore(self.get_embeddings())


class TestOnDiskFlat(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:
        yield LocalVectorStore(self.get_embeddings(), tmp_path / "store", index="flat")


class TestOnDiskHNSW(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:
        yield LocalVectorStore(self.get_embeddings(), tmp_path / "store", index="hnsw")


class TestOnDiskIVF(VectorStoreIntegrationTests):
    """IVF trained from the first vector, so its inverted lists serve every search."""

    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:
        yield LocalVectorStore(self.get_embeddings(), tmp_path / "store", index="ivf", ivf_min_train=1)
