"""Operations: ``/health`` (the process answers), ``/ready`` (the default embedding model is
loaded), and per collection ``verify`` (every checksum re-read) and ``compact``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vectordb_manager import __version__
from vectordb_manager.embeddings import embedding_model_name
from vectordb_manager.errors import IntegrityError
from vectordb_manager.server.deps import ReadCollection, State, WriteCollection
from vectordb_manager.server.errors import ERROR_CODES
from vectordb_manager.server.models import (
    CompactResponse,
    ErrorResponse,
    HealthResponse,
    ReadyResponse,
    VerifyResponse,
)
from vectordb_manager.server.routes.collections import stats

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness")
def health() -> HealthResponse:
    """200 while the process serves requests (no key needed)."""
    return HealthResponse(version=__version__)


@router.get(
    "/ready",
    summary="Readiness",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "The model is not loaded (yet)"}},
)
def ready(state: State) -> JSONResponse:
    """200 once the default embedding model is loaded, 503 before (or if it failed: then
    ``error`` says why). No key needed."""
    readiness = state.readiness
    loaded = readiness.loaded.is_set()
    body = ReadyResponse(
        ready=loaded,
        embedding_model=embedding_model_name(state.registry.default_embeddings),
        model_loaded=loaded,
        error=readiness.error,
    )
    status = 200 if loaded else ERROR_CODES["not_ready"]
    return JSONResponse(body.model_dump(), status_code=status)


@router.post("/collections/{name}/verify", summary="Verify a collection's files")
def verify(collection: ReadCollection) -> VerifyResponse:
    """Re-read every file of the collection's store, check every checksum and that index and
    records agree. A damaged store answers 200 with ``ok`` false and the ``problem``."""
    try:
        report = collection.manager.verify()
    except IntegrityError as exc:
        return VerifyResponse(ok=False, problem=" ".join(str(exc).split()))
    return VerifyResponse(ok=True, report=report)


@router.post("/collections/{name}/compact", summary="Compact a collection")
def compact(collection: WriteCollection) -> CompactResponse:
    """Merge the store's segments into one and drop deleted records."""
    compacted = collection.manager.compact()
    return CompactResponse(compacted=compacted, stats=stats(collection))


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in sorted(set(ERROR_CODES.values()))
}
"""Every route's documented error responses (the body of each is an `ErrorResponse`)."""
