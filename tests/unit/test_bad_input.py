"""Bad input: a clear error from the package's hierarchy, and the store exactly as it was."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from vectordb_manager import (
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    InvalidInputError,
    LocalVectorStore,
    VectorDBError,
)
from vectordb_manager.embeddings import HashingEmbeddings


def snapshot(store: LocalVectorStore, path: Path) -> tuple[Any, ...]:
    files = sorted((p.relative_to(path).as_posix(), p.read_bytes()) for p in path.rglob("*") if p.is_file())
    docs = store.get_by_ids(store.engine.ids())
    return (store.stats()["version"], len(store), docs, files)


@pytest.fixture
def store(tmp_path: Path) -> LocalVectorStore:
    s = LocalVectorStore(HashingEmbeddings(32), tmp_path)
    s.add_texts(["red apple", "green pear"], [{"c": "red"}, {"c": "green"}], ids=["a", "p"])
    return s


BAD_CALLS: list[tuple[str, Callable[[LocalVectorStore], Any], type[Exception], str]] = [
    ("metadatas length", lambda s: s.add_texts(["x", "y"], [{}]), InvalidInputError, "1 metadatas for 2 texts"),
    ("ids length", lambda s: s.add_texts(["x"], ids=["1", "2"]), InvalidInputError, "2 ids for 1 texts"),
    ("duplicate ids", lambda s: s.add_texts(["x", "y"], ids=["d", "d"]), InvalidInputError, "duplicate ids"),
    ("duplicate ids in documents", lambda s: s.add_texts(["x", "y"], ids=["a", "a"]), InvalidInputError, "'a'"),
    ("non-JSON metadata", lambda s: s.add_texts(["x"], [{"when": object()}]), InvalidInputError, "not JSON"),
    ("NaN metadata", lambda s: s.add_texts(["x"], [{"v": math.nan}]), InvalidInputError, "not JSON"),
    ("tuple metadata", lambda s: s.add_texts(["x"], [{"v": (1, 2)}]), InvalidInputError, "tuples become lists"),
    ("int key metadata", lambda s: s.add_texts(["x"], [{1: "a"}]), InvalidInputError, "non-string keys"),
    ("metadata not a dict", lambda s: s.add_texts(["x"], ["meta"]), InvalidInputError, "not a dict"),  # type: ignore[list-item]
    ("text not a string", lambda s: s.add_texts(["x", 3]), InvalidInputError, "text 1 is int"),  # type: ignore[list-item]
    ("one string as texts", lambda s: s.add_texts("abc"), InvalidInputError, "not one string"),
    ("id not a string", lambda s: s.add_texts(["x"], ids=[7]), InvalidInputError, "ids must be strings"),  # type: ignore[list-item]
    ("k zero", lambda s: s.similarity_search("x", k=0), InvalidInputError, "k=0"),
    ("k negative", lambda s: s.similarity_search("x", k=-3), InvalidInputError, "k=-3"),
    ("k float", lambda s: s.similarity_search("x", k=2.5), InvalidInputError, "k=2.5"),  # type: ignore[arg-type]
    ("fetch_k zero", lambda s: s.max_marginal_relevance_search("x", fetch_k=0), InvalidInputError, "fetch_k"),
    ("lambda range", lambda s: s.max_marginal_relevance_search("x", lambda_mult=2), InvalidInputError, "lambda_mult"),
    ("query vector dimension", lambda s: s.similarity_search_by_vector([1.0, 2.0]), DimensionMismatchError, "dimension 2"),
    ("query vector NaN", lambda s: s.similarity_search_by_vector([math.nan] * 32), InvalidInputError, "NaN"),
    ("query vector zero", lambda s: s.similarity_search_by_vector([0.0] * 32), InvalidInputError, "all zeros"),
    ("vector dimension", lambda s: s.add_embeddings([("x", [1.0] * 5)]), DimensionMismatchError, "dimension 5"),
    ("ragged vectors", lambda s: s.add_embeddings([("x", [1.0] * 32), ("y", [1.0] * 31)]), DimensionMismatchError, "different lengths"),
    ("zero vector", lambda s: s.add_embeddings([("x", [0.0] * 32)]), InvalidInputError, "all zeros"),
    ("unknown operator", lambda s: s.similarity_search("x", filter={"c": {"$regex": "r"}}), InvalidInputError, "unknown operator"),
    ("bad filter type", lambda s: s.similarity_search("x", filter="c=red"), InvalidInputError, "filter must be a dict"),  # type: ignore[arg-type]
    ("unknown kwarg", lambda s: s.similarity_search("x", fitler={"c": "red"}), InvalidInputError, "'fitler'"),
    ("delete ids string", lambda s: s.delete("a"), InvalidInputError, "list of strings"),  # type: ignore[arg-type]
    ("vacuum negative", lambda s: s.vacuum(older_than=-1), InvalidInputError, "older_than=-1 must be a number of seconds"),
    ("get_by_ids string", lambda s: s.get_by_ids("a"), InvalidInputError, "list of strings"),
    ("empty id", lambda s: s.add_texts(["x"], ids=[""]), InvalidInputError, "id 0 is empty"),
    ("huge id", lambda s: s.add_texts(["x"], ids=["i" * 5000]), InvalidInputError, "longer than 4096 bytes"),
    ("lambda string", lambda s: s.max_marginal_relevance_search("x", lambda_mult="0.5"), InvalidInputError, "lambda_mult='0.5' must be a number"),  # type: ignore[arg-type]
    ("query vector of strings", lambda s: s.similarity_search_by_vector(["a"] * 32), InvalidInputError, "flat list of numbers"),  # type: ignore[list-item]
    ("deep metadata", lambda s: s.add_texts(["x"], [deep(600)]), InvalidInputError, "more than 32 levels deep"),
    ("long key", lambda s: s.add_texts(["x"], [{"k" * 2000: 1}]), InvalidInputError, "key of more than 1024 bytes"),
    ("huge metadata", lambda s: s.add_texts(["x"], [{"v": "x" * (1 << 20)}]), InvalidInputError, "the limit is 1,048,576"),
    ("huge text", lambda s: s.add_texts(["x" * (33 << 20)]), InvalidInputError, "the limit is 33,554,432"),
    ("deep filter", lambda s: s.similarity_search("x", filter=deep_filter(100)), InvalidInputError, "more than 32 levels deep"),
    ("deep filter value", lambda s: s.similarity_search("x", filter={"c": deep(5000)}), InvalidInputError, "more than 32 levels deep"),
]


def deep(levels: int) -> dict[str, Any]:
    """Metadata nested ``levels`` dicts deep."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"d": value}
    return value


