"""`IngestionWorkflow`: a durable ingestion, its batches spread over any number of workers.

The workflow lists the sources a page of ``files_per_page`` at a time (an activity each, the
next page fetched while the batches of the last one run), cuts them into batches of
``files_per_batch`` files and runs up to ``max_concurrent`` batch activities at a time (each
loads, splits, embeds and commits its files: `activities.IngestionActivities`), then, with
``cleanup="full"``, removes the chunks of files that vanished. Each activity heartbeats and is
retried with exponential backoff (`types.BatchPolicy`); a batch that still fails after its
last attempt has its files reported as failed, with the reason, and the others go on, exactly
as a file that cannot be read does in ``ingest``.

Any number of files: after ``batches_per_run`` batches, or sooner when Temporal suggests it,
a run starts no more batches, waits for those running and continues as new, passing on
where the listing resumes (after the last file started: files it had listed but not started
are listed again), the progress and the report so far (`types.IngestState`). Every payload
is bounded (a page, a batch, the report: `reports`), and so is each run's history.

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
import dataclasses
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from vectordb_manager.workflows.reports import BoundedReport, empty_report
    from vectordb_manager.workflows.types import (
        INGEST_WORKFLOW,
        BatchPolicy,
        BatchRequest,
        CleanupRequest,
        IngestProgress,
        IngestRequest,
        IngestResult,
        IngestState,
        ListCursor,
        ListPage,
        ListRequest,
        SourceFile,
    )

NON_RETRYABLE = (
    "ConfigurationError",
    "DimensionMismatchError",
    "InvalidInputError",
    "StoreNotFoundError",
)
"""Errors no retry can mend: the request or the store's settings are wrong."""

HISTORY_BYTES = 8 << 20
HISTORY_EVENTS = 20_000
"""A run continues as new past either, whatever ``batches_per_run`` (Temporal warns at 10 MB
or 10,240 events and fails a workflow at 50 MB or 51,200)."""


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
        state = request.resume or IngestState(
            ListCursor(), empty_report(), IngestProgress(), workflow.now().timestamp()
        )
        report = BoundedReport(policy.report_files, policy.report_failures, state.report)
        progress = self._progress = state.progress
        progress.files_failed = report.report["files_failed"]  # one dict, carried once
        progress.runs += request.resume is not None
        self._cancelled = self._cancelled or state.cancelled
        run = _Run(request, state.cursor, progress, report, lambda: self._cancelled)
        try:
            cursor = await run.ingest(count=request.resume is None)
        except asyncio.CancelledError:  # cancelled through Temporal, not by the signal
            progress.status = "cancelled"
            raise
        if cursor is not None:  # a fresh history for the rest
            carried = dataclasses.replace(progress, files_failed={})
            state = IngestState(cursor, report.report, carried, state.started, self._cancelled)
            workflow.continue_as_new(dataclasses.replace(request, resume=state))
        if request.cleanup == "full" and not self._cancelled:
            progress.status = "cleaning"
            removed = await workflow.execute_activity(
                "vectordb-remove-missing",
                CleanupRequest(request.store, request.paths, policy.report_files),
                result_type=dict[str, Any],
                start_to_close_timeout=timedelta(seconds=policy.activity_timeout_seconds),
                heartbeat_timeout=None,
                retry_policy=retry_policy(policy),
            )
            report.add(removed)
            progress.chunks_removed += int(removed["chunks_removed"])
        started = datetime.fromtimestamp(state.started, UTC)
        report.report["seconds"] = (workflow.now() - started).total_seconds()
        progress.status = "cancelled" if self._cancelled else "completed"
        return IngestResult(progress.status, report.report)


