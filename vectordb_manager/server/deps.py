"""What the routes share: the server's state, and dependencies that check a request's key and
hand the route its collection (`ReadCollection`, `WriteCollection`).

Dependencies that touch storage are plain functions: FastAPI runs them, like the routes, in
its thread pool, so a slow disk or bucket never blocks the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from vectordb_manager.server.auth import API_KEY_HEADER, BEARER, KeyRing, presented_key
from vectordb_manager.server.registry import Collection, CollectionRegistry
from vectordb_manager.server.settings import ApiKey, ServerSettings


@dataclass
class Readiness:
    """Whether the default embedding model is loaded (``error``: why it could not be)."""

    loaded: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


@dataclass
class ServerState:
    """Everything a request needs, kept on ``app.state.server``."""

    settings: ServerSettings
    registry: CollectionRegistry
    keys: KeyRing
    readiness: Readiness


def server_state(request: Request) -> ServerState:
    state = request.app.state.server
    assert isinstance(state, ServerState)
    return state


State = Annotated[ServerState, Depends(server_state)]
HeaderKey = Annotated[str | None, Security(API_KEY_HEADER)]
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


def reader(state: State, header: HeaderKey, bearer: BearerKey) -> ApiKey:
    """The request's key, allowed to read (no collection named)."""
    return state.keys.authorize(presented_key(header, bearer), "read")


def writer(state: State, header: HeaderKey, bearer: BearerKey) -> ApiKey:
    """The request's key, allowed to write (no collection named)."""
    return state.keys.authorize(presented_key(header, bearer), "write")


def read_collection(name: str, state: State, header: HeaderKey, bearer: BearerKey) -> Collection:
    """The collection of the path, once the key may read it."""
    state.keys.authorize(presented_key(header, bearer), "read", name)
    return state.registry.get(name)


def write_collection(
    name: str, state: State, header: HeaderKey, bearer: BearerKey
) -> Iterator[Collection]:
    """The collection of the path, once the key may write it. After the route, before the
    answer is sent, a write that raced a deletion of the collection (by another request
    or server) is voided and answered 404 (`CollectionRegistry.void_if_deleted`)."""
    state.keys.authorize(presented_key(header, bearer), "write", name)
    collection = state.registry.get(name)
    try:
        yield collection
    except Exception as exc:  # a failure may be the deletion's doing (files gone)
        voided = state.registry.void_if_deleted(collection)
        if voided is not None:
            raise voided from exc
        raise
    voided = state.registry.void_if_deleted(collection)
    if voided is not None:
        raise voided


Reader = Annotated[ApiKey, Depends(reader)]
Writer = Annotated[ApiKey, Depends(writer)]
ReadCollection = Annotated[Collection, Depends(read_collection)]
WriteCollection = Annotated[Collection, Depends(write_collection, scope="function")]

__all__ = [
    "ReadCollection",
    "Reader",
    "Readiness",
    "ServerState",
    "State",
    "WriteCollection",
    "Writer",
    "server_state",
]
