"""S3 part: `S3VectorStore` on moto's S3 server: request economy, open time, concurrent commits.

    .venv/bin/python benchmarks/bench_s3.py --n 100000     # about a minute
    .venv/bin/python benchmarks/bench_s3.py --n 20000      # quick
    .venv/bin/python benchmarks/bench_s3.py --n 100000 --profile --sections 23

Everything runs on 127.0.0.1: moto's real HTTP server (``tests.s3_support.moto_server``, in
this process, in threads) and, in front of it, a `FaultProxy` with no faults that logs every
request (method, path, status, request body bytes). The proxy's sockets get TCP_NODELAY here
(``--proxy-nagle`` leaves it off, as ``tests/fault_proxy.py`` does): it sends a response's
headers and body in two writes, so with Nagle's algorithm every answer with a body (GET, LIST)
waits ~40 ms for the client's delayed ACK.

1. Request economy (through the proxy): the requests and uploaded bytes of (a) adding 500
   documents to an empty store in one call, (b) adding 10 documents to a store that holds
   5,000 (added in one call before the log is reset). Uploaded bytes are the request bodies of
   the PUTs as they crossed the wire.
2. Open time: N x 384 clustered synthetic unit vectors (the local part's data), written
   through ``add_embeddings`` in batches of 10,000 to a `LocalVectorStore` in a temp dir and
   to an `S3VectorStore` (moto's endpoint directly, no proxy). Opening = constructor + one
   ``similarity_search_by_vector``. The target compares fresh child processes (median of 3
   each; moto stays in this process); in-process opens (median of 3) are shown too, but there
   moto's threads share the GIL with the store. Then once through the proxy, to count the
   requests of an open.
3. Commit throughput: 4 threads, each with its own `S3VectorStore` (own boto3 client), on the
   same bucket/prefix through the proxy, each making 25 commits of 10 documents (``add_texts``
   with ``HashingEmbeddings(64)``, ``commit_attempts=1000``), against 1 writer making 100
   commits alone. Lost races = manifest PUTs answered 412. At the end a freshly opened store
   must hold all 1,000 documents. Writers, proxy and moto share one process (one GIL), so the
   server's requests/s bound the commit rate: compare the requests per commit. Then the same
   4 x 25 writes as threads of one store (a server's request threads): writes queued while
   another commits share the next commit (group commit), counted in manifest PUTs.

``--profile`` adds a timeline of the S3 open's storage calls, cProfile of the opens and of the
concurrent commits (calling thread) plus an all-thread stack sampler (the work happens in pool,
server and writer threads), and the storage calls of the commits summed by kind (on stderr).
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common, machine
from benchmarks.common import (
    DIM,
    WORDS,
    K,
    Row,
    Target,
)
from benchmarks.s3_profiling import Recorder, out, profiled

ADD_BATCH = 10_000
OPEN_REPEATS = 3
BUCKET = "bench-s3"
CREDS: dict[str, str] = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": "us-east-1",
}
ECON_FIRST = 500
ECON_BASE = 5_000
ECON_SMALL = 10
WRITERS = 4
COMMITS_PER_WRITER = 25
DOCS_PER_COMMIT = 10
HASH_DIM = 64
COMMIT_ATTEMPTS = 1000
TARGET_OPEN_RATIO = 2.0
TARGET_ADD_REQUESTS = 5
COLUMNS = [("value", "value"), ("detail", "detail")]


def row(
    key: str, measure: str, value: str, detail: str = "", targets: Sequence[Target] = ()
) -> Row:
    return Row(key, measure, {"value": value, "detail": detail}, targets=list(targets))


# -- the proxy log ---------------------------------------------------------------------------
def kind_of(method: str, path: str) -> str:
    """``LIST``, or the method and the object kind (``PUT manifest``, ``GET segment``...)."""
    target, _, query = path.partition("?")
    if method == "GET" and "list-type" in query:
        return "LIST"
    for part in ("manifests", "segments", "indexes"):
        if f"/{part}/" in target:
            return f"{method} {part[:-1]}"
    return f"{method} other"


def summarize(records: Sequence[Any]) -> tuple[str, str, int, int]:
    """(by method, by kind, total requests, PUT body bytes) of proxy records."""
    methods = collections.Counter(r.method for r in records)
    kinds = collections.Counter(kind_of(r.method, r.path) for r in records)
    statuses = collections.Counter(r.status for r in records if r.status not in (200, 204))
    by_method = ", ".join(f"{m} {c}" for m, c in sorted(methods.items()))
    by_kind = ", ".join(f"{k} {c}" for k, c in sorted(kinds.items()))
    if statuses:
        by_kind += "; non-2xx: " + ", ".join(f"{s} x{c}" for s, c in sorted(statuses.items()))
    put_bytes = sum(r.body_bytes for r in records if r.method == "PUT")
    return by_method, by_kind, len(records), put_bytes


def stored_bytes(client: Any, prefix: str) -> tuple[int, int, int]:
    """(total bytes, objects, segment objects) under ``s3://BUCKET/prefix/``."""
    total = count = segments = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", ()):
            total += int(obj["Size"])
            count += 1
            segments += "/segments/" in obj["Key"]
    return total, count, segments


