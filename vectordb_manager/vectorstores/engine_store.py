"""`EngineVectorStore`: the LangChain `VectorStore` surface over an `Engine`.

`LocalVectorStore` and `S3VectorStore` differ only in the storage they give the engine; every
LangChain method lives here once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Self

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from typing_extensions import override

from vectordb_manager.embeddings import (
    EmbeddingService,
    embedding_model_name,
    known_dimension,
)
from vectordb_manager.engine.core import Engine
from vectordb_manager.engine.format import Vectors
from vectordb_manager.engine.options import DEFAULT_BATCH_SIZE
from vectordb_manager.engine.search import require_k
from vectordb_manager.engine.vectors import check_vectors
from vectordb_manager.errors import ConfigurationError
from vectordb_manager.storage.base import Storage
from vectordb_manager.vectorstores.compat import ADD_IGNORED, ADD_KWARGS, FaissCompatMixin
from vectordb_manager.vectorstores.hybrid import HybridSearchMixin
from vectordb_manager.vectorstores.opening import (
    STORE_OPTIONS,
    StoreOptions,
    analyzer_option,
    open_engine,
)
from vectordb_manager.vectorstores.relevance import RELEVANCE
from vectordb_manager.vectorstores.requests import (
    MetadataFilter,
    MMRRequest,
    SearchRequest,
    mmr_request,
    refuse_unknown,
    similarity_request,
    without,
)
from vectordb_manager.vectorstores.rows import _id_list, _validate_rows


class EngineVectorStore(HybridSearchMixin, FaissCompatMixin, VectorStore):
    """A LangChain vector store backed by the vectordb-manager engine.

    Scores: ``similarity_search_with_score`` and the other ``..._with_score...`` methods
    return a **distance, lower is closer**, for every metric (see `RELEVANCE` for what it is
    per distance and how ``similarity_search_with_relevance_scores`` maps it into [0, 1]).
    Every keyword argument LangChain's FAISS store takes is accepted with its meaning
    (``fetch_k``, ``score_threshold``, callable filters, ``relevance_score_fn=``; see
    docs/langchain-faiss.md); anything else is refused, so a misspelt option is an error.

    Keyword and hybrid search (`HybridSearchMixin`): ``keyword_search`` returns BM25 scores
    (higher is better), ``hybrid_search`` fused scores (higher is better), both exact under
    filters; ``as_retriever`` also takes ``search_type="keyword"`` and ``"hybrid"`` (see
    docs/hybrid-search.md).
    """

    _engine: Engine

    def __init__(self, embedding: Embeddings, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if not isinstance(embedding, Embeddings):
            raise ConfigurationError(
                f"embedding must be a LangChain Embeddings object, got {type(embedding).__name__}"
            )
        self._embedding = embedding
        self._service = EmbeddingService(embedding, batch_size=batch_size)
        self._relevance_score_fn: Callable[[float], float] | None = None

    # -- construction helpers ----------------------------------------------------------------
    def _start_engine(
        self, storage: Storage | None, *, distance: str, index: str, options: StoreOptions
    ) -> None:
        self._relevance_score_fn = options.relevance_score_fn
        self._engine = open_engine(
            storage,
            distance=distance,
            index=index,
            options=options,
            dimension=known_dimension(self._embedding),
            embedding_model=embedding_model_name(self._embedding),
        )

    # -- properties --------------------------------------------------------------------------
    @property
    @override
    def embeddings(self) -> Embeddings:
        return self._embedding

    @property
    def engine(self) -> Engine:
        """The engine underneath (records, index, persistence)."""
        return self._engine

    def __len__(self) -> int:
        return self._engine.count()

    # -- writing -----------------------------------------------------------------------------
    @override
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        ids: list[str] | None = None,
        *,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and add texts; an existing id is replaced. Durable on return when persisted.

        ``batch_size`` (what LangChain's ``index()`` passes): at most that many texts go to the
        model per call; all of them are still committed at once.

        Raises:
            InvalidInputError: lengths differ, duplicate ids, metadata that is not JSON, an
                unknown keyword argument.
            EmbeddingError, DimensionMismatchError: the model failed or changed dimension.
            StorageError: the change could not be persisted (the store is unchanged).
        """
        text_list, metas, id_list = self._rows(texts, metadatas, ids, batch_size, kwargs)
        if not text_list:
            return []
        postings = self._engine.postings_ahead(text_list)  # (built while the model embeds)
        vectors = self._embed(text_list, batch_size)
        self._engine.upsert(id_list, text_list, metas, vectors, postings=postings)
        return id_list

    def _rows(
        self,
        texts: Iterable[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None,
        ids: Sequence[str | None] | None,
        batch_size: object,
        kwargs: Mapping[str, Any],
    ) -> tuple[list[str], list[dict[str, Any]], list[str]]:
        """An add's rows and options, checked before anything is embedded."""
        refuse_unknown("add_texts", without(kwargs, ADD_IGNORED), ADD_KWARGS)
        if batch_size is not None:
            require_k(batch_size, "batch_size")
        return _validate_rows(texts, metadatas, ids)

    def _embed(self, texts: Sequence[str], batch_size: int | None) -> Vectors:
        if batch_size is None or batch_size >= len(texts):
            return self._service.embed_array(texts)
        return np.concatenate(
            [
                self._service.embed_array(texts[i : i + batch_size])
                for i in range(0, len(texts), batch_size)
            ]
        )

    def add_embeddings(
        self,
        text_embeddings: Iterable[tuple[str, Sequence[float]]],
        metadatas: list[dict[str, Any]] | None = None,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Add texts with vectors computed elsewhere (no embedding call); otherwise as
        `add_texts` (``batch_size`` is accepted and has nothing to batch)."""
        pairs = list(text_embeddings)
        text_list, metas, id_list = self._rows(
            [t for t, _ in pairs], metadatas, ids, kwargs.pop("batch_size", None), kwargs
        )
        if not text_list:
            return []
        postings = self._engine.postings_ahead(text_list)
        vectors = check_vectors([v for _, v in pairs], len(pairs), self._engine.dimension)
        self._engine.upsert(id_list, text_list, metas, vectors, postings=postings)
        return id_list

    def apply(
        self, documents: Sequence[Document] = (), delete: Sequence[str] = ()
    ) -> list[str]:
        """Add or replace ``documents`` (by `Document.id`; a new id where it is ``None``) and
        delete the ids in ``delete``, all in one commit: a crash leaves all of it or none.
        An id both deleted and given a document ends up with the document. Returns the
        documents' ids.

        Raises:
            InvalidInputError, EmbeddingError, StorageError: as `add_texts`.
        """
        docs = list(documents)
        texts, metas, ids = _validate_rows(
            [d.page_content for d in docs], [d.metadata for d in docs], [d.id for d in docs]
        )
        deletes = _id_list(delete)
        postings = self._engine.postings_ahead(texts)
        vectors = (
            self._service.embed_array(texts) if texts else np.zeros((0, 0), dtype=np.float32)
        )
        self._engine.apply(ids, texts, metas, vectors, deletes, postings=postings)
        return ids

    def delete_ids(self, ids: Sequence[str]) -> int:
        """Delete by id in one commit, like `delete`; returns how many of the ids existed
        (unknown ones are ignored)."""
        return self._engine.delete(_id_list(ids))

    def iter_documents(self, batch_size: int = 1000) -> Iterator[list[Document]]:
        """Every document, in batches of ``batch_size`` (each batch read consistently; writes
        in between may be seen by later batches)."""
        for rows in self._engine.iter_rows(require_k(batch_size, "batch_size")):
            yield [  # copies: changing them must not change the store
                Document(id=i, page_content=t, metadata=copy.deepcopy(m))
                for i, t, m in zip(rows.ids, rows.texts, rows.metadatas, strict=True)
            ]

    def ids_by_value(self, key: str) -> list[tuple[Any, list[str]]]:
        """The ids of the documents grouped by their value of metadata ``key``, answered from
        the key's value index (no record is decoded); documents without the key, or with a
        list or dict there, are left out."""
        return self._engine.ids_by_value(key)

    def copy_to(
        self,
        target: EngineVectorStore,
        *,
        batch_size: int = 1000,
        progress: Callable[[int], object] | None = None,
    ) -> int:
        """Copy every document with its vector to ``target`` (nothing is embedded again), in
        batches, each one commit there; ``progress`` is called with each batch's size.
        Returns how many were copied.

        Raises:
            DimensionMismatchError: the target holds vectors of another dimension.
        """
        copied = 0
        for rows in self._engine.iter_rows(require_k(batch_size, "batch_size")):
            target.add_embeddings(
                zip(rows.texts, rows.vectors, strict=True), rows.metadatas, ids=rows.ids
            )
            copied += len(rows)
            if progress is not None:
                progress(len(rows))
        return copied

    @override
    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id; unknown ids are ignored. ``ids=None`` deletes every document."""
        refuse_unknown("delete", kwargs, ("ids",))
        self._engine.delete(self._engine.ids() if ids is None else _id_list(ids))
        return True

    # -- reading -----------------------------------------------------------------------------
    def get_ids(self, filter: MetadataFilter | None = None) -> list[str]:
        """The ids of every document (passing ``filter``, if given), oldest first."""
        return self._engine.ids(filter)

    @override
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return self._engine.get(_id_list(ids))

    @override
    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        fetch_k: int = 20,
        **kwargs: Any,
    ) -> list[Document]:
        """The k documents closest to the query (passing ``filter``); ``score_threshold``
        keeps only those within that distance. ``fetch_k`` is accepted for FAISS's sake and
        changes nothing: a filtered search here is exact, never limited to fetch_k
        candidates."""
        pairs = self.similarity_search_with_score(query, k, filter, fetch_k, **kwargs)
        return [doc for doc, _ in pairs]

    @override
    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        fetch_k: int = 20,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Documents with their distance to the query: lower is closer (see `RELEVANCE`);
        ``score_threshold``: keep those with distance <= it."""
        request = similarity_request(k, filter, fetch_k, kwargs)  # before embedding the query
        return self._scored(self._service.embed_query_array(query), request, checked=True)

    def similarity_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        filter: MetadataFilter | None = None,
        fetch_k: int = 20,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Like `similarity_search_with_score`, for a vector."""
        if filter is None and not kwargs:  # (the usual call: no request to build)
            if type(fetch_k) is not int or fetch_k <= 0:  # (the usual fetch_k: no call)
                require_k(fetch_k, "fetch_k")
            return self._engine.scored(embedding, k)
        return self._scored(embedding, similarity_request(k, filter, fetch_k, kwargs))

    @override
    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: MetadataFilter | None = None,
        fetch_k: int = 20,
        **kwargs: Any,
    ) -> list[Document]:
        pairs = self.similarity_search_with_score_by_vector(embedding, k, filter, fetch_k, **kwargs)
        return [d for d, _ in pairs]

    def _scored(
        self, vector: Sequence[float] | Vectors, request: SearchRequest, *, checked: bool = False
    ) -> list[tuple[Document, float]]:
        return request.search(self._engine, vector, checked=checked)

    @override
    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return self._relevance_score_fn or RELEVANCE[self._engine.distance]

    @override
    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        request = mmr_request(k, fetch_k, lambda_mult, filter, kwargs)  # before embedding
        hits = self._mmr(self._service.embed_query_array(query), request, checked=True)
        return [doc for doc, _ in hits]

    @override
    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        request = mmr_request(k, fetch_k, lambda_mult, filter, kwargs)
        return [doc for doc, _ in self._mmr(embedding, request)]

    def _mmr(
        self, embedding: Sequence[float] | Vectors, request: MMRRequest, *, checked: bool = False
    ) -> list[tuple[Document, float]]:
        """The documents maximal marginal relevance picks among the ``fetch_k`` closest that
        pass the filter, with their distances."""
        fetch = max(request.k, request.fetch_k)
        hits = self._engine.search(
            embedding, fetch, request.where, with_vectors=True, checked=checked
        )
        if not hits:
            return []
        candidates = [h.vector.tolist() for h in hits if h.vector is not None]
        query = np.asarray(embedding, dtype=np.float32)
        chosen = maximal_marginal_relevance(
            query, candidates, lambda_mult=request.lambda_mult, k=request.k
        )
        return [(hits[i].document, hits[i].distance) for i in chosen]

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    @override
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # -- maintenance -------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        """Re-read every file, check every checksum, and check index and records agree.

        Raises:
            IntegrityError: on any mismatch.
        """
        return self._engine.verify()

    def compact(self) -> bool:
        """Merge all segments into one and drop deleted records' space."""
        return self._engine.compact()

    def wait_for_compaction(self) -> None:
        """Wait until the merges started by earlier writes are done. Segments merge on a
        thread of their own after a write (``CompactionPolicy(background=True)``, the
        default), so a write returns as soon as it is durable; this waits for that upkeep,
        say before measuring the files or handing the directory to another tool."""
        self._engine.wait_for_compaction()

    def vacuum(self, older_than: float = 600.0) -> list[str]:
        """Remove files left by crashes or lost races once they are ``older_than`` seconds old."""
        return self._engine.vacuum(older_than)

    def refresh(self, *, wait: bool = True) -> bool | None:
        """Load changes other processes committed since this store was opened; ``True``
        if anything changed. ``wait=False``: return ``None`` at once, refreshing nothing,
        while a write of this store is under way (the write loads them itself)."""
        return self._engine.refresh(wait=wait)

    def stats(self) -> dict[str, Any]:
        """Counts and settings: documents, dimension, distance, index, version, segments."""
        return self._engine.stats()


__all__ = ["RELEVANCE", "STORE_OPTIONS", "EngineVectorStore", "StoreOptions", "analyzer_option"]
