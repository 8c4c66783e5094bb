"""What LangChain's FAISS store accepts, accepted by ours: fetch_k and score_threshold on every
search, batch_size on adds, relevance_score_fn=, MMR with scores, async variants, merge_from,
from_embeddings; and the relevance each distance gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from tests.helpers import VectorTable, clustered
from vectordb_manager import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    LocalVectorStore,
)
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.vectorstores.engine_store import RELEVANCE

DISTANCES = ["cosine", "l2", "inner_product"]
N, DIM = 60, 16


class Counting(Embeddings):
    """HashingEmbeddings that records every call (sync and async) and its batch size."""

    def __init__(self, size: int = 32) -> None:
        self.inner = HashingEmbeddings(size)
        self.batches: list[int] = []
        self.queries = 0
        self.async_batches: list[int] = []
        self.async_queries = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.batches.append(len(texts))
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.queries += 1
        return self.inner.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        self.async_batches.append(len(texts))
        return self.inner.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        self.async_queries += 1
        return self.inner.embed_query(text)

    @property
    def calls(self) -> int:
        return len(self.batches) + self.queries + len(self.async_batches) + self.async_queries


def table_store(distance: str, path: Path | None = None, **kw: Any) -> tuple[LocalVectorStore, np.ndarray]:
    vectors = clustered(N, DIM, seed=5)
    if distance != "cosine":  # different norms, so the distances differ
        vectors = vectors * np.random.default_rng(6).uniform(0.5, 2.0, size=(N, 1)).astype(np.float32)
    store = LocalVectorStore(VectorTable(vectors, clustered(4, DIM, seed=7)), path, distance=distance, **kw)
    store.add_texts([f"d:{i}" for i in range(N)], [{"i": i, "odd": i % 2} for i in range(N)],
                    ids=[str(i) for i in range(N)])
    return store, vectors


def snapshot(store: LocalVectorStore) -> tuple[Any, ...]:
    state = store.engine.state
    return (store.stats()["version"], state.slots, state.dead, store.get_by_ids(store.get_ids()))


# -- fetch_k and score_threshold on the similarity searches -----------------------------------

@pytest.mark.parametrize("distance", DISTANCES)
def test_fetch_k_is_accepted_and_filtered_search_stays_exact(distance: str) -> None:
    store, _ = table_store(distance)
    plain = store.similarity_search_with_score("q:0", k=5, filter={"odd": 1})
    # FAISS would fetch 1 neighbour and filter it, returning at most 1; ours stays exact
    for fetch_k in (1, 10, 1000):
        assert store.similarity_search_with_score("q:0", k=5, filter={"odd": 1}, fetch_k=fetch_k) == plain
    query = store.embeddings.embed_query("q:0")
    assert store.similarity_search_with_score_by_vector(query, 5, {"odd": 1}, 1) == plain
    assert [d for d, _ in plain] == store.similarity_search("q:0", 5, {"odd": 1}, 2)
    assert [d for d, _ in plain] == store.similarity_search_by_vector(query, 5, {"odd": 1}, fetch_k=2)


@pytest.mark.parametrize("distance", DISTANCES)
async def test_score_threshold_keeps_distances_up_to_it(distance: str) -> None:
    store, _ = table_store(distance)
    every = store.similarity_search_with_score("q:1", k=20)
    cut = every[7][1]  # a real distance: the 8th closest
    kept = [(d, s) for d, s in every if s <= cut]
    assert len(kept) >= 8
    query = store.embeddings.embed_query("q:1")
    assert store.similarity_search_with_score("q:1", k=20, score_threshold=cut) == kept
    assert store.similarity_search_with_score_by_vector(query, k=20, score_threshold=cut) == kept
    assert store.similarity_search("q:1", k=20, score_threshold=cut) == [d for d, _ in kept]
    assert store.similarity_search_by_vector(query, k=20, score_threshold=cut) == [d for d, _ in kept]
    assert await store.asimilarity_search_with_score("q:1", k=20, score_threshold=cut) == kept
    assert await store.asimilarity_search_with_score_by_vector(query, k=20, score_threshold=cut) == kept
    assert await store.asimilarity_search("q:1", k=20, score_threshold=cut) == [d for d, _ in kept]
    assert await store.asimilarity_search_by_vector(query, k=20, score_threshold=cut) == [d for d, _ in kept]
    # with a filter: the threshold applies to the k best passing documents
    filtered = store.similarity_search_with_score("q:1", k=20, filter={"odd": 0})
    assert store.similarity_search_with_score("q:1", k=20, filter={"odd": 0}, score_threshold=cut) == [
        (d, s) for d, s in filtered if s <= cut
    ]


@pytest.mark.parametrize("distance", DISTANCES)
def test_relevance_threshold_is_a_relevance(distance: str) -> None:
    store, _ = table_store(distance)
    every = store.similarity_search_with_relevance_scores("q:2", k=20)
    cut = every[5][1]
    kept = store.similarity_search_with_relevance_scores("q:2", k=20, score_threshold=cut, fetch_k=30)
    assert kept == [(d, s) for d, s in every if s >= cut] and len(kept) >= 6


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.similarity_search("x", fetch_k=0), "fetch_k=0 must be a positive integer"),
        (lambda s: s.similarity_search_with_score("x", fetch_k="many"), "fetch_k='many'"),
        (lambda s: s.similarity_search("x", score_threshold="0.5"), "score_threshold='0.5' must be a number"),
        (lambda s: s.similarity_search_by_vector([1.0] * 32, score_threshold=float("nan")), "score_threshold=nan"),
        (lambda s: s.similarity_search("x", score_threshold=True), "score_threshold=True"),
        (lambda s: s.similarity_search("x", lambda_mult=0.5), "lambda_mult is for max_marginal_relevance_search"),
        (lambda s: s.max_marginal_relevance_search("x", score_threshold=0.5), "score_threshold applies to the similarity"),
        (lambda s: s.similarity_search_with_score_by_vector([1.0] * 32, fetchk=3), "'fetchk'"),
        (lambda s: s.max_marginal_relevance_search_by_vector([1.0] * 32, fetch=3), "'fetch'"),
        (lambda s: s.add_texts(["x"], batchsize=2), "add_texts\\(\\) got unexpected keyword argument\\(s\\) 'batchsize'"),
        (lambda s: s.add_texts(["x"], batch_size=0), "batch_size=0 must be a positive integer"),
        (lambda s: s.add_embeddings([("x", [1.0] * 32)], normalize=True), "'normalize'"),
    ],
)
def test_bad_or_unknown_arguments_are_refused(call: Any, message: str, tmp_path: Path) -> None:
    store = LocalVectorStore(HashingEmbeddings(32), tmp_path)
    store.add_texts(["red apple", "green pear"], ids=["a", "p"])
    before = snapshot(store)
    with pytest.raises(InvalidInputError, match=message):
        call(store)
    assert snapshot(store) == before


# -- retrievers configured for FAISS ----------------------------------------------------------

@pytest.mark.parametrize("distance", DISTANCES)
async def test_retriever_with_fetch_k_and_verbose(distance: str) -> None:
    store, _ = table_store(distance)
    expected = store.similarity_search("q:3", k=4, filter={"odd": 1})
    retriever = store.as_retriever(search_kwargs={"k": 4, "fetch_k": 10, "filter": {"odd": 1}})
    assert retriever.invoke("q:3") == expected
    assert await retriever.ainvoke("q:3") == expected
    # invoke passes its own keyword arguments down to the store (verbose among them)
    assert retriever.invoke("q:3", verbose=True) == expected
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 3, "fetch_k": 10, "lambda_mult": 0.25})
    assert mmr.invoke("q:3") == store.max_marginal_relevance_search("q:3", k=3, fetch_k=10, lambda_mult=0.25)


@pytest.mark.parametrize(("distance", "loose"), [("cosine", 0.6), ("l2", 0.45), ("inner_product", 0.6)])
async def test_score_threshold_retriever_on_every_distance(distance: str, loose: float) -> None:
    # relevance of "near" / "other": 0.7 / 0.5 (cosine, inner product), 0.48 / 0.41 (l2)
    store = LocalVectorStore(HashingEmbeddings(64), distance=distance)
    store.add_texts(["the cat sat on the mat", "stock markets fell sharply", "a cat on a mat"],
                    ids=["same", "other", "near"])
    retriever = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.9, "fetch_k": 10}
    )
    assert [d.id for d in retriever.invoke("the cat sat on the mat")] == ["same"]
    assert [d.id for d in await retriever.ainvoke("the cat sat on the mat")] == ["same"]
    loose = store.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": loose})
    assert [d.id for d in loose.invoke("the cat sat on the mat")] == ["same", "near"]


# -- relevance per distance --------------------------------------------------------------------

@pytest.mark.parametrize("distance", DISTANCES)
def test_identical_normalised_text_is_fully_relevant(distance: str) -> None:
    store = LocalVectorStore(HashingEmbeddings(64), distance=distance)
    store.add_texts(["alpha beta gamma", "delta epsilon"])
    (doc, score), _ = store.similarity_search_with_relevance_scores("alpha beta gamma", k=2)
    assert doc.page_content == "alpha beta gamma" and score >= 0.99


def test_relevance_mappings() -> None:
    cos, l2, ip = RELEVANCE["cosine"], RELEVANCE["l2"], RELEVANCE["inner_product"]
    assert [cos(d) for d in (0.0, 1.0, 2.0)] == [1.0, 0.5, 0.0]
    assert [l2(d) for d in (0.0, 1.0, 3.0)] == [1.0, 0.5, 0.25]
    # distance -(a . b): (1 + a . b) / 2, clamped; equal to cosine's for unit vectors
    assert [ip(d) for d in (-1.0, 0.0, 1.0, -5.0, 5.0)] == [1.0, 0.5, 0.0, 1.0, 0.0]
    for c in np.linspace(-1, 1, 9):
        assert ip(-c) == pytest.approx(cos(1 - c))


def test_relevance_score_fn_replaces_the_mapping(tmp_path: Path) -> None:
    store = LocalVectorStore(HashingEmbeddings(32), tmp_path, distance="l2",
                             relevance_score_fn=lambda d: 1.0 - d / 4)
    store.add_texts(["one two", "three four"])
    ((_, rel),) = store.similarity_search_with_relevance_scores("one two", k=1)
    ((_, dist),) = store.similarity_search_with_score("one two", k=1)
    assert rel == 1.0 - dist / 4
    from_texts = LocalVectorStore.from_texts(["a"], HashingEmbeddings(32), relevance_score_fn=lambda d: 0.25)
    assert from_texts.similarity_search_with_relevance_scores("a", k=1)[0][1] == 0.25
    with pytest.raises(ConfigurationError, match="relevance_score_fn=3 must be a function"):
        LocalVectorStore(HashingEmbeddings(32), relevance_score_fn=3)


# -- adds: batch_size, ids, async --------------------------------------------------------------

async def test_batch_size_batches_the_model_and_commits_once(tmp_path: Path) -> None:
    emb = Counting()
    store = LocalVectorStore(emb, tmp_path)
    version = store.stats()["version"]
    texts = [f"text number {i}" for i in range(10)]
    ids = store.add_texts(texts, None, [f"s{i}" for i in range(10)], batch_size=3)  # ids positional
    assert emb.batches == [3, 3, 3, 1]
    assert store.stats()["version"] == version + 1
    assert ids == [f"s{i}" for i in range(10)]
    docs = [Document(page_content=f"doc {i}") for i in range(5)]
    store.add_documents(docs, ids=[f"d{i}" for i in range(5)], batch_size=2)
    assert emb.batches[4:] == [2, 2, 1] and store.stats()["version"] == version + 2
    await store.aadd_texts([f"async {i}" for i in range(5)], ids=[f"a{i}" for i in range(5)], batch_size=4)
    assert emb.async_batches == [4, 1] and store.stats()["version"] == version + 3
    await store.aadd_documents(docs, ids=[f"e{i}" for i in range(5)], batch_size=5)
    assert emb.async_batches[2:] == [5] and len(store) == 25
    assert store.get_by_ids(["s4", "a1"]) == [
        Document(id="s4", page_content="text number 4"), Document(id="a1", page_content="async 1"),
    ]


async def test_async_searches_embed_with_the_async_model() -> None:
    emb = Counting()
    store = await LocalVectorStore.afrom_texts(["red apple", "green pear", "red cherry"], emb,
                                               ids=["a", "p", "c"], distance="l2")
    assert emb.async_batches == [3] and emb.batches == []
    assert [d.id for d in await store.asimilarity_search("red apple", k=1)] == ["a"]
    assert [d.id for d in await store.amax_marginal_relevance_search("red", k=2, fetch_k=3)] == \
        [d.id for d in store.max_marginal_relevance_search("red", k=2, fetch_k=3)]
    assert emb.async_queries == 2 and emb.queries == 1


# -- MMR with scores ---------------------------------------------------------------------------

@pytest.mark.parametrize("distance", DISTANCES)
async def test_mmr_with_score_by_vector(distance: str) -> None:
    store, _ = table_store(distance)
    query = store.embeddings.embed_query("q:0")
    pairs = store.max_marginal_relevance_search_with_score_by_vector(query, k=5, fetch_k=15, lambda_mult=0.3,
                                                                     filter={"odd": 0})
    docs = store.max_marginal_relevance_search_by_vector(query, k=5, fetch_k=15, lambda_mult=0.3, filter={"odd": 0})
    assert [d for d, _ in pairs] == docs and len(docs) == 5
    distances = dict((d.id, s) for d, s in store.similarity_search_with_score_by_vector(query, k=N))
    for doc, score in pairs:  # each document's own distance
        assert doc.metadata["odd"] == 0 and score == pytest.approx(distances[doc.id], abs=1e-6)
    assert await store.amax_marginal_relevance_search_with_score_by_vector(
        query, k=5, fetch_k=15, lambda_mult=0.3, filter={"odd": 0}) == pairs
    assert await store.amax_marginal_relevance_search_by_vector(
        query, k=5, fetch_k=15, lambda_mult=0.3, filter={"odd": 0}) == docs
    with pytest.raises(InvalidInputError, match="lambda_mult=2"):
        store.max_marginal_relevance_search_with_score_by_vector(query, lambda_mult=2)


# -- from_embeddings, add_embeddings -----------------------------------------------------------

async def test_from_embeddings_embeds_nothing(tmp_path: Path) -> None:
    emb = Counting(8)
    vectors = emb.inner.embed_documents(["one", "two", "three"])
    pairs = list(zip(["one", "two", "three"], vectors, strict=True))
    store = LocalVectorStore.from_embeddings(pairs, emb, [{"n": 1}, {"n": 2}, {"n": 3}], ["1", "2", "3"],
                                             path=tmp_path / "s", distance="l2")
    assert isinstance(store, LocalVectorStore) and store.path == tmp_path / "s"
    assert store.stats()["distance"] == "l2" and len(LocalVectorStore(emb, tmp_path / "s", distance="l2")) == 3
    other = await LocalVectorStore.afrom_embeddings(iter(pairs), emb, ids=["x", "y", "z"], index="hnsw")
    assert other.get_ids() == ["x", "y", "z"] and other.stats()["requested_index"] == "hnsw"
    assert emb.calls == 0
    assert store.add_embeddings([("four", vectors[0])], [{"n": 4}], ["4"], batch_size=10) == ["4"]
    ((doc, dist),) = store.similarity_search_with_score_by_vector(vectors[0], k=1, filter={"n": 4})
    assert doc == Document(id="4", page_content="four", metadata={"n": 4}) and dist == pytest.approx(0, abs=1e-6)
    assert emb.calls == 0


# -- merge_from --------------------------------------------------------------------------------

def test_merge_from_copies_vectors_in_one_commit(tmp_path: Path) -> None:
    emb = Counting(32)
    ours = LocalVectorStore(emb, tmp_path / "ours")
    ours.add_texts(["cats purr", "dogs bark"], [{"k": "cat"}, {"k": "dog"}], ids=["c", "d"])
    theirs = LocalVectorStore(emb, None)  # in memory
    theirs.add_texts(["birds sing", "fish swim", "cows moo"], [{"k": "bird"}, {}, {"k": "cow"}], ids=["b", "f", "m"])
    theirs.delete(["m"])
    calls, version = emb.calls, ours.stats()["version"]
    assert ours.merge_from(theirs) == ["b", "f"]
    assert emb.calls == calls  # nothing embedded again
    assert ours.stats()["version"] == version + 1  # one commit
    assert ours.get_ids() == ["c", "d", "b", "f"]
    assert ours.get_by_ids(["b", "f"]) == theirs.get_by_ids(["b", "f"])
    query = emb.inner.embed_query("birds sing")
    assert ours.similarity_search_with_score_by_vector(query, k=1, filter={"k": "bird"}) == \
        theirs.similarity_search_with_score_by_vector(query, k=1, filter={"k": "bird"})
    reopened = LocalVectorStore(emb, tmp_path / "ours")
    assert reopened.get_by_ids(reopened.get_ids()) == ours.get_by_ids(ours.get_ids())
    assert LocalVectorStore(emb).merge_from(LocalVectorStore(emb)) == []


def test_merge_from_id_collisions(tmp_path: Path) -> None:
    emb = HashingEmbeddings(32)
    ours = LocalVectorStore(emb, tmp_path)
    ours.add_texts(["old text", "kept"], ids=["x", "k"])
    theirs = LocalVectorStore(emb)
    theirs.add_texts(["new text", "more"], ids=["x", "y"])
    before = snapshot(ours)
    with pytest.raises(InvalidInputError, match=r"1 id\(s\) of the other store are already here, such as \['x'\]"):
        ours.merge_from(theirs)
    assert snapshot(ours) == before  # unchanged
    with pytest.raises(InvalidInputError, match="on_conflict='overwrite' must be one of error, replace, skip"):
        ours.merge_from(theirs, on_conflict="overwrite")
    assert ours.merge_from(theirs, on_conflict="skip") == ["y"]
    assert ours.get_by_ids(["x"])[0].page_content == "old text"
    assert ours.merge_from(theirs, on_conflict="replace") == ["x", "y"]
    assert ours.get_by_ids(["x"])[0].page_content == "new text" and len(ours) == 3


def test_merge_from_refuses_other_distances_dimensions_and_types() -> None:
    ours = LocalVectorStore(HashingEmbeddings(32), distance="cosine")
    ours.add_texts(["a"])
    l2 = LocalVectorStore(HashingEmbeddings(32), distance="l2")
    l2.add_texts(["b"])
    with pytest.raises(InvalidInputError, match="distance='l2' into one using distance='cosine'"):
        ours.merge_from(l2)
    wide = LocalVectorStore(HashingEmbeddings(64))
    wide.add_texts(["c"])
    with pytest.raises(DimensionMismatchError, match="dimension 64 into a store of dimension 32"):
        ours.merge_from(wide)
    with pytest.raises(TypeError, match="from_langchain_faiss"):
        ours.merge_from(object())  # type: ignore[arg-type]
    assert ours.get_by_ids(ours.get_ids())[0].page_content == "a" and len(ours) == 1


# -- LangChain's retrievers that call a store --------------------------------------------------

async def test_parent_document_and_multi_vector_retrievers() -> None:
    from langchain_classic.retrievers import ParentDocumentRetriever
    from langchain_classic.retrievers.multi_vector import MultiVectorRetriever, SearchType
    from langchain_core.stores import InMemoryStore
    from langchain_text_splitters import CharacterTextSplitter

    store = LocalVectorStore(HashingEmbeddings(512))
    parents = InMemoryStore()
    retriever = ParentDocumentRetriever(
        vectorstore=store, docstore=parents,
        child_splitter=CharacterTextSplitter(separator=". ", chunk_size=30, chunk_overlap=0),
        search_kwargs={"k": 2, "fetch_k": 10, "score_threshold": 0.8},
    )
    docs = [Document(page_content="Cats purr when happy. Cats sleep all day. Cats chase mice."),
            Document(page_content="Markets fell sharply. Bonds rallied. Oil prices rose.")]
    retriever.add_documents(docs, ids=["cats", "markets"], batch_size=2)
    assert len(store) > 2  # the children
    assert [d.page_content for d in retriever.invoke("do cats sleep")] == [docs[0].page_content]
    await retriever.aadd_documents([Document(page_content="Owls hunt at night. Owls hoot.")], ids=["owls"])
    assert [d.page_content for d in await retriever.ainvoke("owls hunt")] == ["Owls hunt at night. Owls hoot."]

    for search_type, kwargs in [
        (SearchType.mmr, {"k": 2, "fetch_k": 6, "lambda_mult": 0.5}),
        (SearchType.similarity_score_threshold, {"k": 3, "fetch_k": 6, "score_threshold": 0.6}),
        (SearchType.similarity, {"k": 1, "fetch_k": 6, "filter": {"doc_id": "markets"}}),
    ]:
        multi = MultiVectorRetriever(vectorstore=store, docstore=parents, search_type=search_type,
                                     search_kwargs=kwargs)
        query = "bonds and oil prices" if search_type is SearchType.similarity else "cats sleep"
        expected = docs[1] if search_type is SearchType.similarity else docs[0]
        assert multi.invoke(query)[0].page_content == expected.page_content
        assert (await multi.ainvoke(query))[0].page_content == expected.page_content
