"""`CollectionRegistry`: the collections under one storage root, opened once and kept fresh.

A collection is a `VectorDatabaseManager` over its own store (`root.StorageRoot`), with the
settings its descriptor records: the embedding model, the distance and index type (also in
the store's manifest) and the chunking used when the server splits texts. Collections are
opened on first use and kept open; models are shared between collections that use the same.

**Several servers over one root.** Any of them may write (the stores' commits are
conditional, so nothing is overwritten). Before it serves a request on a collection, a
server re-reads it from storage if its last refresh started more than ``refresh_interval``
seconds ago: it checks the descriptor (a collection deleted, or deleted and created again,
by another server is noticed) and loads the commits made elsewhere (`EngineVectorStore.
refresh`: one listing of the manifests when nothing changed). A request that finds a
refresh, or a write of this server, under way is served from what is loaded instead of
waiting (the write loads the other servers' commits itself). With ``refresh_interval=0``
every request waits, and sees every write acknowledged before it arrived, wherever it was
made.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from langchain_core.embeddings import Embeddings

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.embeddings import LazyEmbeddings, build_embeddings
from vectordb_manager.errors import IntegrityError, StoreNotFoundError
from vectordb_manager.manager import VectorDatabaseManager
from vectordb_manager.server.errors import ApiError
from vectordb_manager.server.root import DESCRIPTOR, StorageRoot
from vectordb_manager.server.settings import COLLECTION_NAME, ServerSettings
from vectordb_manager.server.vectors_only import VECTORS_ONLY, NoEmbeddings, has_model
from vectordb_manager.storage.base import ObjectNotFound, Storage
from vectordb_manager.vectorstores.engine_store import EngineVectorStore

logger = logging.getLogger(__name__)
DESCRIPTOR_FORMAT = "vectordb-collection"
DESCRIPTOR_VERSION = 1


@dataclass(frozen=True)
class CollectionSpec:
    """A collection's settings, as its descriptor records them. ``uid`` tells a collection
    from another one created later under the same name."""

    name: str
    uid: str
    created_at: str
    embedding_provider: str
    embedding_model: str | None
    embedding_dimensions: int | None
    distance: str
    index: str
    chunk_size: int
    chunk_overlap: int

    def store_settings(self) -> dict[str, Any]:
        """The `VectorDBConfig` fields this spec sets."""
        return {
            "embedding_provider": self.embedding_provider,
            "embedding_model": self.embedding_model,
            "embedding_dimensions": self.embedding_dimensions,
            "distance_metric": self.distance,
            "index_type": self.index,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
        }

    def to_bytes(self) -> bytes:
        doc = {"format": DESCRIPTOR_FORMAT, "format_version": DESCRIPTOR_VERSION, **asdict(self)}
        return json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> CollectionSpec:
        """Parse a descriptor; `IntegrityError` if it is not one this release wrote."""
        try:
            doc = json.loads(data)
            if doc.pop("format") != DESCRIPTOR_FORMAT or doc.pop("format_version") != 1:
                raise ValueError("unknown format")
            spec = cls(**doc)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise IntegrityError(
                f"{where} is not a collection descriptor this release reads ({exc}); "
                "restore it from a backup"
            ) from None
        return spec


class _Gone(Exception):
    """The collection's descriptor is gone: another server deleted it."""


class Collection:
    """An open collection: its spec, its manager (and store), and when it was last
    refreshed from storage."""

    def __init__(self, spec: CollectionSpec, manager: VectorDatabaseManager, storage: Storage):
        self.spec = spec
        self.manager = manager
        self.storage = storage
        self.upload_lock = threading.Lock()  # uploads stage files under fixed names
        self._refresh_lock = threading.Lock()
        self._fresh_at = time.monotonic()  # when the last refresh (or the opening) started

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def store(self) -> EngineVectorStore:
        return self.manager.vector_store

    def refresh_if_due(self, interval: float) -> None:
        """Re-read the collection from storage unless a refresh that started at most
        ``interval`` seconds ago has completed (see the module docstring).

        Raises:
            _Gone: the collection was deleted (or replaced) by another server.
        """
        arrived = time.monotonic()
        if self._fresh_at >= arrived - interval:
            return
        # another request is refreshing: with an interval, serve what is loaded rather than
        # wait (loading a large commit of another server can take a while); with 0, wait
        if not self._refresh_lock.acquire(blocking=interval == 0):
            return
        try:
            if self._fresh_at >= arrived - interval:  # done while this request waited
                return
            started = time.monotonic()
            try:
                data = self.storage.read(DESCRIPTOR)
            except ObjectNotFound:
                raise _Gone from None
            if CollectionSpec.from_bytes(data, DESCRIPTOR).uid != self.spec.uid:
                raise _Gone
            try:
                # with an interval, never wait behind a write of this server (its commit can
                # take several round trips): it loads the other servers' commits itself before
                # it commits, so this counts as a refresh (the requests meanwhile do not each
                # read the descriptor again)
                self.store.refresh(wait=interval == 0)
            except Exception as exc:  # files going: deleted since the descriptor was read?
                if not self.storage.list(DESCRIPTOR):
                    raise _Gone from exc
                raise
            self._fresh_at = started
        finally:
            self._refresh_lock.release()


