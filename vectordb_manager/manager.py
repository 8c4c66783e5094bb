"""`VectorDatabaseManager`: files in, searchable chunks out, in one call.

The manager owns a configured embedding model and store. ``ingest`` loads, splits, embeds
and stores files incrementally: chunk ids are derived from the file and the chunk's content, so
re-ingesting an unchanged file embeds and writes nothing, and a changed file has its stale
chunks removed. ``switch_backend`` copies documents *and vectors* to another store (no
re-embedding); ``reembed`` rebuilds a store for a new model.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from tqdm.std import tqdm

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.embeddings import (
    EmbeddingService,
    build_embeddings,
    embedding_model_name,
    known_dimension,
)
from vectordb_manager.engine.options import chosen
from vectordb_manager.errors import (
    ConfigurationError,
    DimensionMismatchError,
    DocumentNotFoundError,
    InvalidInputError,
    StoreNotFoundError,
)
from vectordb_manager.ingestion import Cleanup, IngestReport, ReportingEmbeddings
from vectordb_manager.ingestion import ingest as ingest_files
from vectordb_manager.processing import DocumentProcessor
from vectordb_manager.quick_search import require_query, search_mode
from vectordb_manager.vectorstores.engine_store import EngineVectorStore
from vectordb_manager.vectorstores.factory import create_vector_store
from vectordb_manager.vectorstores.requests import MetadataFilter

if TYPE_CHECKING:  # imported when used: it pulls in LangChain's tracing (a third of startup)
    from langchain_core.vectorstores import VectorStoreRetriever

logger = logging.getLogger(__name__)
__all__ = ["IngestReport", "VectorDatabaseManager", "require_query"]


class VectorDatabaseManager:
    """Load, split, embed and store files; search, update, delete and migrate.

    Example:
        .. code-block:: python

            from vectordb_manager import VectorDatabaseManager, VectorDBConfig

            with VectorDatabaseManager(VectorDBConfig(local_path="./kb")) as db:
                print(db.ingest(["docs/"]))            # re-running embeds only what changed
                for doc, score in db.search_with_scores("how do I configure S3?", k=3):
                    print(f"{score:.2f}", doc.metadata["source"], doc.page_content[:80])
    """

    def __init__(
        self,
        config: VectorDBConfig | None = None,
        *,
        embeddings: Embeddings | None = None,
        processor: DocumentProcessor | None = None,
        create: bool = True,
    ) -> None:
        """``create=False``: open an existing store only (`StoreNotFoundError` if none)."""
        self.config = config or VectorDBConfig()
        if embeddings is not None:
            self.embedding_service = EmbeddingService(
                embeddings, batch_size=self.config.embedding_batch_size
            )
        else:
            self.embedding_service = EmbeddingService.from_config(self.config, lazy=True)
        self.processor = processor or DocumentProcessor.from_config(self.config)
        self._store = self._open(self.config, create=create)

    def _open(
        self,
        config: VectorDBConfig,
        *,
        create: bool = True,
        service: EmbeddingService | None = None,
    ) -> EngineVectorStore:
        """The store ``config`` names, embedding with ``service`` (default: the manager's)
        through `ReportingEmbeddings`, so that ``ingest`` can show the chunks embedded."""
        model = ReportingEmbeddings((service or self.embedding_service).inner)
        store = create_vector_store(config, model, create=create)
        assert isinstance(store, EngineVectorStore)
        return store

    # -- context manager ---------------------------------------------------------------------
    def __enter__(self) -> VectorDatabaseManager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Wait for the segment merges earlier writes started (every write is durable on
        return; merges run on a thread of their own, see `wait_for_compaction`)."""
        self._store.wait_for_compaction()

    # -- properties ----------------------------------------------------------------------------
    @property
    def vector_store(self) -> EngineVectorStore:
        """The underlying LangChain vector store."""
        return self._store

    # -- ingestion -----------------------------------------------------------------------------
    def ingest(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        cleanup: Cleanup | None = None,
        batch_size: int = 256,
        progress: bool = False,
        sources: Mapping[str | os.PathLike[str], str] | None = None,
        temporal: str | None = None,
        task_queue: str | None = None,
    ) -> IngestReport:
        """Ingest files and directories incrementally.

        Unchanged files embed and write nothing; a changed file's new chunks are embedded and
        its stale chunks removed. ``cleanup="full"`` also removes the chunks of files that are
        gone from the given directories (or were given as files and no longer exist).

        Files are read, split and stored as they stream (a large text file a block at a time,
        ``batch_size`` chunks per write), so memory does not grow with a file's size. A file
        that cannot be read, split or stored (the store refuses its chunks) is reported in the
        returned `IngestReport` with the reason, the store keeping what it held for it, and
        the other files are ingested. Errors of the store itself (`StorageError`) or of the
        embedding model propagate; running the ingest again completes it.

        ``sources`` names some files (path -> name): their chunks' ``source`` is that name
        instead of the file's absolute path, so a file ingested from another place (a
        temporary copy, an upload) under the same name is recognised as the same file.
        ``cleanup="full"`` treats a name as a path, so do not combine them.

        ``temporal="HOST:PORT"`` runs it on the Temporal workers polling ``task_queue``
        there instead (``vectordb worker``; the ``temporal`` extra), durably and spread over
        them, and waits for it: the store is the one this ingest would give, and the report
        a `WorkflowIngestReport` (see docs/temporal.md). The workers build the model and the
        store from this manager's configuration (without its secrets) and their own
        environment; ``batch_size`` is then the chunks per commit of each batch.
        """
        if temporal is not None:
            from vectordb_manager.workflows.command import require_temporal

            require_temporal()
            from vectordb_manager.workflows.client import ingest_with_temporal
            from vectordb_manager.workflows.types import BatchPolicy

            return ingest_with_temporal(
                self.config,
                [paths] if isinstance(paths, str | os.PathLike) else list(paths),
                address=temporal,
                task_queue=task_queue,
                cleanup=cleanup,
                policy=BatchPolicy(commit_batch_size=batch_size),
                progress=progress,
            )
        if task_queue is not None:
            raise InvalidInputError("task_queue applies with temporal='HOST:PORT'; add it")
        roots = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
        return ingest_files(
            self._store,
            self.processor,
            roots,
            cleanup=cleanup,
            batch_size=batch_size,
            progress=progress,
            sources=sources,
        )

    # -- documents -------------------------------------------------------------------------------
    def add_documents(self, docs: list[Document]) -> list[str]:
        """Embed and store documents (``Document.id`` is kept when set); returns their ids."""
        return self._store.add_documents(docs)

    def add_texts(
        self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None
    ) -> list[str]:
        """Embed and store texts; returns their new ids."""
        return self._store.add_texts(list(texts), metadatas)

    def search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        *,
        mode: str | None = None,
        **options: Any,
    ) -> list[Document]:
        """The k best documents for the query (among those passing ``filter``).

        ``mode`` (default: the configuration's ``search_mode``, itself ``"vector"`` by
        default): ``"vector"``, the closest by embedding; ``"keyword"``, the best BM25
        matches of the query's terms; ``"hybrid"``, both rankings fused (``options``:
        ``fusion``, ``alpha``, ``rank_constant``; see docs/hybrid-search.md).

        Raises:
            InvalidInputError: an empty query, an unknown mode, or a bad ``k``, filter or
                option.
        """
        return [doc for doc, _ in self.search_with_scores(query, k, filter, mode=mode, **options)]

    def search_with_scores(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        *,
        mode: str | None = None,
        **options: Any,
    ) -> list[tuple[Document, float]]:
        """Like `search`, each document with its score, higher is better: for ``"vector"`` a
        relevance in [0, 1]; for ``"keyword"`` the BM25 score (unbounded); for ``"hybrid"``
        the fused score."""
        require_query(query)
        chosen_mode = search_mode(self.config, mode)
        if chosen_mode == "vector":
            return self._store.similarity_search_with_relevance_scores(
                query, k=k, filter=filter, **options
            )
        if chosen_mode == "keyword":
            return self._store.keyword_search_with_score(query, k, filter, **options)
        return self._store.hybrid_search_with_score(query, k, filter, **options)

    def get(self, ids: Sequence[str]) -> list[Document]:
        """The documents with these ids (missing ids are left out)."""
        return self._store.get_by_ids(list(ids))

    def update_document(self, id: str, document: Document) -> None:
        """Replace the document with this id (re-embedding its text).

        Raises:
            DocumentNotFoundError: no document has this id.
        """
        if not self._store.get_by_ids([id]):
            raise DocumentNotFoundError(
                f"no document has id {id!r}; add it with add_documents() instead"
            )
        self._store.add_documents([document], ids=[id])

    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id; returns how many existed."""
        if isinstance(ids, str):
            raise InvalidInputError("ids must be a list of strings, not one string")
        return self._store.delete_ids(list(ids))

    def count(self) -> int:
        """How many documents the store holds."""
        return len(self._store)

    def stats(self) -> dict[str, Any]:
        """The store's counts and settings."""
        return {**self._store.stats(), "storage_type": self.config.storage_type}

    def verify(self) -> dict[str, Any]:
        """Check every file's checksum and that index and records agree (`IntegrityError`)."""
        return self._store.verify()

    def as_retriever(self, **kwargs: Any) -> VectorStoreRetriever:
        """A LangChain retriever over the store (``search_kwargs={"k": 4, "filter": ...}``);
        ``search_type`` defaults to the configuration's ``search_mode`` (``"vector"``:
        ``"similarity"``, else ``"keyword"`` or ``"hybrid"``)."""
        mode = self.config.search_mode
        kwargs.setdefault("search_type", "similarity" if mode == "vector" else mode)
        return self._store.as_retriever(**kwargs)

    # -- maintenance -------------------------------------------------------------------------
    def vacuum(self, older_than: float = 600.0) -> list[str]:
        """Remove the files crashes and lost races left behind (files no manifest references
        and interrupted temporary writes) once they are ``older_than`` seconds old, so that
        no writer still running owns them. Returns the removed files' names.

        Raises:
            InvalidInputError: ``older_than`` is negative or not a finite number.
        """
        if (
            isinstance(older_than, bool)
            or not isinstance(older_than, int | float)
            or not math.isfinite(older_than)
            or older_than < 0
        ):
            raise InvalidInputError(
                f"older_than={older_than!r} must be a finite number of seconds, zero or more "
                "(files younger than that are kept: a running writer may still own them)"
            )
        return self._store.vacuum(float(older_than))

    def compact(self) -> bool:
        """Merge every segment into one and drop deleted records; ``False`` if there was
        nothing to gain (already one segment with nothing deleted)."""
        return self._store.compact()

    # -- moving between stores -------------------------------------------------------------------
    def switch_backend(
        self,
        config: VectorDBConfig,
        migrate: bool = True,
        *,
        progress: bool = False,
        batch_size: int = 1000,
    ) -> int:
        """Use the store ``config`` describes from now on; with ``migrate``, first copy every
        document and its vector there (no re-embedding). Returns how many were copied.

        Everything a copy depends on is checked before anything is written: the target must
        use the same embedding model, dimension and distance as this store, must not be this
        store, and, if a store already exists there, it must hold vectors of the same model,
        dimension and distance. A refused switch leaves the target as it was (a target that
        did not exist is not created).

        Raises:
            ConfigurationError: another embedding model or distance (use `reembed` to change
                them), or the target is this store.
            DimensionMismatchError: the target's vectors would have another dimension.
        """
        if batch_size <= 0:
            raise InvalidInputError(f"batch_size={batch_size} must be positive")
        config = self._with_our_settings(config)
        self._require_same_vectors(config)
        if migrate and _same_location(config, self.config):
            raise ConfigurationError(
                f"the migration target {_describe(config)} is this store itself; give a "
                "configuration with another local_path, s3_bucket or s3_prefix"
            )
        target = self._open_target(config)
        if target is None:  # nothing there: checked all there is to check, now create it
            target = self._open_target(config, create=True)
            assert target is not None
        copied = 0
        if migrate:
            total = len(self._store)
            with tqdm(total=total, unit="doc", disable=not progress, desc="migrate") as bar:
                copied = self._store.copy_to(target, batch_size=batch_size, progress=bar.update)
        self.config = config
        self._store = target
        return copied

    def _with_our_settings(self, config: VectorDBConfig) -> VectorDBConfig:
        """``config`` with this store's distance and index type where it leaves them at their
        defaults (a target store then matches this one)."""
        stats = self._store.stats()
        changes: dict[str, Any] = {}
        if not chosen(config.distance_metric):
            changes["distance_metric"] = stats["distance"]
        if not chosen(config.index_type):
            changes["index_type"] = stats["requested_index"]
        return dataclasses.replace(config, **changes) if changes else config

    def _require_same_vectors(self, config: VectorDBConfig) -> None:
        """Refuse a target configuration whose embeddings or distance differ from this
        store's: the copied vectors would not be comparable with its queries."""
        stats = self._store.stats()
        model, dimension, distance = stats["embedding_model"], stats["dimension"], stats["distance"]
        fields = ("embedding_provider", "embedding_model", "embedding_dimensions")
        if any(getattr(config, f) != getattr(self.config, f) for f in fields):
            # another description of the model: it must still resolve to the same one
            wanted = build_embeddings(config, lazy=True)
            new_model, new_dimension = embedding_model_name(wanted), known_dimension(wanted)
            if dimension is not None and new_dimension not in (None, dimension):
                raise DimensionMismatchError(
                    f"the target configuration's embedding model {new_model!r} gives "
                    f"{new_dimension}-dimensional vectors but this store holds "
                    f"{dimension}-dimensional ones (model {model!r}); a migration copies the "
                    "vectors as they are, so keep embedding_provider, embedding_model and "
                    "embedding_dimensions, or use reembed() to rebuild for another model"
                )
            if model is not None and new_model != model:
                raise ConfigurationError(
                    f"the target configuration names embedding model {new_model!r} but this "
                    f"store was built with {model!r}; switch_backend keeps the embedding "
                    "model, so keep embedding_provider and embedding_model, or use reembed() "
                    "to rebuild for another model"
                )
        if config.distance_metric != distance:
            raise ConfigurationError(
                f"the target configuration says distance_metric={config.distance_metric!r} "
                f"but this store uses {distance!r}; a migration copies the vectors as they "
                f"are, so set distance_metric={distance!r}, or use reembed() to build a store "
                "with another distance"
            )

    def _open_target(
        self, config: VectorDBConfig, *, create: bool = False
    ) -> EngineVectorStore | None:
        """The store at ``config``'s location if it can take this store's vectors (``None``
        if there is none and not ``create``); refuses one that cannot, writing nothing."""
        ours = self._store.stats()
        where = _describe(config)
        try:
            target = self._open(config, create=create)
        except StoreNotFoundError:
            return None
        except (ConfigurationError, DimensionMismatchError) as exc:
            raise type(exc)(
                f"cannot migrate to {where}: a store is there already and does not match "
                f"this one: {exc}. Migrate to an empty location instead"
            ) from exc
        theirs = target.stats()
        if theirs["dimension"] is not None and ours["dimension"] not in (
            None,
            theirs["dimension"],
        ):
            raise DimensionMismatchError(
                f"cannot migrate to {where}: the store there holds {theirs['dimension']}-"
                f"dimensional vectors but this one holds {ours['dimension']}-dimensional ones; "
                "migrate to an empty location instead"
            )
        models = (theirs["embedding_model"], ours["embedding_model"])
        if None not in models and models[0] != models[1]:
            raise ConfigurationError(
                f"cannot migrate to {where}: the store there was built with embedding model "
                f"{models[0]!r} but this one with {models[1]!r}; migrate to an empty location "
                "instead"
            )
        return target

    def reembed(
        self,
        config: VectorDBConfig,
        *,
        embeddings: Embeddings | None = None,
        progress: bool = False,
        batch_size: int = 256,
    ) -> int:
        """Rebuild the store for a new embedding model at the location ``config`` describes
        (which must differ from the current one), then switch to it. Returns the count."""
        if _same_location(config, self.config):
            raise ConfigurationError(
                "reembed writes a new store: give a config with another local_path or s3_prefix"
            )
        service = (
            EmbeddingService(embeddings, batch_size=config.embedding_batch_size)
            if embeddings is not None
            else EmbeddingService.from_config(config, lazy=True)
        )
        target = self._open(config, service=service)
        done = 0
        with tqdm(total=len(self._store), unit="doc", disable=not progress, desc="reembed") as bar:
            for docs in self._store.iter_documents(batch_size):
                target.add_documents(docs)
                done += len(docs)
                bar.update(len(docs))
        self.config = config
        self.embedding_service = service
        self._store = target
        return done


def _describe(config: VectorDBConfig) -> str:
    if config.storage_type == "s3":
        return f"s3://{config.s3_bucket}/{config.s3_prefix}"
    return "memory" if config.storage_type == "memory" else config.local_path


def _same_location(a: VectorDBConfig, b: VectorDBConfig) -> bool:
    """Whether two configurations name the same persisted store (memory stores never do)."""
    if "memory" in (a.storage_type, b.storage_type):
        return False
    return _location(a) == _location(b)


def _location(config: VectorDBConfig) -> tuple[str, ...]:
    if config.storage_type == "s3":
        endpoint = (config.s3_endpoint_url or "").rstrip("/")
        return ("s3", endpoint, str(config.s3_bucket), config.s3_prefix.strip("/"))
    return ("local", str(Path(config.local_path).resolve()))
