"""Fusing a vector ranking and a keyword ranking into one exact top k.

Two rankings of the documents that pass a search's filter are fused: the vector side (every
passing document, closest first) and the keyword side (the passing documents holding at
least one query term, highest BM25 first). ``alpha`` is the weight of the vector side and
``1 - alpha`` the keyword side's; a side whose weight is 0 is not searched at all.

``fusion="rrf"`` (the default), reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009)::

    score(d) = alpha / (c + rank_vector(d)) + (1 - alpha) / (c + rank_keyword(d))

Ranks count from 1; a document absent from a side (the keyword side: it holds no query term)
gets nothing from it. ``c`` is ``rank_constant``, 60 by default: the paper's value, and
LangChain's ``EnsembleRetriever``'s ``c`` (with ``alpha=0.5`` the scores are exactly
``EnsembleRetriever``'s with equal weights) and Elasticsearch's ``rank_constant``. A larger
``c`` flattens the difference between the first ranks. The best possible score is
``1 / (c + 1)``.

``fusion="weighted"``, a weighted sum of normalized scores, each in [0, 1]::

    score(d) = alpha * relevance(d) + (1 - alpha) * bm25(d) / bm25_max

``relevance`` is the store's own map from distance into [0, 1] (the one
``similarity_search_with_relevance_scores`` uses, e.g. ``(1 + cos) / 2`` for cosine), so the
vector side's normalization does not depend on which documents were fetched. ``bm25_max``
is the highest BM25 score among the passing documents (the keyword side's first result), so
the best keyword match scores 1 and a document without a query term 0. (Min-max scaling was
not chosen: its minimum is the lowest score of *all* matching documents, which only a full
scan knows, and it would give the weakest match 0, like a document without the terms.)

**Exactness** (Fagin's threshold algorithm, no random access): the fused top k is the true
top k of the formula over every passing document, not a fusion of two fixed-size candidate
lists. Each side is asked for its best ``n``; a document not among them scores at most what
the ``n``-th would (RRF: rank ``n + 1``; weighted: the ``n``-th score), so every document's
fused score is bounded. When the k-th best known score is above the bound of every document
not in the top k, and every document in the top k has its exact score (it was seen on both
sides, or is known to be absent from one: a side that returned fewer than asked is complete,
and a document whose text holds no query term is not on the keyword side), the answer is
final. Otherwise ``n`` doubles on the sides that hold it up, and the sides are asked again.
Ties are broken by the document's id, so the result does not depend on ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from vectordb_manager.errors import InvalidInputError

T = TypeVar("T")

FUSIONS = ("rrf", "weighted")
"""The fusion methods: reciprocal rank fusion and a weighted sum of normalized scores."""
DEFAULT_RANK_CONSTANT = 60.0
"""RRF's ``c``: the value of Cormack et al. (2009), LangChain's ``EnsembleRetriever`` and
Elasticsearch."""
DEFAULT_ALPHA = 0.5
"""The vector side's weight (the keyword side's is ``1 - alpha``)."""
VECTOR, KEYWORD = 0, 1
"""The sides, as indexes of `Fusion.weights`."""

Entry = tuple[str, float, T]
"""One side's result: the document's key (its id), its score (higher is better: a relevance
in [0, 1] on the vector side, BM25 on the keyword side) and the document."""
Fetch = Callable[[int], Sequence[Entry[T]]]
"""One side's search: its best ``n`` entries among the passing documents, best first; fewer
than ``n`` only when no more exist."""
Absent = Callable[[int, T], bool]
"""Whether a document is known not to appear on a side at all (its contribution is 0)."""


def _number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and math.isfinite(value)
    )


@dataclass(frozen=True)
class Fusion:
    """A hybrid search's fusion: ``method`` (``"rrf"`` or ``"weighted"``), ``alpha`` (the
    vector side's weight, in [0, 1]) and ``rank_constant`` (RRF's ``c``)."""

    method: str = "rrf"
    alpha: float = DEFAULT_ALPHA
    rank_constant: float = DEFAULT_RANK_CONSTANT

    @classmethod
    def checked(cls, method: object, alpha: object, rank_constant: object) -> Fusion:
        """The fusion the arguments describe; `InvalidInputError` names a bad one."""
        if method not in FUSIONS:
            raise InvalidInputError(
                f"fusion={method!r} is not a fusion method; use 'rrf' (reciprocal rank "
                "fusion, the default) or 'weighted' (a weighted sum of normalized scores)"
            )
        if not _number(alpha) or not 0.0 <= float(alpha) <= 1.0:  # type: ignore[arg-type]
            raise InvalidInputError(
                f"alpha={alpha!r} must be a number from 0 (keyword side only) to 1 (vector "
                "side only); 0.5 weighs both alike"
            )
        if not _number(rank_constant) or float(rank_constant) < 0:  # type: ignore[arg-type]
            raise InvalidInputError(
                f"rank_constant={rank_constant!r} must be a number, zero or more (RRF's c; "
                f"{DEFAULT_RANK_CONSTANT:g} is usual)"
            )
        return cls(str(method), float(alpha), float(rank_constant))  # type: ignore[arg-type]

    @property
    def weights(self) -> tuple[float, float]:
        """The vector side's and the keyword side's weights."""
        return (self.alpha, 1.0 - self.alpha)

    def contribution(self, side: int, rank: int, score: float, top: float) -> float:
        """What the entry at ``rank`` (from 0) of ``side``, with ``score``, adds to its
        document's fused score; ``top`` is that side's first score."""
        weight = self.weights[side]
        if self.method == "rrf":
            return weight / (self.rank_constant + rank + 1)
        if side == KEYWORD:
            return weight * score / top if top > 0 else 0.0
        return weight * score

    def bound(self, side: int, entries: Sequence[Entry[T]]) -> float:
        """The most a document missing from ``entries`` (``side``'s best, not all of them)
        can get from that side."""
        if not entries:
            return 0.0
        return self.contribution(side, len(entries), entries[-1][1], entries[0][1])


@dataclass
class _Side(Generic[T]):
    fetch: Fetch[T]
    asked: int = 0
    entries: Sequence[Entry[T]] = ()

    @property
    def complete(self) -> bool:
        return len(self.entries) < self.asked

    def get(self, n: int) -> None:
        if n != self.asked:
            self.entries = self.fetch(n)
            self.asked = n


def fused_top_k(
    vector: Fetch[T],
    keyword: Fetch[T],
    k: int,
    fusion: Fusion,
    *,
    absent: Absent[T] | None = None,
    start: int | None = None,
) -> list[tuple[T, float]]:
    """The k documents with the highest fused score, best first, with their scores.

    ``vector`` and ``keyword`` fetch each side's best ``n`` (see `Fetch`), ``absent`` tells
    whether a document is known to be missing from a side, ``start`` is the first ``n``
    (default ``max(4 * k, 20)``). Exact: see the module's docstring.
    """
    weights = fusion.weights
    sides = [_Side(vector), _Side(keyword)]
    n = [max(4 * k, 20) if start is None else start] * 2
    known_absent: dict[tuple[int, str], bool] = {}
    while True:
        for s, side in enumerate(sides):
            if weights[s] > 0:
                side.get(n[s])
        state = _Round(fusion, sides, absent, known_absent)
        ranked = sorted(state.lower, key=lambda key: (-state.lower[key], key))
        top_keys = ranked[:k]
        grow = state.holding_up(top_keys, ranked[k:], k)
        if not grow:
            return [(state.items[key], state.lower[key]) for key in top_keys]
        for s in grow:
            n[s] *= 2


class _Round(Generic[T]):
    """What one round's fetches tell: each seen document's known parts of its fused score,
    and the most the unknown parts can add."""

    def __init__(
        self,
        fusion: Fusion,
        sides: Sequence[_Side[T]],
        absent: Absent[T] | None,
        known_absent: dict[tuple[int, str], bool],
    ) -> None:
        weights = fusion.weights
        self.absent = absent
        self.known_absent = known_absent
        self.growable = [s for s, side in enumerate(sides) if weights[s] > 0 and not side.complete]
        self.bounds = [
            fusion.bound(s, sides[s].entries) if s in self.growable else 0.0 for s in (0, 1)
        ]
        self.parts: dict[str, list[float | None]] = {}
        self.items: dict[str, T] = {}
        for s, side in enumerate(sides):
            if weights[s] <= 0:
                continue
            top = side.entries[0][1] if side.entries else 0.0
            for rank, (key, score, item) in enumerate(side.entries):
                part = fusion.contribution(s, rank, score, top)
                self.parts.setdefault(key, [None, None])[s] = part
                self.items.setdefault(key, item)
        self.lower = {key: sum(p for p in ps if p is not None) for key, ps in self.parts.items()}

    def upper(self, key: str) -> float:
        """The most ``key``'s fused score can be."""
        missing = (s for s in self.growable if self.parts[key][s] is None)
        return self.lower[key] + sum(self.bounds[s] for s in missing)

    def unknown(self, key: str) -> list[int]:
        """The sides whose part of ``key``'s score is not known yet."""
        out = []
        for s in self.growable:
            if self.parts[key][s] is None and self.bounds[s] > 0:
                if (s, key) not in self.known_absent:
                    found = self.absent is not None and self.absent(s, self.items[key])
                    self.known_absent[s, key] = found
                if not self.known_absent[s, key]:
                    out.append(s)
        return out

    def holding_up(self, top: Sequence[str], rest: Sequence[str], k: int) -> set[int]:
        """The sides to fetch more of before ``top`` is sure to be the top k, each with its
        exact score (none: it is)."""
        if len(top) < k:
            return set(self.growable)
        grow: set[int] = set()
        kth = self.lower[top[-1]]
        for key in top:
            grow.update(self.unknown(key))
        for key in rest:  # sorted by lower bound, but the bounds differ: check them all
            if self.upper(key) >= kth:
                grow.update(self.unknown(key))
        unseen = sum(self.bounds)  # a document on no side yet
        if unseen > 0 and unseen >= kth:
            grow.update(s for s in self.growable if self.bounds[s] > 0)
        return grow
