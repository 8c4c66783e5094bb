"""`QueryWorkflow`: retrieval as observable, retried steps.

preprocess (normalise the query) -> embed (``vector`` mode only; ``keyword`` needs no
vector and ``hybrid`` embeds inside its search) -> retrieve -> optional rerank (a LangChain
document compressor registered with the worker under a name) -> optional answer (any
LangChain runnable registered under a name). Each step is an activity
(`query_activities.QueryActivities`), retried with backoff and visible in the workflow's
history, which is what teams that want their retrieval steps observable use it for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from vectordb_manager.workflows.types import (
        QUERY_WORKFLOW,
        QueryRequest,
        QueryResult,
        QueryStepRequest,
    )

STEP_TIMEOUT = timedelta(minutes=5)
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=["ConfigurationError", "InvalidInputError", "StoreNotFoundError"],
)


@workflow.defn(name=QUERY_WORKFLOW)
class QueryWorkflow:
    """Answer a query through steps (see the module docstring)."""

    def __init__(self) -> None:
        self._step = "starting"

    @workflow.query
    def step(self) -> str:
        """The step running now (``preprocess``, ``embed``, ``retrieve``, ``rerank``,
        ``answer``) or ``done``."""
        return self._step

    @workflow.run
    async def run(self, request: QueryRequest) -> QueryResult:
        request.query = await self._call("preprocess", QueryStepRequest(request), str)
        vector: list[float] | None = None
        if request.mode == "vector":
            vector = await self._call("embed", QueryStepRequest(request), list[float])
        hits: list[dict[str, Any]] = await self._call(
            "retrieve", QueryStepRequest(request, vector=vector), list[dict[str, Any]]
        )
        if request.rerank is not None:
            hits = await self._call(
                "rerank", QueryStepRequest(request, hits=hits), list[dict[str, Any]]
            )
        hits = hits[: request.k]
        answer: str | None = None
        if request.answer is not None:
            answer = await self._call("answer", QueryStepRequest(request, hits=hits), str)
        self._step = "done"
        return QueryResult(request.query, hits, answer)

    async def _call(self, step: str, arg: QueryStepRequest, result_type: Any) -> Any:
        self._step = step
        return await workflow.execute_activity(
            f"vectordb-query-{step}",
            arg,
            result_type=result_type,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
