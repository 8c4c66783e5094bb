"""`VectorDatabaseManager.switch_backend`: a migration that cannot be correct is refused before
anything is written, and the target (local or S3) is left exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from tests.integration.moto_bucket import moto_bucket
from vectordb_manager import (
    ConfigurationError,
    DimensionMismatchError,
    LocalVectorStore,
    VectorDatabaseManager,
    VectorDBConfig,
)
from vectordb_manager.embeddings import HashingEmbeddings

TEXTS = ["cats purr when content", "dogs bark at strangers", "birds sing at dawn", "fish swim"]


class Renamed(Embeddings):
    """Hashing embeddings under another model name, optionally hiding their dimension (as a
    remote model does until it is first called)."""

    def __init__(self, name: str, size: int = 384, *, tell_size: bool = True) -> None:
        self.inner = HashingEmbeddings(size)
        self.model_name = name
        if tell_size:
            self.size = size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (empty if ``root`` does not exist)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def source(tmp_path: Path, emb: Embeddings | None = None, **config: Any) -> VectorDatabaseManager:
    settings: dict[str, Any] = {"local_path": str(tmp_path / "source"), "embedding_provider": "fake",
                                **config}
    db = VectorDatabaseManager(VectorDBConfig(**settings), embeddings=emb)
    db.add_texts(TEXTS, [{"n": i} for i in range(len(TEXTS))])
    return db


def assert_unchanged(db: VectorDatabaseManager, config: VectorDBConfig) -> None:
    """The manager still uses its own store, with every document."""
    assert db.config == config and db.count() == len(TEXTS)
    assert db.search("cats purr", k=1)[0].page_content == TEXTS[0]


def test_a_target_configuration_with_another_dimension_is_refused(tmp_path: Path) -> None:
    db = source(tmp_path)
    before = db.config
    target = before.replace(local_path=str(tmp_path / "target"), embedding_dimensions=32)
    with pytest.raises(DimensionMismatchError, match=r"32-dimensional .* 384-dimensional .*reembed"):
        db.switch_backend(target)
    assert not (tmp_path / "target").exists()
    assert_unchanged(db, before)


def test_a_target_configuration_with_another_model_is_refused(tmp_path: Path) -> None:
    db = source(tmp_path)
    target = db.config.replace(local_path=str(tmp_path / "target"), embedding_provider="huggingface")
    with pytest.raises(ConfigurationError, match=r"all-MiniLM-L6-v2.* 'hashing-bow-384'.*reembed"):
        db.switch_backend(target)
    assert not (tmp_path / "target").exists()


def test_another_distance_is_refused_before_copying_anything(tmp_path: Path) -> None:
    # an l2 store may hold a zero vector, which a cosine store cannot take: copying in batches
    # once wrote the first batches and then failed on it, leaving a half-filled target
    db = source(tmp_path, distance_metric="l2")
    db.vector_store.add_embeddings([("nothing", [0.0] * 384)], ids=["zero"])
    before = db.config
    target = before.replace(local_path=str(tmp_path / "target"), distance_metric="cosine")
    with pytest.raises(ConfigurationError, match=r"distance_metric='cosine'.* uses 'l2'.*reembed"):
        db.switch_backend(target, batch_size=2)
    assert not (tmp_path / "target").exists()
    assert db.config == before and db.count() == len(TEXTS) + 1


def existing_other_dimension(path: Path) -> None:
    # the same model name, so that only the dimension differs
    LocalVectorStore(Renamed("hashing-bow-384", 32), path).add_texts(["thirty-two"], ids=["t"])


def existing_other_distance(path: Path) -> None:
    LocalVectorStore(HashingEmbeddings(), path, distance="l2").add_texts(["l2 text"], ids=["t"])


def existing_other_model(path: Path) -> None:
    LocalVectorStore(Renamed("other-model"), path).add_texts(["other"], ids=["t"])


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (existing_other_dimension, DimensionMismatchError, "32-dimensional"),
        (existing_other_distance, ConfigurationError, "distance='l2'"),
        (existing_other_model, ConfigurationError, "'other-model'"),
    ],
)
@pytest.mark.parametrize("known_dimension", [True, False], ids=["dimension-known", "dimension-unknown"])
def test_an_existing_target_store_that_does_not_match_is_left_as_it_was(
    tmp_path: Path, make: Any, error: type[Exception], message: str, known_dimension: bool
) -> None:
    emb = Renamed("hashing-bow-384", tell_size=known_dimension)
    db = source(tmp_path, emb)
    before = db.config
    make(tmp_path / "target")
    files_before = files(tmp_path / "target")
    with pytest.raises(error, match=f"cannot migrate to .*{message}.*empty location"):
        db.switch_backend(before.replace(local_path=str(tmp_path / "target")))
    assert files(tmp_path / "target") == files_before
    assert_unchanged(db, before)


def test_a_migration_to_the_store_itself_is_refused(tmp_path: Path) -> None:
    db = source(tmp_path)
    same = db.config.replace(local_path=str(tmp_path / "x" / ".." / "source"))
    version = db.stats()["version"]
    with pytest.raises(ConfigurationError, match="is this store itself"):
        db.switch_backend(same)
    assert db.stats()["version"] == version


def test_a_matching_existing_store_receives_the_documents(tmp_path: Path) -> None:
    db = source(tmp_path)
    existing = LocalVectorStore(HashingEmbeddings(), tmp_path / "target")
    existing.add_texts(["already there"], ids=["old"])
    assert db.switch_backend(db.config.replace(local_path=str(tmp_path / "target"))) == len(TEXTS)
    assert db.count() == len(TEXTS) + 1 and db.get(["old"])[0].page_content == "already there"


def test_the_same_model_named_differently_is_accepted(tmp_path: Path) -> None:
    # no document is added, so the model is never loaded
    db = VectorDatabaseManager(VectorDBConfig(local_path=str(tmp_path / "source")))
    target = db.config.replace(local_path=str(tmp_path / "target"), embedding_model="all-MiniLM-L6-v2")
    assert db.switch_backend(target) == 0
    assert db.config == target and (tmp_path / "target" / "manifests").is_dir()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_bucket(monkeypatch, "migrate-target") as client:
        yield client


def test_a_refused_migration_to_s3_leaves_the_prefix_empty(tmp_path: Path, s3: Any) -> None:
    db = source(tmp_path)
    target = db.config.replace(storage_type="s3", s3_bucket="migrate-target", s3_prefix="kb",
                               aws_region="us-east-1", embedding_dimensions=32)
    with pytest.raises(DimensionMismatchError):
        db.switch_backend(target)
    assert "Contents" not in s3.list_objects_v2(Bucket="migrate-target")
    # the same migration with the model kept goes through
    assert db.switch_backend(target.replace(embedding_dimensions=None)) == len(TEXTS)
    assert db.search("cats purr", k=1)[0].page_content == TEXTS[0]
    assert s3.list_objects_v2(Bucket="migrate-target", Prefix="kb/manifests/")["KeyCount"] >= 1
