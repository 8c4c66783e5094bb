"""`create_app(settings)`: the FastAPI application of `vectordb serve`.

It wires the routers (collections, documents, uploads, queries, operations), the error
handlers (`server.errors`), the body limits (`server.limits`: ``max_body_bytes``, and
``max_upload_bytes`` for uploads, checked against ``Content-Length`` before the body is read
and while it streams) and the lifespan: the default embedding model is loaded on a
thread at startup (``/ready`` answers 503 until it is), and on shutdown the collections'
pending segment merges finish. OpenAPI is at ``/openapi.json``, the interactive docs at
``/docs`` and ``/redoc``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vectordb_manager import __version__
from vectordb_manager.server import errors
from vectordb_manager.server.auth import KeyRing
from vectordb_manager.server.deps import Readiness, ServerState
from vectordb_manager.server.limits import BodyLimit
from vectordb_manager.server.registry import CollectionRegistry
from vectordb_manager.server.routes import collections, documents, operations, query, upload
from vectordb_manager.server.settings import ServerSettings

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Collections of documents, each a vectordb-manager store under one storage root, searched by
vector, keyword (BM25) or both. Errors are JSON: `{"code": ..., "message": ...}`; the codes
are stable (see docs/server.md). Send the API key as `X-API-Key: KEY` or
`Authorization: Bearer KEY` when the server is configured with keys.
"""


def create_app(settings: ServerSettings) -> FastAPI:
    """The service over the collections under ``settings.store``'s root."""
    registry = CollectionRegistry(settings)
    state = ServerState(settings, registry, KeyRing(settings.api_keys), Readiness())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.keys.open:
            logger.warning(
                "no API keys configured: anyone who can reach the port may read and write"
            )
        loader = threading.Thread(
            target=_load_model, args=(state,), name="vectordb-model-loader", daemon=True
        )
        loader.start()
        try:
            yield
        finally:
            registry.close()

    app = FastAPI(
        title="vectordb-manager",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=operations.ERROR_RESPONSES,
    )
    app.add_middleware(
        BodyLimit,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.state.server = state
    errors.install(app)
    app.include_router(operations.router)
    app.include_router(collections.router)
    app.include_router(documents.router)
    app.include_router(upload.router)
    app.include_router(query.router)
    return app


def _load_model(state: ServerState) -> None:
    try:
        state.registry.load_default_model()
    except Exception as exc:
        state.readiness.error = f"the embedding model failed to load: {exc}"
        logger.error("%s", state.readiness.error)
        return
    state.readiness.loaded.set()


__all__ = ["create_app"]