# -- stores ----------------------------------------------------------------------------------
def s3_store(emb: Embeddings, endpoint: str, prefix: str, **kwargs: Any) -> Any:
    from vectordb_manager import S3VectorStore

    return S3VectorStore(emb, BUCKET, prefix, endpoint_url=endpoint, **CREDS, **kwargs)


def fill(store: Any, data: common.Dataset, a: int, b: int, batch: int = ADD_BATCH) -> None:
    for lo in range(a, b, batch):
        hi = min(lo + batch, b)
        store.add_embeddings(data.pairs(lo, hi), data.metadatas[lo:hi], ids=data.ids[lo:hi])


def open_and_query(kind: str, where: str, q: list[float]) -> tuple[float, float]:
    """Open a store and run one query; (seconds to construct, seconds for both)."""
    from vectordb_manager import LocalVectorStore

    emb = common.PrecomputedEmbeddings()
    t0 = time.perf_counter()
    if kind == "local":
        store: Any = LocalVectorStore(emb, where)
    elif kind == "s3-whole":  # every segment in one GET, however large (no ranged GETs)
        from boto3.s3.transfer import TransferConfig

        whole = TransferConfig(multipart_threshold=1 << 40)
        store = s3_store(emb, where, "open", transfer_config=whole)
    else:
        store = s3_store(emb, where, "open")
    t1 = time.perf_counter()
    hits = store.similarity_search_by_vector(q, K)
    t2 = time.perf_counter()
    if len(hits) != K:
        raise RuntimeError(f"{kind} open: {len(hits)} hits for k={K}")
    return t1 - t0, t2 - t0


def query_vector(seed: int) -> list[float]:
    rng = np.random.default_rng(seed + 12345)
    return [float(x) for x in rng.standard_normal(DIM) / np.sqrt(DIM)]


def child_main(kind: str, where: str, seed: int) -> None:
    """A fresh process: import, then open + one query; prints JSON timings."""
    import faiss  # noqa: F401  (imported before the clock starts, as in a warm application)

    import vectordb_manager  # noqa: F401

    if kind != "local":
        import boto3  # noqa: F401
    construct, total = open_and_query(kind, where, query_vector(seed))
    print(json.dumps({"construct": construct, "total": total}))


