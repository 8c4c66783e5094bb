"""Serve part: `vectordb serve` under load: concurrent clients, mixed queries and writes.

    .venv/bin/python benchmarks/bench_serve.py                          # ~6 minutes
    .venv/bin/python benchmarks/bench_serve.py --seconds 10 --s3-seconds 10 --docs 2000  # quick

Everything runs on 127.0.0.1; the servers are real `vectordb serve` processes
(``tests.server_support.running_server``) with the model-free ``fake`` embeddings (384
dimensions), so the figures are the service's own cost, not a model's. The clients are
threads of this process, each with its own `RemoteVectorStore` (its own HTTP connection).

1. One server over a local directory, a collection preloaded with ``--docs`` documents:
   ``--clients`` clients for ``--seconds`` seconds, each request a write (``--write-share``:
   5 new documents in one request) or a query (4 in 5 vector search by text, 1 in 5 hybrid,
   k=5). Requests per second, p50 and p99 latency of queries and writes, errors (any failed
   request after the SDK's retries), and the server's resident memory (sampled every second
   with psutil) once warm and at the end: the medians of the run's second and last quarters
   (a compaction or a refresh lifts it by a third for a second or so, so single samples
   compared such peaks). Each client's writes cycle through 5 slots of 5 ids, replacing what
   they wrote before, so the collection's size levels off and memory that keeps growing
   would be a leak.
2. The same through two servers over one prefix on moto's S3 server (moto in this process,
   refresh interval 1 s) for ``--s3-seconds``: the clients alternate between the servers.
   Afterwards every acknowledged write must be visible through both (once they have
   refreshed). Replaced documents stay as tombstones until a compaction (at 30% of the
   slots, about every 50 s here), so memory rises for the first minute: a 60 s run ends
   in that rise; 180 s showed a floor of 236-252 MB and medians 235 -> 244 MB.
3. Faults: two servers over one directory under the same load; half-way one is killed
   (SIGKILL). Its clients' requests fail from then on (counted, expected); the other's must
   not fail. Afterwards every write either server acknowledged must be visible through the
   survivor, and ``verify`` must be clean. (A client stops after 3 failures in a row.)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common
from benchmarks.common import PartResult, Row, Table, Target
from tests.server_support import ServerProcess, running_server
from vectordb_manager import VectorDBError
from vectordb_manager.client import RemoteVectorStore, VectorDBClient

DIM = "384"
COLLECTION = "bench"
RSS_LIMIT = 1.2  # "memory stable": at the end at most this times the warm figure
WRITE_SLOTS = 5  # each client's writes cycle through this many ids (x 5 documents)
WARM = 0.25  # the share of a run after which the server's memory counts as warm


def rss_windows(rss: list[tuple[float, int]], seconds: float) -> tuple[float, float]:
    """The server's memory once warm and at the end: the medians of the samples of the run's
    second quarter and of its last quarter. A compaction or a refresh lifts it by a third
    for a second or two (one sample), so single samples would compare such peaks; memory
    that keeps growing lifts the whole last quarter."""
    warm = [b for t, b in rss if seconds * WARM <= t < seconds * 2 * WARM]
    end = [b for t, b in rss if t >= seconds * (1 - WARM)]
    last = [rss[-1][1]]
    return statistics.median(warm or last), statistics.median(end or last)


@dataclass
class Load:
    """What the clients of one run did."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"query": [], "write": []})
    errors: dict[str, int] = field(default_factory=dict)  # per server URL
    kinds: dict[str, int] = field(default_factory=dict)  # per exception and error code
    acknowledged: set[str] = field(default_factory=set)
    seconds: float = 0.0
    rss: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes) of server 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())


def preload(url: str, n: int, seed: int) -> None:
    admin = VectorDBClient(url)
    admin.create_collection(COLLECTION, exist_ok=True)
    store = RemoteVectorStore(url, COLLECTION, batch_size=1000)
    rng = np.random.default_rng(seed)
    for start in range(0, n, 1000):
        texts = common.make_texts(rng, start, min(1000, n - start))
        store.add_texts(
            texts,
            [{"i": start + i} for i in range(len(texts))],
            ids=[f"pre-{start + i}" for i in range(len(texts))],
        )
    store.close()