class _Run:
    """One run's loop: fetch pages, start batches, merge their reports in the order of the
    listing, until the listing is done, the ingestion cancelled, or the run has done its
    share (then every batch started is waited for, and the next run resumes after them)."""

    def __init__(
        self,
        request: IngestRequest,
        cursor: ListCursor,
        progress: IngestProgress,
        report: BoundedReport,
        cancelled: Callable[[], bool],
    ) -> None:
        self.request, self.policy = request, request.policy
        self.progress, self.report, self.cancelled = progress, report, cancelled
        self.first = self.cursor = cursor  # where the run started; where the next page starts
        self.pending: deque[SourceFile] = deque()  # listed, not started
        self.listed_all = False
        self.running: dict[asyncio.Task[dict[str, Any]], tuple[int, list[SourceFile]]] = {}
        self.parts: dict[int, dict[str, Any]] = {}  # finished, waiting for an earlier batch
        self.started = self.merged = 0
        self.last: SourceFile | None = None  # the last file started
        self.rolling = False  # this run has done its share: no new batch, no new page
        self.failure: ActivityError | None = None  # a page that could not be listed

    async def ingest(self, *, count: bool) -> ListCursor | None:
        """Run; where the next run resumes, or ``None`` (all done, or cancelled)."""
        listing: asyncio.Task[ListPage] | None = None
        counting = asyncio.create_task(self._count()) if count else None
        while True:
            self._start_batches()
            low = len(self.pending) < self.policy.files_per_batch * self.policy.max_concurrent
            if listing is None and not self.listed_all and not self._stopping() and low:
                listing = asyncio.create_task(self._page())
            waiting: list[asyncio.Task[Any]] = [*self.running, *([listing] if listing else [])]
            if not waiting:
                break
            done, _ = await workflow.wait(
                [*waiting, *([counting] if counting else [])], return_when=asyncio.FIRST_COMPLETED
            )
            if counting is not None and counting in done:
                self._estimate(counting.result())
                counting = None
            if listing is not None and listing in done:
                try:
                    self._listed(listing.result())
                except ActivityError as exc:  # failed for good: the running batches finish
                    self.failure = self.failure or exc
                listing = None
            for task in sorted(set(done) & set(self.running), key=lambda t: self.running[t][0]):
                self._finished(task)
        if counting is not None:
            counting.cancel()  # the listing ended first: the count tells nothing more
        if self.failure is not None:
            raise self.failure
        if self.cancelled() or (self.listed_all and not self.pending):
            return None
        last = self.last
        return ListCursor(last.root, last.path) if last is not None else self.first

    def _stopping(self) -> bool:
        return self.rolling or self.failure is not None or self.cancelled()

    def _start_batches(self) -> None:
        policy, pending = self.policy, self.pending
        while (
            not self._stopping()
            and len(self.running) < policy.max_concurrent
            and pending
            and (self.listed_all or len(pending) >= policy.files_per_batch)
        ):
            files = [pending.popleft() for _ in range(min(policy.files_per_batch, len(pending)))]
            self.running[asyncio.create_task(self._batch(files))] = (self.started, files)
            self.started += 1
            self.last = files[-1]
            self.rolling = self._should_roll()
        self._totals()

    def _should_roll(self) -> bool:
        """Whether this run has done its share (the next starts with a fresh history)."""
        info = workflow.info()
        return (
            self.started >= self.policy.batches_per_run
            or info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= HISTORY_EVENTS
            or info.get_current_history_size() >= HISTORY_BYTES
        )

    async def _page(self) -> ListPage:
        """The next page (a listing that fails after every retry fails the ingestion, once
        the running batches are done)."""
        page: ListPage = await workflow.execute_activity(
            "vectordb-list-page",
            self._list_request(self.cursor, self.policy.files_per_page),
            result_type=ListPage,
            start_to_close_timeout=timedelta(seconds=self.policy.activity_timeout_seconds),
            retry_policy=retry_policy(self.policy),
        )
        return page

    async def _count(self) -> int | None:
        try:
            total: int = await workflow.execute_activity(
                "vectordb-count-sources",
                self._list_request(ListCursor(), None),
                result_type=int,
                start_to_close_timeout=timedelta(seconds=self.policy.activity_timeout_seconds),
                retry_policy=retry_policy(self.policy),
            )
        except ActivityError:
            return None  # only an estimate: the listing itself says what is there
        return total

    def _list_request(self, cursor: ListCursor, limit: int | None) -> ListRequest:
        request = self.request
        return ListRequest(request.paths, request.glob, request.store, cursor, limit)

    def _listed(self, page: ListPage) -> None:
        if self._stopping():
            return  # not started in this run: the next lists them again
        self.pending.extend(page.sources)
        self.listed_all = page.next is None
        self.cursor = page.next or self.cursor
        self.progress.listing_complete = self.listed_all
        if self.progress.status == "listing":
            self.progress.status = "ingesting"
        self._totals()

    def _estimate(self, total: int | None) -> None:
        if total is not None and not self.listed_all:
            self.progress.files_total = total
            self._totals()

    def _finished(self, task: asyncio.Task[dict[str, Any]]) -> None:
        index, files = self.running.pop(task)
        part = self.parts[index] = task.result()
        progress = self.progress
        progress.batches_done += 1
        progress.files_done += len(files)
        progress.chunks_added += int(part["chunks_added"])
        progress.chunks_removed += int(part["chunks_removed"])
        progress.texts_embedded += int(part["texts_embedded"])
        progress.failures += len(part["files_failed"])
        progress.failures += int(part.get("unlisted", {}).get("files_failed", 0))
        while self.merged in self.parts:
            self.report.add(self.parts.pop(self.merged))
            self.merged += 1
        self._totals()

    def _totals(self) -> None:
        """The progress's totals: exact once the listing is done, else at least what is known."""
        progress, size = self.progress, self.policy.files_per_batch
        running = sum(len(files) for _, files in self.running.values())
        known = progress.files_done + running + len(self.pending)
        total = known if self.listed_all else max(progress.files_total, known)
        to_start = total - progress.files_done - running
        progress.files_total = total
        progress.batches_total = progress.batches_done + len(self.running) + -(-to_start // size)

    async def _batch(self, files: list[SourceFile]) -> dict[str, Any]:
        """One batch's report; if it failed for good, its files are failed, with the reason."""
        policy = self.policy
        request = BatchRequest(
            self.request.store,
            files,
            policy.commit_batch_size,
            policy.report_files,
            policy.report_failures,
        )
        try:
            part: dict[str, Any] = await workflow.execute_activity(
                "vectordb-ingest-batch",
                request,
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
