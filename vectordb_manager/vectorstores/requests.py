"""A search's arguments, checked once before anything is embedded, and the search each asks
the engine for.

`similarity_request`, `mmr_request`, `keyword_request` and `hybrid_request` check ``k``, the
filter (compiled once), and the options of each kind of search (``fetch_k``,
``score_threshold``, ``lambda_mult``, the fusion's), refusing any other keyword argument by
name (`refuse_unknown`; see `vectordb_manager.vectorstores.compat` for what LangChain's FAISS
store accepts and why). A request's ``search`` runs it on an `Engine`, giving the (document,
score) pairs the store's methods return. `EngineVectorStore` and ``vectordb search``
(`vectordb_manager.quick_search`, which answers without LangChain's store classes) both
search through these, so the two give the same results; this module imports no LangChain
but its `Document`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

from vectordb_manager.engine.filters import CompiledFilter, compile_where
from vectordb_manager.engine.search import require_k
from vectordb_manager.errors import InvalidInputError
from vectordb_manager.vectorstores.fusion import KEYWORD, Entry, Fusion, fused_top_k
from vectordb_manager.vectorstores.relevance import RELEVANCE, relevance_array

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from vectordb_manager.engine.core import Engine
    from vectordb_manager.engine.format import Vectors

MetadataFilter = dict[str, Any] | Callable[[dict[str, Any]], bool]
"""A ``filter=``: a dict on metadata (see `vectordb_manager.engine.filters`) or, as in
LangChain's FAISS store, a function of a document's metadata returning whether it passes."""

SIMILARITY_KWARGS = ("k", "filter", "fetch_k", "score_threshold")
MMR_KWARGS = ("k", "fetch_k", "lambda_mult", "filter")
_IGNORED = ("verbose",)  # retriever.invoke(query, verbose=True) passes it down unpopped
_HINTS = {
    "lambda_mult": "lambda_mult is for max_marginal_relevance_search (search_type='mmr')",
    "score_threshold": "score_threshold applies to the similarity searches, not to MMR",
}


def without(kwargs: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """``kwargs`` without ``names``."""
    return {k: v for k, v in kwargs.items() if k not in names}


def refuse_unknown(method: str, kwargs: Mapping[str, Any], accepted: Sequence[str]) -> None:
    """`InvalidInputError` naming the keyword arguments ``method`` does not take."""
    unknown = sorted(k for k in kwargs if k not in _IGNORED)
    if unknown:
        hints = [_HINTS[k] for k in unknown if k in _HINTS]
        raise InvalidInputError(
            f"{method}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(accepted)}" + "".join(f" ({h})" for h in hints)
        )


class SearchRequest(NamedTuple):
    """A similarity search's arguments, checked: ``k``, the compiled filter and the largest
    distance to keep (``None``: any). (A tuple: made for every search, it costs less to
    build than a frozen dataclass.)"""

    k: int
    where: CompiledFilter | None
    score_threshold: float | None = None

    def keep(self, pairs: list[tuple[Document, float]]) -> list[tuple[Document, float]]:
        """The (document, distance) pairs within the threshold."""
        limit = self.score_threshold
        return pairs if limit is None else [(d, s) for d, s in pairs if s <= limit]

    def search(
        self, engine: Engine, vector: Sequence[float] | Vectors, *, checked: bool = False
    ) -> list[tuple[Document, float]]:
        """The search on ``engine``: (document, distance) pairs, closest first (``checked``:
        the vector comes from the embedding service, which checked its values)."""
        return self.keep(engine.scored(vector, self.k, self.where, checked=checked))


@dataclass(frozen=True)
class MMRRequest:
    """A maximal-marginal-relevance search's arguments, checked."""

    k: int
    fetch_k: int
    lambda_mult: float
    where: CompiledFilter | None


def compile_filter(filter: MetadataFilter | None) -> CompiledFilter | None:
    """The filter compiled once for a search (`InvalidInputError` if it is malformed)."""
    return compile_where(cast(Any, filter))  # callables: see engine/filters.py


def similarity_request(
    k: object, filter: MetadataFilter | None, fetch_k: object, kwargs: Mapping[str, Any]
) -> SearchRequest:
    """A similarity search's arguments checked (and its filter compiled) once, before the
    query is embedded; ``kwargs`` may hold ``score_threshold`` (and an ignored ``verbose``)."""
    if not kwargs:  # (the usual call)
        require_k(fetch_k, "fetch_k")
        return SearchRequest(require_k(k), compile_filter(filter))
    extra = dict(kwargs)
    threshold = extra.pop("score_threshold", None)
    refuse_unknown("similarity_search", extra, SIMILARITY_KWARGS)
    require_k(fetch_k, "fetch_k")
    return SearchRequest(require_k(k), compile_filter(filter), _threshold(threshold))