def client(url: str, number: int, load: Load, *, deadline: float, share: float, seed: int) -> None:
    """One client: writes (``share`` of the requests) and queries until ``deadline``."""
    rng = random.Random(seed * 1000 + number)
    texts = common.make_texts(np.random.default_rng(seed + number), 0, 200)
    store = RemoteVectorStore(url, COLLECTION, timeout=30)  # the SDK's retries
    i = failed = 0
    while time.monotonic() < deadline and failed < 3:  # 3 failures in a row: server gone
        i += 1
        write = rng.random() < share
        t0 = time.perf_counter()
        try:
            if write:
                slot = i % WRITE_SLOTS  # later writes replace earlier ones: a steady size
                ids = [f"c{number}-{slot}-{j}" for j in range(5)]
                store.add_texts(
                    [f"client {number} write {i} {texts[j]}" for j in range(5)],
                    [{"client": number, "i": i}] * 5,
                    ids=ids,
                )
            elif rng.random() < 0.8:
                store.similarity_search(rng.choice(texts)[8:60], k=5)
            else:
                store.hybrid_search(rng.choice(texts)[8:60], k=5)
        except VectorDBError as exc:
            failed += 1
            kind = f"{type(exc).__name__} {getattr(exc, 'code', '')}".strip()
            with load.lock:
                load.errors[url] = load.errors.get(url, 0) + 1
                load.kinds[kind] = load.kinds.get(kind, 0) + 1
                if load.kinds[kind] == 1:
                    common.log(f"  first {kind}: {' '.join(str(exc).split())[:300]}")
            continue
        failed = 0
        took = time.perf_counter() - t0
        with load.lock:
            load.latencies["write" if write else "query"].append(took)
            if write:
                load.acknowledged.update(ids)
    store.close()


def run_load(
    servers: Sequence[ServerProcess],
    args: argparse.Namespace,
    *,
    during: Callable[[], None] | None = None,
    seconds: float | None = None,
) -> Load:
    """``--clients`` clients (alternating between the servers) for ``seconds`` (default
    ``--seconds``); ``during`` is called half-way."""
    import psutil

    seconds = args.seconds if seconds is None else seconds
    load = Load()
    start = time.monotonic()
    deadline = start + seconds
    watched = psutil.Process(servers[0].process.pid)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            try:
                load.rss.append((time.monotonic() - start, watched.memory_info().rss))
            except psutil.Error:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [
        threading.Thread(
            target=client,
            args=(servers[n % len(servers)].url, n, load),
            kwargs={"deadline": deadline, "share": args.write_share, "seed": args.seed},
        )
        for n in range(args.clients)
    ]
    for t in threads:
        t.start()
    if during is not None:
        time.sleep(seconds / 2)  # the load runs meanwhile
        during()
    for t in threads:
        t.join()
    load.seconds = time.monotonic() - start
    stop.set()
    sampler.join()
    return load


def rows(name: str, label: str, load: Load, survivors: int | None = None) -> list[Row]:
    q, w = load.latencies["query"], load.latencies["write"]
    errors = sum(load.errors.values())
    rate = load.requests / load.seconds
    out = [
        Row(
            f"{name}.rps",
            f"{label}: requests/s (queries + writes)",
            {"value": f"{rate:,.0f}"},
            {"value": rate},
        ),
        Row(
            f"{name}.query",
            f"{label}: query p50 / p99 ({len(q):,} queries)",
            {"value": f"{common.fmt_s(common.pct(q, 50))} / {common.fmt_s(common.pct(q, 99))}"},
        ),
        Row(
            f"{name}.write",
            f"{label}: write p50 / p99 ({len(w):,} writes of 5 documents)",
            {"value": f"{common.fmt_s(common.pct(w, 50))} / {common.fmt_s(common.pct(w, 99))}"},
        ),
    ]
    if survivors is None:
        out.append(
            Row(
                f"{name}.errors",
                f"{label}: failed requests",
                {"value": _errors(errors, load)},
                {"value": errors},
                [Target("serve", "errors", errors, 0, "n")],
            )
        )
    if load.rss:
        warm, end = rss_windows(load.rss, load.seconds)
        growth = end / warm
        out.append(
            Row(
                f"{name}.rss",
                f"{label}: server memory, warm -> end, medians of the second and last quarters "
                "(min - max over the run)",
                {
                    "value": f"{common.fmt_mb(warm)} -> {common.fmt_mb(end)} "
                    f"({common.fmt_mb(min(b for _, b in load.rss))} - "
                    f"{common.fmt_mb(max(b for _, b in load.rss))})"
                },
                {"value": growth},
                [Target("serve", "memory end/warm", growth, RSS_LIMIT)],
            )
        )
    return out


