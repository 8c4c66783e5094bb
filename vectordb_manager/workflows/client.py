"""Submitting ingestions and queries to the workers, and following them.

`start_ingestion` submits an `IngestionWorkflow` and returns its id at once;
`wait_for_ingestion` waits for its result (with ``progress``, a tqdm bar of the files done,
fed by the workflow's ``progress`` query) and gives a `WorkflowIngestReport`, the
`IngestReport` ``ingest`` gives plus the workflow's id and status; `ingestion_progress` asks
how far one is, `cancel_ingestion` stops one gracefully. `ingest_with_temporal` is all of it
in one blocking call (what ``VectorDatabaseManager.ingest(..., temporal=ADDRESS)`` and
``vectordb ingest --temporal ADDRESS --wait`` use).

The workflow carries the store's configuration without secrets (`activities.store_spec`):
the workers build the model and the store from it and their own environment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import InvalidInputError
from vectordb_manager.ingestion import IngestReport, require_ingest_options
from vectordb_manager.processing.files import PathInput, absolute
from vectordb_manager.workflows.activities import store_spec
from vectordb_manager.workflows.reports import REPORT_KINDS
from vectordb_manager.workflows.types import (
    DEFAULT_TASK_QUEUE,
    INGEST_WORKFLOW,
    QUERY_WORKFLOW,
    BatchPolicy,
    IngestProgress,
    IngestRequest,
    IngestResult,
    QueryRequest,
    QueryResult,
)
from vectordb_manager.workflows.worker import connect

T = TypeVar("T")

STATUS_CHECK_SECONDS = 2.0
"""How often a wait for the result checks that the workflow still runs."""
QUERY_SECONDS, QUERY_ATTEMPTS = 5.0, 3
"""The longest one ``progress`` query waits for its answer, and how many are tried."""


@dataclass(repr=False)
class WorkflowIngestReport(IngestReport):
    """An `IngestReport` from an ingestion workflow: ``status`` is ``completed`` or
    ``cancelled`` (the files it did not reach are in no category), ``workflow_id`` its id.

    The counts are exact for any number of files; the lists name the first files of each
    kind in the order of the listing, at most ``BatchPolicy.report_files`` of them (1000 by
    default; failed files, with their reasons, ``report_failures``: 2000), and ``unlisted``
    says how many more each kind has: ``count(kind)`` is ``len(report.<kind>) +
    unlisted[kind]`` (see `vectordb_manager.workflows.reports`).
    """

    status: str = "completed"
    workflow_id: str = ""
    unlisted: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no file failed and the ingestion was not cancelled."""
        return not self.count("files_failed") and self.status == "completed"

    def count(self, kind: str) -> int:
        return super().count(kind) + self.unlisted.get(kind, 0)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data, plus ``counts``: each kind's exact count."""
        counts = {kind: self.count(kind) for kind in REPORT_KINDS}
        return {**super().to_dict(), "counts": counts}

    def __str__(self) -> str:
        lines = [super().__str__()]
        more = {k.removeprefix("files_"): n for k, n in self.unlisted.items() if n}
        if more:
            named = ", ".join(f"{n} {kind}" for kind, n in more.items())
            lines.append(f"  (not named here: {named}; the report names the first of each)")
        lines.append(f"workflow {self.workflow_id}: {self.status}")
        return "\n".join(lines)


def ingest_request(
    config: VectorDBConfig,
    paths: PathInput | Sequence[PathInput],
    *,
    cleanup: str | None = None,
    policy: BatchPolicy | None = None,
    glob: str = "**/*",
) -> IngestRequest:
    """The workflow's argument for ingesting ``paths`` into the store ``config`` describes.

    Raises:
        InvalidInputError: a bad ``cleanup`` or policy, or no paths.
        ConfigurationError: a memory store.
    """
    items = [paths] if isinstance(paths, str | bytes) or not isinstance(paths, Sequence) else paths
    if not items:
        raise InvalidInputError("no paths to ingest; give files or directories")
    policy = policy or BatchPolicy()
    require_ingest_options(cleanup, policy.commit_batch_size)
    problems = policy.problems()
    if problems:
        raise InvalidInputError("invalid batch policy: " + "; ".join(problems))
    return IngestRequest(
        store=store_spec(config),
        paths=[
            str(p) if str(p).startswith("s3://") else str(absolute(p)) for p in items
        ],
        glob=glob,
        cleanup=cleanup,
        policy=policy,
    )


async def start_ingestion(
    client: Client,
    request: IngestRequest,
    *,
    task_queue: str = DEFAULT_TASK_QUEUE,
    workflow_id: str | None = None,
) -> str:
    """Submit an ingestion; returns the workflow's id (it runs on the workers)."""
    handle = await client.start_workflow(
        INGEST_WORKFLOW,
        request,
        id=workflow_id or f"vectordb-ingest-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
        result_type=IngestResult,
    )
    return handle.id


