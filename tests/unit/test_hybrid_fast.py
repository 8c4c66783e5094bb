"""The engine's NumPy hybrid search (`Engine.hybrid_search`) gives exactly what the threshold
algorithm over the engine's rankings gives (`threshold_hybrid`; the vector side ranked exactly,
equal distances by slot, see `ExactSides`), on seeded
random stores full of ties (repeated texts, bags of a few words), with filters, deletes and
upserts, for every distance, fusion and weight."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.core import Engine
from vectordb_manager.engine.search import (
    Hit,
    KeywordHit,
    document,
    exact_raw,
    passing,
    to_distance,
)
from vectordb_manager.vectorstores.hybrid import hybrid_request, threshold_hybrid
from vectordb_manager.vectorstores.relevance import relevance_array

WORDS = ["amber", "basalt", "cobalt", "delta", "ember", "fjord", "granite", "helix", "indigo",
         "jasper", "kelp", "lumen", "mica", "nickel", "onyx", "quartz"]
QUERIES = ["cobalt", "amber delta", "granite helix onyx", "kelp kelp mica", "zzz unknown"]
FILTERS: list[Any] = [
    None,
    {"group": {"$in": [0, 2]}},
    {"n": {"$lt": 15}},  # few documents: an exact search for every index type
    lambda md: md["n"] % 2 == 1,
]


def random_store(seed: int, distance: str, index: str = "flat", **options: Any) -> LocalVectorStore:
    """A store of short bags of words: many documents share a vector (same words in another
    order) or a BM25 score, so every ranking has ties."""
    rng = random.Random(seed)
    store = LocalVectorStore(HashingEmbeddings(16), distance=distance, index=index, **options)
    n = 160
    texts = [" ".join(rng.choices(WORDS[: 4 + i % 12], k=rng.randint(1, 5))) for i in range(n)]
    texts += texts[:20]  # exact duplicates, under other ids
    metas = [{"n": i, "group": i % 3} for i in range(len(texts))]
    ids = [f"d{rng.randrange(10**6):06d}-{i}" for i in range(len(texts))]
    store.add_texts(texts[:90], metas[:90], ids=ids[:90])
    store.add_texts(texts[90:], metas[90:], ids=ids[90:])
    store.delete(ids[5:12])
    store.add_texts(["cobalt amber"] * 3, [{"n": 200 + i, "group": i} for i in range(3)],
                    ids=[ids[30], ids[31], "extra"])
    return store


class ExactSides:
    """The engine, but its vector search ranks every passing slot exactly, by distance then
    slot (FAISS's flat search orders equal distances by its heap, not by slot, and may round
    the last bit differently): the rule the NumPy way documents. Keyword search and the
    analyzer are the engine's own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.analyzer = engine.analyzer

    def search(self, vector: Any, n: int, where: Any, checked: bool = False) -> list[Hit]:
        st = self.engine.state
        q = self.engine.prepare_query(vector)
        assert q is not None
        allowed = st.live_slots() if where is None else passing(st, where)
        raw = exact_raw(st, q, allowed)
        order = np.argsort(raw if st.distance == "l2" else -raw, kind="stable")[:n]
        return [Hit(document(st, int(allowed[j])), to_distance(st.distance, float(raw[j])))
                for j in order]

    def keyword_search(self, query: str, n: int, filter: Any) -> list[KeywordHit]:
        return self.engine.keyword_search(query, n, filter)


