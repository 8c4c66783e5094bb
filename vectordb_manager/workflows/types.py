"""The data the workflows, their activities and their callers exchange, as plain dataclasses.

Everything here travels through Temporal (JSON, by the SDK's default data converter) and is
recorded in the workflow's history, so it holds no credential: a store is described by its
`VectorDBConfig` fields without the secret ones (`store_spec`), and each worker builds the
model and the store from that and its own environment. The module imports nothing heavy, so
that the workflow sandbox loads it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INGEST_WORKFLOW = "vectordb-ingest"
QUERY_WORKFLOW = "vectordb-query"
DEFAULT_TASK_QUEUE = "vectordb"

LIMITS = {
    "files_per_batch": 1000,
    "files_per_page": 10_000,
    "report_files": 10_000,
    "report_failures": 10_000,
}
"""The largest values of these `BatchPolicy` fields: what one Temporal payload (about 2 MB)
holds with room to spare."""


@dataclass
class BatchPolicy:
    """How an ingestion is cut into activities and how each is retried.

    ``files_per_batch`` files make one activity (load, split, embed, commit), at most
    ``max_concurrent`` of them run at once (across all workers); each commits
    ``commit_batch_size`` chunks at a time. An activity that fails (a worker died, the store
    or the model failed) is retried after ``initial_retry_seconds``, doubling up to
    ``max_retry_seconds``, ``max_attempts`` times in all; one that sends no heartbeat for
    ``heartbeat_timeout_seconds`` (its worker is gone) or runs longer than
    ``activity_timeout_seconds`` counts as failed.

    The sources are listed ``files_per_page`` at a time, as the batches need them; after
    ``batches_per_run`` batches (or sooner, when Temporal suggests it) the workflow continues
    as new, carrying where the listing is and the report so far, so that its history stays
    bounded whatever the number of files. The report counts every file but names at most
    ``report_files`` files of each kind and ``report_failures`` failed files (`reports`).
    """

    files_per_batch: int = 16
    max_concurrent: int = 4
    commit_batch_size: int = 256
    activity_timeout_seconds: float = 3600.0
    heartbeat_timeout_seconds: float = 60.0
    max_attempts: int = 5
    initial_retry_seconds: float = 1.0
    max_retry_seconds: float = 60.0
    files_per_page: int = 1000
    batches_per_run: int = 500
    report_files: int = 1000
    report_failures: int = 2000

    def problems(self) -> list[str]:
        """What is wrong with these values (empty when they are usable)."""
        out = [
            f"{name}={value!r} must be a positive integer"
            for name, value in (
                ("files_per_batch", self.files_per_batch),
                ("max_concurrent", self.max_concurrent),
                ("commit_batch_size", self.commit_batch_size),
                ("max_attempts", self.max_attempts),
                ("files_per_page", self.files_per_page),
                ("batches_per_run", self.batches_per_run),
            )
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ]
        out += [
            f"{name}={value!r} must be an integer from 0 to {LIMITS[name]}"
            for name, value in (
                ("report_files", self.report_files),
                ("report_failures", self.report_failures),
            )
            if isinstance(value, bool) or not isinstance(value, int) or value < 0
        ]
        out += [
            f"{name}={value!r} is more than {LIMITS[name]}, the most one Temporal payload "
            "holds with room to spare"
            for name, value in ((n, getattr(self, n)) for n in LIMITS)
            if isinstance(value, int) and value > LIMITS[name]
        ]
        out += [
            f"{name}={value!r} must be a positive number of seconds"
            for name, value in (
                ("activity_timeout_seconds", self.activity_timeout_seconds),
                ("heartbeat_timeout_seconds", self.heartbeat_timeout_seconds),
                ("initial_retry_seconds", self.initial_retry_seconds),
                ("max_retry_seconds", self.max_retry_seconds),
            )
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
        ]
        return out


@dataclass
class ListCursor:
    """A place in an ingestion's listing: after the source ``after`` (a path or an object's
    URL; ``None``: from the start) of the ``root``-th root (the local paths in the order
    given, then the S3 prefixes)."""

    root: int = 0
    after: str | None = None


@dataclass
class IngestProgress:
    """What an ingestion has done so far (the workflow's ``progress`` query).

    ``status``: ``listing``, ``ingesting``, ``cleaning``, ``completed`` or ``cancelled``;
    ``files_done`` counts the files of finished batches. ``files_total`` is exact once
    ``listing_complete``; until then it is an estimate (the sources counted when the
    ingestion started, or those listed so far if more). ``failures`` counts the failed files,
    ``files_failed`` names them with the reasons (the first ``report_failures`` of them).
    ``runs`` counts the workflow's runs (it continues as new every ``batches_per_run``
    batches); the query answers across all of them.
    """

    status: str = "listing"
    files_total: int = 0
    files_done: int = 0
    batches_total: int = 0
    batches_done: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    texts_embedded: int = 0
    files_failed: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    listing_complete: bool = False
    runs: int = 1


@dataclass
class IngestState:
    """What a run of the ingestion passes to the next when it continues as new: where the
    listing resumes (every source before ``cursor`` is done), the report so far (bounded:
    `reports`), the progress (its ``files_failed`` is the report's), when the first run
    started (seconds since the epoch) and whether the ingestion was cancelled."""

    cursor: ListCursor
    report: dict[str, Any]
    progress: IngestProgress
    started: float
    cancelled: bool = False


@dataclass
class IngestRequest:
    """An ingestion: the files or directories ``paths`` (as the workers see them; absolute)
    or S3 prefixes (``s3://bucket/prefix``), the store's configuration without secrets
    (``store``), and how to cut and retry it. ``resume`` is set by the workflow itself when
    it continues as new; leave it ``None``."""

    store: dict[str, Any]
    paths: list[str]
    glob: str = "**/*"
    cleanup: str | None = None
    policy: BatchPolicy = field(default_factory=BatchPolicy)
    resume: IngestState | None = None


@dataclass
class SourceFile:
    """A file to ingest, and whether it was found by walking a directory (an unsupported
    type is then skipped, while a file named directly with one is an error); ``root``: the
    root that listed it (`ListCursor.root`)."""

    path: str
    in_directory: bool
    root: int = 0


@dataclass
class ListRequest:
    """The sources to list, from ``cursor`` on (at most ``limit``; ``None``: all of them);
    ``store`` (a store's configuration) gives the S3 endpoint."""

    paths: list[str]
    glob: str = "**/*"
    store: dict[str, Any] | None = None
    cursor: ListCursor = field(default_factory=ListCursor)
    limit: int | None = None


@dataclass
class ListPage:
    """A page of the listing, in order, and where the next one starts (``None``: this was
    the last)."""

    sources: list[SourceFile]
    next: ListCursor | None


@dataclass
class BatchRequest:
    """One activity's work: these files into this store; its report names at most
    ``report_files`` files of each kind and ``report_failures`` failed files."""

    store: dict[str, Any]
    files: list[SourceFile]
    commit_batch_size: int = 256
    report_files: int = 1000
    report_failures: int = 2000


@dataclass
class CleanupRequest:
    """``cleanup="full"``: remove the chunks of files under ``paths`` that no longer exist;
    the report names at most ``report_files`` of them."""

    store: dict[str, Any]
    paths: list[str]
    report_files: int = 1000


@dataclass
class IngestResult:
    """An ingestion's outcome: ``status`` (``completed`` or ``cancelled``) and the report
    (`IngestReport.to_dict`'s shape, the parts of all batches merged in the order of the
    listing, bounded: ``unlisted`` counts the files of each kind it does not name; see
    `reports`)."""

    status: str
    report: dict[str, Any]


@dataclass
class QueryRequest:
    """A retrieval: ``query`` against the store ``store`` describes; ``k`` documents passing
    ``filter`` by ``mode`` (``vector``, ``keyword`` or ``hybrid``); ``fetch_k`` candidates
    when reranking; ``rerank`` and ``answer`` name components registered with the worker
    (`vectordb_manager.workflows.worker.QueryComponents`), ``None`` to skip the step."""

    store: dict[str, Any]
    query: str
    k: int = 4
    filter: dict[str, Any] | None = None
    mode: str = "vector"
    fetch_k: int | None = None
    rerank: str | None = None
    answer: str | None = None


@dataclass
class QueryStepRequest:
    """One step of the query workflow (what the step needs and nothing more)."""

    request: QueryRequest
    vector: list[float] | None = None
    hits: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class QueryResult:
    """The retrieved documents (``{"id", "text", "metadata", "score"}``, best first) and, if
    an answer step was named, its answer."""

    query: str
    hits: list[dict[str, Any]]
    answer: str | None = None
