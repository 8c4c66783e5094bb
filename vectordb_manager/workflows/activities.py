"""The ingestion workflow's activities: list the sources, ingest a batch, remove vanished files.

Each activity calls the same functions as `VectorDatabaseManager.ingest` (the listing of
`processing.files.expand`, a page at a time, then `ingestion.ingest_results` on a batch of it, and
`ingestion.remove_missing`; objects under an S3 prefix are listed and fetched by `sources`),
so an ingestion through the workflow gives exactly the store a
plain ``ingest`` gives: the same chunks, ids, metadata and vectors. It is idempotent for the
same reason ``ingest`` is: a chunk's id is derived from its file and content, a batch compares
them with the ids the store holds for the file, so an activity retried after its worker died
embeds only what the dead attempt did not commit, and commits nothing twice.

The activities are synchronous (loading, splitting and embedding are blocking work) and run
on the worker's thread pool; a batch heartbeats before each file and after each embedding
call, so a worker that dies is noticed within the heartbeat timeout and its batch retried on
another. Cancellation is cooperative: temporalio would otherwise raise it in the activity's
thread wherever it happens to be, perhaps inside a store's commit or lock, leaving the store
object the worker keeps open inconsistent; an activity instead stops at its next heartbeat,
before the next file or right after an embedding call, before that commit (the store on
disk is consistent either way: every commit is atomic).

The stores are built here, in the worker, from the configuration the workflow
carries (no secrets) completed with the worker's own (`StoreCache`): credentials come from
the worker's environment and never enter the workflow's history. One store per configuration
is kept open and refreshed before each batch, so it sees what other workers committed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from temporalio import activity
from temporalio.exceptions import CancelledError

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import ConfigurationError
from vectordb_manager.ingestion import (
    IngestReport,
    embedded_callback,
    ingest_results,
    remove_sources,
)
from vectordb_manager.ingestion import remove_missing as remove_missing_files
from vectordb_manager.manager import VectorDatabaseManager
from vectordb_manager.processing.files import FileResult
from vectordb_manager.workflows.reports import bounded
from vectordb_manager.workflows.sources import (
    count_sources,
    gone_objects,
    is_s3,
    list_page,
    local_targets,
    s3_client,
)
from vectordb_manager.workflows.types import (
    BatchRequest,
    CleanupRequest,
    ListPage,
    ListRequest,
    SourceFile,
)

EmbeddingsFactory = Callable[[VectorDBConfig], Embeddings]
"""Builds the model for a store's configuration in the worker (default: the provider the
configuration names)."""


def secret_fields() -> frozenset[str]:
    """The configuration fields that hold credentials (never carried by a workflow)."""
    config = VectorDBConfig()
    return frozenset(set(config.field_names()) - set(config.to_dict()))


def store_spec(config: VectorDBConfig) -> dict[str, Any]:
    """What a workflow carries of a store's configuration: every field but the secrets, a
    local path made absolute (workers resolve it, not the submitter's directory).

    Raises:
        ConfigurationError: a memory store (each worker would have its own).
    """
    if config.storage_type == "memory":
        raise ConfigurationError(
            "storage_type='memory' cannot be ingested by workers (each would fill a store of "
            "its own); use a local directory the workers share, or S3"
        )
    spec = config.to_dict()
    if config.storage_type == "local":
        spec["local_path"] = str(Path(config.local_path).expanduser().absolute())
    return spec


class StoreCache:
    """The managers (model and store) of the store configurations a worker is asked for.

    A configuration from a workflow is completed with the secrets of the worker's own
    ``base`` configuration (``openai_api_key``); ``embeddings``, when given, builds the model
    instead of the configured provider (tests, custom models).
    """

    def __init__(
        self, base: VectorDBConfig | None = None, embeddings: EmbeddingsFactory | None = None
    ) -> None:
        self.base = base or VectorDBConfig()
        self.embeddings = embeddings
        self._managers: dict[str, VectorDatabaseManager] = {}
        self._lock = threading.Lock()

    def config(self, spec: dict[str, Any]) -> VectorDBConfig:
        """The configuration of the store ``spec`` describes, with the worker's secrets.

        Raises:
            ConfigurationError: ``spec`` carries a secret, or is not a valid configuration.
        """
        carried = sorted(secret_fields() & {k for k, v in spec.items() if v is not None})
        if carried:
            raise ConfigurationError(
                f"the store configuration carries the secret field(s) {', '.join(carried)}; "
                "workflows must not carry credentials: set them in the workers' environment"
            )
        secrets = {name: getattr(self.base, name) for name in secret_fields()}
        return VectorDBConfig.from_dict({**spec, **secrets})

    def manager(self, spec: dict[str, Any]) -> VectorDatabaseManager:
        """The manager of the store ``spec`` describes (opened, or created, once)."""
        key = json.dumps(spec, sort_keys=True, default=str)
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                config = self.config(spec)
                model = self.embeddings(config) if self.embeddings is not None else None
                manager = VectorDatabaseManager(config, embeddings=model)
                self._managers[key] = manager
            return manager

    def close(self) -> None:
        """Wait for the merges the stores' writes started."""
        with self._lock:
            for manager in self._managers.values():
                manager.close()
            self._managers.clear()


class IngestionActivities:
    """The activities of `IngestionWorkflow`, over the stores of one `StoreCache`."""

    def __init__(self, stores: StoreCache) -> None:
        self.stores = stores

    @activity.defn(name="vectordb-list-page", no_thread_cancel_exception=True)
    def list_page(self, request: ListRequest) -> ListPage:
        """A page of the files under the paths, as `ingest` walks them (sorted, hidden ones
        left out), then of the objects under the S3 prefixes (`sources.list_page`)."""
        client = self._client(request.store, request.paths)
        return list_page(request.paths, request.glob, client, request.cursor, request.limit)

    @activity.defn(name="vectordb-count-sources", no_thread_cancel_exception=True)
    def count_sources(self, request: ListRequest) -> int:
        """How many files the listing has (the progress's estimate of the total)."""
        client = self._client(request.store, request.paths)
        return count_sources(request.paths, request.glob, client)

    def _client(self, spec: dict[str, Any] | None, paths: list[str]) -> Any:
        """The S3 client for the sources, if any of ``paths`` is an S3 prefix."""
        if spec is None or not any(is_s3(p) for p in paths):
            return None
        return s3_client(self.stores.config(spec))

    @activity.defn(name="vectordb-ingest-batch", no_thread_cancel_exception=True)
    def ingest_batch(self, request: BatchRequest) -> dict[str, Any]:
        """Load, split, embed and commit a batch of files: `IngestReport.to_dict` of it."""
        start = time.perf_counter()
        manager = self.stores.manager(request.store)
        store = manager.vector_store
        store.refresh()  # what other workers committed since
        had = _had_chunks(store, request.files)
        beat = _Heartbeat(len(request.files), had)
        client = self._client(request.store, [f.path for f in request.files])
        with (
            local_targets(request.files, client, beat.send) as targets,
            embedded_callback(beat.embedded),
        ):
            results = manager.processor.iter_targets(targets, lazy=True)
            report, _ = ingest_results(
                store, beat.files(results), batch_size=request.commit_batch_size
            )
        _as_first_attempt_saw(report, had, [f.path for f in request.files])
        report.seconds = time.perf_counter() - start
        return bounded(report.to_dict(), request.report_files, request.report_failures)

    @activity.defn(name="vectordb-remove-missing", no_thread_cancel_exception=True)
    def remove_missing(self, request: CleanupRequest) -> dict[str, Any]:
        """Delete, in one commit, the chunks of files under the paths that no longer exist
        (found from the store's sources: each is checked on disk, or against the listing of
        its prefix, read here; nothing travels but the report)."""
        start = time.perf_counter()
        store = self.stores.manager(request.store).vector_store
        store.refresh()
        report = IngestReport()
        local = [Path(p) for p in request.paths if not is_s3(p)]
        if local:
            remove_missing_files(store, local, set(), report)
        prefixes = [p for p in request.paths if is_s3(p)]
        if prefixes:
            client = self._client(request.store, prefixes)
            remove_sources(store, gone_objects(client, prefixes), report)
        report.seconds = time.perf_counter() - start
        return bounded(report.to_dict(), request.report_files, 0)

    def all(self) -> list[Callable[..., Any]]:
        """The activities to register with a worker."""
        return [self.list_page, self.count_sources, self.ingest_batch, self.remove_missing]


def _had_chunks(store: Any, files: list[SourceFile]) -> dict[str, bool]:
    """Whether each file had chunks in the store before the batch's first attempt: what
    that attempt found (its heartbeats carry it), or what the store holds now."""
    details = activity.info().heartbeat_details
    last = details[-1] if details else None
    if isinstance(last, dict) and isinstance(last.get("had_chunks"), dict):
        return {str(k): bool(v) for k, v in last["had_chunks"].items()}
    return {f.path: bool(store.get_ids({"source": f.path})) for f in files}


def _as_first_attempt_saw(report: IngestReport, had: dict[str, bool], order: list[str]) -> None:
    """A retried batch reports a file an earlier attempt added (wholly or in part) as added,
    not as updated or unchanged: the store had no chunk of it before the batch."""
    moved = [p for p in (*report.files_updated, *report.files_unchanged) if had.get(p) is False]
    if not moved:
        return
    report.files_updated = [p for p in report.files_updated if p not in moved]
    report.files_unchanged = [p for p in report.files_unchanged if p not in moved]
    position = {path: i for i, path in enumerate(order)}
    report.files_added = sorted([*report.files_added, *moved], key=lambda p: position.get(p, -1))


class _Heartbeat:
    """A batch's heartbeats: before each file and after each embedding call, with how far
    it is (files started of the batch, texts embedded) and which of its files had chunks
    before its first attempt (for the report of a retry)."""

    def __init__(self, files: int, had_chunks: dict[str, bool]) -> None:
        self.total, self.started, self.texts = files, 0, 0
        self.had_chunks = had_chunks

    def files(self, results: Iterable[FileResult]) -> Iterator[FileResult]:
        for result in results:
            self.started += 1
            self.send()
            yield result

    def embedded(self, count: int) -> None:
        self.texts += count
        self.send()

    def send(self) -> None:
        """Heartbeat, or stop here (`CancelledError`) if the batch was cancelled."""
        if activity.is_cancelled():  # a safe point: between files, or before a commit
            raise CancelledError("the batch was cancelled")
        activity.heartbeat(
            {
                "files_started": self.started,
                "files": self.total,
                "texts_embedded": self.texts,
                "had_chunks": self.had_chunks,
            }
        )
