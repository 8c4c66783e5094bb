"""Search exactness: flat equals brute force; filtered search equals brute force over the
documents that pass; deletes and upserts hold for every index type; scores mean what they say."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import VectorTable, brute_force, clustered, passing
from vectordb_manager import LocalVectorStore

N, DIM, K = 3000, 32, 10
DISTANCES = ["cosine", "l2", "inner_product"]


def make_store(
    distance: str, index: str = "flat", path: Path | None = None, n: int = N, **kw: object
) -> tuple[LocalVectorStore, np.ndarray, np.ndarray, list[dict[str, int]]]:
    vectors = clustered(n, DIM, seed=1)
    if distance != "cosine":  # give the vectors different norms, so l2 / ip / cosine differ
        vectors = vectors * np.random.default_rng(2).uniform(0.5, 2.0, size=(n, 1)).astype(
            np.float32
        )
    queries = clustered(40, DIM, seed=3)
    emb = VectorTable(vectors, queries)
    store = LocalVectorStore(emb, path, distance=distance, index=index, **kw)  # type: ignore[arg-type]
    metas = [{"i": i, "bucket": i % 100, "half": i % 2} for i in range(n)]
    store.add_texts([f"d:{i}" for i in range(n)], metas, ids=[str(i) for i in range(n)])
    return store, vectors, queries, metas


Built = tuple[LocalVectorStore, np.ndarray, np.ndarray, list[dict[str, int]]]


@pytest.fixture(scope="module")
def built() -> Callable[..., Built]:
    """`make_store`, each store built once in the module, for tests that only search it."""
    stores: dict[tuple[Any, ...], Built] = {}

    def get(distance: str, index: str = "flat", n: int = N, **kw: Any) -> Built:
        key = (distance, index, n, *sorted(kw.items()))
        if key not in stores:
            stores[key] = make_store(distance, index, n=n, **kw)
        return stores[key]

    return get


def result_ids(store: LocalVectorStore, qi: int, k: int = K, **kw: object) -> list[int]:
    docs = store.similarity_search(f"q:{qi}", k=k, **kw)  # type: ignore[arg-type]
    return [int(d.id) for d in docs]  # type: ignore[arg-type]


@pytest.mark.parametrize("distance", DISTANCES)
def test_flat_equals_brute_force(distance: str) -> None:
    store, vectors, queries, _ = make_store(distance)
    for qi in range(len(queries)):
        assert result_ids(store, qi) == brute_force(vectors, queries[qi], K, distance)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize(
    ("flt", "test"),
    [
        ({"bucket": 7}, lambda m: m["bucket"] == 7),  # 1% pass: exact subset path
        ({"half": 1}, lambda m: m["half"] == 1),  # 50%: one product (l2: FAISS bitmap)
        ({"bucket": {"$lt": 25}}, lambda m: m["bucket"] < 25),  # 25%: FAISS bitmap
        (
            {"$or": [{"bucket": {"$lt": 3}}, {"i": {"$in": [5, 6, 7]}}]},
            lambda m: m["bucket"] < 3 or m["i"] in (5, 6, 7),
        ),
    ],
)
def test_filtered_equals_brute_force_over_passing(
    distance: str, flt: dict[str, Any], test: Callable[[Any], bool], built: Callable[..., Built]
) -> None:
    # 10,000 documents: the 25% and 50% filters pass enough to take the bitmap and product paths
    store, vectors, queries, metas = built(distance, n=10_000)
    keep = passing(metas, test)
    for qi in range(0, len(queries), 4):
        got = result_ids(store, qi, filter=flt)
        assert len(got) == K  # filled: never fewer when enough documents pass
        assert got == brute_force(vectors, queries[qi], K, distance, keep)


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf"])
def test_filter_returns_all_when_fewer_pass(index: str, built: Callable[..., Built]) -> None:
    store, _, _, _ = built("cosine", index, ivf_min_train=500)
    docs = store.similarity_search("q:0", k=50, filter={"i": {"$in": [1, 2, 3]}})
    assert sorted(d.id for d in docs) == ["1", "2", "3"]  # type: ignore[type-var]
    assert store.similarity_search("q:0", k=5, filter={"bucket": 1000}) == []


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf"])
def test_filtered_search_is_filled_for_approximate_indexes(
    index: str, built: Callable[..., Built]
) -> None:
    store, vectors, queries, metas = built("cosine", index, ivf_min_train=500)
    keep = passing(metas, lambda m: m["bucket"] == 7)
    for qi in range(0, 40, 8):
        got = result_ids(store, qi, filter={"bucket": 7})
        assert len(got) == K and all(int(i) % 100 == 7 for i in got)
        # 30 candidates pass: the exact path is used, so even approximate indexes are exact here
        assert got == brute_force(vectors, queries[qi], K, "cosine", keep)


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("persisted", [False, True])
def test_delete_and_upsert_for_every_index(index: str, persisted: bool, tmp_path: Path) -> None:
    path = tmp_path / "s" if persisted else None
    store, _, queries, _ = make_store("cosine", index, path, n=1200, ivf_min_train=500)
    gone = [str(i) for i in range(0, 1200, 3)]
    store.delete(gone)
    # re-point id "1" at query 0's own vector: it must now be the nearest to query 0
    store.add_embeddings([("moved", queries[0].tolist())], [{"moved": True}], ids=["1"])
    for s in [store, LocalVectorStore(store.embeddings, path, index=index)] if path else [store]:
        assert len(s) == 1200 - len(gone)
        assert s.get_by_ids(gone[:5]) == []
        top = s.similarity_search("q:0", k=20)
        assert top[0].id == "1" and top[0].page_content == "moved"
        assert not {d.id for d in top} & set(gone)
        assert len(top) == 20
        s.verify()


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_tombstones_many_deletes_still_exact(index: str) -> None:
    store, vectors, queries, _ = make_store("l2", index, n=2000)
    # delete the true nearest neighbours of query 0 and many others
    first = brute_force(vectors, queries[0], 50, "l2")
    store.delete([str(i) for i in first[:40]] + [str(i) for i in range(1000, 1500)])
    deleted = set(first[:40]) | set(range(1000, 1500))
    keep = [i for i in range(2000) if i not in deleted]
    got = result_ids(store, 0)
    if index == "flat":
        assert got == brute_force(vectors, queries[0], K, "l2", keep)
    else:
        assert len(got) == K and not set(got) & deleted


def test_scores_are_distances_and_relevance_in_unit_interval() -> None:
    for distance in DISTANCES:
        store, vectors, queries, _ = make_store(distance, n=500)
        with_score = store.similarity_search_with_score("q:0", k=20)
        raw = [s for _, s in with_score]
        assert raw == sorted(raw), f"{distance}: raw scores must be ascending distances"
        rel = store.similarity_search_with_relevance_scores("q:0", k=20)
        scores = [s for _, s in rel]
        assert len(scores) == 20 and all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True), f"{distance}: relevance must descend"
        q = queries[0].astype(np.float64)
        v = vectors[int(with_score[0][0].id)].astype(np.float64)  # type: ignore[arg-type]
        expected = {
            "cosine": 1 - v @ q / np.linalg.norm(v) / np.linalg.norm(q),
            "l2": np.linalg.norm(v - q),
            "inner_product": -(v @ q),
        }[distance]
        assert raw[0] == pytest.approx(expected, abs=1e-4)


def test_relevance_threshold_filters() -> None:
    store, _, _, _ = make_store("cosine", n=300)
    all_rel = store.similarity_search_with_relevance_scores("q:0", k=300)
    cut = all_rel[10][1]
    kept = store.similarity_search_with_relevance_scores("q:0", k=300, score_threshold=cut)
    assert len(kept) >= 11 and all(s >= cut for _, s in kept)


def test_mmr_prefers_diverse_results() -> None:
    base = np.eye(8, dtype=np.float32)
    near = base[0] + 0.01 * base[1]
    vectors = np.stack([base[0], near / np.linalg.norm(near), base[2], base[3]])
    query = (base[0] + 0.5 * base[2]).reshape(1, -1)
    store = LocalVectorStore(VectorTable(vectors, query / np.linalg.norm(query)))
    store.add_texts([f"d:{i}" for i in range(4)], ids=["a", "a2", "c", "d"])
    plain = [d.id for d in store.similarity_search("q:0", k=2)]
    mmr = [
        d.id for d in store.max_marginal_relevance_search("q:0", k=2, fetch_k=4, lambda_mult=0.3)
    ]
    assert plain == ["a", "a2"]
    assert mmr == ["a", "c"]
    filtered = store.max_marginal_relevance_search("q:0", k=2, filter={"x": 1})
    assert filtered == []


def test_search_by_vector_and_with_score_by_vector() -> None:
    store, _, queries, _ = make_store("cosine", n=400)
    by_text = store.similarity_search("q:5", k=5)
    by_vec = store.similarity_search_by_vector(queries[5].tolist(), k=5)
    assert len(by_text) == 5 and [d.id for d in by_text] == [d.id for d in by_vec]
    pairs = store.similarity_search_with_score_by_vector(
        queries[5].tolist(), k=5, filter={"half": 0}
    )
    assert len(pairs) == 5 and all(int(d.id) % 2 == 0 for d, _ in pairs)  # type: ignore[arg-type]


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("n", [400, 12_000])  # FAISS's search of a small store; NumPy's
def test_a_query_vector_may_be_any_array_of_floats(
    distance: str, n: int, built: Callable[..., Built]
) -> None:
    """A strided view, float64, or an exact unit vector (whose normalising is skipped) give
    what the same query as a list gives."""
    store, _, queries, _ = built(distance, n=n)
    for qi in (0, 5):
        want = store.similarity_search_with_score_by_vector(queries[qi].tolist(), k=K)
        wide = np.zeros((DIM, 3), dtype=np.float32)
        wide[:, 1] = queries[qi]
        for query in (wide[:, 1], queries[qi].astype(np.float64)):
            assert store.similarity_search_with_score_by_vector(query, k=K) == want
    if distance == "cosine":
        unit = np.zeros(DIM, dtype=np.float32)
        unit[3] = 1.0  # (its squared norm is exactly 1.0)
        assert store.similarity_search_with_score_by_vector(
            unit, k=K
        ) == store.similarity_search_with_score_by_vector((unit * 2.0).tolist(), k=K)


def test_concurrent_searches_of_a_small_store_each_get_their_own_results(
    built: Callable[..., Built],
) -> None:
    """A small flat store's searches write FAISS's results into their thread's buffers; many
    threads at once, and more results than those buffers hold, each get their own."""
    store, vectors, queries, _ = built("cosine", n=400)
    want = {
        (qi, k): brute_force(vectors, queries[qi], k, "cosine") for qi in range(8) for k in (4, 100)
    }
    wrong: list[tuple[int, int]] = []

    def searcher(offset: int) -> None:
        for round_ in range(200):
            qi, k = (offset + round_) % 8, (4, 100)[round_ % 2]
            docs = store.similarity_search_by_vector(queries[qi].tolist(), k=k)
            if [int(d.id) for d in docs] != want[(qi, k)]:  # type: ignore[arg-type]
                wrong.append((qi, k))

    threads = [threading.Thread(target=searcher, args=(t,)) for t in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # (the threads take turns as often as they can)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []


def test_a_small_store_searches_alike_through_faiss_raw_functions_and_its_wrappers(
    built: Callable[..., Built], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small flat store calls FAISS's brute-force and pointer functions under their Python
    wrappers where the module has them (`rows.KNN_IP`), and the wrappers where it does not:
    the same results either way, those of brute force."""
    import faiss

    from vectordb_manager.engine import index as index_module
    from vectordb_manager.engine import rows as rows_module
    from vectordb_manager.engine import vectors as vectors_module

    assert rows_module.KNN_IP is not faiss.knn_inner_product  # (faiss-cpu here has them)
    store, vectors, queries, _ = built("cosine", n=400)
    for raw in (True, False):
        if not raw:
            monkeypatch.setattr(rows_module, "_RAW", object())  # (a module without them)
            for module in (index_module, rows_module):
                monkeypatch.setattr(module, "SWIG_PTR", faiss.swig_ptr)
            monkeypatch.setattr(rows_module, "KNN_IP", rows_module.raw_function("knn_inner_product"))
            monkeypatch.setattr(vectors_module, "_NORMS", None)  # (found again, as wrappers)
            assert rows_module.KNN_IP is faiss.knn_inner_product
        for qi in range(8):
            pairs = store.similarity_search_with_score_by_vector(queries[qi].tolist(), k=5)
            assert [int(d.id) for d, _ in pairs] == brute_force(vectors, queries[qi], 5, "cosine")  # type: ignore[arg-type]
            scores = [float(queries[qi] @ vectors[int(d.id)]) for d, _ in pairs]  # type: ignore[arg-type]
            assert [s for _, s in pairs] == pytest.approx([1 - x for x in scores], abs=1e-6)


