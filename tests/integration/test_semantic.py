"""Semantic search with the real offline model over real text: CPython's reference topics."""

from __future__ import annotations

from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

from vectordb_manager import LocalVectorStore

pytestmark = pytest.mark.slow  # embedding the corpus with the real model takes ~15 s

CHUNKS_PER_TOPIC = 10


@pytest.fixture(scope="module")
def chunks() -> list[Document]:
    """The head of every one of the 79 topics: its first 10 chunks of at most 400 characters
    (490 chunks, 38k tokens; the whole text is 124k tokens, 3.3 times the model's time).

    Every topic stays in as a distractor, and the topics a question expects are 0.4-2.4% of
    the chunks, so a store whose vectors do not belong to their documents answers no question
    (in a random permutation each passes with a chance of 1-7%); the HNSW recall test needs
    more than 400 real vectors."""
    splitter = RecursiveCharacterTextSplitter(chunk_size=400, chunk_overlap=0)
    out: list[Document] = []
    for name, text in sorted(topics.items()):
        topic = Document(page_content=text, metadata={"topic": name})
        out += splitter.split_documents([topic])[:CHUNKS_PER_TOPIC]
    for i, d in enumerate(out):
        d.id = f"{d.metadata['topic']}#{i}"
    return out


@pytest.fixture(scope="module")
def flat(minilm: Embeddings, chunks: list[Document], tmp_path_factory: pytest.TempPathFactory) -> LocalVectorStore:
    store = LocalVectorStore(minilm, tmp_path_factory.mktemp("semantic") / "store")
    store.add_documents(chunks)
    return store


QUESTIONS = [
    ("the try statement with except and finally clauses", {"try"}),
    ("declaring a global variable with the global statement", {"global"}),
    ("leave a loop before it finishes", {"break", "while", "for"}),
    ("small anonymous function defined in an expression", {"lambda"}),
    ("generator functions and the yield expression", {"yield"}),
    ("import a module from a package", {"import"}),
]


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_questions_find_their_topic(flat: LocalVectorStore, question: str, expected: set[str]) -> None:
    top = flat.similarity_search(question, k=3)
    assert {d.metadata["topic"] for d in top} & expected, [d.metadata["topic"] for d in top]


def test_filter_restricts_to_topic(flat: LocalVectorStore) -> None:
    docs = flat.similarity_search("how do loops work", k=5, filter={"topic": {"$in": ["lambda", "with"]}})
    assert len(docs) == 5 and {d.metadata["topic"] for d in docs} <= {"lambda", "with"}


def test_relevance_scores_separate_related_from_unrelated(flat: LocalVectorStore) -> None:
    (_, related), = flat.similarity_search_with_relevance_scores("the with statement and context managers", k=1)
    (_, unrelated), = flat.similarity_search_with_relevance_scores("banana bread recipe with walnuts", k=1)
    assert related > unrelated + 0.1


def test_reopened_store_answers_the_same(flat: LocalVectorStore, minilm: Embeddings) -> None:
    assert flat.path is not None
    again = LocalVectorStore(minilm, flat.path)
    for question, _ in QUESTIONS:
        assert [d.id for d in again.similarity_search(question, k=4)] == [
            d.id for d in flat.similarity_search(question, k=4)
        ]
    again.verify()


def test_hnsw_recall_against_flat_on_real_embeddings(flat: LocalVectorStore, tmp_path: Path) -> None:
    rows = next(flat.engine.iter_rows(batch_size=100_000))
    hnsw = LocalVectorStore(flat.embeddings, tmp_path / "hnsw", index="hnsw", hnsw_m=16, ef_search=64)
    hnsw.add_embeddings(zip(rows.texts, rows.vectors.tolist(), strict=True), rows.metadatas, ids=rows.ids)
    rng = np.random.default_rng(0)
    queries = rows.vectors[rng.choice(len(rows.ids), 100, replace=False)]
    queries = queries + rng.normal(scale=0.02, size=queries.shape).astype(np.float32)
    hits = 0
    for q in queries:
        exact = {d.id for d in flat.similarity_search_by_vector(q.tolist(), k=10)}
        approx = {d.id for d in hnsw.similarity_search_by_vector(q.tolist(), k=10)}
        hits += len(exact & approx)
    assert hits / 1000 >= 0.95
    assert len(hnsw) == len(rows.ids) > 400
