"""A worker: polls a task queue of a Temporal server and runs the workflows and activities.

``vectordb worker --temporal HOST:PORT [--task-queue Q]`` runs `run_worker`; start as many
as you like, on as many machines, all on the same queue: each takes batches as it has room
(``max_concurrent_activities`` at a time, on a thread pool) and commits them to the store
the workflow names. Every worker must see the sources at the paths the workflow carries (a
shared file system) and reach the store (the shared directory, or the S3 bucket with its
own credentials). On SIGINT or SIGTERM it stops polling and lets running activities finish
for ``graceful_seconds``; one killed outright has its batches retried elsewhere once their
heartbeats stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import ConfigurationError
from vectordb_manager.workflows.activities import (
    EmbeddingsFactory,
    IngestionActivities,
    StoreCache,
)
from vectordb_manager.workflows.ingest import IngestionWorkflow
from vectordb_manager.workflows.query import QueryWorkflow
from vectordb_manager.workflows.query_activities import QueryActivities, QueryComponents
from vectordb_manager.workflows.types import DEFAULT_TASK_QUEUE


async def connect(address: str, namespace: str = "default") -> Client:
    """A client of the Temporal server at ``address`` (``HOST:PORT``).

    Raises:
        ConfigurationError: the server cannot be reached there.
    """
    try:
        return await Client.connect(address, namespace=namespace)
    except RuntimeError as exc:
        raise ConfigurationError(
            f"cannot reach a Temporal server at {address!r} ({exc}); start one there or give "
            "its HOST:PORT with --temporal"
        ) from exc


async def run_worker(
    address: str,
    *,
    task_queue: str = DEFAULT_TASK_QUEUE,
    namespace: str = "default",
    config: VectorDBConfig | None = None,
    embeddings: EmbeddingsFactory | None = None,
    components: QueryComponents | None = None,
    max_concurrent_activities: int = 4,
    graceful_seconds: float = 30.0,
    on_ready: Callable[[], object] | None = None,
    stop: asyncio.Event | None = None,
    worker_options: Mapping[str, Any] | None = None,
) -> None:
    """Run a worker until ``stop`` is set (forever without one).

    ``config`` is the worker's own configuration: a store's secrets (``openai_api_key``) are
    taken from it; ``embeddings`` builds the model for a store's configuration instead of its
    provider; ``components`` are the rerankers and answerers the query workflow may name.
    ``on_ready`` is called once the worker polls; ``worker_options`` go to temporalio's
    `Worker` as they are (``max_cached_workflows``, ``identity``...).
    """
    if max_concurrent_activities <= 0:
        raise ConfigurationError(
            f"max_concurrent_activities={max_concurrent_activities} must be positive"
        )
    client = await connect(address, namespace)
    stores = StoreCache(config, embeddings)
    ingestion = IngestionActivities(stores)
    query = QueryActivities(stores, components)
    try:
        with ThreadPoolExecutor(max_concurrent_activities) as executor:
            worker = Worker(
                client,
                task_queue=task_queue,
                workflows=[IngestionWorkflow, QueryWorkflow],
                activities=[*ingestion.all(), *query.all()],
                activity_executor=executor,
                max_concurrent_activities=max_concurrent_activities,
                graceful_shutdown_timeout=timedelta(seconds=graceful_seconds),
                **dict(worker_options or {}),
            )
            async with worker:
                if on_ready is not None:
                    on_ready()
                await (stop or asyncio.Event()).wait()
    finally:
        stores.close()