def test_auto_switches_to_hnsw_at_threshold() -> None:
    store, vectors, queries, _ = make_store("cosine", "auto", n=600, auto_threshold=500)
    assert store.stats()["index"] == "hnsw"
    small, *_ = make_store("cosine", "auto", n=400, auto_threshold=500)
    assert small.stats()["index"] == "flat"
    assert result_ids(store, 0, k=1) == brute_force(vectors, queries[0], 1, "cosine")


@pytest.mark.parametrize("distance", ["cosine", "inner_product"])
@pytest.mark.parametrize("deleted", [0, 7])
def test_one_query_on_a_flat_index_keeps_the_older_of_equal_scores(
    tmp_path: Path, distance: str, deleted: int
) -> None:
    """Many equal vectors around the cut of k: the k results are the lowest slots among the
    equal ones (the older documents), in slot order, as FAISS keeps them."""
    rng = np.random.default_rng(5)
    vectors = np.repeat(clustered(6, 8, seed=3), 10, axis=0)  # 6 vectors, 10 copies of each
    order = rng.permutation(len(vectors))
    vectors = vectors[order]
    ids = [f"d{i:03d}" for i in range(len(vectors))]
    store = LocalVectorStore(VectorTable(vectors), tmp_path / "s", distance=distance)
    store.add_embeddings(list(zip(ids, vectors.tolist(), strict=True)), ids=ids)
    gone = ids[:deleted]
    if gone:
        store.delete(gone)
    alive = np.array([i for i in range(len(ids)) if ids[i] not in gone])
    for target in range(6):
        q = vectors[np.flatnonzero(order // 10 == target)[0]]
        scores = vectors[alive] @ q
        for k in (3, 10, 15, 25):
            want = alive[np.lexsort((alive, -np.round(scores, 5)))][:k]
            got = store.similarity_search_by_vector(q.tolist(), k=k)
            assert [d.id for d in got] == [ids[i] for i in want], (target, k)


def test_result_documents_are_ordinary_documents() -> None:
    """Results are made without pydantic's second validation; they must be indistinguishable
    from documents made by the validated constructor, and the caller's to change."""
    import copy
    import pickle

    from langchain_core.documents import Document

    from vectordb_manager.engine.search import make_document

    store = LocalVectorStore(VectorTable(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32)))
    store.add_texts(["d:0", "d:1"], [{"a": 1, "n": {"x": [1]}}, {"b": "s"}], ids=["i0", "i1"])
    found = store.similarity_search_by_vector([1.0, 0.0, 0.0, 0.0], k=2)
    assert make_document.__name__ == "unchecked"  # the fast path is in use with this version
    for doc, want in zip(
        found,
        [
            Document(id="i0", page_content="d:0", metadata={"a": 1, "n": {"x": [1]}}),
            Document(id="i1", page_content="d:1", metadata={"b": "s"}),
        ],
        strict=True,
    ):
        assert doc == want and repr(doc) == repr(want) and type(doc) is Document
        assert doc.model_fields_set == want.model_fields_set
        assert doc.model_dump_json() == want.model_dump_json()
        assert copy.deepcopy(doc) == want and pickle.loads(pickle.dumps(doc)) == want
    found[0].metadata["n"]["x"].append(2)
    found[0].metadata["a"] = 5
    found[0].type = "Document"  # (pydantic notes a field set: on this document alone)
    assert "type" in found[0].model_fields_set
    assert found[1].model_fields_set == {"id", "page_content", "metadata"}
    later = store.similarity_search_by_vector([1.0, 0.0, 0.0, 0.0], k=1)[0]
    assert later.model_fields_set == {"id", "page_content", "metadata"}
    found[1].page_content = "changed"
    found[1].metadata["b"] = "t"
    # a record with flat metadata is marked so when decoded (its dict copied without a check)
    records = [store._engine._state.record(s) for s in (0, 1)]
    assert [type(r).__name__ for r in records] == ["Record", "PlainRecord"]
    assert store.get_by_ids(["i0", "i1"]) == [
        Document(id="i0", page_content="d:0", metadata={"a": 1, "n": {"x": [1]}}),
        Document(id="i1", page_content="d:1", metadata={"b": "s"}),
    ]


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("share", [0.05, 0.25, 0.5])  # exact gather, FAISS's bitmap, one product
def test_equal_scores_rank_in_slot_order_on_every_filtered_path(
    tmp_path: Path, distance: str, share: float
) -> None:
    """Documents with the same vector tie; whichever way a filtered search runs (which
    depends on the share of slots passing, deleted ones included), the passing ones come in
    the order they were stored, and the cut at k keeps the earliest."""
    from vectordb_manager.embeddings import HashingEmbeddings
    from vectordb_manager.engine import search as searching
    from vectordb_manager.engine.filters import compile_where

    store = LocalVectorStore(HashingEmbeddings(), tmp_path / "s", distance=distance)
    n = 400
    passing_ids = [f"p{i}" for i in range(int(n * share))]
    ids = [f"x{i}" if i % int(1 / share) else passing_ids[i // int(1 / share)] for i in range(n)]
    store.add_texts(["the same words"] * n, [{"pass": i.startswith("p")} for i in ids], ids=ids)
    st = store._engine._state
    allowed = searching.passing(st, compile_where({"pass": True}))
    assert len(allowed) == len(passing_ids)
    bitmap = share == 0.25 or (share == 0.5 and distance == "l2")  # (one product: inner products)
    assert searching.bitmap_cheaper(st, allowed) == bitmap
    q = HashingEmbeddings().embed_query("the same words")
    for k in (1, 7, len(passing_ids) - 1, len(passing_ids) + 3):
        got = [d.id for d in store.similarity_search_by_vector(q, k, {"pass": True})]
        assert got == passing_ids[:k], (k, got[:10])


@pytest.mark.parametrize("every_other", [False, True])
def test_a_run_of_neighbours_is_ranked_by_one_product_over_its_span(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every_other: bool
) -> None:
    """A range over a key that grows as documents are added passes neighbouring slots: their
    scores come from one product over that span alone (neither every stored vector nor a
    copy of the passing ones), ranked as comparing each passing vector would rank them."""
    from vectordb_manager.embeddings import HashingEmbeddings
    from vectordb_manager.engine import search as searching

    emb = HashingEmbeddings()
    store = LocalVectorStore(emb, tmp_path / "s", distance="cosine")
    n = 1000
    texts = [f"doc {i % 37} words {i % 11}" for i in range(n)]  # (repeats: equal vectors tie)
    store.add_texts(texts, [{"i": i, "odd": i % 2 == 1} for i in range(n)])
    where: dict[str, Any] = {"i": {"$gte": 300, "$lt": 700}}
    if every_other:
        where = {"$and": [where, {"odd": False}]}
    spans: list[int] = []
    real = searching.product

    def product(stored: np.ndarray, q: np.ndarray) -> np.ndarray:
        spans.append(len(stored))
        return real(stored, q)

    monkeypatch.setattr(searching, "product", product)
    q = emb.embed_query("doc 5 words 3")
    got = store.similarity_search_with_score_by_vector(q, 25, filter=where)
    assert spans == [399 if every_other else 400]
    st = store._engine._state
    slots = [s for s in range(n) if 300 <= s < 700 and not (every_other and s % 2)]
    unit = np.asarray(q, np.float32) / np.linalg.norm(q)  # (cosine: stored normalised)
    scores = st.index.vectors()[slots] @ unit
    ranked = sorted(zip((-scores).tolist(), slots, strict=True))[:25]
    assert [d.metadata["i"] for d, _ in got] == [s for _, s in ranked]
    assert np.allclose([dist for _, dist in got], [1.0 + s for s, _ in ranked], atol=1e-5)