async def wait_for_ingestion(
    client: Client, workflow_id: str, *, progress: bool = False, poll_seconds: float = 0.5
) -> WorkflowIngestReport:
    """Wait for an ingestion's end; with ``progress``, show a bar of the files done."""
    handle: WorkflowHandle[Any, IngestResult] = client.get_workflow_handle(
        workflow_id, result_type=IngestResult
    )
    result_task = asyncio.ensure_future(_result(handle))
    if progress:
        from tqdm.auto import tqdm

        with tqdm(desc="Ingested", unit=" files", total=None) as bar:
            while not result_task.done():
                await asyncio.wait([result_task], timeout=poll_seconds)
                with contextlib.suppress(RPCError):  # the bar waits for the next answer
                    _show(bar, await _progress(handle))
    return _report(await result_task, workflow_id)


async def ingestion_progress(client: Client, workflow_id: str) -> IngestProgress:
    """How far the ingestion ``workflow_id`` is (across the runs it continued as new)."""
    return await _progress(client.get_workflow_handle(workflow_id))


async def cancel_ingestion(client: Client, workflow_id: str) -> None:
    """Ask the ingestion to stop: no new batch starts, the running ones finish."""
    await client.get_workflow_handle(workflow_id).signal("cancel")


async def run_query(
    client: Client, request: QueryRequest, *, task_queue: str = DEFAULT_TASK_QUEUE
) -> QueryResult:
    """Run a `QueryWorkflow` and wait for its result."""
    result: QueryResult = await client.execute_workflow(
        QUERY_WORKFLOW,
        request,
        id=f"vectordb-query-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
        result_type=QueryResult,
    )
    return result


def ingest_with_temporal(
    config: VectorDBConfig,
    paths: PathInput | Sequence[PathInput],
    *,
    address: str,
    task_queue: str | None = None,
    namespace: str = "default",
    cleanup: str | None = None,
    policy: BatchPolicy | None = None,
    progress: bool = False,
) -> WorkflowIngestReport:
    """Ingest ``paths`` through the workers polling ``task_queue`` at ``address`` and wait
    for the result (blocking; from a running event loop, e.g. Jupyter, it runs on a thread)."""
    request = ingest_request(config, paths, cleanup=cleanup, policy=policy)

    async def go() -> WorkflowIngestReport:
        client = await connect(address, namespace)
        workflow_id = await start_ingestion(
            client, request, task_queue=task_queue or DEFAULT_TASK_QUEUE
        )
        return await wait_for_ingestion(client, workflow_id, progress=progress)

    return run_blocking(go())


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end: here, or on a thread if an event loop runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _result(handle: WorkflowHandle[Any, IngestResult]) -> IngestResult:
    """The result of the workflow's last run. ``handle.result()`` long-polls the history for
    the closing event, following the runs the workflow continued as new. A server may end a
    poll with no event and no page to follow (Temporal's test server does, after some
    seconds), which the SDK reports as "No completion event found", or let a poll miss the
    end of the run it waits on (the test server does when a query came in meanwhile): every
    `STATUS_CHECK_SECONDS` the workflow's status is checked, and once its last run has
    ended, a fresh poll reads the result."""
    misses = 0
    while True:
        poll = asyncio.ensure_future(handle.result())
        while not poll.done():
            await asyncio.wait([poll], timeout=STATUS_CHECK_SECONDS)
            if not poll.done() and not await _running(handle):
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll
        if poll.cancelled():
            continue
        try:
            return poll.result()
        except RuntimeError as exc:
            if "No completion event found" not in str(exc):
                raise
            misses = 0 if await _running(handle) else misses + 1
            if misses > 2:  # ended, and still no closing event: not a poll ended early
                raise


async def _running(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether the workflow's current run is running."""
    description = await handle.describe()
    return description.status == WorkflowExecutionStatus.RUNNING


async def _progress(handle: WorkflowHandle[Any, Any]) -> IngestProgress:
    """The ``progress`` query's answer. A query that comes in while a run continues as new
    may wait for a workflow task that never comes (on Temporal's test server): each attempt
    waits `QUERY_SECONDS` at most, and the next one reaches the new run."""
    for attempt in range(QUERY_ATTEMPTS):
        try:
            progress: IngestProgress = await handle.query(
                "progress",
                result_type=IngestProgress,
                rpc_timeout=timedelta(seconds=QUERY_SECONDS),
            )
            return progress
        except RPCError as exc:
            timed_out = exc.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
            if not timed_out or attempt == QUERY_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _show(bar: Any, progress: IngestProgress) -> None:
    if progress.files_total and bar.total != progress.files_total:
        bar.total = progress.files_total
    bar.update(progress.files_done - bar.n)
    bar.set_postfix(chunks=progress.chunks_added, failed=progress.failures, status=progress.status)


def _report(result: IngestResult, workflow_id: str) -> WorkflowIngestReport:
    names = {f.name for f in dataclasses.fields(IngestReport)} | {"unlisted"}
    values = {k: v for k, v in result.report.items() if k in names}
    return WorkflowIngestReport(**values, status=result.status, workflow_id=workflow_id)
