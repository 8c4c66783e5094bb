"""Queries: by text or by vector; ``mode`` vector, keyword (BM25) or hybrid (both fused);
maximal marginal relevance; filters with the full operator set. Every response says what its
scores mean (`ScoreInfo`): they are always higher-is-better, and vector results also carry
the distance the relevance maps.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from langchain_core.documents import Document

from vectordb_manager.server.deps import ReadCollection
from vectordb_manager.server.errors import ApiError
from vectordb_manager.server.models import (
    QueryRequest,
    QueryResponse,
    QueryResult,
    ScoreInfo,
    SearchMode,
    document_out,
)
from vectordb_manager.server.registry import Collection
from vectordb_manager.server.routes.documents import check_filter
from vectordb_manager.server.vectors_only import require_model
from vectordb_manager.vectorstores.engine_store import EngineVectorStore

router = APIRouter(prefix="/collections/{name}", tags=["query"])

_MODE_OPTIONS: dict[str, set[str]] = {
    "vector": {"mmr", "fetch_k", "lambda_mult", "score_threshold"},
    "keyword": set(),
    "hybrid": {"fusion", "alpha", "rank_constant"},
}
_ALL_OPTIONS = set().union(*_MODE_OPTIONS.values())

RELEVANCE_MEANING = {
    "cosine": "(1 + cosine similarity) / 2, i.e. 1 - cosine distance / 2",
    "l2": "1 / (1 + Euclidean distance)",
    "inner_product": "(1 + inner product) / 2, clamped to [0, 1]",
}


@router.post("/query", summary="Search a collection")
def query(body: QueryRequest, collection: ReadCollection) -> QueryResponse:
    """The ``k`` best documents for a text (or a vector) among those passing ``filter``.

    ``mode``: ``vector`` (the closest by embedding; with ``mmr``, maximal marginal relevance
    among the ``fetch_k`` closest), ``keyword`` (BM25 on the text's terms) or ``hybrid`` (the
    vector and keyword rankings fused: ``fusion`` rrf or weighted, ``alpha`` the vector
    side's weight). Filters apply before ranking, so a filtered search returns the k best
    among the documents that pass, never fewer when enough do."""
    _check(body)
    if body.mode == "hybrid" or (body.vector is None and body.mode == "vector"):
        require_model(collection.spec, f"embed the query text (mode {body.mode!r})")
    where = check_filter(body.filter)
    store = collection.store
    if body.mode == "vector":
        return _vector(body, collection, where)
    assert body.text is not None  # _check
    if body.mode == "keyword":
        pairs = store.keyword_search_with_score(body.text, body.k, where)
        return _response("keyword", _scored(pairs), _score_info(body, store))
    pairs = store.hybrid_search_with_score(
        body.text,
        body.k,
        where,
        fusion=body.fusion,
        alpha=body.alpha,
        rank_constant=body.rank_constant,
    )
    return _response("hybrid", _scored(pairs), _score_info(body, store))


def _check(body: QueryRequest) -> None:
    if (body.text is None) == (body.vector is None):
        raise ApiError(
            "invalid_input",
            'give the query as "text" or as "vector" (exactly one of them)',
        )
    if body.vector is not None and body.mode != "vector":
        raise ApiError(
            "invalid_input",
            f'mode {body.mode!r} ranks by the query\'s words: give "text", not "vector"',
        )
    misplaced = sorted((body.model_fields_set & _ALL_OPTIONS) - _MODE_OPTIONS[body.mode])
    if misplaced:
        raise ApiError(
            "invalid_input",
            f"{', '.join(misplaced)} do(es) not apply to mode {body.mode!r}; leave them out "
            "or choose the mode they belong to (mmr, fetch_k, lambda_mult, score_threshold: "
            "vector; fusion, alpha, rank_constant: hybrid)",
        )
    if {"fetch_k", "lambda_mult"} & body.model_fields_set and not body.mmr:
        raise ApiError("invalid_input", 'fetch_k and lambda_mult apply to MMR: add "mmr": true')


def _vector(
    body: QueryRequest, collection: Collection, where: dict[str, object] | None
) -> QueryResponse:
    store = collection.store
    vector: Sequence[float] | None = body.vector
    if body.mmr:
        if vector is None:
            assert body.text is not None
            vector = collection.manager.embedding_service.embed_query(body.text)
        pairs = store.max_marginal_relevance_search_with_score_by_vector(
            vector, k=body.k, fetch_k=body.fetch_k, lambda_mult=body.lambda_mult, filter=where
        )
    elif vector is not None:
        pairs = store.similarity_search_with_score_by_vector(vector, k=body.k, filter=where)
    else:
        assert body.text is not None
        pairs = store.similarity_search_with_score(body.text, k=body.k, filter=where)
    relevance = store._select_relevance_score_fn()
    results = [_result(doc, relevance(distance), distance) for doc, distance in pairs]
    if body.score_threshold is not None:
        results = [r for r in results if r.score >= body.score_threshold]
    return _response("vector", results, _score_info(body, store))


def _result(doc: Document, score: float, distance: float | None = None) -> QueryResult:
    out = document_out(doc)
    return QueryResult(
        id=out.id, text=out.text, metadata=out.metadata, score=score, distance=distance
    )


def _scored(pairs: list[tuple[Document, float]]) -> list[QueryResult]:
    return [_result(doc, score) for doc, score in pairs]


def _response(mode: SearchMode, results: list[QueryResult], info: ScoreInfo) -> QueryResponse:
    return QueryResponse(mode=mode, score=info, results=results)


def _score_info(body: QueryRequest, store: EngineVectorStore) -> ScoreInfo:
    if body.mode == "keyword":
        return ScoreInfo(
            name="bm25",
            range=(0.0, None),
            meaning="the BM25 score of the query's terms in the document; unbounded, "
            "comparable only between the results of one query",
        )
    if body.mode == "hybrid" and body.fusion == "rrf":
        c = body.rank_constant
        return ScoreInfo(
            name="rrf",
            range=(0.0, 1.0 / (c + 1.0)),
            meaning=f"reciprocal rank fusion: {body.alpha:g} / ({c:g} + vector rank) + "
            f"{1 - body.alpha:g} / ({c:g} + keyword rank), ranks from 1; a side that does not "
            "rank the document adds nothing",
        )
    if body.mode == "hybrid":
        return ScoreInfo(
            name="weighted",
            range=(0.0, 1.0),
            meaning=f"{body.alpha:g} * vector relevance + {1 - body.alpha:g} * BM25 / the best "
            "BM25 score among the results",
        )
    distance = store.engine.distance
    return ScoreInfo(
        name="relevance",
        range=(0.0, 1.0),
        meaning=f"relevance, 1 for an identical vector: {RELEVANCE_MEANING.get(distance, distance)}"
        f"; 'distance' is the {distance} distance itself (lower is closer)"
        + ("; results chosen by maximal marginal relevance" if body.mmr else ""),
    )
