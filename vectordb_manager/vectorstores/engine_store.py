"""`EngineVectorStore`: the LangChain `VectorStore` surface over an `Engine`.

`LocalVectorStore` and `S3VectorStore` differ only in the storage they give the engine; every
LangChain method lives here once.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from typing_extensions import override

from vectordb_manager.embeddings import (
    EmbeddingService,
    check_vectors,
    embedding_model_name,
    known_dimension,
)
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.core import Engine
from vectordb_manager.engine.filters import CompiledFilter, compile_where
from vectordb_manager.engine.index import IndexParams
from vectordb_manager.engine.limits import MAX_ID_BYTES, MAX_KEY_BYTES, MAX_METADATA_DEPTH
from vectordb_manager.engine.options import DEFAULT_BATCH_SIZE, DEFAULT_COMMIT_ATTEMPTS
from vectordb_manager.engine.search import require_k
from vectordb_manager.errors import ConfigurationError, InvalidInputError
from vectordb_manager.storage.base import Storage

_INDEX_OPTIONS = tuple(IndexParams.__dataclass_fields__)


@dataclass(frozen=True)
class StoreOptions:
    """The keyword options every store takes besides ``distance`` and ``index``, checked once
    (`from_kwargs`); the index's tuning (`IndexParams`) is given by its field names."""

    batch_size: int = DEFAULT_BATCH_SIZE
    commit_attempts: int = DEFAULT_COMMIT_ATTEMPTS
    check_embedding_model: bool = True
    create: bool = True
    compaction: CompactionPolicy | None = None
    params: IndexParams = field(default_factory=IndexParams)
    index_options: Mapping[str, Any] = field(default_factory=dict)  # those the caller chose

    @classmethod
    def from_kwargs(cls, options: Mapping[str, Any]) -> StoreOptions:
        """Options from a store's keyword arguments; `ConfigurationError` names a bad one."""
        unknown = sorted(set(options) - set(STORE_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(map(repr, unknown))}; valid options are: "
                f"{', '.join(STORE_OPTIONS)}"
            )
        index_options = {k: v for k, v in options.items() if k in _INDEX_OPTIONS}
        try:
            params = IndexParams(**index_options)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from exc
        try:
            params.check()
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        compaction = options.get("compaction")
        if isinstance(compaction, Mapping):
            compaction = CompactionPolicy(**compaction)
        if compaction is not None and not isinstance(compaction, CompactionPolicy):
            raise ConfigurationError(
                "compaction must be a CompactionPolicy or a dict of its fields"
            )
        plain = {k: options[k] for k in _PLAIN_OPTIONS if k in options}
        for name, value in plain.items():
            default = getattr(cls, name)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigurationError(f"{name}={value!r} must be True or False")
            elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name}={value!r} must be a positive integer")
        return cls(compaction=compaction, params=params, index_options=index_options, **plain)

    def engine_kwargs(self) -> dict[str, Any]:
        """The `Engine`'s keyword arguments for these options."""
        return {
            "params": self.index_options,  # the rest from the store, or the defaults
            "compaction": self.compaction,
            "commit_attempts": self.commit_attempts,
            "check_model": self.check_embedding_model,
            "create": self.create,
        }


_PLAIN_OPTIONS = ("batch_size", "commit_attempts", "check_embedding_model", "create")
STORE_OPTIONS = (*_INDEX_OPTIONS, *_PLAIN_OPTIONS, "compaction")


