"""``vectordb stats`` answers from the newest manifest alone (`store_info.read_stats`): the same
numbers as the manager's stats of the store opened in full, for every kind of store (deletes,
replacements, compaction, each index type, S3), the same refusals of settings the store was
not built with, and the manager's own answer or error where there is no manifest to read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.moto_bucket import moto_bucket
from vectordb_manager import (
    ConfigurationError,
    LocalVectorStore,
    S3VectorStore,
    StorageError,
    StoreNotFoundError,
    VectorDatabaseManager,
    VectorDBConfig,
)
from vectordb_manager.cli import main
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.store_info import read_stats

EMB = HashingEmbeddings()
TEXTS = [f"document {i} about {word}" for i, word in enumerate(["cats", "dogs", "birds", "fish", "owls"] * 4)]


def full(config: VectorDBConfig) -> dict[str, Any]:
    """The manager's stats, the store opened in full (every segment read)."""
    return VectorDatabaseManager(config, create=False).stats()


def written(store: Any) -> None:
    store.add_texts(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
    store.add_texts(["a replacement", "another"], ids=["d0", "d1"])  # replaced: tombstones
    store.delete(["d2", "d3", "nope"])


Build = Callable[[Path], VectorDBConfig]


def plain(path: Path) -> VectorDBConfig:
    written(LocalVectorStore(EMB, path))
    return VectorDBConfig(local_path=str(path), embedding_provider="fake")


def compacted(path: Path) -> VectorDBConfig:
    store = LocalVectorStore(EMB, path)
    written(store)
    store.compact()
    return VectorDBConfig(local_path=str(path), embedding_provider="fake")


def hnsw_l2(path: Path) -> VectorDBConfig:
    written(LocalVectorStore(EMB, path, distance="l2", index="hnsw"))
    return VectorDBConfig(local_path=str(path), embedding_provider="fake")


def auto_over_threshold(path: Path) -> VectorDBConfig:
    written(LocalVectorStore(EMB, path, index="auto", auto_threshold=10))
    return VectorDBConfig(local_path=str(path), embedding_provider="fake")


def auto_under_threshold(path: Path) -> VectorDBConfig:
    written(LocalVectorStore(EMB, path, index="auto", auto_threshold=1000))
    return VectorDBConfig(local_path=str(path), embedding_provider="fake")


def index_chosen_now(path: Path) -> VectorDBConfig:
    written(LocalVectorStore(EMB, path))  # flat; opened with index hnsw chosen
    return VectorDBConfig(local_path=str(path), embedding_provider="fake", index_type="hnsw")


def empty(path: Path) -> VectorDBConfig:
    LocalVectorStore(EMB, path)  # created, nothing added
    return VectorDBConfig(local_path=str(path), embedding_provider="fake")


@pytest.mark.parametrize(
    "build", [plain, compacted, hnsw_l2, auto_over_threshold, auto_under_threshold,
              index_chosen_now, empty],
)
def test_the_manifest_gives_the_same_stats_as_the_open_store(tmp_path: Path, build: Build) -> None:
    config = build(tmp_path / "store")
    quick = read_stats(config)
    assert quick == full(config)
    assert list(quick) == list(full(config))  # the same keys, in the same order


def test_tombstones_and_index_kinds_are_what_they_should_be(tmp_path: Path) -> None:
    assert read_stats(plain(tmp_path / "p"))["tombstones"] == 4  # 2 replaced + 2 deleted
    assert read_stats(compacted(tmp_path / "c"))["tombstones"] == 0
    assert read_stats(auto_over_threshold(tmp_path / "a"))["index"] == "hnsw"
    assert read_stats(auto_under_threshold(tmp_path / "u"))["index"] == "flat"


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_bucket(monkeypatch, "stats-bucket") as client:
        yield client


def test_an_s3_store_gives_the_same_stats(bucket: Any) -> None:
    written(S3VectorStore(EMB, "stats-bucket", "kb", client=bucket))
    config = VectorDBConfig(storage_type="s3", s3_bucket="stats-bucket", s3_prefix="kb",
                            aws_region="us-east-1", embedding_provider="fake")
    assert read_stats(config) == full(config)
    assert read_stats(config)["location"] == "s3://stats-bucket/kb/"
    with pytest.raises(StoreNotFoundError, match="no store at s3://stats-bucket/none/"):
        read_stats(config.replace(s3_prefix="none"))


def test_a_chosen_distance_or_analyzer_the_store_lacks_is_refused_the_same_way(tmp_path: Path) -> None:
    config = hnsw_l2(tmp_path / "store")
    for wrong in (config.replace(distance_metric="cosine"), config.replace(text_language="german")):
        with pytest.raises(ConfigurationError) as quick:
            read_stats(wrong)
        with pytest.raises(ConfigurationError) as opened:
            full(wrong)
        assert str(quick.value) == str(opened.value)


def test_stats_describe_the_store_whichever_model_is_configured(tmp_path: Path) -> None:
    """Opening the store with another model is refused; its stats are how one finds out which
    model it needs."""
    config = plain(tmp_path / "store").replace(embedding_provider="huggingface")
    with pytest.raises(ConfigurationError, match="was built with embedding model 'hashing-bow-384'"):
        full(config)
    assert read_stats(config)["embedding_model"] == "hashing-bow-384"


def test_without_a_manifest_the_answer_or_error_is_the_managers(tmp_path: Path) -> None:
    missing = VectorDBConfig(local_path=str(tmp_path / "none"), embedding_provider="fake")
    with pytest.raises(StoreNotFoundError, match=f"no store at {tmp_path / 'none'}"):
        read_stats(missing)
    assert not (tmp_path / "none").exists()
    faiss_folder = tmp_path / "faiss"
    faiss_folder.mkdir()
    (faiss_folder / "index.faiss").write_bytes(b"x")
    (faiss_folder / "index.pkl").write_bytes(b"x")
    with pytest.raises(StorageError, match="holds a LangChain FAISS store"):
        read_stats(missing.replace(local_path=str(faiss_folder)))
    memory = read_stats(VectorDBConfig(storage_type="memory", embedding_provider="fake"))
    assert (memory["documents"], memory["location"], memory["storage_type"]) == (0, None, "memory")


def test_the_command_prints_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = plain(tmp_path / "store")
    assert main(["--provider", "fake", "--path", config.local_path, "stats"]) == 0
    out = capsys.readouterr().out
    assert "       documents: 18\n      tombstones: 4\n" in out
    assert f"        location: {(tmp_path / 'store').resolve()}\n" in out