class CollectionRegistry:
    """The collections under ``settings.store``'s root (see the module docstring)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.root = StorageRoot(settings.store)
        self._open: dict[str, Collection] = {}
        self._lock = threading.Lock()  # guards _open
        self._opening = threading.Lock()  # one collection opened at a time
        self._models: dict[tuple[str, str | None, int | None], Embeddings] = {}
        self._models_lock = threading.Lock()
        self.default_embeddings = self.embeddings_for(settings.store)

    # -- models ------------------------------------------------------------------------------
    def embeddings_for(self, config: VectorDBConfig) -> Embeddings:
        """The (shared, lazily loaded) model ``config`` names."""
        key = (config.embedding_provider, config.embedding_model, config.embedding_dimensions)
        with self._models_lock:
            model = self._models.get(key)
            if model is None:
                model = self._models[key] = build_embeddings(config, lazy=True)
            return model

    def _model(self, spec: CollectionSpec, config: VectorDBConfig) -> Embeddings:
        """The model of a collection: `NoEmbeddings` for one without (see `vectors_only`)."""
        if not has_model(spec):
            assert spec.embedding_dimensions is not None
            return NoEmbeddings(spec.embedding_dimensions)
        return self.embeddings_for(config)

    def load_default_model(self) -> None:
        """Load the default model now (a local one loads on first use otherwise)."""
        model = self.default_embeddings
        if isinstance(model, LazyEmbeddings):
            _ = model.inner

    # -- collections ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The collections under the root, sorted."""
        return [spec.name for spec in self.specs()]

    def specs(self) -> list[CollectionSpec]:
        """The settings of every collection under the root, sorted by name."""
        out = []
        for name in self.root.candidates():
            if not COLLECTION_NAME.fullmatch(name):
                continue
            try:
                out.append(_read_spec(self.root.storage(name)))
            except ObjectNotFound:
                continue  # not a collection (or one being deleted)
            except IntegrityError as exc:
                logger.warning("skipping collection %r: %s", name, exc)
        return out

    def get(self, name: str) -> Collection:
        """The open collection ``name``, refreshed if due.

        Raises:
            ApiError: ``collection_not_found``.
        """
        for _ in range(2):  # once more if another server replaced it meanwhile
            with self._lock:
                collection = self._open.get(name)
            if collection is None:
                collection = self._load(name)
            try:
                collection.refresh_if_due(self.settings.refresh_interval)
            except _Gone:
                self._forget(collection)
                continue
            return collection
        raise _not_found(name)

    def _load(self, name: str) -> Collection:
        if not COLLECTION_NAME.fullmatch(name):
            raise _not_found(name)
        with self._opening:
            with self._lock:
                collection = self._open.get(name)
            if collection is not None:
                return collection
            storage = self.root.storage(name)
            try:
                spec = _read_spec(storage)
            except ObjectNotFound:
                raise _not_found(name) from None
            config = self.root.store_config(name, **_config_settings(spec.store_settings()))
            try:
                manager = VectorDatabaseManager(
                    config, embeddings=self._model(spec, config), create=False
                )
            except StoreNotFoundError:
                raise ApiError(
                    "collection_not_found",
                    f"collection {name!r} is being created, or its creation failed; retry, "
                    "or delete it and create it again",
                ) from None
            collection = Collection(spec, manager, storage)
            with self._lock:
                self._open[name] = collection
            return collection

    def _forget(self, collection: Collection) -> None:
        with self._lock:
            if self._open.get(collection.name) is collection:
                del self._open[collection.name]

    def create(self, name: str, options: Mapping[str, Any]) -> Collection:
        """Create collection ``name`` with ``options`` (`CollectionSpec` fields; the rest
        from the server's configuration). Everything is checked before anything is written;
        a failed create leaves nothing behind.

        Raises:
            ApiError: ``invalid_input`` (the name), ``collection_exists``,
                ``location_in_use``, ``invalid_configuration`` (a model the server does not
                offer).
            ConfigurationError: bad settings (a distance, index or chunking).
        """
        if not COLLECTION_NAME.fullmatch(name):
            raise ApiError("invalid_input", f"collection name {name!r} is invalid; {NAME_RULE}")
        base = self.settings.store
        settings = {k: v for k, v in options.items() if v is not None}
        vectors_only = settings.get("embedding_provider") == VECTORS_ONLY
        config = self.root.store_config(name, **_config_settings(settings))
        if vectors_only:
            _require_dimensions(settings)
        else:
            self._require_offered(config)
        spec = CollectionSpec(
            name=name,
            uid=uuid.uuid4().hex,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            embedding_provider=VECTORS_ONLY if vectors_only else config.embedding_provider,
            embedding_model=None if vectors_only else config.embedding_model,
            embedding_dimensions=config.embedding_dimensions,
            distance=config.distance_metric,
            index=config.index_type,
            chunk_size=config.chunk_size,
            chunk_overlap=config.chunk_overlap,
        )
        embeddings = self._model(spec, config)
        storage = self.root.storage(name)
        try:
            _read_spec(storage)
        except ObjectNotFound:
            pass
        else:
            raise _exists(name)
        if storage.list("manifests/"):
            raise ApiError(
                "location_in_use",
                f"{self.root.describe()}{'' if base.storage_type == 's3' else '/'}{name} holds "
                "a store that is not a collection (or what is left of a deleted one); choose "
                "another name, or remove it there",
            )
        if not storage.write_if_absent(DESCRIPTOR, spec.to_bytes()):
            raise _exists(name)
        try:
            manager = VectorDatabaseManager(config, embeddings=embeddings, create=True)
        except BaseException:
            storage.delete(DESCRIPTOR)
            raise
        collection = Collection(spec, manager, storage)
        with self._lock:
            self._open[name] = collection
        logger.info("created collection %r in %s", name, self.root.describe())
        return collection

    def _require_offered(self, config: VectorDBConfig) -> None:
        """A collection may use the server's model, or the model-free ``fake`` provider with
        any dimension; other models would have the server download and run them."""
        base = self.settings.store
        wanted = (config.embedding_provider, config.embedding_model, config.embedding_dimensions)
        offered = (base.embedding_provider, base.embedding_model, base.embedding_dimensions)
        if wanted != offered and config.embedding_provider != "fake":
            raise ApiError(
                "invalid_configuration",
                f"this server offers the embedding model {_model(offered)} (and 'fake', "
                f"model-free, of any dimension), not {_model(wanted)}; leave the embedding "
                "settings out to use the server's model",
            )

    def delete(self, name: str) -> int:
        """Delete collection ``name`` and everything in it; returns how many objects were
        removed. Its descriptor goes first, so the collection disappears at once for every
        server; then its store's files."""
        collection = self.get(name)
        self._forget(collection)
        collection.manager.close()  # its merges finish before the files go
        collection.storage.delete(DESCRIPTOR)
        removed = self.root.remove(name, collection.storage)
        logger.info("deleted collection %r (%d objects)", name, removed + 1)
        return removed + 1

    def void_if_deleted(self, collection: Collection) -> ApiError | None:
        """After a write to ``collection`` (done or failed): ``None`` if the collection is
        still there; if another request or server deleted it meanwhile, the error to answer
        (404 ``collection_not_found``), once what the write left behind is removed, so that
        the deleted collection does not half reappear. (A collection deleted and created
        again under the name is answered the same, and nothing is removed.)"""
        try:
            spec = _read_spec(collection.storage)
        except ObjectNotFound:
            spec = None
        if spec is not None and spec.uid == collection.spec.uid:
            return None
        self._forget(collection)
        collection.manager.close()
        if spec is None:
            removed = self.root.remove(collection.name, collection.storage, keep=DESCRIPTOR)
            logger.warning(
                "collection %r was deleted while a write ran; removed the %d objects it left",
                collection.name,
                removed,
            )
        return ApiError(
            "collection_not_found",
            f"collection {collection.name!r} was deleted while this write ran (by another "
            "request or server); the write is void. Create the collection again to write to "
            "it",
        )

    def open_collections(self) -> Iterator[Collection]:
        with self._lock:
            yield from list(self._open.values())

    def close(self) -> None:
        """Wait for the merges the collections' writes started."""
        for collection in self.open_collections():
            collection.manager.close()


