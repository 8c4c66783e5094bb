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
import dataclasses
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import InvalidInputError
from vectordb_manager.ingestion import IngestReport, require_ingest_options
from vectordb_manager.processing.files import PathInput, absolute
from vectordb_manager.workflows.activities import store_spec
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


@dataclass(repr=False)
class WorkflowIngestReport(IngestReport):
    """An `IngestReport` from an ingestion workflow: ``status`` is ``completed`` or
    ``cancelled`` (the files it did not reach are in no category), ``workflow_id`` its id."""

    status: str = "completed"
    workflow_id: str = ""

    @property
    def ok(self) -> bool:
        """True when no file failed and the ingestion was not cancelled."""
        return not self.files_failed and self.status == "completed"

    def __str__(self) -> str:
        return f"{super().__str__()}\nworkflow {self.workflow_id}: {self.status}"


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
                _show(bar, await _progress(handle))
    return _report(await result_task, workflow_id)


async def ingestion_progress(client: Client, workflow_id: str) -> IngestProgress:
    """How far the ingestion ``workflow_id`` is."""
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
    """The workflow's result. ``handle.result()`` long-polls the history for the closing
    event; a server may end a poll with no event and no page to follow (Temporal's test
    server does, after some seconds), which the SDK reports as "No completion event found":
    while the workflow still runs, wait again."""
    while True:
        try:
            return await handle.result()
        except RuntimeError as exc:
            if "No completion event found" not in str(exc):
                raise
            description = await handle.describe()
            if description.status != WorkflowExecutionStatus.RUNNING:
                raise


async def _progress(handle: WorkflowHandle[Any, Any]) -> IngestProgress:
    progress: IngestProgress = await handle.query("progress", result_type=IngestProgress)
    return progress


def _show(bar: Any, progress: IngestProgress) -> None:
    if progress.files_total and bar.total != progress.files_total:
        bar.total = progress.files_total
    bar.update(progress.files_done - bar.n)
    bar.set_postfix(
        chunks=progress.chunks_added, failed=len(progress.files_failed), status=progress.status
    )


def _report(result: IngestResult, workflow_id: str) -> WorkflowIngestReport:
    names = {f.name for f in dataclasses.fields(IngestReport)}
    values = {k: v for k, v in result.report.items() if k in names}
    return WorkflowIngestReport(**values, status=result.status, workflow_id=workflow_id)
