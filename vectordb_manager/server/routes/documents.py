"""Documents: add (texts the server embeds, optionally split into chunks, or vectors computed
elsewhere), get, update and delete by id, list ids passing a filter.

Every write is one commit of the collection's store: it happens whole or not at all.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from langchain_core.documents import Document

from vectordb_manager.engine.filters import compile_where
from vectordb_manager.errors import InvalidInputError
from vectordb_manager.server.deps import ReadCollection, WriteCollection
from vectordb_manager.server.errors import ApiError
from vectordb_manager.server.models import (
    AddDocumentsRequest,
    DeletedResponse,
    DocumentOut,
    DocumentsResponse,
    IdListResponse,
    IdsRequest,
    IdsResponse,
    UpdateDocumentRequest,
    document_out,
    from_metadata,
    to_document,
)
from vectordb_manager.server.registry import Collection
from vectordb_manager.server.vectors_only import require_model

router = APIRouter(prefix="/collections/{name}/documents", tags=["documents"])

PARENT_ID = "parent_id"
"""The metadata key naming, on each chunk of a split document, the id it was added with."""


def check_filter(spec: object) -> dict[str, Any] | None:
    """The filter, checked now (400 ``invalid_filter`` with what is wrong)."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ApiError("invalid_filter", "filter must be a JSON object; see docs/filters.md")
    try:
        compile_where(spec)
    except InvalidInputError as exc:
        raise ApiError("invalid_filter", " ".join(str(exc).split())) from None
    return spec


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add documents")
def add_documents(body: AddDocumentsRequest, collection: WriteCollection) -> IdsResponse:
    """Add documents in one commit; returns their ids (the chunks' with ``split``). A given
    id replaces the document of that id. Give every document a ``vector`` (the collection's
    dimension) or none: then the server embeds the texts with the collection's model (400
    ``no_embedding_model`` for a collection without one).

    With ``split``, each text is cut into chunks (the collection's ``chunk_size`` and
    ``chunk_overlap``); a document with an id gets chunk ids ``ID#0``, ``ID#1``... and the
    metadata ``parent_id``, and adding it again replaces all its chunks."""
    with_vectors = [d.vector is not None for d in body.documents]
    if any(with_vectors) and not all(with_vectors):
        raise ApiError(
            "invalid_input",
            "some documents have a vector and others do not; give every document a vector, "
            "or none (the server then embeds them all)",
        )
    if body.split and any(with_vectors):
        raise ApiError(
            "invalid_input",
            "split cuts texts into chunks the server embeds; leave out the vectors, or split "
            "the texts yourself",
        )
    if not all(with_vectors):
        require_model(collection.spec, "embed the documents' texts")
    docs = [to_document(d) for d in body.documents]
    store = collection.store
    if docs and all(with_vectors):
        ids = [d.id or str(uuid.uuid4()) for d in docs]
        pairs = [
            (d.page_content, d_in.vector or [])
            for d, d_in in zip(docs, body.documents, strict=True)
        ]
        return IdsResponse(ids=store.add_embeddings(pairs, [d.metadata for d in docs], ids=ids))
    if not body.split:
        return IdsResponse(ids=store.apply(docs))
    chunks, stale = _split(collection, docs)
    return IdsResponse(ids=store.apply(chunks, delete=stale))


def _split(collection: Collection, docs: list[Document]) -> tuple[list[Document], list[str]]:
    """The documents' chunks, and the ids of the chunks they held before that are gone."""
    processor = collection.manager.processor
    chunks: list[Document] = []
    stale: list[str] = []
    for doc in docs:
        if doc.id is None:
            chunks += processor.split_documents([doc])
            continue
        parent = Document(
            page_content=doc.page_content, metadata={**doc.metadata, PARENT_ID: doc.id}
        )
        mine = processor.split_documents([parent])
        for chunk in mine:
            chunk.id = f"{doc.id}#{chunk.metadata['chunk_index']}"
        new = {c.id for c in mine}
        stale += [i for i in collection.store.get_ids({PARENT_ID: doc.id}) if i not in new]
        chunks += mine
    return chunks, stale


@router.get("", summary="List document ids")
def list_ids(
    collection: ReadCollection,
    filter: Annotated[
        str | None, Query(description='A metadata filter as JSON, e.g. {"lang": "en"}')
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(gt=0, le=100_000)] = 1000,
) -> IdListResponse:
    """The ids of the documents passing ``filter``, oldest first, a page at a time."""
    spec: object = None
    if filter is not None:
        try:
            spec = json.loads(filter)
        except json.JSONDecodeError as exc:
            raise ApiError(
                "invalid_filter", f'filter is not valid JSON ({exc.msg}); e.g. {{"lang": "en"}}'
            ) from None
    ids = collection.store.get_ids(check_filter(spec))
    return IdListResponse(
        ids=ids[offset : offset + limit], total=len(ids), offset=offset, limit=limit
    )


@router.post("/get", summary="Get documents by id")
def get_documents(body: IdsRequest, collection: ReadCollection) -> DocumentsResponse:
    """The documents with these ids, in the order asked; ids no document has are listed
    in ``missing`` (not an error)."""
    found = {d.id: d for d in collection.store.get_by_ids(body.ids)}
    return DocumentsResponse(
        documents=[document_out(found[i]) for i in dict.fromkeys(body.ids) if i in found],
        missing=[i for i in dict.fromkeys(body.ids) if i not in found],
    )


@router.post("/delete", summary="Delete documents by id")
def delete_documents(body: IdsRequest, collection: WriteCollection) -> DeletedResponse:
    """Delete these documents in one commit; ids no document has are ignored."""
    return DeletedResponse(deleted=collection.manager.delete(body.ids))


@router.get("/{doc_id:path}", summary="Get a document")
def get_document(doc_id: str, collection: ReadCollection) -> DocumentOut:
    """The document with this id (404 ``document_not_found`` if none)."""
    docs = collection.store.get_by_ids([doc_id])
    if not docs:
        raise _no_document(doc_id, collection)
    return document_out(docs[0])


@router.put("/{doc_id:path}", summary="Replace a document")
def update_document(
    doc_id: str, body: UpdateDocumentRequest, collection: WriteCollection
) -> DocumentOut:
    """Replace the text and metadata of an existing document (404 if there is none; add it
    with POST instead), re-embedding it unless a ``vector`` is given."""
    if body.vector is None:
        require_model(collection.spec, "embed the new text")
    doc = Document(id=doc_id, page_content=body.text, metadata=from_metadata(body.metadata))
    store = collection.store
    if not store.get_by_ids([doc_id]):
        raise _no_document(doc_id, collection)
    if body.vector is not None:
        store.add_embeddings([(doc.page_content, body.vector)], [doc.metadata], ids=[doc_id])
    else:
        store.apply([doc])
    return document_out(doc)


@router.delete("/{doc_id:path}", summary="Delete a document")
def delete_document(doc_id: str, collection: WriteCollection) -> DeletedResponse:
    """Delete the document with this id (404 ``document_not_found`` if there is none)."""
    if not collection.manager.delete([doc_id]):
        raise _no_document(doc_id, collection)
    return DeletedResponse(deleted=1)


def _no_document(doc_id: str, collection: Collection) -> ApiError:
    return ApiError(
        "document_not_found",
        f"collection {collection.name!r} has no document with id {doc_id!r}; list the ids "
        "with GET .../documents",
    )