# -- the sections ----------------------------------------------------------------------------
def bench_economy(proxy: Any, direct: Any, data: common.Dataset, rows: list[Row]) -> None:
    emb = common.PrecomputedEmbeddings()
    # (a) 500 documents into an empty store
    store = s3_store(emb, proxy.url, "econ-a")
    proxy.reset_log()
    fill(store, data, 0, ECON_FIRST)
    by_method, by_kind, total, put_bytes = summarize(proxy.records())
    stored, objects, _ = stored_bytes(direct, "econ-a/")
    rows.append(
        row(
            "s3.add500",
            f"add {ECON_FIRST} docs to an empty store (1 call): requests",
            f"{total}",
            f"{by_method} ({by_kind})",
            [Target("s3", "requests", total, TARGET_ADD_REQUESTS, "n")],
        )
    )
    rows.append(
        row(
            "s3.add500.bytes",
            "  bytes uploaded (PUT bodies)",
            common.fmt_bytes(put_bytes),
            f"stored after: {common.fmt_bytes(stored)} in {objects} objects",
        )
    )
    # (b) 10 documents into a store holding 5,000
    store = s3_store(emb, proxy.url, "econ-b")
    fill(store, data, 0, ECON_BASE, batch=ECON_BASE)
    base_stored, _, _ = stored_bytes(direct, "econ-b/")
    proxy.reset_log()
    fill(store, data, ECON_BASE, ECON_BASE + ECON_SMALL)
    by_method, by_kind, total_b, put_bytes = summarize(proxy.records())
    stored, objects, segments = stored_bytes(direct, "econ-b/")
    rows.append(
        row(
            "s3.add10",
            f"add {ECON_SMALL} docs to a store of {ECON_BASE:,}: requests",
            f"{total_b}",
            f"{by_method} ({by_kind})",
        )
    )
    rows.append(
        row(
            "s3.add10.bytes",
            "  bytes uploaded (PUT bodies)",
            common.fmt_bytes(put_bytes),
            f"stored before: {common.fmt_bytes(base_stored)}; after: {common.fmt_bytes(stored)} in "
            f"{objects} objects ({segments} segments)",
        )
    )
    common.log(f"- s3 economy: {ECON_FIRST} docs: {total} requests; {ECON_SMALL} docs: {total_b}")


