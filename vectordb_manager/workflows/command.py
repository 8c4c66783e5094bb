"""The command line of the workflows: ``vectordb worker`` and ``vectordb ingest --temporal``.

``vectordb worker --temporal HOST:PORT [--task-queue Q]`` runs a worker until SIGINT or
SIGTERM; once it polls, it prints one line on stdout: ``vectordb worker: polling task queue
Q at HOST:PORT``. The global options (``--config``, ``VECTORDB_*``) are the worker's own
configuration, where it takes the secrets of the stores it writes to.

``vectordb ingest PATH... --temporal HOST:PORT [--task-queue Q] [--wait]`` submits an
ingestion of the store the global options describe and prints the workflow's id; with
``--wait`` it shows a bar of the files done and prints the report, as ``ingest`` does.

This module imports no Temporal code, nor asyncio, until a command runs (the CLI builds its
parser from it), and says which extra to install when temporalio is missing.
"""

from __future__ import annotations

import argparse
from typing import Any

from vectordb_manager.errors import ConfigurationError, InvalidInputError

_DEFAULT_QUEUE = "vectordb"  # types.DEFAULT_TASK_QUEUE, without importing the package


def add_worker_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``worker`` command to the CLI's subparsers."""
    help_ = (
        "run a Temporal worker: it takes ingestion batches (and query steps) from a task "
        "queue and commits them to the stores the workflows name"
    )
    p: argparse.ArgumentParser = subparsers.add_parser("worker", help=help_, description=help_)
    p.add_argument("--temporal", required=True, metavar="ADDRESS", help="Temporal HOST:PORT")
    _add_queue_options(p)
    p.add_argument(
        "--max-concurrent",
        dest="max_concurrent",
        type=int,
        default=4,
        metavar="N",
        help="activities this worker runs at once (default 4)",
    )
    p.set_defaults(func=cmd_worker, json=False)
    return p


def add_ingest_options(p: argparse.ArgumentParser) -> None:
    """``ingest``'s options for running it on Temporal workers."""
    p.add_argument(
        "--temporal",
        metavar="ADDRESS",
        help="run the ingestion on the workers of the Temporal server at HOST:PORT (the "
        "PATHs may then also be S3 prefixes, s3://BUCKET/PREFIX)",
    )
    _add_queue_options(p, default=None)
    p.add_argument(
        "--wait",
        action="store_true",
        help="with --temporal: show progress and wait for the report (else print the id)",
    )
    p.add_argument(
        "--files-per-batch",
        dest="files_per_batch",
        type=int,
        metavar="N",
        help="with --temporal: files per activity (default 16)",
    )


def _add_queue_options(p: argparse.ArgumentParser, default: str | None = _DEFAULT_QUEUE) -> None:
    p.add_argument(
        "--task-queue",
        dest="task_queue",
        default=default,
        metavar="Q",
        help=f"the task queue (default {_DEFAULT_QUEUE})",
    )
    p.add_argument("--namespace", default=None, help="the Temporal namespace (default: default)")


def require_temporal() -> None:
    """`ConfigurationError` naming the extra to install when temporalio is missing."""
    try:
        import temporalio  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            "running on Temporal needs the temporal extra: "
            "pip install 'vectordb-manager[temporal]'"
        ) from exc


def cmd_worker(args: argparse.Namespace) -> int:
    require_temporal()
    import asyncio
    import signal

    from vectordb_manager.commands import build_config
    from vectordb_manager.workflows.worker import run_worker

    if args.max_concurrent <= 0:
        raise InvalidInputError(f"--max-concurrent {args.max_concurrent} must be positive")
    config = build_config(args)
    queue = args.task_queue

    def ready() -> None:
        print(f"vectordb worker: polling task queue {queue} at {args.temporal}", flush=True)

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(
            args.temporal,
            task_queue=queue,
            namespace=args.namespace or "default",
            config=config,
            max_concurrent_activities=args.max_concurrent,
            on_ready=ready,
            stop=stop,
        )

    asyncio.run(go())
    return 0


def cmd_ingest_temporal(args: argparse.Namespace) -> int:
    require_temporal()
    import asyncio

    from vectordb_manager.commands import build_config, print_json
    from vectordb_manager.workflows.client import (
        ingest_request,
        start_ingestion,
        wait_for_ingestion,
    )
    from vectordb_manager.workflows.types import BatchPolicy
    from vectordb_manager.workflows.worker import connect

    policy = BatchPolicy()
    if args.files_per_batch is not None:
        policy.files_per_batch = args.files_per_batch
    request = ingest_request(build_config(args), args.paths, cleanup=args.cleanup, policy=policy)
    queue = args.task_queue or _DEFAULT_QUEUE

    async def go() -> tuple[str, Any]:
        client = await connect(args.temporal, args.namespace or "default")
        workflow_id = await start_ingestion(client, request, task_queue=queue)
        if not args.wait:
            return workflow_id, None
        return workflow_id, await wait_for_ingestion(client, workflow_id, progress=not args.quiet)

    workflow_id, report = asyncio.run(go())
    if report is None:
        if args.json:
            print_json({"workflow_id": workflow_id, "task_queue": queue})
        else:
            print(f"submitted ingestion workflow {workflow_id} on task queue {queue}")
        return 0
    if args.json:
        print_json(report.to_dict())
    else:
        print(report)
    return 0 if report.ok else 1


def refuse_without_temporal(args: argparse.Namespace) -> None:
    """`InvalidInputError` for ``ingest``'s Temporal options given without ``--temporal``."""
    given = [
        flag
        for flag, value in (
            ("--task-queue", args.task_queue),
            ("--wait", args.wait or None),
            ("--files-per-batch", args.files_per_batch),
            ("--namespace", args.namespace),
        )
        if value is not None
    ]
    if given:
        raise InvalidInputError(
            f"{', '.join(given)} apply to an ingestion on Temporal workers; add --temporal "
            "HOST:PORT, or leave them out"
        )