def mmr_request(
    k: object,
    fetch_k: object,
    lambda_mult: object,
    filter: MetadataFilter | None,
    kwargs: Mapping[str, Any],
) -> MMRRequest:
    """An MMR search's arguments, checked once before the query is embedded."""
    refuse_unknown("max_marginal_relevance_search", kwargs, MMR_KWARGS)
    fetch = require_k(fetch_k, "fetch_k")
    if (
        isinstance(lambda_mult, bool)
        or not isinstance(lambda_mult, int | float | np.floating | np.integer)
        or not 0.0 <= lambda_mult <= 1.0
    ):
        raise InvalidInputError(
            f"lambda_mult={lambda_mult!r} must be a number between 0 (most diverse) and 1 "
            "(most relevant)"
        )
    return MMRRequest(require_k(k), fetch, float(lambda_mult), compile_filter(filter))


def _threshold(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.floating | np.integer)
        or math.isnan(value)
    ):
        raise InvalidInputError(
            f"score_threshold={value!r} must be a number: the largest distance to keep "
            "(scores are distances, lower is closer)"
        )
    return float(value)


KEYWORD_KWARGS = ("k", "filter")
HYBRID_KWARGS = ("k", "filter", "fusion", "alpha", "rank_constant")


@dataclass(frozen=True)
class KeywordRequest:
    """A keyword search's arguments, checked: the query, ``k`` and the compiled filter."""

    query: str
    k: int
    where: CompiledFilter | None

    def search(self, engine: Engine) -> list[tuple[Document, float]]:
        """The search on ``engine``: (document, BM25 score) pairs, best first."""
        hits = engine.keyword_search(self.query, self.k, filter=self.where)
        return [(hit.document, hit.score) for hit in hits]


@dataclass(frozen=True)
class HybridRequest:
    """A hybrid search's arguments, checked."""

    query: str
    k: int
    where: CompiledFilter | None
    fusion: Fusion

    def search(
        self,
        engine: Engine,
        vector: Sequence[float] | Vectors | None,
        custom: Callable[[float], float] | None = None,
    ) -> list[tuple[Document, float]]:
        """The search on ``engine``: (document, fused score) pairs, best first. ``vector``
        is the query's, from the embedding service (``None`` when the vector side weighs
        nothing); ``custom``: the store's own map from distance to relevance, if any."""
        fusion = self.fusion
        fast = engine.hybrid_search(
            vector, self.query, self.k, self.where, fusion=fusion.method,
            alpha=fusion.alpha, rank_constant=fusion.rank_constant,
            relevance=relevance_array(engine.distance, custom), checked=True,
        )  # fmt: skip
        if fast is not None:
            return fast
        # an approximate index's vector ranking: fused with the keyword ranking by the
        # threshold algorithm, which asks each side for its best n only
        return threshold_hybrid(engine, self, vector, custom or RELEVANCE[engine.distance])


def _query(query: object, method: str) -> str:
    if not isinstance(query, str):
        raise InvalidInputError(
            f"{method}() takes the query as a string, got {type(query).__name__}"
        )
    return query


def keyword_request(
    query: object, k: object, filter: MetadataFilter | None, kwargs: dict[str, Any]
) -> KeywordRequest:
    """A keyword search's arguments, checked once (the filter compiled)."""
    refuse_unknown("keyword_search", kwargs, KEYWORD_KWARGS)
    return KeywordRequest(_query(query, "keyword_search"), require_k(k), compile_filter(filter))


def hybrid_request(
    query: object,
    k: object,
    filter: MetadataFilter | None,
    kwargs: dict[str, Any],
    *,
    fusion: object,
    alpha: object,
    rank_constant: object,
) -> HybridRequest:
    """A hybrid search's arguments, checked once, before the query is embedded."""
    refuse_unknown("hybrid_search", kwargs, HYBRID_KWARGS)
    text = _query(query, "hybrid_search")
    checked = Fusion.checked(fusion, alpha, rank_constant)
    return HybridRequest(text, require_k(k), compile_filter(filter), checked)


def threshold_hybrid(
    engine: Engine,
    request: HybridRequest,
    vector: Sequence[float] | Vectors | None,
    relevance: Callable[[float], float],
) -> list[tuple[Document, float]]:
    """``request``'s hybrid search by `fused_top_k` over the engine's vector and keyword
    searches (the way for an approximate index; `Engine.hybrid_search` gives the same answer
    where the vector side is exact)."""
    where = request.where

    def vector_side(n: int) -> list[Entry[Document]]:
        assert vector is not None  # the side is searched only when its weight is not 0
        hits = engine.search(vector, n, where, checked=True)
        return [(_key(h.document), relevance(h.distance), h.document) for h in hits]

    def keyword_side(n: int) -> list[Entry[Document]]:
        hits = engine.keyword_search(request.query, n, filter=where)
        return [(_key(h.document), h.score, h.document) for h in hits]

    terms: set[str] | None = None

    def absent(side: int, doc: Document) -> bool:
        # a document holding none of the query's terms is on no keyword ranking
        nonlocal terms
        if side != KEYWORD:
            return False
        analyzer = engine.analyzer
        if terms is None:
            terms = set(analyzer.terms(request.query))
        return terms.isdisjoint(analyzer.terms(doc.page_content))

    return fused_top_k(vector_side, keyword_side, request.k, request.fusion, absent=absent)


def _key(doc: Document) -> str:
    assert doc.id is not None  # every stored document has one
    return doc.id
