"""Keyword and hybrid search through the store API: exact under filters on every store and
index type, sync and async, arguments checked before embedding, and the retriever's types."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from vectordb_manager import ConfigurationError, InvalidInputError, LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.vectorstores.engine_store import RELEVANCE
from vectordb_manager.vectorstores.hybrid import HybridRetriever

WORDS = ["river", "mountain", "engine", "signal", "garden", "network", "bridge", "castle", "pepper", "violin", "harbor", "planet", "copper", "window", "forest", "rocket", "silver", "tunnel", "meadow", "lantern", "falcon", "glacier", "compass", "orchard", "thunder", "velvet", "canyon", "marble", "saddle", "beacon"]


class NearlyHashing(Embeddings):
    """`HashingEmbeddings` (texts sharing words are close) plus a little noise seeded by the
    text, so that no two documents are at exactly the same distance from a query (a tie would
    make "the" top k ambiguous)."""

    def __init__(self, size: int = 64) -> None:
        self.inner = HashingEmbeddings(size)
        self.size = size
        self.model_name = f"nearly-hashing-{size}"
        self.queries = 0

    def _one(self, text: str) -> list[float]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        noise = np.random.default_rng(seed).normal(size=self.size) * 0.05
        vec = np.asarray(self.inner.embed_query(text)) + noise
        return (vec / np.linalg.norm(vec)).tolist()  # type: ignore[no-any-return]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.queries += 1
        return self._one(text)


def corpus(n: int = 90, seed: int = 7) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """Texts of Zipf-distributed words, each of a different length (so no two documents tie
    on BM25 either), with metadata to filter on."""
    rng = random.Random(seed)
    weights = [1.0 / (r + 1) for r in range(len(WORDS))]
    texts = [" ".join(rng.choices(WORDS, weights, k=4 + i)) for i in range(n)]
    rng.shuffle(texts)
    metas = [{"n": i, "group": i % 3, "even": i % 2 == 0} for i in range(n)]
    return texts, metas, [f"doc-{i:03d}" for i in range(n)]


QUERIES = ["copper lantern", "thunder canyon marble", "river", "beacon saddle forest violin"]

StoreMaker = Callable[[Embeddings, Path], LocalVectorStore]
STORES: dict[str, StoreMaker] = {
    "memory-flat-cosine": lambda e, p: LocalVectorStore(e),
    "disk-flat-l2": lambda e, p: LocalVectorStore(e, p / "s", distance="l2"),
    "memory-hnsw-ip": lambda e, p: LocalVectorStore(e, distance="inner_product", index="hnsw"),
    "disk-hnsw-cosine": lambda e, p: LocalVectorStore(e, p / "s", index="hnsw"),
}


def filled(make: StoreMaker, tmp_path: Path) -> tuple[LocalVectorStore, NearlyHashing]:
    emb = NearlyHashing()
    store = make(emb, tmp_path)
    texts, metas, ids = corpus()
    store.add_texts(texts[:50], metas[:50], ids=ids[:50])  # two segments, and
    store.add_texts(texts[50:], metas[50:], ids=ids[50:])
    store.delete(["doc-003", "doc-051"])  # deletes, and
    store.add_texts(["copper copper lantern harbor"], [{"n": 7, "group": 1, "even": False}],
                    ids=["doc-007"])  # an upsert
    return store, emb


def reference(
    store: LocalVectorStore,
    query: str,
    k: int,
    test: Callable[[dict[str, Any]], bool],
    fusion: str,
    alpha: float,
    c: float = 60.0,
) -> list[tuple[str, float]]:
    """Brute force: each side's complete, unfiltered ranking, cut down to the documents that
    pass ``test``, ranked again and fused by the formulas of docs/hybrid-search.md."""
    everything = len(store)
    relevance = RELEVANCE[store.engine.distance]
    vector = [
        (d.id, relevance(s))
        for d, s in store.similarity_search_with_score(query, k=everything)
        if test(d.metadata)
    ]
    keyword = [
        (d.id, s) for d, s in store.keyword_search_with_score(query, k=everything) if test(d.metadata)
    ]
    scores: dict[str, float] = {}
    for side, (weight, ranking) in enumerate([(alpha, vector), (1 - alpha, keyword)]):
        if weight == 0:
            continue
        for rank, (key, score) in enumerate(ranking, start=1):
            if fusion == "rrf":
                part = weight / (c + rank)
            elif side == 1:
                part = weight * score / ranking[0][1]
            else:
                part = weight * score
            scores[str(key)] = scores.get(str(key), 0.0) + part
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


FILTERS: dict[str, tuple[Any, Callable[[dict[str, Any]], bool]]] = {
    "none": (None, lambda md: True),
    "dict": ({"group": {"$in": [0, 2]}}, lambda md: md["group"] in (0, 2)),
    "rare": ({"n": {"$lt": 12}}, lambda md: md["n"] < 12),
    "callable": (lambda md: md["even"], lambda md: md["even"]),
}


@pytest.mark.parametrize("store_kind", list(STORES))
@pytest.mark.parametrize("filter_kind", list(FILTERS))
def test_hybrid_equals_brute_force_fusion_over_the_passing_documents(
    store_kind: str, filter_kind: str, tmp_path: Path
) -> None:
    store, _ = filled(STORES[store_kind], tmp_path)
    filter_, test = FILTERS[filter_kind]
    for query in QUERIES:
        for fusion, alpha in [("rrf", 0.5), ("rrf", 0.8), ("weighted", 0.5), ("weighted", 0.2)]:
            for k in (1, 5, 40):
                got = store.hybrid_search_with_score(
                    query, k, filter_, fusion=fusion, alpha=alpha
                )
                want = reference(store, query, k, test, fusion, alpha)
                assert [d.id for d, _ in got] == [key for key, _ in want], (query, fusion, k)
                assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-6)
                assert all(test(d.metadata) for d, _ in got)


def test_keyword_search_ranks_by_bm25_within_the_filter(tmp_path: Path) -> None:
    store, _ = filled(STORES["disk-flat-l2"], tmp_path)
    pairs = store.keyword_search_with_score("copper lantern", k=10)
    assert pairs[0][0].id == "doc-007"  # the upserted text: both words, short
    scores = [s for _, s in pairs]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    everything = store.keyword_search_with_score("copper lantern", k=len(store))
    filtered = store.keyword_search_with_score("copper lantern", k=10, filter={"group": 2})
    assert filtered == [(d, s) for d, s in everything if d.metadata["group"] == 2][:10]
    assert store.keyword_search("copper lantern", 3, lambda md: md["n"] > 80) == [
        d for d, _ in everything if d.metadata["n"] > 80
    ][:3]
    assert "doc-003" not in {d.id for d, _ in everything}  # deleted


def test_only_documents_holding_a_query_term_are_keyword_results() -> None:
    store = LocalVectorStore(HashingEmbeddings(32))
    store.add_texts(["alpha beta", "gamma delta", "beta epsilon"], ids=["1", "2", "3"])
    assert {d.id for d in store.keyword_search("beta", k=10)} == {"1", "3"}
    assert store.keyword_search("zeta", k=10) == []


@pytest.mark.parametrize("query", ["", "   ", "the and of", "Is it?", "---"])
def test_queries_without_terms_find_nothing_by_keyword(query: str) -> None:
    store = LocalVectorStore(HashingEmbeddings(32))
    store.add_texts(["the river and the mountain", "what it is"])
    assert store.keyword_search(query) == []
    assert store.keyword_search_with_score(query, k=2) == []


def test_an_empty_hybrid_query_finds_nothing_without_embedding() -> None:
    emb = NearlyHashing()
    store = LocalVectorStore(emb)
    store.add_texts(["the river", "a mountain"])
    emb.queries = 0
    assert store.hybrid_search("") == [] and store.hybrid_search_with_score("  \n") == []
    assert asyncio.run(store.ahybrid_search("")) == []
    assert emb.queries == 0


def test_a_stopwords_only_hybrid_query_is_ranked_by_the_vector_side() -> None:
    store = LocalVectorStore(NearlyHashing())
    store.add_texts(["what is this", "where was that", "river"], ids=["a", "b", "c"])
    assert store.engine.analyzer.terms("is it that") == []
    vector = [d.id for d in store.similarity_search("is it that", k=3)]
    got = store.hybrid_search_with_score("is it that", k=3)
    assert [d.id for d, _ in got] == vector
    assert [s for _, s in got] == pytest.approx([0.5 / 61, 0.5 / 62, 0.5 / 63])


def test_alpha_one_is_the_vector_ranking_and_zero_the_keyword_ranking(tmp_path: Path) -> None:
    store, _ = filled(STORES["memory-flat-cosine"], tmp_path)
    for query in QUERIES:
        vector = [d.id for d in store.similarity_search(query, k=8)]
        keyword = [d.id for d in store.keyword_search(query, k=8)]
        for fusion in ("rrf", "weighted"):
            assert [d.id for d in store.hybrid_search(query, 8, fusion=fusion, alpha=1)] == vector
            assert [d.id for d in store.hybrid_search(query, 8, fusion=fusion, alpha=0)] == keyword


def test_weighted_scores_are_in_zero_one_and_the_best_keyword_match_counts_fully() -> None:
    store = LocalVectorStore(NearlyHashing())
    store.add_texts(["copper wire", "silver spoon", "copper copper pot"], ids=["w", "s", "p"])
    pairs = store.hybrid_search_with_score("copper pot", k=3, fusion="weighted", alpha=0.0)
    assert pairs[0][0].id == "p" and pairs[0][1] == 1.0
    pairs = store.hybrid_search_with_score("copper pot", k=3, fusion="weighted")
    assert all(0.0 <= s <= 1.0 for _, s in pairs)


# -- arguments -------------------------------------------------------------------------------
BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("keyword_search", {"k": 0}, "k=0 must be a positive integer"),
    ("keyword_search", {"k": 2.5}, "k=2.5"),
    ("keyword_search", {"filter": {"n": {"$regex": "x"}}}, "unknown operator"),
    ("keyword_search", {"filter": 3}, "filter must be a dict"),
    ("keyword_search", {"fetch_k": 3}, "keyword_search() got unexpected keyword argument(s) 'fetch_k'"),
    ("keyword_search", {"fusion": "rrf"}, "unexpected keyword argument(s) 'fusion'"),
    ("hybrid_search", {"k": -1}, "k=-1"),
    ("hybrid_search", {"fusion": "max"}, "fusion='max' is not a fusion method"),
    ("hybrid_search", {"alpha": 2}, "alpha=2 must be a number from 0"),
    ("hybrid_search", {"rank_constant": -5}, "rank_constant=-5"),
    ("hybrid_search", {"lambda_mult": 0.5}, "hybrid_search() got unexpected keyword argument(s)"),
    ("hybrid_search", {"filter": {"$or": 1}}, "$or in filter takes a list"),
]


@pytest.mark.parametrize(("method", "kwargs", "message"), BAD_CALLS)
def test_bad_arguments_are_refused_before_the_query_is_embedded(
    method: str, kwargs: dict[str, Any], message: str
) -> None:
    emb = NearlyHashing()
    store = LocalVectorStore(emb)
    store.add_texts(["copper lantern"], [{"n": 1}])
    emb.queries = 0
    for name in (method, f"{method}_with_score"):
        with pytest.raises(InvalidInputError, match=_escape(message)):
            getattr(store, name)("copper", **kwargs)
        with pytest.raises(InvalidInputError, match=_escape(message)):
            asyncio.run(getattr(store, f"a{name}")("copper", **kwargs))
    assert emb.queries == 0


def _escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("method", ["keyword_search", "hybrid_search"])
def test_a_query_that_is_not_text_is_refused(method: str) -> None:
    store = LocalVectorStore(HashingEmbeddings(32))
    with pytest.raises(InvalidInputError, match=f"{method}\\(\\) takes the query as a string"):
        getattr(store, method)(["copper"])


def test_verbose_from_a_retriever_is_accepted() -> None:
    store = LocalVectorStore(HashingEmbeddings(32))
    store.add_texts(["copper lantern"])
    assert len(store.keyword_search("copper", verbose=True)) == 1
    assert len(store.hybrid_search("copper", verbose=True)) == 1


# -- async -----------------------------------------------------------------------------------
def test_async_variants_equal_the_sync_ones(tmp_path: Path) -> None:
    store, _ = filled(STORES["disk-hnsw-cosine"], tmp_path)

    async def both() -> None:
        for query in QUERIES:
            f = {"group": 1}
            assert await store.akeyword_search(query, 5, f) == store.keyword_search(query, 5, f)
            assert await store.akeyword_search_with_score(query, 5) == (
                store.keyword_search_with_score(query, 5)
            )
            for fusion in ("rrf", "weighted"):
                assert await store.ahybrid_search(query, 5, f, fusion=fusion) == (
                    store.hybrid_search(query, 5, f, fusion=fusion)
                )
                assert await store.ahybrid_search_with_score(query, 7, alpha=0.3) == (
                    store.hybrid_search_with_score(query, 7, alpha=0.3)
                )

    asyncio.run(both())


# -- the retriever ---------------------------------------------------------------------------
@pytest.fixture
def small() -> Iterator[LocalVectorStore]:
    store = LocalVectorStore(NearlyHashing())
    texts, metas, ids = corpus(30)
    store.add_texts(texts, metas, ids=ids)
    yield store


@pytest.mark.parametrize(
    ("search_type", "search_kwargs", "method", "method_kwargs"),
    [
        ("keyword", {"k": 3, "filter": {"group": 1}}, "keyword_search", {}),
        ("hybrid", {"k": 3}, "hybrid_search", {}),
        ("hybrid", {"k": 4, "filter": lambda md: md["even"], "fusion": "weighted", "alpha": 0.3},
         "hybrid_search", {}),
        ("hybrid", {"k": 2, "rank_constant": 1}, "hybrid_search", {}),
        ("similarity", {"k": 3, "filter": {"group": 0}}, "similarity_search", {}),
        ("mmr", {"k": 3, "fetch_k": 10}, "max_marginal_relevance_search", {}),
    ],
)
def test_retriever_search_types_sync_and_async(
    small: LocalVectorStore,
    search_type: str,
    search_kwargs: dict[str, Any],
    method: str,
    method_kwargs: dict[str, Any],
) -> None:
    retriever = small.as_retriever(search_type=search_type, search_kwargs=search_kwargs)
    assert isinstance(retriever, HybridRetriever)
    want = getattr(small, method)("copper lantern", **search_kwargs, **method_kwargs)
    assert want and retriever.invoke("copper lantern") == want
    assert asyncio.run(retriever.ainvoke("copper lantern")) == want


def test_retriever_score_threshold_and_bad_search_types(small: LocalVectorStore) -> None:
    retriever = small.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.6, "k": 30}
    )
    want = [d for d, s in small.similarity_search_with_relevance_scores("copper", k=30) if s >= 0.6]
    assert retriever.invoke("copper") == want
    with pytest.raises(ValueError, match="search_type of bm25 not allowed"):
        small.as_retriever(search_type="bm25")
    wrong = small.as_retriever(search_type="keyword", search_kwargs={"alpha": 0.5})
    with pytest.raises(InvalidInputError, match="keyword_search\\(\\) got unexpected"):
        wrong.invoke("copper")


# -- store options ---------------------------------------------------------------------------
def test_analyzer_option_takes_an_analyzer_or_a_dict(tmp_path: Path) -> None:
    store = LocalVectorStore(HashingEmbeddings(32), analyzer={"language": "english", "stem": False})
    store.add_texts(["connecting connections connect"], ids=["r"])
    assert store.engine.analyzer == Analyzer("english", stem=False)
    assert store.keyword_search("connect") and not store.keyword_search("connects")
    as_recorded = LocalVectorStore(HashingEmbeddings(32), analyzer=Analyzer("en").to_json())
    assert as_recorded.engine.analyzer == Analyzer("english")
    stemmed = LocalVectorStore(HashingEmbeddings(32), analyzer=Analyzer("english"))
    stemmed.add_texts(["connecting connections connect"], ids=["r"])
    assert stemmed.keyword_search("connects")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"language": "english", "stemming": True}, "is not a valid analyzer"),
        ({"language": "klingon"}, "unknown analyzer language 'klingon'"),
        ({"language": "english", "stem": "yes"}, "analyzer stem must be True or False"),
        ("english", "analyzer must be an Analyzer or a dict of its fields, got str"),
    ],
)
def test_bad_analyzer_options_are_refused(value: Any, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LocalVectorStore(HashingEmbeddings(32), tmp_path / "s", analyzer=value)
    assert not (tmp_path / "s").exists()


def test_keyword_index_option_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="keyword_index='no' must be True or False"):
        LocalVectorStore(HashingEmbeddings(32), keyword_index="no")


def test_identifiers_are_found_by_keyword_and_hybrid() -> None:
    store = LocalVectorStore(HashingEmbeddings(64))
    texts = [f"connection {w} failed with a timeout while reading" for w in WORDS]
    texts.append("the socket closed: ERR_CONN_RESET after the upgrade")
    store.add_texts(texts, ids=[str(i) for i in range(len(texts))])
    last = str(len(texts) - 1)
    assert [d.id for d in store.keyword_search("ERR_CONN_RESET", k=5)] == [last]
    # the only keyword match: whatever its vector rank, no other document can outscore it
    for fusion in ("rrf", "weighted"):
        assert store.hybrid_search("ERR_CONN_RESET", k=3, fusion=fusion)[0].id == last