class EngineVectorStore(VectorStore):
    """A LangChain vector store backed by the vectordb-manager engine."""

    _engine: Engine

    def __init__(self, embedding: Embeddings, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if not isinstance(embedding, Embeddings):
            raise ConfigurationError(
                f"embedding must be a LangChain Embeddings object, got {type(embedding).__name__}"
            )
        self._embedding = embedding
        self._service = EmbeddingService(embedding, batch_size=batch_size)

    # -- construction helpers ----------------------------------------------------------------
    def _start_engine(
        self, storage: Storage | None, *, distance: str, index: str, options: StoreOptions
    ) -> None:
        self._engine = Engine(
            storage,
            distance=distance,
            index=index,
            dimension=known_dimension(self._embedding),
            embedding_model=embedding_model_name(self._embedding),
            **options.engine_kwargs(),
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
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and add texts; an existing id is replaced. Durable on return when persisted.

        Raises:
            InvalidInputError: lengths differ, duplicate ids, metadata that is not JSON.
            EmbeddingError, DimensionMismatchError: the model failed or changed dimension.
            StorageError: the change could not be persisted (the store is unchanged).
        """
        _no_extra(kwargs, "add_texts")
        text_list, metas, id_list = _validate_rows(texts, metadatas, ids)
        if not text_list:
            return []
        vectors = self._service.embed_array(text_list)
        self._engine.upsert(id_list, text_list, metas, vectors)
        return id_list

    def add_embeddings(
        self,
        text_embeddings: Iterable[tuple[str, Sequence[float]]],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
    ) -> list[str]:
        """Add texts with vectors computed elsewhere (no embedding call)."""
        pairs = list(text_embeddings)
        text_list, metas, id_list = _validate_rows([t for t, _ in pairs], metadatas, ids)
        if not text_list:
            return []
        vectors = check_vectors([v for _, v in pairs], len(pairs), self._engine.dimension)
        self._engine.upsert(id_list, text_list, metas, vectors)
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
        vectors = (
            self._service.embed_array(texts) if texts else np.zeros((0, 0), dtype=np.float32)
        )
        self._engine.apply(ids, texts, metas, vectors, deletes)
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
        _no_extra(kwargs, "delete")
        self._engine.delete(self._engine.ids() if ids is None else _id_list(ids))
        return True

    # -- reading -----------------------------------------------------------------------------
    def get_ids(self, filter: dict[str, Any] | None = None) -> list[str]:
        """The ids of every document (passing ``filter``, if given), oldest first."""
        return self._engine.ids(filter)

    @override
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return self._engine.get(_id_list(ids))

    @override
    def similarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    @override
    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their distance to the query: lower is closer (see the class doc)."""
        _no_extra(kwargs, "similarity_search")
        k, where = _request(k, filter)  # checked before the query costs an embedding
        vector = self._service.embed_query_array(query)
        hits = self._engine.search(vector, k, where, checked=True)
        return [(h.document, h.distance) for h in hits]

    def similarity_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Like `similarity_search_with_score`, for a vector."""
        _no_extra(kwargs, "similarity_search_by_vector")
        return [(h.document, h.distance) for h in self._engine.search(embedding, k, filter)]

    @override
    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        return [
            d
            for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        ]

    @override
    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return RELEVANCE[self._engine.distance]

    @override
    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        _no_extra(kwargs, "max_marginal_relevance_search")
        request = _mmr_request(k, fetch_k, lambda_mult, filter)  # before embedding the query
        return self._mmr(self._service.embed_query_array(query), *request, checked=True)

    @override
    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        _no_extra(kwargs, "max_marginal_relevance_search")
        return self._mmr(embedding, *_mmr_request(k, fetch_k, lambda_mult, filter))

    def _mmr(
        self,
        embedding: Sequence[float] | np.ndarray[Any, Any],
        k: int,
        fetch_k: int,
        lambda_mult: float,
        where: CompiledFilter | None,
        *,
        checked: bool = False,
    ) -> list[Document]:
        fetch = max(k, fetch_k)
        hits = self._engine.search(embedding, fetch, where, with_vectors=True, checked=checked)
        if not hits:
            return []
        candidates = [h.vector.tolist() for h in hits if h.vector is not None]
        query = np.asarray(embedding, dtype=np.float32)
        chosen = maximal_marginal_relevance(query, candidates, lambda_mult=lambda_mult, k=k)
        return [hits[i].document for i in chosen]

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    @override
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> EngineVectorStore:
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

    def vacuum(self, older_than: float = 600.0) -> list[str]:
        """Remove files left by crashes or lost races once they are ``older_than`` seconds old."""
        return self._engine.vacuum(older_than)

    def refresh(self) -> bool:
        """Load changes other processes committed since this store was opened."""
        return self._engine.refresh()

    def stats(self) -> dict[str, Any]:
        """Counts and settings: documents, dimension, distance, index, version, segments."""
        return self._engine.stats()


def _relevance_cosine(distance: float) -> float:
    return min(1.0, max(0.0, 1.0 - distance / 2.0))


def _relevance_l2(distance: float) -> float:
    return 1.0 / (1.0 + max(distance, 0.0))


def _relevance_inner_product(distance: float) -> float:
    # distance is -(inner product); the logistic function maps it into (0, 1)
    if distance > 0:
        return math.exp(-distance) / (1.0 + math.exp(-distance))
    return 1.0 / (1.0 + math.exp(distance))


RELEVANCE: dict[str, Callable[[float], float]] = {
    "cosine": _relevance_cosine,
    "l2": _relevance_l2,
    "inner_product": _relevance_inner_product,
}


def _request(k: object, filter: Mapping[str, Any] | None) -> tuple[int, CompiledFilter | None]:
    """A search's ``k`` and filter, checked (and the filter compiled) once."""
    return require_k(k), compile_where(filter)


def _mmr_request(
    k: object, fetch_k: object, lambda_mult: object, filter: Mapping[str, Any] | None
) -> tuple[int, int, float, CompiledFilter | None]:
    """An MMR search's arguments, checked once."""
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
    k, where = _request(k, filter)
    return k, fetch, float(lambda_mult), where


def _id_list(ids: Sequence[str]) -> list[str]:
    """A list of ids as given, or `InvalidInputError` (one string is not a list of ids)."""
    if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
        raise InvalidInputError(
            f"ids must be a list of strings, got {ids!r:.80}; for one id, pass [id]"
        )
    return list(ids)


def _no_extra(kwargs: Mapping[str, Any], method: str) -> None:
    if kwargs:
        raise InvalidInputError(
            f"{method}() got unexpected keyword argument(s) {', '.join(map(repr, sorted(kwargs)))}"
        )


def _validate_rows(
    texts: Iterable[str],
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    ids: Sequence[str | None] | None,
) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    if isinstance(texts, str):
        raise InvalidInputError("texts must be a list of strings, not one string")
    text_list = list(texts)
    n = len(text_list)
    for i, t in enumerate(text_list):
        if not isinstance(t, str):
            raise InvalidInputError(f"text {i} is {type(t).__name__}, not a string")
    if metadatas is not None and len(metadatas) != n:
        raise InvalidInputError(
            f"got {len(metadatas)} metadatas for {n} texts; pass one metadata dict per text"
        )
    if ids is not None and len(ids) != n:
        raise InvalidInputError(f"got {len(ids)} ids for {n} texts; pass one id per text")
    metas = [_clean_metadata(m, i) for i, m in enumerate(metadatas or [None] * n)]
    id_list: list[str] = []
    for i, doc_id in enumerate(ids or [None] * n):
        if doc_id is None:
            id_list.append(str(uuid.uuid4()))
        elif not isinstance(doc_id, str):
            raise InvalidInputError(f"id {i} is {type(doc_id).__name__}; ids must be strings")
        elif not doc_id:
            raise InvalidInputError(
                f"id {i} is empty; give each document a non-empty id, or None to have one made"
            )
        elif len(doc_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
            raise InvalidInputError(
                f"id {i} is longer than {MAX_ID_BYTES} bytes; use a shorter id (such as a hash "
                "of a long key)"
            )
        else:
            id_list.append(doc_id)
    if len(set(id_list)) != n:
        seen: set[str] = set()
        dupes = sorted({i for i in id_list if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        raise InvalidInputError(
            f"duplicate ids in one call: {dupes[:5]}; each id may appear once per call"
        )
    return text_list, metas, id_list


def _clean_metadata(meta: Mapping[str, Any] | None, i: int) -> dict[str, Any]:
    """A deep copy of the metadata that round-trips through JSON exactly, or an error."""
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise InvalidInputError(f"metadata {i} is {type(meta).__name__}, not a dict")
    try:
        return _json_copy(dict(meta), 1)  # type: ignore[no-any-return]
    except _NotJSON as exc:
        raise InvalidInputError(f"metadata {i} {exc}") from None


class _NotJSON(Exception):
    pass


def _json_copy(value: Any, depth: int) -> Any:
    """A copy of a JSON value; ``depth``: its nesting level (the metadata dict is level 1)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJSON(f"is not JSON: {value!r} is not a JSON number; use None or a string")
        return float(value)
    if isinstance(value, dict | list) and depth > MAX_METADATA_DEPTH:
        raise _NotJSON(
            f"nests dicts and lists more than {MAX_METADATA_DEPTH} levels deep; flatten it "
            "(or store the structure as a JSON string)"
        )
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _NotJSON(
                    f"has the key {k!r}: non-string keys become strings in JSON, "
                    "so it would not come back unchanged; convert those keys first"
                )
            if len(k) * 4 > MAX_KEY_BYTES and len(k.encode("utf-8", "surrogatepass")) > (
                MAX_KEY_BYTES
            ):
                raise _NotJSON(
                    f"has a key of more than {MAX_KEY_BYTES} bytes ({k[:40]!r}...); keys name "
                    "fields: put long text in values"
                )
            out[str(k)] = _json_copy(v, depth + 1)
        return out
    if isinstance(value, list):
        return [_json_copy(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        raise _NotJSON(
            f"holds the tuple {value!r}: tuples become lists in JSON, so it would not come "
            "back unchanged; convert those values first"
        )
    raise _NotJSON(
        f"is not JSON: {type(value).__name__} values are not allowed; use strings, numbers, "
        "booleans, None, lists and dicts with string keys"
    )
