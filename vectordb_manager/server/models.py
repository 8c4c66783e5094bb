"""The service's request and response bodies (pydantic), one model per shape.

Documents travel as ``{"id", "text", "metadata"}``. Metadata is JSON; dates and datetimes,
which JSON has no type for, are written ``{"$date": "2024-05-01"}`` and ``{"$datetime":
"2024-05-01T12:00:00+00:00"}`` both ways (the form filters use too), and a dict of your own
with a single ``$`` key is wrapped as ``{"$dict": {...}}`` (`to_metadata`, `from_metadata`).
Every request model refuses unknown fields, so a misspelt option is an error, not ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.documents import Document
from pydantic import BaseModel, ConfigDict, Field

from vectordb_manager.engine.records import tag_metadata, untag_metadata
from vectordb_manager.errors import IntegrityError, InvalidInputError

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Vector = Annotated[list[FiniteFloat], Field(min_length=1, description="An embedding vector")]
Filter = Annotated[
    dict[str, Any],
    Field(
        description='A metadata filter: {"key": value} or operators ($eq $ne $gt $gte $lt $lte '
        "$in $nin $between $exists $contains $like $ilike $not $and $or); see docs/filters.md",
        examples=[{"lang": "en", "year": {"$gte": 2020}}],
    ),
]
SearchMode = Literal["vector", "keyword", "hybrid"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- documents ---------------------------------------------------------------------------------
class DocumentIn(Strict):
    """A document to add: its text, metadata, and optionally its id and vector."""

    id: str | None = Field(default=None, description="Kept if given (an existing id is replaced)")
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    vector: Vector | None = Field(
        default=None,
        description="Its embedding, computed elsewhere (then the server embeds nothing)",
    )


class AddDocumentsRequest(Strict):
    """Documents to add in one commit: all with vectors, or none (the server embeds them)."""

    documents: list[DocumentIn]
    split: bool = Field(
        default=False,
        description="Split each text into chunks with the collection's chunk_size and "
        "chunk_overlap first (each chunk is a document; ids are returned)",
    )


class IdsResponse(BaseModel):
    ids: list[str]


class DocumentOut(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]


class UpdateDocumentRequest(Strict):
    """The new text and metadata of a document (re-embedded unless ``vector`` is given)."""

    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    vector: Vector | None = None


class IdsRequest(Strict):
    ids: list[str]


class DocumentsResponse(BaseModel):
    documents: list[DocumentOut] = Field(description="Found documents, in the order asked")
    missing: list[str] = Field(description="The ids asked for that no document has")


class DeletedResponse(BaseModel):
    deleted: int = Field(description="How many of the ids existed (and are now deleted)")


class IdListResponse(BaseModel):
    ids: list[str] = Field(description="Ids passing the filter, oldest first, one page")
    total: int = Field(description="How many ids pass the filter in all")
    offset: int
    limit: int


# -- queries -----------------------------------------------------------------------------------
class QueryRequest(Strict):
    """A search: by ``text`` or by ``vector``."""

    text: str | None = Field(default=None, description="The query text (the server embeds it)")
    vector: Vector | None = Field(
        default=None, description="The query's embedding (mode vector only)"
    )
    k: int = Field(default=4, gt=0, le=10_000, description="How many results")
    filter: Filter | None = None
    mode: SearchMode = Field(
        default="vector", description="vector: by embedding; keyword: BM25; hybrid: both fused"
    )
    mmr: bool = Field(default=False, description="Maximal marginal relevance (mode vector only)")
    fetch_k: int = Field(default=20, gt=0, le=100_000, description="MMR: candidates to choose from")
    lambda_mult: float = Field(
        default=0.5, ge=0.0, le=1.0, description="MMR: 1 relevance only, 0 diversity only"
    )
    score_threshold: FiniteFloat | None = Field(
        default=None, description="mode vector: keep results with at least this relevance (0-1)"
    )
    fusion: Literal["rrf", "weighted"] = Field(default="rrf", description="hybrid: how to fuse")
    alpha: float = Field(
        default=0.5, ge=0.0, le=1.0, description="hybrid: the vector side's weight"
    )
    rank_constant: float = Field(default=60.0, ge=0.0, description="hybrid, rrf: the constant c")


class ScoreInfo(BaseModel):
    """What the results' ``score`` means."""

    name: Literal["relevance", "bm25", "rrf", "weighted"]
    higher_is_better: bool = True
    range: tuple[float, float | None] = Field(description="[low, high]; high null: unbounded")
    meaning: str


