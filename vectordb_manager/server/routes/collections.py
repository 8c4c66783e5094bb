"""Collections: create (409 if the name is taken), list, describe (settings and stats),
delete. Each collection is a store under the root with its own model, distance and index."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from vectordb_manager.server.deps import ReadCollection, Reader, State, Writer
from vectordb_manager.server.errors import ApiError
from vectordb_manager.server.models import (
    CollectionDeleted,
    CollectionDetail,
    CollectionInfo,
    CollectionList,
    CollectionStats,
    CreateCollectionRequest,
    EmbeddingSettings,
)
from vectordb_manager.server.registry import Collection, CollectionSpec

router = APIRouter(prefix="/collections", tags=["collections"])


def info(spec: CollectionSpec) -> CollectionInfo:
    return CollectionInfo(
        name=spec.name,
        embedding=EmbeddingSettings.model_validate(
            {
                "provider": spec.embedding_provider,
                "model": spec.embedding_model,
                "dimensions": spec.embedding_dimensions,
            }
        ),
        distance=spec.distance,
        index=spec.index,
        chunk_size=spec.chunk_size,
        chunk_overlap=spec.chunk_overlap,
        created_at=spec.created_at,
    )


def stats(collection: Collection) -> CollectionStats:
    s: dict[str, Any] = collection.store.stats()
    return CollectionStats(
        documents=s["documents"],
        tombstones=s["tombstones"],
        dimension=s["dimension"],
        index=s["index"],
        version=s["version"],
        segments=s["segments"],
        embedding_model=s["embedding_model"],
    )


def detail(collection: Collection) -> CollectionDetail:
    return CollectionDetail(**info(collection.spec).model_dump(), stats=stats(collection))


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a collection")
def create_collection(body: CreateCollectionRequest, state: State, key: Writer) -> CollectionDetail:
    """Create an empty collection. Settings left out come from the server's configuration;
    409 ``collection_exists`` if the name is taken (also by another server on the root)."""
    if not key.allows(body.name, "write"):
        raise ApiError(
            "collection_not_allowed",
            f"this API key may not use collection {body.name!r}; use a key for it",
        )
    options: dict[str, Any] = {
        "distance_metric": body.distance,
        "index_type": body.index,
        "chunk_size": body.chunk_size,
        "chunk_overlap": body.chunk_overlap,
    }
    if body.embedding is not None:
        options |= {
            "embedding_provider": body.embedding.provider,
            "embedding_model": body.embedding.model,
            "embedding_dimensions": body.embedding.dimensions,
        }
    return detail(state.registry.create(body.name, options))


@router.get("", summary="List the collections")
def list_collections(state: State, key: Reader) -> CollectionList:
    """Every collection under the root (those this key may use)."""
    specs = state.registry.specs()
    return CollectionList(collections=[info(s) for s in specs if key.allows(s.name, "read")])


@router.get("/{name}", summary="Describe a collection")
def describe_collection(collection: ReadCollection) -> CollectionDetail:
    """The collection's settings and its store's counts."""
    return detail(collection)


@router.delete("/{name}", summary="Delete a collection")
def delete_collection(name: str, state: State, key: Writer) -> CollectionDeleted:
    """Delete the collection and every document in it (for every server on the root)."""
    if not key.allows(name, "write"):
        raise ApiError(
            "collection_not_allowed",
            f"this API key may not use collection {name!r}; use a key for it",
        )
    return CollectionDeleted(name=name, objects_removed=state.registry.delete(name))
