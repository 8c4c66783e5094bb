"""Hostile and damaged stores: nothing escapes the store, nothing is lost (issue 9)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vectordb_manager import (
    IntegrityError,
    LocalVectorStore,
    StoreNotFoundError,
    VectorDatabaseManager,
    VectorDBConfig,
)
from vectordb_manager.embeddings import HashingEmbeddings


def test_opening_without_create_never_creates_anything(tmp_path: Path) -> None:
    where = tmp_path / "absent"
    with pytest.raises(StoreNotFoundError, match="no store at"):
        LocalVectorStore(HashingEmbeddings(8), where, create=False)
    config = VectorDBConfig(local_path=str(where), embedding_provider="fake")
    with pytest.raises(StoreNotFoundError, match="no store at"):
        VectorDatabaseManager(config, create=False)
    assert not where.exists()
    LocalVectorStore(HashingEmbeddings(8), where).add_texts(["a"], ids=["1"])
    assert len(LocalVectorStore(HashingEmbeddings(8), where, create=False)) == 1


def test_a_store_without_manifests_is_refused_not_recreated(tmp_path: Path) -> None:
    store = LocalVectorStore(HashingEmbeddings(8), tmp_path)
    store.add_texts(["alpha", "beta"], ids=["a", "b"])
    segments = sorted(p.name for p in (tmp_path / "segments").iterdir())
    shutil.rmtree(tmp_path / "manifests")
    for _ in range(2):  # and a second attempt does not change that
        with pytest.raises(IntegrityError, match=r"no manifest.*Restore manifests/"):
            LocalVectorStore(HashingEmbeddings(8), tmp_path)
    assert not (tmp_path / "manifests").exists()
    assert sorted(p.name for p in (tmp_path / "segments").iterdir()) == segments
