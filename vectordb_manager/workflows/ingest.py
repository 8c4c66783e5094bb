"""`IngestionWorkflow`: a durable ingestion, its batches spread over any number of workers.

The workflow lists the sources (one activity), cuts the listing into batches of
``files_per_batch`` files and runs up to ``max_concurrent`` batch activities at a time (each
loads, splits, embeds and commits its files: `activities.IngestionActivities`), then, with
``cleanup="full"``, removes the chunks of files that vanished. Each activity heartbeats and is
retried with exponential backoff (`types.BatchPolicy`); a batch that still fails after its
last attempt has its files reported as failed, with the reason, and the others go on, exactly
as a file that cannot be read does in ``ingest``.

The ``progress`` query answers at any time (files and chunks done, failed files with their
reasons); the ``cancel`` signal stops it gracefully: no new batch starts, those running
finish, the cleanup is skipped, and the result says ``cancelled``. Cancelling the workflow
through Temporal (``handle.cancel()``) stops the running batches too, each at its next safe
point (`activities`), and the workflow ends cancelled. Every commit is atomic, so
the store is consistent whenever it stops, and running the ingestion again completes it.

Workflow code must be deterministic: it only schedules activities and merges their reports
(in the order of the listing, whatever order they finish in).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from vectordb_manager.workflows.types import (
        INGEST_WORKFLOW,
        BatchPolicy,
        BatchRequest,
        CleanupRequest,
        IngestProgress,
        IngestRequest,
        IngestResult,
        ListRequest,
        SourceFile,
        empty_report,
        merge_report,
    )

NON_RETRYABLE = (
    "ConfigurationError",
    "DimensionMismatchError",
    "InvalidInputError",
    "StoreNotFoundError",
)
"""Errors no retry can mend: the request or the store's settings are wrong."""


def retry_policy(policy: BatchPolicy) -> RetryPolicy:
    """Exponential backoff (doubling) from ``initial_retry_seconds`` to
    ``max_retry_seconds``, ``max_attempts`` attempts in all."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=policy.initial_retry_seconds),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=policy.max_retry_seconds),
        maximum_attempts=policy.max_attempts,
        non_retryable_error_types=list(NON_RETRYABLE),
    )


@workflow.defn(name=INGEST_WORKFLOW)
class IngestionWorkflow:
    """Ingest files into a store through activities (see the module docstring)."""

    def __init__(self) -> None:
        self._progress = IngestProgress()
        self._cancelled = False

    @workflow.query
    def progress(self) -> IngestProgress:
        """Files and chunks done so far, and the failed files with their reasons."""
        return self._progress

    @workflow.signal
    def cancel(self) -> None:
        """Stop after the running batches (no new one starts; no cleanup)."""
        self._cancelled = True

    @workflow.run
    async def run(self, request: IngestRequest) -> IngestResult:
        policy = request.policy
        problems = policy.problems()
        if problems:
            raise ApplicationError(
                "invalid batch policy: " + "; ".join(problems),
                type="InvalidInputError",
                non_retryable=True,
            )
        start = workflow.now()
        sources: list[SourceFile] = await workflow.execute_activity(
            "vectordb-list-sources",
            ListRequest(request.paths, request.glob, request.store),
            result_type=list[SourceFile],
            start_to_close_timeout=timedelta(seconds=policy.activity_timeout_seconds),
            retry_policy=retry_policy(policy),
        )
        size = policy.files_per_batch
        batches = [sources[i : i + size] for i in range(0, len(sources), size)]
        progress = self._progress
        progress.status, progress.files_total = "ingesting", len(sources)
        progress.batches_total = len(batches)
        try:
            parts = await self._run_batches(request, batches)
        except asyncio.CancelledError:  # cancelled through Temporal, not by the signal
            progress.status = "cancelled"
            raise
        report = empty_report()
        for index in sorted(parts):
            merge_report(report, parts[index])
        if request.cleanup == "full" and not self._cancelled:
            progress.status = "cleaning"
            removed = await workflow.execute_activity(
                "vectordb-remove-missing",
                CleanupRequest(request.store, request.paths),
                result_type=dict[str, Any],
                start_to_close_timeout=timedelta(seconds=policy.activity_timeout_seconds),
                heartbeat_timeout=None,
                retry_policy=retry_policy(policy),
            )
            merge_report(report, removed)
            progress.chunks_removed += int(removed["chunks_removed"])
        report["seconds"] = (workflow.now() - start).total_seconds()
        report["ok"] = not report["files_failed"]
        progress.status = "cancelled" if self._cancelled else "completed"
        return IngestResult(progress.status, report)

    async def _run_batches(
        self, request: IngestRequest, batches: list[list[SourceFile]]
    ) -> dict[int, dict[str, Any]]:
        """Run the batches, ``max_concurrent`` at a time, until all are done or the
        ingestion is cancelled (the running ones finish); their reports by batch index."""
        parts: dict[int, dict[str, Any]] = {}
        running: dict[asyncio.Task[dict[str, Any]], int] = {}
        upcoming = 0
        while running or (upcoming < len(batches) and not self._cancelled):
            while (
                upcoming < len(batches)
                and len(running) < request.policy.max_concurrent
                and not self._cancelled
            ):
                task = asyncio.create_task(self._batch(request, batches[upcoming]))
                running[task] = upcoming
                upcoming += 1
            done, _ = await workflow.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=running.__getitem__):
                index = running.pop(task)
                parts[index] = task.result()
                self._count(len(batches[index]), parts[index])
        return parts

    async def _batch(self, request: IngestRequest, files: list[SourceFile]) -> dict[str, Any]:
        """One batch's report; if it failed for good, its files are failed, with the reason."""
        policy = request.policy
        try:
            part: dict[str, Any] = await workflow.execute_activity(
                "vectordb-ingest-batch",
                BatchRequest(request.store, files, policy.commit_batch_size),
                result_type=dict[str, Any],
                start_to_close_timeout=timedelta(seconds=policy.activity_timeout_seconds),
                heartbeat_timeout=timedelta(seconds=policy.heartbeat_timeout_seconds),
                retry_policy=retry_policy(policy),
            )
        except ActivityError as exc:
            cause = exc.cause if exc.cause is not None else exc
            reason = f"its batch failed after every retry: {cause}"
            part = empty_report()
            part["files_seen"] = len(files)
            part["files_failed"] = {f.path: reason for f in files}
        return part

    def _count(self, files: int, part: dict[str, Any]) -> None:
        progress = self._progress
        progress.batches_done += 1
        progress.files_done += files
        progress.chunks_added += int(part["chunks_added"])
        progress.chunks_removed += int(part["chunks_removed"])
        progress.texts_embedded += int(part["texts_embedded"])
        progress.files_failed.update(part["files_failed"])