NAME_RULE = "use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"


def _config_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A collection's settings as `VectorDBConfig` fields: a collection without a model
    (provider ``none``) is configured with the model-free ``fake`` provider, which the
    server never uses for it (its model is `NoEmbeddings`)."""
    out = dict(settings)
    if out.get("embedding_provider") == VECTORS_ONLY:
        out |= {"embedding_provider": "fake", "embedding_model": None}
    return out


def _require_dimensions(settings: Mapping[str, Any]) -> None:
    if not settings.get("embedding_dimensions") or settings.get("embedding_model"):
        raise ApiError(
            "invalid_configuration",
            'a collection without an embedding model (provider "none") needs "dimensions", '
            'the length of the vectors it will hold, and no "model"; e.g. '
            '{"provider": "none", "dimensions": 384}',
        )


def _read_spec(storage: Storage) -> CollectionSpec:
    return CollectionSpec.from_bytes(storage.read(DESCRIPTOR), f"{storage.describe()}/{DESCRIPTOR}")


def _not_found(name: str) -> ApiError:
    return ApiError(
        "collection_not_found",
        f"no collection named {name!r}; list them with GET /collections, or create it with "
        "POST /collections",
    )


def _exists(name: str) -> ApiError:
    return ApiError(
        "collection_exists",
        f"collection {name!r} exists already; use it, delete it first, or choose another name",
    )


def _model(triple: tuple[str, str | None, int | None]) -> str:
    provider, model, dims = triple
    return f"{provider}:{model or 'default'}" + (f" ({dims} dimensions)" if dims else "")


__all__ = ["Collection", "CollectionRegistry", "CollectionSpec"]