class QueryResult(DocumentOut):
    score: float
    distance: float | None = Field(
        default=None,
        description="mode vector: the distance to the query (lower is closer) that the "
        "relevance score maps",
    )


class QueryResponse(BaseModel):
    mode: SearchMode
    score: ScoreInfo
    results: list[QueryResult]


# -- collections -------------------------------------------------------------------------------
class EmbeddingSettings(Strict):
    """A collection's embedding model; left out, the server's. The server offers its own
    model, the model-free ``fake`` provider (any ``dimensions``), and ``none``: no model, the
    collection holds vectors computed elsewhere (``dimensions`` required; texts are never
    embedded: add and query by vector, or query by keyword)."""

    provider: Literal["huggingface", "openai", "fake", "none"]
    model: str | None = None
    dimensions: int | None = Field(default=None, gt=0)


class CreateCollectionRequest(Strict):
    name: str = Field(description="1-63 letters, digits, '.', '_' or '-'", examples=["docs"])
    embedding: EmbeddingSettings | None = None
    distance: Literal["cosine", "l2", "inner_product"] | None = None
    index: Literal["flat", "hnsw", "ivf", "auto"] | None = None
    chunk_size: int | None = Field(
        default=None, gt=0, description="Characters per chunk when splitting"
    )
    chunk_overlap: int | None = Field(default=None, ge=0)


class CollectionInfo(BaseModel):
    name: str
    embedding: EmbeddingSettings
    distance: str
    index: str
    chunk_size: int
    chunk_overlap: int
    created_at: str


class CollectionStats(BaseModel):
    documents: int
    tombstones: int = Field(description="Deleted records still on storage (compact drops them)")
    dimension: int | None
    index: str = Field(description="The index in use now ('auto' picks one by size)")
    version: int | None = Field(description="The store's committed version")
    segments: int | None
    embedding_model: str | None


class CollectionDetail(CollectionInfo):
    stats: CollectionStats


class CollectionList(BaseModel):
    collections: list[CollectionInfo]


# -- operations --------------------------------------------------------------------------------
class IngestResponse(BaseModel):
    """The per-file report of an upload, as ``vectordb ingest`` prints it (files named as
    uploaded)."""

    ok: bool = Field(description="No file failed")
    files_seen: int
    files_added: list[str]
    files_updated: list[str]
    files_unchanged: list[str]
    files_skipped: dict[str, str] = Field(description="File -> why it was skipped")
    files_failed: dict[str, str] = Field(description="File -> why it failed")
    chunks_added: int
    chunks_removed: int
    texts_embedded: int
    seconds: float
    summary: str = Field(description="The report as text")


class VerifyResponse(BaseModel):
    ok: bool
    problem: str | None = Field(default=None, description="What is damaged, when not ok")
    report: dict[str, Any] | None = None


class CompactResponse(BaseModel):
    compacted: bool = Field(description="False: nothing to gain (one segment, none deleted)")
    stats: CollectionStats


class CollectionDeleted(BaseModel):
    name: str
    objects_removed: int


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class ReadyResponse(BaseModel):
    ready: bool
    embedding_model: str | None = Field(description="The server's default model")
    model_loaded: bool
    error: str | None = None


class ErrorResponse(BaseModel):
    """Every error's body."""

    code: str = Field(description="Stable, for programs (see docs/server.md)")
    message: str = Field(description="What went wrong and what to do")
    details: list[dict[str, Any]] | None = None


# -- conversions -------------------------------------------------------------------------------
def from_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata as sent (tagged dates) as the store keeps it."""
    try:
        return untag_metadata(metadata, "request")
    except IntegrityError:
        raise InvalidInputError(
            "metadata holds a dict with one key starting with '$' that is not a tag: write "
            'dates as {"$date": "YYYY-MM-DD"}, datetimes as {"$datetime": "<ISO 8601>"}, '
            'and a dict of your own with one $ key as {"$dict": {...}}'
        ) from None
    except RecursionError:
        raise InvalidInputError("metadata nests too deeply") from None


def to_document(doc_in: DocumentIn) -> Document:
    return Document(id=doc_in.id, page_content=doc_in.text, metadata=from_metadata(doc_in.metadata))


def document_out(doc: Document) -> DocumentOut:
    return DocumentOut(id=str(doc.id), text=doc.page_content, metadata=tag_metadata(doc.metadata))
