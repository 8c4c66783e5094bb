"""Bad input: a clear error from the package's hierarchy, and the store exactly as it was."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    ("unknown operator", lambda s: s.similarity_search("x", filter={"c": {"$like": "r"}}), InvalidInputError, "unknown operator"),
    ("bad filter type", lambda s: s.similarity_search("x", filter="c=red"), InvalidInputError, "filter must be a dict"),  # type: ignore[arg-type]
    ("unknown kwarg", lambda s: s.similarity_search("x", fitler={"c": "red"}), InvalidInputError, "'fitler'"),
    ("delete ids string", lambda s: s.delete("a"), InvalidInputError, "list of strings"),  # type: ignore[arg-type]
]


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
    ],
)
def test_bad_constructor_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LocalVectorStore(HashingEmbeddings(8), tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_embedding_must_be_embeddings() -> None:
    with pytest.raises(ConfigurationError, match="LangChain Embeddings"):
        LocalVectorStore("all-MiniLM-L6-v2")  # type: ignore[arg-type]
