"""Exact hybrid search in NumPy over one `StoreState`'s slots, Documents built for the top k only.

When the vector side is exact (a flat index, an IVF index not trained yet, or a filter that
leaves at most an eighth of the slots, which `search` compares exactly in NumPy too), every
passing slot's distance costs one matrix product, and every passing slot's BM25 score one pass
over the query terms' postings (`TextIndex.scores`). The fused scores of all of them are then
computed at once with the formulas of `vectordb_manager.vectorstores.fusion` (same operations,
same order, so the same floats), and `Document`s are built for the k best only.

Ranks follow the engine's own rankings: the vector side by distance, then slot (FAISS's flat
search and `search`'s exact path break ties the same way); the keyword side by BM25 descending,
then slot; the fused scores descending, then the document's id (`fusion.fused_top_k`'s rule).
A side whose weight is 0 is not searched: with ``alpha == 0`` only documents holding a query
term are ranked. For an approximate vector index and a wider filter, `hybrid_search` answers
``None`` and the caller fuses the index's own rankings by the threshold algorithm instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from langchain_core.documents import Document

from vectordb_manager.engine.filters import CompiledFilter
from vectordb_manager.engine.format import Vectors
from vectordb_manager.engine.search import bitmap_cheaper, document, exact_raw, passing
from vectordb_manager.engine.state import StoreState

F64 = np.ndarray[Any, np.dtype[np.float64]]
Relevance = Callable[[F64], F64]
"""The store's map from distances (lower is closer) to relevances in [0, 1], over an array."""


def exact_over(st: StoreState, allowed: np.ndarray[Any, Any] | None) -> bool:
    """Whether the vector search of ``st`` over ``allowed`` (``None``: every live slot) is
    exact, so that ranking its distances in NumPy gives the same ranking."""
    index = st.index
    if index is None or index.kind == "flat" or not index.trained:
        return True
    return allowed is not None and not bitmap_cheaper(st, allowed)


def hybrid_search(
    st: StoreState,
    q: Vectors | None,
    text: str,
    k: int,
    where: CompiledFilter | None,
    *,
    method: str,
    alpha: float,
    rank_constant: float,
    relevance: Relevance,
) -> list[tuple[Document, float]] | None:
    """The k best passing documents by fused score, with their scores, best first; ``q`` is
    ``None`` only when ``alpha`` is 0. ``None`` when the vector side is approximate (see the
    module docstring)."""
    if not st.live:
        return []
    allowed = passing(st, where) if where is not None else None
    if alpha > 0 and not exact_over(st, allowed):
        return None
    if allowed is None:
        allowed = st.live_slots()
    if not allowed.size:
        return []
    weights = (alpha, 1.0 - alpha)
    rrf = method == "rrf"
    candidates = np.zeros(0, dtype=np.int64)
    fused = np.zeros(0)
    if weights[0] > 0:
        assert q is not None and st.index is not None
        raw = exact_raw(st, q, allowed).astype(np.float64)
        if rrf:
            order = np.argsort(raw if st.distance == "l2" else -raw, kind="stable")
            fused = np.empty(len(allowed))
            fused[order] = weights[0] / _rank_terms(rank_constant, len(allowed))
        else:
            fused = weights[0] * relevance(_distances(st.distance, raw))
        candidates = allowed
    if weights[1] > 0:
        scores, slots = st.text.scores(text, None if where is None else allowed)
        if len(slots):
            if rrf:
                order = np.lexsort((slots, -scores))
                part = np.empty(len(slots))
                part[order] = weights[1] / _rank_terms(rank_constant, len(slots))
            else:
                part = weights[1] * scores / float(scores.max())
            if len(candidates):
                fused[np.searchsorted(candidates, slots)] += part
            else:
                candidates, fused = slots, part
    return _best(st, candidates, fused, k)


def _rank_terms(rank_constant: float, n: int) -> F64:
    """``c + rank + 1`` for the ranks 0 .. n - 1, as `Fusion.contribution` adds them."""
    terms = (rank_constant + np.arange(n, dtype=np.float64)) + 1.0
    return terms.astype(np.float64, copy=False)


def _distances(distance: str, raw: F64) -> F64:
    """`search.to_distance` over an array."""
    if distance == "l2":
        return np.sqrt(np.maximum(raw, 0.0))
    if distance == "cosine":
        return 1.0 - raw
    return -raw


def _best(
    st: StoreState, slots: np.ndarray[Any, Any], fused: F64, k: int
) -> list[tuple[Document, float]]:
    """The k best ``slots`` by ``fused`` (descending, then id), as documents with scores."""
    if len(slots) > k:
        kth = np.partition(fused, len(fused) - k)[len(fused) - k]
        pick = np.flatnonzero(fused >= kth)  # every slot tied with the k-th competes by id
        slots, fused = slots[pick], fused[pick]
    ids = st.ids
    ranked = sorted(
        zip(fused.tolist(), slots.tolist(), strict=True), key=lambda p: (-p[0], ids[p[1]])
    )[:k]
    return [(document(st, s), score) for score, s in ranked]


__all__ = ["Relevance", "exact_over", "hybrid_search"]
