"""A child process for the workflow tests: a worker, or a client that submits and follows.

Usage:
  python -m tests.integration.temporal_child worker ADDRESS QUEUE LOG [--delay S] [--max N]
  python -m tests.integration.temporal_child client ADDRESS

``worker`` runs `run_worker` with the configured model wrapped so that each embedding call
appends ``EMBED <pid> <count>`` to LOG (one write(2), before the call's delay of ``--delay``
seconds, which stands for a remote model's latency), and ``READY <pid>`` once it polls;
while the file LOG.hold exists and the workers have embedded at least as many texts as it
says, an embedding call waits for the file to go (at most `HOLD_SECONDS`, well within a
batch's heartbeat timeout); it offers the reranker ``reverse`` and the answerer ``count`` to
the query workflow.

``client`` reads one JSON command a line on stdin and answers each with one JSON line on
stdout, in order (each command runs to its end before the next is read):
``{"op": "ingest", "queue", "request": {"store", "paths", "cleanup", "policy"},
"cancel_when": {FIELD: N...}, "cancel_after_batches": N, "cancel_through_temporal": bool}``
submits an ingestion, queries its progress every 200 ms while it runs, cancels it once each
FIELD of the progress reaches N (``cancel_after_batches``: ``batches_done``; by its
``cancel`` signal, or by Temporal's own cancellation), removes the file ``release`` once
each field of ``release_when`` reaches its number or equals its string (after a cancel due
at the same time), waits for it and answers ``{"report",
"progress", "seen"}`` (a report ``{"failure"}`` if the workflow did not complete; ``seen``:
the progress answers while it ran); ``{"op": "query", "queue",
"request"}`` runs a query workflow and answers its result; ``{"op": "manager-ingest",
"queue", "request"}`` ingests through ``VectorDatabaseManager.ingest(..., temporal=...)``.
A failure answers ``{"error"}``.

Every command ends with ``os._exit``: temporalio's runtime threads can abort the
interpreter's teardown ("PyGILState_Release", sdk-python issue 300), which is why the tests
never use temporalio in their own process.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables import RunnableLambda

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.embeddings import build_embeddings

HOLD_SECONDS = 30.0


def _hold(log: str) -> None:
    """Wait while LOG.hold exists and the log counts at least the texts it names."""
    knob = Path(f"{log}.hold")
    try:
        threshold = int(knob.read_text())
    except (FileNotFoundError, ValueError):
        return
    lines = [line.split() for line in Path(log).read_text().splitlines()]
    if sum(int(p[2]) for p in lines if p and p[0] == "EMBED") < threshold:
        return
    deadline = time.monotonic() + HOLD_SECONDS
    while knob.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


class LoggedEmbeddings(Embeddings):
    """The model, each embedding call logged (then delayed)."""

    def __init__(self, model: Embeddings, log: str, delay: float) -> None:
        self.underlying_embeddings = model
        self.log, self.delay = log, delay

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"EMBED {os.getpid()} {len(texts)}\n".encode())
        finally:
            os.close(fd)
        _hold(self.log)
        if self.delay:
            time.sleep(self.delay)
        return self.underlying_embeddings.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.underlying_embeddings.embed_query(text)


class Reverse(BaseDocumentCompressor):
    """A reranker that reverses the order it is given."""

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        return list(reversed(documents))


def worker(args: argparse.Namespace) -> None:
    from vectordb_manager.workflows import QueryComponents, run_worker

    def model(config: VectorDBConfig) -> Embeddings:
        return LoggedEmbeddings(build_embeddings(config), args.log, args.delay)

    def ready() -> None:
        fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"READY {os.getpid()}\n".encode())
        os.close(fd)

    components = QueryComponents(
        rerankers={"reverse": Reverse()},
        answerers={
            "count": RunnableLambda(
                lambda x: f"{len(x['documents'])} documents for: {x['question']}"
            )
        },
    )
    asyncio.run(
        run_worker(
            args.address,
            task_queue=args.queue,
            embeddings=model,
            components=components,
            max_concurrent_activities=args.max,
            on_ready=ready,
            # no sticky workflow cache: a killed worker's workflow tasks are not held back
            # for the sticky queue's timeout (seconds) before another worker takes them
            worker_options={"max_cached_workflows": 0},
        )
    )


async def ingest(client: Any, command: dict[str, Any]) -> dict[str, Any]:
    from temporalio.client import WorkflowFailureError

    from vectordb_manager.workflows import (
        BatchPolicy,
        IngestRequest,
        start_ingestion,
        wait_for_ingestion,
    )

    spec = command["request"]
    request = IngestRequest(
        store=spec["store"],
        paths=spec["paths"],
        cleanup=spec.get("cleanup"),
        policy=BatchPolicy(**spec.get("policy", {})),
    )
    workflow_id = await start_ingestion(client, request, task_queue=command["queue"])
    cancel_when = command.get("cancel_when")
    if command.get("cancel_after_batches") is not None:
        cancel_when = {"batches_done": command["cancel_after_batches"]}
    watch = asyncio.ensure_future(
        _watch(
            client,
            workflow_id,
            cancel_when,
            command.get("cancel_through_temporal", False),
            (command["release"], command["release_when"]) if "release" in command else None,
        )
    )
    try:
        report: Any = (await wait_for_ingestion(client, workflow_id)).to_dict()
    except WorkflowFailureError as exc:
        report = {"failure": f"{type(exc.cause).__name__}: {exc.cause}"}
    watch.cancel()
    snapshots = await watch
    progress = await _query(client, workflow_id)
    return {"report": report, "progress": dataclasses.asdict(progress), "seen": snapshots}


async def _query(client: Any, workflow_id: str) -> Any:
    from vectordb_manager.workflows import ingestion_progress

    return await ingestion_progress(client, workflow_id)


def _reached(progress: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(
        progress[k] == v if isinstance(v, str) else progress[k] >= v for k, v in wanted.items()
    )


async def _watch(
    client: Any,
    workflow_id: str,
    cancel_when: dict[str, int] | None,
    native: bool,
    release: tuple[str, dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    """Query the progress every 200 ms until cancelled (the ingestion's end); the answers
    (without the failed files). Once every field of ``cancel_when`` reaches its value,
    cancel the ingestion: by its signal, or through Temporal when ``native``. Once the
    progress reaches ``release``'s fields, remove its file (after the cancel has been
    accepted, when both are due at once: a test can hold the ingestion until then)."""
    from vectordb_manager.workflows import cancel_ingestion

    seen: list[dict[str, Any]] = []
    try:
        while True:
            progress = dataclasses.asdict(await _query(client, workflow_id))
            progress.pop("files_failed")
            seen.append(progress)
            if cancel_when and _reached(progress, cancel_when):
                cancel_when = None
                if native:
                    await client.get_workflow_handle(workflow_id).cancel()
                else:
                    await cancel_ingestion(client, workflow_id)
            if release and _reached(progress, release[1]):  # after a cancel due now
                Path(release[0]).unlink(missing_ok=True)
                release = None
            await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        return seen


async def query(client: Any, command: dict[str, Any]) -> dict[str, Any]:
    from vectordb_manager.workflows import QueryRequest, run_query

    request = QueryRequest(**command["request"])
    return dataclasses.asdict(await run_query(client, request, task_queue=command["queue"]))


async def manager_ingest(address: str, command: dict[str, Any]) -> dict[str, Any]:
    """`VectorDatabaseManager.ingest(..., temporal=ADDRESS)`, blocking (from this running
    event loop, so on a thread of its own)."""
    from vectordb_manager import VectorDatabaseManager

    request = command["request"]
    config = VectorDBConfig.from_dict(request["store"])
    with VectorDatabaseManager(config) as db:
        report = db.ingest(request["paths"], temporal=address, task_queue=command["queue"])
    return {"report": report.to_dict(), "type": type(report).__name__}


async def serve(address: str) -> None:
    from vectordb_manager.workflows import connect

    client = await connect(address)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        try:
            if command["op"] == "manager-ingest":
                answer = await manager_ingest(address, command)
            else:
                run = ingest if command["op"] == "ingest" else query
                answer = await run(client, command)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("worker")
    p.add_argument("address")
    p.add_argument("queue")
    p.add_argument("log")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--max", type=int, default=2)
    p = sub.add_parser("client")
    p.add_argument("address")
    args = parser.parse_args()
    if args.command == "worker":
        worker(args)
    else:
        asyncio.run(serve(args.address))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