def bench_open(
    args: argparse.Namespace, moto_url: str, proxy: Any, direct: Any, *, work: Path, rows: list[Row]
) -> None:
    from vectordb_manager import LocalVectorStore

    emb = common.PrecomputedEmbeddings()
    data = common.make_dataset(args.n, 1, args.seed)
    q = query_vector(args.seed)
    local_dir = work / "local"

    t0 = time.perf_counter()
    local = LocalVectorStore(emb, local_dir)
    fill(local, data, 0, args.n)
    t_local_build = time.perf_counter() - t0
    local_segments = local.stats()["segments"]
    del local
    t0 = time.perf_counter()
    remote = s3_store(emb, moto_url, "open")
    fill(remote, data, 0, args.n)
    t_s3_build = time.perf_counter() - t0
    s3_segments = remote.stats()["segments"]
    del remote, data
    gc.collect()
    stored, objects, segments = stored_bytes(direct, "open/")
    local_bytes = sum(p.stat().st_size for p in local_dir.rglob("*") if p.is_file())
    common.log(f"- s3 built: local {common.fmt_s(t_local_build)}, S3 {common.fmt_s(t_s3_build)}")
    rows.append(
        row(
            "s3.build",
            f"build N={args.n:,} in batches of {ADD_BATCH:,} (add_embeddings)",
            f"local {common.fmt_s(t_local_build)}, S3 {common.fmt_s(t_s3_build)}",
            f"segments: local {local_segments}, S3 {s3_segments}; stored: local "
            f"{common.fmt_bytes(local_bytes)}, S3 {common.fmt_bytes(stored)} in {objects} objects",
        )
    )

    where = {"local": str(local_dir), "s3": moto_url, "s3-whole": moto_url}
    for kind, path in where.items():  # warm up
        open_and_query(kind, path, q)
    inproc: dict[str, list[float]] = {k: [] for k in where}
    kids: dict[str, list[float]] = {k: [] for k in where}
    for _ in range(OPEN_REPEATS):
        for kind, path in where.items():
            gc.collect()
            inproc[kind].append(open_and_query(kind, path, q)[1])
    for _ in range(OPEN_REPEATS):
        for kind, path in where.items():
            got = machine.run_child(
                Path(__file__), ["--child", kind, "--where", path, "--seed", str(args.seed)]
            ).json()
            kids[kind].append(float(got["total"]))
    med = {k: statistics.median(v) for k, v in inproc.items()}
    kmed = {k: statistics.median(v) for k, v in kids.items()}
    ratio_in, ratio_kids = med["s3"] / med["local"], kmed["s3"] / kmed["local"]
    reps = f"median of {OPEN_REPEATS}"
    rows.append(
        row(
            "s3.open.local",
            f"open local + 1 query, fresh process ({reps})",
            common.fmt_s(kmed["local"]),
            f"in-process: {common.fmt_s(med['local'])}",
        )
    )
    rows.append(
        row(
            "s3.open.s3",
            f"open S3 + 1 query, fresh process ({reps})",
            common.fmt_s(kmed["s3"]),
            f"{ratio_kids:.2f}x local; in-process: "
            f"{common.fmt_s(med['s3'])}, {ratio_in:.2f}x local (moto shares that process)",
            [Target("s3", "S3/local", ratio_kids, TARGET_OPEN_RATIO)],
        )
    )
    largest = max(
        int(obj["Size"])
        for page in direct.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix="open/segments/"
        )
        for obj in page.get("Contents", ())
    )
    rows.append(
        row(
            "s3.open.whole",
            f"  the same, each segment in one GET, however large ({reps})",
            common.fmt_s(kmed["s3-whole"]),
            f"{kmed['s3-whole'] / kmed['local']:.2f}x local; the largest segment holds "
            f"{common.fmt_bytes(largest)}: by default a segment from 128 MiB on downloads as "
            "parallel 16 MiB ranged GETs, and moto's server reads the whole object for each "
            "range (no target: a diagnosis of the row above)",
        )
    )
    common.log(
        f"- s3 open: local {common.fmt_s(kmed['local'])}, S3 {common.fmt_s(kmed['s3'])} "
        f"({ratio_kids:.2f}x), whole GETs {common.fmt_s(kmed['s3-whole'])}"
    )

    # the requests of one open, through the proxy
    proxy.reset_log()
    gc.collect()
    t0 = time.perf_counter()
    opened = s3_store(emb, proxy.url, "open")
    opened.similarity_search_by_vector(q, K)
    t_proxy = time.perf_counter() - t0
    recs = proxy.records()
    by_method, by_kind, total, _ = summarize(recs)
    gets = sum(1 for r in recs if r.method == "GET")
    rows.append(
        row(
            "s3.open.requests",
            "requests of one S3 open (via the proxy)",
            f"{gets} GETs",
            f"{total} requests: {by_method} ({by_kind}); {segments} segments stored; "
            f"took {common.fmt_s(t_proxy)} via the proxy",
        )
    )
    del opened
    gc.collect()

    if args.profile:
        with Recorder() as recorder:
            took = open_and_query("s3", moto_url, q)[1]
        out(f"\n#### timeline: open S3 ({common.fmt_s(took)}, in-process)\n")
        out("```")
        out(recorder.timeline())
        out("```")
        profiled("S3 open + 1 query (moto direct)", lambda: open_and_query("s3", moto_url, q))
        profiled("local open + 1 query", lambda: open_and_query("local", str(local_dir), q))


