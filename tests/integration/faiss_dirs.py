"""LangChain FAISS directories for the import tests: documents, helpers that compare a FAISS
store with an imported one, and hostile pickle payloads."""

from __future__ import annotations

import math
import os
import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from langchain_core.documents import Document

from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.vectorstores.engine_store import EngineVectorStore

with warnings.catch_warnings():  # langchain-community announces its sunset on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.vectorstores import FAISS

EMB = HashingEmbeddings()
DIM = EMB.size

TEXTS = [
    "cats purr and sleep in the sun",
    "dogs bark at the postman at night",
    "birds sing at dawn in the garden",
    "the cat chased a mouse through the garden",
    "fish swim in the cold river",
    "a dog and a cat share the sofa",
    "owls hunt mice at night",
    "the river floods the garden in spring",
    "sun and rain make the garden grow",
    "Grüße aus Köln: 猫は寝る 🐈",
    "postman delivers letters at dawn",
    "mice eat the cheese at night",
]
METADATAS: list[dict[str, Any]] = [
    {
        "source": f"doc{i}.txt",
        "n": i,
        "score": i / 3,
        "ok": i % 2 == 0,
        "none": None,
        "tags": ["a", "ü", i, None, True],
        "nested": {"deep": {"list": [{"x": i}], "empty": {}}, "unicode": "naïve 日本"},
    }
    for i in range(len(TEXTS))
]
IDS = [f"id-{i}-ü" for i in range(len(TEXTS))]
QUERIES = ["cat in the garden", "night", "river water", "postman dawn", "猫は寝る", "zebra"]


def saved(store: FAISS, folder: Path, index_name: str = "index") -> Path:
    store.save_local(str(folder), index_name=index_name)
    return folder


def vectors_of(store: EngineVectorStore) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for rows in store.engine.iter_rows(5):
        out.update(zip(rows.ids, rows.vectors, strict=True))
    return out


def faiss_vectors(fs: FAISS) -> dict[str, np.ndarray]:
    """Each document's vector as the FAISS index reconstructs it, by docstore id."""
    index = fs.index
    if isinstance(index, faiss.IndexIDMap):
        labels = faiss.vector_to_array(index.id_map).tolist()
        inner = faiss.downcast_index(index.index)
        return {fs.index_to_docstore_id[lab]: inner.reconstruct(p) for p, lab in enumerate(labels)}
    if isinstance(index, faiss.IndexIVF):
        index.make_direct_map()
    return {fs.index_to_docstore_id[i]: index.reconstruct(i) for i in range(index.ntotal)}


def assert_same_documents(
    fs: FAISS, ours: EngineVectorStore, *, exact_vectors: bool = True
) -> None:
    expected_ids = [fs.index_to_docstore_id[i] for i in sorted(fs.index_to_docstore_id)]
    if not isinstance(fs.index, faiss.IndexIDMap):
        assert ours.get_ids() == expected_ids  # in the index's order
    assert sorted(ours.get_ids()) == sorted(expected_ids)
    assert len(ours) == fs.index.ntotal
    for doc_id in expected_ids:
        theirs = fs.docstore.search(doc_id)
        [mine] = ours.get_by_ids([doc_id])
        assert mine.id == doc_id
        assert mine.page_content == theirs.page_content
        assert mine.metadata == theirs.metadata
        # equal is not enough: True == 1 and 1 == 1.0
        assert repr(mine.metadata) == repr(theirs.metadata)
    theirs_v, mine_v = faiss_vectors(fs), vectors_of(ours)
    assert set(theirs_v) == set(mine_v)
    for doc_id, vector in theirs_v.items():
        if exact_vectors:
            assert mine_v[doc_id].dtype == np.float32
            assert np.array_equal(mine_v[doc_id], vector), doc_id
        else:
            np.testing.assert_allclose(mine_v[doc_id], vector, atol=1e-6)


def ranked(fs: FAISS, query: str, k: int) -> list[tuple[str, float]]:
    """FAISS's results as (docstore id, score): the docstore holds the very objects returned."""
    key = {id(doc): doc_id for doc_id, doc in fs.docstore._dict.items()}
    return [(key[id(doc)], float(s)) for doc, s in fs.similarity_search_with_score(query, k=k)]


def assert_same_rankings(
    theirs: Sequence[tuple[str, float]], ours: Sequence[tuple[Document, float]], to_ours: Any
) -> None:
    """The same documents in the same order, scores mapped by ``to_ours``; documents whose
    scores tie may come in either order, so they are compared as a set."""
    assert len(theirs) == len(ours) > 0
    expected = [to_ours(s) for _, s in theirs]
    for e, (_, got) in zip(expected, ours, strict=True):
        assert math.isclose(got, e, rel_tol=1e-4, abs_tol=1e-5), (got, e)
    start = 0
    while start < len(expected):
        stop = start + 1
        while stop < len(expected) and abs(expected[stop] - expected[start]) < 1e-5:
            stop += 1
        assert {d.id for d, _ in ours[start:stop]} == {i for i, _ in theirs[start:stop]}
        start = stop


def squared(score: float) -> float:  # FAISS L2 score -> our distance
    return math.sqrt(max(score, 0.0))


def negated(score: float) -> float:  # FAISS inner product -> our distance
    return -score


def compare_searches(
    fs: FAISS,
    ours: EngineVectorStore,
    to_ours: Any,
    queries: Sequence[str] = QUERIES,
    k: int | None = None,
) -> None:
    k = k or len(ours)  # every document: a tie can never be cut at k
    for q in queries:
        assert_same_rankings(ranked(fs, q, k), ours.similarity_search_with_score(q, k=k), to_ours)


class RunsCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class Evaluates:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


class NotAllowed:  # a harmless class, but not one a docstore needs
    def __init__(self) -> None:
        self.value = 1


def hostile_dir(tmp_path: Path, payload: Any, protocol: int) -> Path:
    """A real FAISS directory whose pickle carries ``payload`` inside a document's metadata."""
    fs = FAISS.from_texts(TEXTS, EMB, ids=IDS)
    folder = saved(fs, tmp_path / "faiss")
    fs.docstore._dict[IDS[3]].metadata["x"] = payload
    with open(folder / "index.pkl", "wb") as f:
        pickle.dump((fs.docstore, fs.index_to_docstore_id), f, protocol=protocol)
    return folder