def deep_filter(levels: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"c": "red"}
    for _ in range(levels):
        spec = {"$and": [spec]}
    return spec


@pytest.mark.parametrize(("name", "call", "error", "message"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_and_changes_nothing(
    store: LocalVectorStore, tmp_path: Path, name: str, call: Callable[[LocalVectorStore], Any],
    error: type[Exception], message: str,
) -> None:
    before = snapshot(store, tmp_path)
    with pytest.raises(error, match=message) as info:
        call(store)
    assert isinstance(info.value, VectorDBError)
    assert snapshot(store, tmp_path) == before
    assert snapshot(LocalVectorStore(HashingEmbeddings(32), tmp_path), tmp_path) == before


class Broken(Embeddings):
    def __init__(self, result: Any) -> None:
        self.result = result

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return [1.0] * 4


@pytest.mark.parametrize(
    ("result", "error", "message"),
    [
        (RuntimeError("server said no"), EmbeddingError, "server said no"),
        ([[1.0, math.inf, 0.0, 0.0]], EmbeddingError, "NaN or infinite"),
        ([], EmbeddingError, "returned 0 vectors for 1 texts"),
        ([[1.0, 2.0]], DimensionMismatchError, "dimension 2 but the store.s is 4"),
    ],
)
def test_embedding_failures_leave_store_unchanged(tmp_path: Path, result: Any, error: type[Exception], message: str) -> None:
    good = LocalVectorStore(Broken([[1.0, 0.0, 0.0, 0.0]]), tmp_path)
    good.add_texts(["x"], ids=["x"])
    store = LocalVectorStore(Broken(result), tmp_path)
    before = snapshot(store, tmp_path)
    with pytest.raises(error, match=message):
        store.add_texts(["y"], ids=["y"])
    assert snapshot(store, tmp_path) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"distance": "manhattan"}, "distance='manhattan'"),
        ({"index": "annoy"}, "index='annoy'"),
        ({"hnsw_M": 4}, "unknown option"),
        ({"ef_search": 0}, "ef_search=0"),
        ({"batch_size": -1}, "batch_size=-1"),
        ({"create": "no"}, "create='no' must be True or False"),
    ],
)
def test_bad_constructor_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LocalVectorStore(HashingEmbeddings(8), tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_embedding_must_be_embeddings() -> None:
    with pytest.raises(ConfigurationError, match="LangChain Embeddings"):
        LocalVectorStore("all-MiniLM-L6-v2")  # type: ignore[arg-type]


def test_empty_path_is_an_error_not_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="path='' names no directory"):
        LocalVectorStore(HashingEmbeddings(8), "")
    assert list(tmp_path.iterdir()) == []


def test_numpy_integers_are_accepted_for_k(store: LocalVectorStore) -> None:
    k = np.int64(2)
    assert [d.id for d in store.similarity_search("red apple", k=k)] == ["a", "p"]
    assert len(store.max_marginal_relevance_search("red", k=np.int32(1), fetch_k=np.int64(2))) == 1
    assert len(store.similarity_search_by_vector(store.embeddings.embed_query("red"), k=k)) == 2


def test_deep_but_allowed_metadata_round_trips(tmp_path: Path) -> None:
    store = LocalVectorStore(HashingEmbeddings(8), tmp_path)
    store.add_texts(["x"], [deep(32)], ids=["x"])
    again = LocalVectorStore(HashingEmbeddings(8), tmp_path)
    assert again.get_by_ids(["x"])[0].metadata == deep(32)
    assert again.similarity_search("x", k=1, filter={"d": deep(31)})[0].id == "x"
    again.verify()


def test_too_many_dimensions_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    wide = Broken([[1.0] * 70_000])  # a model that does not say its dimension
    store = LocalVectorStore(wide, tmp_path)
    with pytest.raises(DimensionMismatchError, match="at most 65536 dimensions"):
        store.add_texts(["x"])
    assert len(LocalVectorStore(wide, tmp_path)) == 0
    assert list((tmp_path / "segments").glob("*")) == []