def bench_commits(args: argparse.Namespace, proxy: Any, moto_url: str, rows: list[Row]) -> None:
    from vectordb_manager.embeddings import HashingEmbeddings

    emb = HashingEmbeddings(HASH_DIM)

    def texts_for(writer: int, commit: int) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        ids = [f"w{writer}-c{commit}-d{j}" for j in range(DOCS_PER_COMMIT)]
        texts = [
            f"writer {writer} commit {commit} doc {j} {WORDS[(writer + commit + j) % 34]}"
            for j in range(DOCS_PER_COMMIT)
        ]
        metas = [{"w": writer, "c": commit, "j": j} for j in range(DOCS_PER_COMMIT)]
        return ids, texts, metas

    def run(
        prefix: str, writers: int, commits: int, *, shared: bool = False
    ) -> tuple[float, float, list[float], set[str]]:
        """(wall seconds, CPU seconds of this process, commit latencies, ids written);
        ``shared``: the writers are threads writing through one store (group commit)."""
        def new_store() -> Any:
            return s3_store(emb, proxy.url, prefix, commit_attempts=COMMIT_ATTEMPTS)

        stores = [new_store()] * writers if shared else [new_store() for _ in range(writers)]
        barrier = threading.Barrier(writers + 1)
        errors: list[BaseException] = []
        written: set[str] = set()
        lock = threading.Lock()
        latencies: list[float] = []

        def work(w: int) -> None:
            barrier.wait()
            try:
                for c in range(commits):
                    ids, texts, metas = texts_for(w, c)
                    t = time.perf_counter()
                    stores[w].add_texts(texts, metas, ids=ids)
                    with lock:
                        latencies.append(time.perf_counter() - t)
                        written.update(ids)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(w,), name=f"writer-{w}") for w in range(writers)
        ]
        for th in threads:
            th.start()
        proxy.reset_log()
        barrier.wait()
        t0, c0 = time.perf_counter(), os.times()
        for th in threads:
            th.join()
        wall, c1 = time.perf_counter() - t0, os.times()
        if errors:
            raise RuntimeError(f"{len(errors)} writer(s) failed") from errors[0]
        cpu = (c1.user + c1.system) - (c0.user + c0.system)
        return wall, cpu, latencies, written

    def lost(prefix: str) -> tuple[int, int]:
        where = f"/{BUCKET}/{prefix}/manifests/"
        manifest_puts = [
            r for r in proxy.records() if r.method == "PUT" and r.path.startswith(where)
        ]
        return sum(r.status == 412 for r in manifest_puts), len(manifest_puts)

    total_commits = WRITERS * COMMITS_PER_WRITER
    # one writer alone
    with Recorder() as rec1:
        wall1, cpu1, lat1, _ = run("single", 1, total_commits)
    _, kinds1, req1, _ = summarize(proxy.records())
    lost1, mputs1 = lost("single")
    # WRITERS concurrent writers
    with Recorder() as rec4:
        if args.profile:
            wall4, cpu4, lat4, written = profiled(
                f"{WRITERS} writers x {COMMITS_PER_WRITER} commits",
                lambda: run("concurrent", WRITERS, COMMITS_PER_WRITER),
            )
        else:
            wall4, cpu4, lat4, written = run("concurrent", WRITERS, COMMITS_PER_WRITER)
    _, kinds4, req4, _ = summarize(proxy.records())
    lost4, mputs4 = lost("concurrent")
    # the same writers as threads of one store: writes queued meanwhile share a commit
    wall_s, cpu_s, lat_s, written_s = run("shared", WRITERS, COMMITS_PER_WRITER, shared=True)
    _, kinds_s, req_s, _ = summarize(proxy.records())
    lost_s, mputs_s = lost("shared")
    shared_ok = set(s3_store(emb, moto_url, "shared").engine.ids()) == written_s
    if args.profile:
        for title, rec in (("1 writer", rec1), (f"{WRITERS} writers", rec4)):
            out(f"\n#### storage calls of the commits, {title} (summed over threads)\n")
            out("```")
            out(rec.totals())
            out("```")

    fresh = s3_store(emb, moto_url, "concurrent")
    present = set(fresh.engine.ids())
    missing = written - present
    report = fresh.verify()
    ok = not missing and len(present) == total_commits * DOCS_PER_COMMIT

    def p(lat: list[float], q: float) -> str:
        return common.fmt_s(float(np.percentile(lat, q)))

    rows.append(
        row(
            "s3.commits.1",
            f"1 writer, {total_commits} commits of {DOCS_PER_COMMIT} docs",
            f"{total_commits / wall1:.1f} commits/s",
            f"{common.fmt_s(wall1)}, process CPU {cpu1 / wall1:.2f} cores; "
            f"latency p50 {p(lat1, 50)}, "
            f"p95 {p(lat1, 95)}; {req1} requests ({req1 / total_commits:.1f}/commit, "
            f"{req1 / wall1:.0f}/s): {kinds1}",
        )
    )
    rows.append(
        row(
            "s3.commits.4",
            f"{WRITERS} writers x {COMMITS_PER_WRITER} commits, own client each",
            f"{total_commits / wall4:.1f} commits/s",
            f"{common.fmt_s(wall4)}, process CPU {cpu4 / wall4:.2f} cores; "
            f"latency p50 {p(lat4, 50)}, "
            f"p95 {p(lat4, 95)}; {req4} requests ({req4 / total_commits:.1f}/commit, "
            f"{req4 / wall4:.0f}/s): {kinds4}",
        )
    )
    rows.append(
        row(
            "s3.commits.shared",
            f"{WRITERS} writers x {COMMITS_PER_WRITER} writes, threads of one store",
            f"{total_commits / wall_s:.1f} writes/s",
            f"{common.fmt_s(wall_s)}, process CPU {cpu_s / wall_s:.2f} cores; "
            f"latency p50 {p(lat_s, 50)}, p95 {p(lat_s, 95)}; {mputs_s} manifest PUTs "
            f"({lost_s} lost; writes queued during a commit share the next one); {req_s} "
            f"requests: {kinds_s}; all present: {'yes' if shared_ok else 'NO'}",
        )
    )
    rows.append(
        row(
            "s3.commits.ratio",
            f"  {WRITERS} writers / 1 writer throughput",
            f"{wall1 / wall4:.2f}x",
            "same total commits",
        )
    )
    rows.append(
        row(
            "s3.commits.lost",
            "  manifest PUTs that lost the race (412)",
            f"{lost4} of {mputs4}",
            f"1 writer: {lost1} of {mputs1}; includes compaction commits",
        )
    )
    rows.append(
        row(
            "s3.commits.present",
            "  all documents present in a freshly opened store",
            "yes" if ok else "NO",
            f"{len(present)} of {total_commits * DOCS_PER_COMMIT} ids "
            f"({len(missing)} missing); verify(): version {report.get('version')}, "
            f"{report.get('segments')} segments",
        )
    )
    common.log(
        f"- s3 commits: 1 writer {total_commits / wall1:.1f} commits/s, {WRITERS} writers "
        f"{total_commits / wall4:.1f} commits/s, lost races {lost4}/{mputs4}, "
        f"all present: {ok}"
    )


