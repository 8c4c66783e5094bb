"""Exact hybrid search in NumPy over one `StoreState`'s slots, Documents built for the top k only.

When the vector side is exact (a flat index, an IVF index not trained yet, or a filter that
leaves at most an eighth of the slots, which `search` compares exactly in NumPy too), every
passing slot's distance costs one matrix product, and every passing slot's BM25 score one pass
over the query terms' postings (`TextIndex.scores`). The weighted fusion then scores all of
them at once; reciprocal rank fusion needs ranks, and ranks only the head of each side
(`_Rrf`: a partial sort of the values per side, never a sort of the positions). Both use the
formulas of `vectordb_manager.vectorstores.fusion` (same operations, same order, so the same
floats), and `Document`s are built for the k best only.

Ranks follow the engine's own rankings: the vector side by distance, then slot (FAISS's flat
search and `search`'s exact path break ties the same way); the keyword side by BM25 descending,
then slot; the fused scores descending, then the document's id (`fusion.fused_top_k`'s rule).
A side whose weight is 0 is not searched: with ``alpha == 0`` only documents holding a query
term are ranked. For an approximate vector index and a wider filter, `hybrid_search` answers
``None`` and the caller fuses the index's own rankings by the threshold algorithm instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

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
    raw: np.ndarray[Any, Any] | None = None
    if weights[0] > 0:
        assert q is not None and st.index is not None
        raw = exact_raw(st, q, allowed)
    scores, hits = np.zeros(0), np.zeros(0, dtype=np.int64)
    if weights[1] > 0:
        scores, hits = st.text.scores(text, None if where is None else allowed)
    sides = _Sides(st.distance, allowed, raw, scores, hits, weights)
    if method == "rrf":
        candidates, fused = _Rrf(sides, rank_constant).top(k)
    else:
        candidates, fused = _weighted(sides, relevance)
    return _best(st, candidates, fused, k)


I64 = np.ndarray[Any, np.dtype[np.int64]]


class _Sides(NamedTuple):
    """What each side found among the passing slots."""

    distance: str
    allowed: I64  # the passing slots, ascending
    raw: np.ndarray[Any, Any] | None  # the vector side's raw score of each (None: unsearched)
    scores: F64  # the keyword side's BM25 scores ...
    hits: I64  # ... of these slots, ascending
    weights: tuple[float, float]  # the vector side's and the keyword side's


_COUNTS_PER_SORT = 32
"""Keys past the head whose ranks `_Ranking.exact` counts (a pass over every key each) before
it sorts all of them instead (a sort of 100k keys costs about as much as 30-60 such passes)."""


class _Ranking:
    """Positions ``0 .. n - 1`` ranked by ``keys`` ascending, equal keys by position (the
    engine's rule: the lower slot first), from the smallest keys alone: a partial sort
    (`np.partition`) finds the head of the ranking, and only the head is sorted (a full sort
    of 100k float32 keys cost 2.3 ms on a machine without AVX-512, the partition 0.6 ms; the
    positions are never sorted). A position's rank lies between the keys below its key and
    the keys up to it: exact bounds within the head, and past the head at least the head's
    count below it and at most ``n - 1``. Only where the rank matters is it made exact, by
    counting the keys below (past the head) and the equal keys at lower positions."""

    HEAD = 1024  # the fewest keys sorted (the head grows 4 times when a deeper cut asks more)

    def __init__(self, keys: np.ndarray[Any, Any]) -> None:
        self.keys = keys
        self.head = keys[:0]  # the smallest len(head) keys, sorted (every key when `whole`)
        self.whole = len(keys) == 0

    def __len__(self) -> int:
        return len(self.keys)

    def _head(self, m: int) -> np.ndarray[Any, Any]:
        """The sorted head, holding at least the ``m`` smallest keys."""
        if len(self.head) < m and not self.whole:
            n = len(self.keys)
            size = max(m, 4 * len(self.head), self.HEAD)
            if size >= n // 8:  # (a good part of them: a sort costs little more)
                self.head, self.whole = np.sort(self.keys), True
            else:
                self.head = np.sort(np.partition(self.keys, size - 1)[:size])
        return self.head

    def first(self, m: int) -> I64:
        """The positions whose rank is below ``m``."""
        if m >= len(self.keys):
            return np.arange(len(self.keys), dtype=np.int64)
        cut = self._head(m)[m - 1]
        below = np.flatnonzero(self.keys < cut)
        level = np.flatnonzero(self.keys == cut)[: m - len(below)]
        return np.concatenate([below, level])

    def bounds(self, positions: I64) -> tuple[I64, I64]:
        """The lowest and the highest rank each position can have (equal when its key is
        not shared and lies inside the head)."""
        self._head(min(self.HEAD, len(self.keys)))
        values = self.keys[positions]
        below, equal = self._in_head(values)
        high = below + equal - 1
        if not self.whole and len(self.head):  # keys at or past the head's last: any rank after
            high[values >= self.head[-1]] = len(self.keys) - 1
        return below, high

    def exact(self, positions: I64, low: I64, high: I64) -> I64:
        """The ranks of ``positions``, from their `bounds`: each uncertain one is the count of
        the keys below its key, plus the equal keys at lower positions (when its key is
        shared)."""
        ranks = low.copy()
        tied = np.flatnonzero(high > low)
        if not len(tied):
            return ranks
        values = self.keys[positions[tied]]
        past = values[:0] if self.whole else np.unique(values[values >= self.head[-1]])
        if len(past) > _COUNTS_PER_SORT:
            self._head(len(self.keys))  # (so many keys past the head: a sort costs less)
            past = values[:0]
        below, equal = self._in_head(values)
        for value in past:  # (the head tells nothing exact of them: count)
            mask = values == value
            below[mask] = np.count_nonzero(self.keys < value)
            equal[mask] = np.count_nonzero(self.keys == value)
        ranks[tied] = below
        for value in np.unique(values[equal > 1]):  # shared keys: the lower positions first
            which = tied[values == value]
            if len(which) == 1:
                at = int(positions[which[0]])
                ranks[which] += np.count_nonzero(self.keys[:at] == value)
            else:
                level = np.flatnonzero(self.keys == value)  # ascending positions
                ranks[which] += np.searchsorted(level, positions[which])
        return ranks

    def _in_head(self, values: np.ndarray[Any, Any]) -> tuple[I64, I64]:
        """How many keys of the head are below each value and how many equal it: every key's
        counts for a value below the head's last key (or with the whole ranking sorted)."""
        below = np.searchsorted(self.head, values, "left")
        return below, np.searchsorted(self.head, values, "right") - below


class _Rrf:
    """Reciprocal rank fusion of the exact vector ranking of the ``allowed`` slots (``raw``;
    ``None``: that side's weight is 0) and the keyword ranking of ``hits`` (BM25
    ``scores``), for the k best only.

    A document ranked at ``d`` or below on both sides scores at most ``w_v / (c + d + 1) +
    w_k / (c + d + 1)``: the candidates are the first ``d`` of each side. Each candidate's
    ranks are first bounded (`_Ranking.bounds`: its key's place among the sorted keys), so
    its fused score lies in an interval; those whose interval reaches the k-th best lower
    end get their exact ranks and scores (the formula's floats). When the k-th best exact
    score is above the bound of the documents outside (strictly: a tie outside could win by
    id), the candidates hold the k best; otherwise ``d`` grows 4 times, up to every
    document."""

    def __init__(self, sides: _Sides, rank_constant: float) -> None:
        self.allowed, self.hits = sides.allowed, sides.hits
        self.weights, self.c = sides.weights, rank_constant
        raw = sides.raw
        self.vector = None if raw is None else _Ranking(raw if sides.distance == "l2" else -raw)
        self.keyword = _Ranking(-sides.scores) if len(sides.hits) else None

    def top(self, k: int) -> tuple[I64, F64]:
        """Slots that hold the k best (and every slot tied with the k-th), with their
        fused scores."""
        depth = self.first_depth(k)
        while True:
            parts = []
            if self.vector is not None:
                parts.append(self.allowed[self.vector.first(depth)])
            if self.keyword is not None:
                parts.append(self.hits[self.keyword.first(depth)])
            if not parts:
                return np.zeros(0, dtype=np.int64), np.zeros(0)
            candidates, fused = self._contenders(np.unique(np.concatenate(parts)), k)
            outside = self._bound(depth)
            if outside is None:
                return candidates, fused
            if len(candidates) >= k:
                kth = np.partition(fused, len(fused) - k)[len(fused) - k]
                if kth > outside:
                    return candidates, fused
            depth *= 4

    def first_depth(self, k: int) -> int:
        """Deep enough that k documents found by one side alone can beat the bound."""
        least = min(w for w in self.weights if w > 0)
        return max(2 * k, int((self.c + k + 1) / least - self.c) + 1)

    def _term(self, side: int, ranks: np.ndarray[Any, Any]) -> F64:
        """`Fusion.contribution` of each rank (from 0): ``w / (c + rank + 1)``."""
        terms = (self.c + ranks.astype(np.float64)) + 1.0
        return self.weights[side] / terms

    def _contenders(self, candidates: I64, k: int) -> tuple[I64, F64]:
        """The candidates that may be among the k best, with their exact fused scores."""
        sides: list[tuple[int, _Ranking, I64, I64, I64, I64]] = []
        if self.vector is not None:
            positions = np.searchsorted(self.allowed, candidates)
            everyone = np.arange(len(candidates))
            sides.append((0, self.vector, everyone, positions, *self.vector.bounds(positions)))
        if self.keyword is not None:
            at = np.minimum(np.searchsorted(self.hits, candidates), len(self.hits) - 1)
            held = np.flatnonzero(self.hits[at] == candidates)
            sides.append((1, self.keyword, held, at[held], *self.keyword.bounds(at[held])))
        lowest, highest = np.zeros(len(candidates)), np.zeros(len(candidates))
        for side, _, rows, _, low, high in sides:
            lowest[rows] += self._term(side, high)
            highest[rows] += self._term(side, low)
        if len(candidates) > k:
            keep = highest >= np.partition(lowest, len(lowest) - k)[len(lowest) - k]
            candidates = candidates[keep]
            mapped = np.full(len(keep), -1)
            mapped[keep] = np.arange(len(candidates))
            sides = [
                (
                    side,
                    ranking,
                    mapped[rows[keep[rows]]],
                    positions[keep[rows]],
                    low[keep[rows]],
                    high[keep[rows]],
                )
                for side, ranking, rows, positions, low, high in sides
            ]
        fused = np.zeros(len(candidates))
        for side, ranking, rows, positions, low, high in sides:
            fused[rows] += self._term(side, ranking.exact(positions, low, high))
        return candidates, fused

    def _bound(self, depth: int) -> float | None:
        """The most a document outside the first ``depth`` of both sides scores; ``None``
        when every document is a candidate."""
        keyword = self.keyword is not None and depth < len(self.keyword)
        if self.vector is not None:
            if depth >= len(self.vector):
                return None
            bound = float(self._term(0, np.array([depth]))[0])
        elif not keyword:
            return None
        else:
            bound = 0.0
        if keyword:
            bound += float(self._term(1, np.array([depth]))[0])
        return bound


def _weighted(sides: _Sides, relevance: Relevance) -> tuple[I64, F64]:
    """The weighted fusion of every candidate: each allowed slot (when the vector side is
    searched) or each keyword hit."""
    allowed, raw, scores, hits, weights = sides[1:]
    candidates, fused = np.zeros(0, dtype=np.int64), np.zeros(0)
    if raw is not None:
        candidates = allowed
        fused = weights[0] * relevance(_distances(sides.distance, raw.astype(np.float64)))
    if len(hits):
        part = weights[1] * scores / float(scores.max())
        if raw is None:
            return hits, part
        full = allowed[0] == 0 and allowed[-1] == len(allowed) - 1  # every slot, in order
        fused[hits if full else np.searchsorted(allowed, hits)] += part
    return candidates, fused


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