def bench(args: argparse.Namespace) -> PartResult:
    out: list[Row] = []
    env = {"VECTORDB_EMBEDDING_DIMENSIONS": DIM}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        root = ["--path", str(work / "root"), "--provider", "fake"]
        if not args.skip_one:
            common.log(f"- one server, {args.docs:,} documents, {args.clients} clients")
            with running_server(work, root, env=env, name="one") as one:
                preload(one.url, args.docs, args.seed)
                load = run_load([one], args)
            out += rows("one", "1 server, local", load)

        if not args.skip_s3:
            from tests.s3_support import moto_server, s3_client

            common.log("- two servers over moto's S3")
            with moto_server() as moto_url:
                s3_client(moto_url).create_bucket(Bucket="bench")
                s3_env = {
                    **env,
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1",
                }
                s3_root = [
                    "--storage",
                    "s3",
                    "--bucket",
                    "bench",
                    "--prefix",
                    "root",
                    "--endpoint-url",
                    moto_url,
                    "--provider",
                    "fake",
                ]
                with (
                    running_server(work, s3_root, env=s3_env, name="s3a") as a,
                    running_server(work, s3_root, env=s3_env, name="s3b") as b,
                ):
                    preload(a.url, args.docs, args.seed)
                    load = run_load([a, b], args, seconds=args.s3_seconds)
                    lost = max(missing(b.url, load.acknowledged), missing(a.url, load.acknowledged))
            out += rows("s3", "2 servers, moto S3", load)
            out.append(lost_row("s3", "2 servers, moto S3", lost))

        if not args.skip_kill:
            common.log("- two servers over one directory, one killed half-way")
            kill_root = ["--path", str(work / "kill"), "--provider", "fake"]
            with (
                running_server(work, kill_root, env=env, name="ka") as a,
                running_server(work, kill_root, env=env, name="kb") as b,
            ):
                preload(b.url, args.docs, args.seed)
                load = run_load([b, a], args, during=a.kill)
                lost = missing(b.url, load.acknowledged)
                clean = VectorDBClient(b.url).verify(COLLECTION)["documents"]
            label = "2 servers, one killed"
            out += rows("kill", label, load, survivors=1)
            survivor_errors = load.errors.get(b.url, 0)
            out.append(
                Row(
                    "kill.errors",
                    f"{label}: failed requests: survivor / killed server",
                    {"value": f"{survivor_errors:,} / {load.errors.get(a.url, 0):,}"},
                    {"value": survivor_errors},
                    [Target("serve", "survivor's errors", survivor_errors, 0, "n")],
                )
            )
            out.append(lost_row("kill", f"{label} (verify: {clean:,} documents)", lost))
    table = Table(
        f"`vectordb serve`: {args.clients} clients x {args.seconds:g} s "
        f"({args.s3_seconds:g} s over S3), "
        f"{args.write_share:.0%} writes",
        [("value", "value")],
        out,
        notes=[
            f"collection preloaded with {args.docs:,} documents; fake embeddings (384-d); "
            f"a write adds or replaces 5 documents (each client cycles through {WRITE_SLOTS} x 5 "
            "ids); queries: 4/5 vector, 1/5 hybrid, k=5; clients retry as the SDK does (unsent "
            "requests and 503s, 3 times)",
            "clients are threads of the benchmark process (one GIL); the servers are separate "
            f"processes; the machine has {os.cpu_count()} CPUs",
        ],
    )
    return PartResult(
        "serve",
        "The HTTP service under load",
        [table],
        {
            "clients": args.clients,
            "seconds": args.seconds,
            "s3_seconds": args.s3_seconds,
            "docs": args.docs,
        },
    )


def _errors(count: int, load: Load) -> str:
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(load.kinds.items()))
    return f"{count:,}" + (f" ({kinds})" if kinds else "")


def missing(url: str, acknowledged: set[str], wait: float = 15.0) -> int:
    """How many acknowledged ids the server at ``url`` does not show, once it has had
    ``wait`` seconds (beyond its refresh interval) to see the other servers' writes."""
    store = RemoteVectorStore(url, COLLECTION)
    deadline = time.monotonic() + wait
    while True:
        absent = len(acknowledged - set(store.get_ids()))
        if not absent or time.monotonic() > deadline:
            return absent
        time.sleep(0.2)  # between polls


def lost_row(name: str, label: str, lost: int) -> Row:
    return Row(
        f"{name}.lost",
        f"{label}: acknowledged writes not visible afterwards",
        {"value": f"{lost:,}"},
        {"value": lost},
        [Target("serve", "acknowledged writes lost", lost, 0, "n")],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = common.part_parser(__doc__)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--seconds", type=float, default=60.0, help="per run (default 60)")
    parser.add_argument(
        "--s3-seconds",
        type=float,
        default=150.0,
        help="the run over S3 (default 150: its servers' memory rises with tombstones until a "
        "compaction drops them, about every 50 s under this load)",
    )
    parser.add_argument("--docs", type=int, default=20_000, help="preloaded (default 20,000)")
    parser.add_argument(
        "--write-share", type=float, default=0.2, help="share of writes (default 0.2)"
    )
    parser.add_argument("--skip-one", action="store_true", help="no run with one server")
    parser.add_argument("--skip-s3", action="store_true", help="no run over moto's S3")
    parser.add_argument("--skip-kill", action="store_true", help="no run with a killed server")
    args = parser.parse_args(argv)
    common.run_part(args, bench)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