def bench(args: argparse.Namespace) -> common.PartResult:
    import tests.fault_proxy
    from tests.s3_support import FaultProxy, moto_server, s3_client

    if not args.proxy_nagle:
        # The proxy writes a response's headers and body in two sends; with Nagle's algorithm
        # on, the body waits for the client's delayed ACK (~40 ms on Linux) on every response
        # that has a body (GET, LIST), which would dominate the commit timings.
        tests.fault_proxy._ProxyHandler.disable_nagle_algorithm = True

    work = Path(tempfile.mkdtemp(prefix="bench_s3_"))
    rows: list[Row] = []
    try:
        with moto_server() as moto_url, FaultProxy(moto_url) as proxy:
            proxy.faults_enabled = False  # a counting proxy only
            direct = s3_client(moto_url)
            direct.create_bucket(Bucket=BUCKET)
            if "1" in args.sections:
                bench_economy(
                    proxy,
                    direct,
                    common.make_dataset(ECON_BASE + ECON_SMALL, 1, args.seed + 1),
                    rows,
                )
            if "2" in args.sections:
                bench_open(args, moto_url, proxy, direct, work=work, rows=rows)
            if "3" in args.sections:
                bench_commits(args, proxy, moto_url, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    title = f"S3VectorStore on moto's server (same machine), N = {args.n:,}"
    return common.PartResult("s3", title, [common.Table(title, COLUMNS, rows)], facts={"n": args.n})


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="documents for the open test")
    parser.add_argument("--sections", default="123", help="which sections to run (default 123)")
    parser.add_argument(
        "--profile", action="store_true", help="profile the S3 open and the concurrent commits"
    )
    parser.add_argument(
        "--proxy-nagle",
        action="store_true",
        help="leave Nagle's algorithm on in the proxy (as tests/fault_proxy.py does): every "
        "answer with a body then waits ~40 ms for a delayed ACK",
    )
    parser.add_argument("--child", choices=("local", "s3", "s3-whole"), help=argparse.SUPPRESS)
    parser.add_argument("--where", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.where, args.seed)
        return
    if args.n < 1000:
        parser.error("--n must be at least 1000")
    common.run_part(args, bench)


if __name__ == "__main__":
    main()