def both(
    store: LocalVectorStore, query: str, k: int, filter_: Any, fusion: str, alpha: float, c: float
) -> tuple[list[tuple[str | None, float]] | None, list[tuple[str | None, float]]]:
    """(the engine's NumPy answer or ``None``, the threshold algorithm's answer)."""
    request = hybrid_request(query, k, filter_, {}, fusion=fusion, alpha=alpha, rank_constant=c)
    vector = store.embeddings.embed_query(query) if alpha else None  # type: ignore[union-attr]
    engine = store.engine
    fast = engine.hybrid_search(
        vector, query, k, request.where, fusion=fusion, alpha=alpha, rank_constant=c,
        relevance=relevance_array(engine.distance, store._relevance_score_fn),
    )
    sides: Any = ExactSides(engine)
    slow = threshold_hybrid(sides, request, vector, store._select_relevance_score_fn())
    pairs = None if fast is None else [(d.id, s) for d, s in fast]
    return pairs, [(d.id, s) for d, s in slow]


@pytest.mark.parametrize("distance", ["cosine", "l2", "inner_product"])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("shallow", [False, True])
def test_numpy_fusion_equals_the_threshold_algorithm(
    distance: str, seed: int, shallow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``shallow``: RRF starts from the first document of each side and must look deeper
    (4 times, again and again) before it is sure of the k best, and each side sorts a head
    of 2 keys at first (it grows as RRF looks deeper; ranks past it are counted)."""
    if shallow:
        from vectordb_manager.engine import hybrid

        monkeypatch.setattr(hybrid._Rrf, "first_depth", lambda self, k: 1)
        monkeypatch.setattr(hybrid._Ranking, "HEAD", 2)
    store = random_store(seed, distance)
    fusions = [("rrf", 0.5, 60.0), ("rrf", 0.7, 0.3), ("rrf", 0.0, 60.0), ("rrf", 1.0, 2.0)]
    if not shallow:  # ``shallow`` changes RRF only: the weighted fusion once per store
        fusions += [("weighted", 0.5, 60.0), ("weighted", 0.25, 60.0), ("weighted", 0.0, 60.0)]
    for query in QUERIES:
        for filter_ in FILTERS:
            for fusion, alpha, c in fusions:
                for k in (1, 3, 10, 400):
                    fast, slow = both(store, query, k, filter_, fusion, alpha, c)
                    assert fast is not None  # a flat index: always the NumPy way
                    where = (query, filter_, fusion, alpha, c, k)
                    assert [i for i, _ in fast] == [i for i, _ in slow], where
                    assert [s for _, s in fast] == pytest.approx([s for _, s in slow], rel=1e-6)


def test_ties_are_broken_by_slot_in_each_ranking_and_by_id_in_the_fusion() -> None:
    store = LocalVectorStore(HashingEmbeddings(16))
    store.add_texts(["cobalt amber"] * 5, ids=["c", "a", "e", "b", "d"])  # all alike
    rrf, slow = both(store, "cobalt", 3, None, "rrf", 0.5, 60.0)
    assert rrf == slow
    assert rrf is not None and [i for i, _ in rrf] == ["c", "a", "e"]  # ranks by slot
    weighted, slow = both(store, "cobalt", 3, None, "weighted", 0.5, 60.0)
    assert weighted == slow
    assert weighted is not None and [i for i, _ in weighted] == ["a", "b", "c"]  # by id


def test_a_custom_relevance_function_is_applied_to_every_distance() -> None:
    def relevance(distance: float) -> float:
        return 1.0 / (1.0 + 3.0 * distance)

    store = random_store(3, "l2", relevance_score_fn=relevance)
    for query in QUERIES:
        fast, slow = both(store, query, 10, None, "weighted", 0.6, 60.0)
        assert fast is not None
        assert [i for i, _ in fast] == [i for i, _ in slow]
        assert [s for _, s in fast] == pytest.approx([s for _, s in slow], rel=1e-6)


@pytest.mark.parametrize("index", ["hnsw", "ivf"])
def test_approximate_indexes_use_numpy_only_where_their_search_is_exact(index: str) -> None:
    store = random_store(4, "cosine", index=index)
    trained = index == "hnsw" or store.engine.state.index.trained  # type: ignore[union-attr]
    few: Callable[[dict[str, Any]], bool] = lambda md: md["n"] < 15  # noqa: E731
    for query in QUERIES:
        fast, slow = both(store, query, 5, few, "rrf", 0.5, 60.0)
        assert fast is not None and [i for i, _ in fast] == [i for i, _ in slow]
        wide, _ = both(store, query, 5, None, "rrf", 0.5, 60.0)
        assert (wide is None) == trained  # the index's own ranking: the threshold algorithm
        keyword_only, slow = both(store, query, 5, None, "rrf", 0.0, 60.0)
        assert keyword_only == slow  # no vector side: nothing approximate


def test_rrf_ranks_only_the_head_of_each_side_and_still_finds_the_true_top_k(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store where most documents share a vector or a BM25 score with many others: RRF
    looks at the first documents of each side only (checked: it never scores them all
    here), bounds the ranks of tied ones, and still returns the threshold algorithm's
    answer, scores included."""
    from vectordb_manager.engine import hybrid

    rng = random.Random(7)
    store = LocalVectorStore(HashingEmbeddings(8), distance="cosine")
    texts = [" ".join(rng.choices(WORDS[:6], k=rng.randint(1, 4))) for _ in range(1500)]
    store.add_texts(texts, [{"n": i} for i in range(len(texts))],
                    ids=[f"{rng.randrange(10**6):06d}-{i}" for i in range(len(texts))])
    store.delete([d.id for d in store.similarity_search("amber", k=40) if d.id])
    seen: list[int] = []
    contenders = hybrid._Rrf._contenders

    def counted(self: Any, candidates: np.ndarray[Any, Any], k: int) -> Any:
        seen.append(len(candidates))
        return contenders(self, candidates, k)

    monkeypatch.setattr(hybrid._Rrf, "_contenders", counted)
    for head in (1024, 16):  # (16: a partial sort of each side's keys; past it, counted)
        monkeypatch.setattr(hybrid._Ranking, "HEAD", head)
        for query in ["amber", "cobalt delta", "basalt basalt ember", "fjord"]:
            for alpha, c in [(0.5, 60.0), (0.8, 60.0), (0.2, 5.0), (0.5, 0.0)]:
                for k in (1, 10, 60):
                    fast, slow = both(store, query, k, None, "rrf", alpha, c)
                    assert fast is not None and [i for i, _ in fast] == [i for i, _ in slow]
                    assert [s for _, s in fast] == [s for _, s in slow], (query, alpha, c, k)
    assert seen and max(seen) < len(store.engine.state.slot) / 2


@pytest.mark.parametrize("head", [1, 3, 16, 1024])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("counts", [0, 1000])  # keys past the head counted before a sort
def test_a_ranking_from_its_head_alone_equals_a_stable_sort(
    head: int, seed: int, counts: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_Ranking` sorts only the smallest keys; its cuts, bounds and exact ranks equal a
    stable sort's (ties by position), past the head too, for keys with many ties."""
    from vectordb_manager.engine import hybrid

    monkeypatch.setattr(hybrid._Ranking, "HEAD", head)
    monkeypatch.setattr(hybrid, "_COUNTS_PER_SORT", counts)
    rng = np.random.default_rng(seed)
    n = 300
    keys = rng.integers(0, 40, n).astype(np.float32) / 8  # many keys tied
    truth = np.empty(n, dtype=np.int64)
    truth[np.argsort(keys, kind="stable")] = np.arange(n)
    ranking = hybrid._Ranking(keys)
    grew = []
    for m in (1, 2, 5, 17, 60, 250, 300):
        assert sorted(ranking.first(m).tolist()) == np.flatnonzero(truth < m).tolist(), m
        grew.append(len(ranking.head))
        positions = rng.permutation(n)[:50]
        low, high = ranking.bounds(positions)
        assert np.all(low <= truth[positions]) and np.all(truth[positions] <= high)
        assert np.array_equal(ranking.exact(positions, low, high), truth[positions])
    if head < 100:
        assert grew[0] < n  # (a partial sort at first)
