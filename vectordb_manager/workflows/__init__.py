"""Durable, distributed ingestion and retrieval on Temporal (the ``temporal`` extra).

`IngestionWorkflow` lists the sources and fans their batches out to any number of workers
(`run_worker`, ``vectordb worker``), each batch loaded, split, embedded and committed by an
activity that heartbeats and is retried with backoff; `QueryWorkflow` runs a retrieval as
steps. `ingest_with_temporal` (``VectorDatabaseManager.ingest(..., temporal=ADDRESS)``,
``vectordb ingest --temporal ADDRESS --wait``) submits an ingestion and waits for it. See
docs/temporal.md.

Names are imported on first use: importing this package does not import temporalio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vectordb_manager.lazy import attach

if TYPE_CHECKING:
    from vectordb_manager.workflows.activities import StoreCache, store_spec
    from vectordb_manager.workflows.client import (
        WorkflowIngestReport,
        cancel_ingestion,
        ingest_request,
        ingest_with_temporal,
        ingestion_progress,
        run_query,
        start_ingestion,
        wait_for_ingestion,
    )
    from vectordb_manager.workflows.ingest import IngestionWorkflow
    from vectordb_manager.workflows.query import QueryWorkflow
    from vectordb_manager.workflows.query_activities import QueryComponents
    from vectordb_manager.workflows.types import (
        BatchPolicy,
        IngestProgress,
        IngestRequest,
        IngestResult,
        QueryRequest,
        QueryResult,
    )
    from vectordb_manager.workflows.worker import connect, run_worker
else:
    __getattr__, __dir__ = attach(
        __name__,
        {
            "StoreCache": "vectordb_manager.workflows.activities",
            "store_spec": "vectordb_manager.workflows.activities",
            "WorkflowIngestReport": "vectordb_manager.workflows.client",
            "cancel_ingestion": "vectordb_manager.workflows.client",
            "ingest_request": "vectordb_manager.workflows.client",
            "ingest_with_temporal": "vectordb_manager.workflows.client",
            "ingestion_progress": "vectordb_manager.workflows.client",
            "run_query": "vectordb_manager.workflows.client",
            "start_ingestion": "vectordb_manager.workflows.client",
            "wait_for_ingestion": "vectordb_manager.workflows.client",
            "IngestionWorkflow": "vectordb_manager.workflows.ingest",
            "QueryWorkflow": "vectordb_manager.workflows.query",
            "QueryComponents": "vectordb_manager.workflows.query_activities",
            "BatchPolicy": "vectordb_manager.workflows.types",
            "IngestProgress": "vectordb_manager.workflows.types",
            "IngestRequest": "vectordb_manager.workflows.types",
            "IngestResult": "vectordb_manager.workflows.types",
            "QueryRequest": "vectordb_manager.workflows.types",
            "QueryResult": "vectordb_manager.workflows.types",
            "connect": "vectordb_manager.workflows.worker",
            "run_worker": "vectordb_manager.workflows.worker",
        },
    )

__all__ = [
    "BatchPolicy",
    "IngestProgress",
    "IngestRequest",
    "IngestResult",
    "IngestionWorkflow",
    "QueryComponents",
    "QueryRequest",
    "QueryResult",
    "QueryWorkflow",
    "StoreCache",
    "WorkflowIngestReport",
    "cancel_ingestion",
    "connect",
    "ingest_request",
    "ingest_with_temporal",
    "ingestion_progress",
    "run_query",
    "run_worker",
    "start_ingestion",
    "store_spec",
    "wait_for_ingestion",
]
