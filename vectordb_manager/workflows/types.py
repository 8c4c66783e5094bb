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

# the report's fields (`vectordb_manager.ingestion.IngestReport`), by how two parts merge
REPORT_LISTS = ("files_added", "files_updated", "files_unchanged", "files_removed")
REPORT_DICTS = ("files_skipped", "files_failed")
REPORT_COUNTS = ("files_seen", "chunks_added", "chunks_removed", "texts_embedded")


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
    """

    files_per_batch: int = 16
    max_concurrent: int = 4
    commit_batch_size: int = 256
    activity_timeout_seconds: float = 3600.0
    heartbeat_timeout_seconds: float = 60.0
    max_attempts: int = 5
    initial_retry_seconds: float = 1.0
    max_retry_seconds: float = 60.0

    def problems(self) -> list[str]:
        """What is wrong with these values (empty when they are usable)."""
        out = [
            f"{name}={value!r} must be a positive integer"
            for name, value in (
                ("files_per_batch", self.files_per_batch),
                ("max_concurrent", self.max_concurrent),
                ("commit_batch_size", self.commit_batch_size),
                ("max_attempts", self.max_attempts),
            )
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0
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
class IngestRequest:
    """An ingestion: the files or directories ``paths`` (as the workers see them; absolute)
    or S3 prefixes (``s3://bucket/prefix``), the store's configuration without secrets
    (``store``), and how to cut and retry it."""

    store: dict[str, Any]
    paths: list[str]
    glob: str = "**/*"
    cleanup: str | None = None
    policy: BatchPolicy = field(default_factory=BatchPolicy)


@dataclass
class SourceFile:
    """A file to ingest, and whether it was found by walking a directory (an unsupported
    type is then skipped, while a file named directly with one is an error)."""

    path: str
    in_directory: bool


@dataclass
class ListRequest:
    """The sources to list; ``store`` (a store's configuration) gives the S3 endpoint."""

    paths: list[str]
    glob: str = "**/*"
    store: dict[str, Any] | None = None


@dataclass
class BatchRequest:
    """One activity's work: these files into this store."""

    store: dict[str, Any]
    files: list[SourceFile]
    commit_batch_size: int = 256


@dataclass
class CleanupRequest:
    """``cleanup="full"``: remove the chunks of files under ``paths`` that no longer exist."""

    store: dict[str, Any]
    paths: list[str]


@dataclass
class IngestProgress:
    """What an ingestion has done so far (the workflow's ``progress`` query).

    ``status``: ``listing``, ``ingesting``, ``cleaning``, ``completed`` or ``cancelled``;
    ``files_done`` counts the files of finished batches, ``files_failed`` names each failed
    file with the reason.
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


@dataclass
class IngestResult:
    """An ingestion's outcome: ``status`` (``completed`` or ``cancelled``) and the report
    (`IngestReport.to_dict`, the parts of all batches merged in the order of the listing)."""

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


def empty_report() -> dict[str, Any]:
    """A report with nothing in it, in `IngestReport.to_dict`'s shape."""
    report: dict[str, Any] = {name: [] for name in REPORT_LISTS}
    report.update({name: {} for name in REPORT_DICTS})
    report.update({name: 0 for name in REPORT_COUNTS})
    report["seconds"] = 0.0
    return report


def merge_report(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add the report ``part`` to ``total`` (both in `IngestReport.to_dict`'s shape)."""
    for name in REPORT_LISTS:
        total[name].extend(part.get(name, []))
    for name in REPORT_DICTS:
        total[name].update(part.get(name, {}))
    for name in REPORT_COUNTS:
        total[name] += int(part.get(name, 0))
    total["seconds"] += float(part.get("seconds", 0.0))
    total["ok"] = not total["files_failed"]
