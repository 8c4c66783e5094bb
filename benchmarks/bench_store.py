"""Benchmark `LocalVectorStore` against LangChain's FAISS wrapper and raw faiss, in one run.

    .venv/bin/pip install -q langchain-community psutil      # the peer, for benchmarks only
    .venv/bin/python benchmarks/bench_store.py --n 100000     # a few minutes
    .venv/bin/python benchmarks/bench_store.py --n 20000      # quick
    .venv/bin/python benchmarks/bench_store.py --n 20000 --hnsw --profile

Data: N x 384 clustered synthetic unit vectors (1000 random centres + gaussian noise,
normalised, float32), ~100-character synthetic texts and metadata ``{"i": i, "bucket": i % 100}``
so that the filter ``{"bucket": 7}`` passes 1% of the documents. Vectors are precomputed; both
stores take them through ``add_embeddings``/``from_embeddings`` and are searched by vector,
so no embedding model runs. Queries are 200 fresh vectors drawn from the same clusters.

Systems:
  ours  `LocalVectorStore(emb, dir, distance="cosine")`, filled by ``add_embeddings`` in
        batches of 10,000; every call is durable (fsynced) on return.
  peer  `langchain_community.vectorstores.FAISS` with ``DistanceStrategy.MAX_INNER_PRODUCT``
        (IndexFlatIP; the vectors are unit-norm so this is cosine), ``save_local`` to persist
        (pickle + faiss.write_index, no fsync).
  raw   faiss ``IndexFlatIP`` over the same vectors, ``write_index``/``read_index``: the floor.

Latencies are per query (one vector at a time, as a retriever calls it), measured with the
systems interleaved query by query so that drift on a shared machine hits them all equally.
Peak memory is measured in a fresh child process per system (open + one query), as
the child's ``VmHWM``, also shown minus its high-water mark right after its imports.
The machine is reported at the top; at the end, how much CPU other processes took during
the run (faiss's OpenMP searches slow down badly when another process holds a core).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

DIM = 384
K = 10
FILTER: dict[str, Any] = {"bucket": 7}
FILTER_BUCKET = 7
BUCKETS = 100
ADD_BATCH = 10_000
UPDATE_ROUNDS = 5
UPDATE_DOCS = 100
LOAD_REPEATS = 3
CHILD_REPEATS = 3
CENTRES = 1000
NOISE = 0.05  # per-dimension std; noise norm ~ 0.05 * sqrt(384) ~ 1, about a centre's
WARMUP = 5
TARGET_SEARCH_VS_RAW = 1.2
TARGET_UPDATE_VS_PEER = 0.1
TARGET_LOAD_VS_PEER = 0.5
WORDS: tuple[str, ...] = (
    "vector", "store", "index", "query", "search", "filter", "segment", "manifest", "durable",
    "commit", "faiss", "cosine", "distance", "embedding", "retrieval", "chain", "document",
    "metadata", "bucket", "cluster", "centre", "noise", "random", "python", "langchain",
    "benchmark", "latency", "memory", "disk", "load", "persist", "exact", "approximate",
    "graph",
)

Matrix = np.ndarray[Any, np.dtype[np.float32]]
Hits = list[tuple[str, dict[str, Any]]]  # (id, metadata) per result, closest first


class PrecomputedEmbeddings(Embeddings):
    """Embeddings that look texts up in tables of precomputed vectors (no model)."""

    def __init__(
        self,
        dim: int,
        documents: dict[str, list[float]] | None = None,
        queries: dict[str, list[float]] | None = None,
    ) -> None:
        self.size = dim  # lets LocalVectorStore know the dimension without embedding
        self.model_name = f"precomputed-{dim}"
        self._documents = documents or {}
        self._queries = queries or {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._documents[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._queries[text]


# -- data ------------------------------------------------------------------------------------
@dataclass
class Dataset:
    vectors: Matrix  # (n, DIM), unit rows
    texts: list[str]
    metadatas: list[dict[str, Any]]
    ids: list[str]
    queries: Matrix  # (n_queries, DIM), unit rows
    extra: Matrix  # UPDATE_ROUNDS * UPDATE_DOCS more documents for the incremental test

    @property
    def n(self) -> int:
        return len(self.ids)


def _unit(x: np.ndarray[Any, Any]) -> Matrix:
    x = x.astype(np.float32, copy=False)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _clustered(rng: np.random.Generator, centres: Matrix, n: int) -> Matrix:
    out = np.empty((n, centres.shape[1]), dtype=np.float32)
    for start in range(0, n, 50_000):  # in chunks to bound float64 temporaries
        m = min(50_000, n - start)
        which = rng.integers(0, len(centres), size=m)
        noise = rng.standard_normal((m, centres.shape[1]), dtype=np.float32) * NOISE
        out[start : start + m] = _unit(centres[which] + noise)
    return out


def make_texts(rng: np.random.Generator, start: int, n: int) -> list[str]:
    words = np.asarray(WORDS)[rng.integers(0, len(WORDS), size=(n, 14))]
    return [f"doc {start + i} " + " ".join(row)[:90] for i, row in enumerate(words.tolist())]


def make_dataset(n: int, n_queries: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((CENTRES, DIM), dtype=np.float32))
    vectors = _clustered(rng, centres, n)
    queries = _clustered(rng, centres, n_queries)
    extra = _clustered(rng, centres, UPDATE_ROUNDS * UPDATE_DOCS)
    texts = make_texts(rng, 0, n)
    metadatas: list[dict[str, Any]] = [{"i": i, "bucket": i % BUCKETS} for i in range(n)]
    ids = [f"id{i}" for i in range(n)]
    return Dataset(vectors, texts, metadatas, ids, queries, extra)


def exact_top_k(vectors: Matrix, queries: Matrix, k: int, rows: np.ndarray[Any, Any] | None = None
                ) -> list[list[int]]:
    """Ground truth: the k rows with the largest inner product (= cosine), per query."""
    sub = vectors if rows is None else vectors[rows]
    out: list[list[int]] = []
    for start in range(0, len(queries), 50):
        scores = queries[start : start + 50] @ sub.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for row, cand in zip(scores, part, strict=True):
            best = cand[np.argsort(-row[cand])]
            out.append([int(rows[b]) if rows is not None else int(b) for b in best])
    return out


# -- helpers ---------------------------------------------------------------------------------
def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_mb(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**20:.1f} MB"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def pct(values: Sequence[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


def dir_bytes(path: Path) -> tuple[int, int]:
    """Total bytes and number of files under a directory (or of one file)."""
    if path.is_file():
        return path.stat().st_size, 1
    total = files = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            total += (Path(dirpath) / name).stat().st_size
            files += 1
    return total, files


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


@dataclass
class Searcher:
    """One system's search: ``run(query)`` is timed, ``hits(result)`` is not."""

    run: Callable[[list[float]], Any]
    hits: Callable[[Any], Hits]


def measure_interleaved(
    searchers: dict[str, Searcher], queries: list[list[float]]
) -> dict[str, tuple[list[float], list[Hits]]]:
    """Per-query latencies and results; systems take turns on each query (rotating order)."""
    names = list(searchers)
    for q in queries[:WARMUP]:
        for name in names:
            searchers[name].run(q)
    out: dict[str, tuple[list[float], list[Hits]]] = {name: ([], []) for name in names}
    gc.collect()
    for i, q in enumerate(queries):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            s = searchers[name]
            t0 = time.perf_counter()
            result = s.run(q)
            elapsed = time.perf_counter() - t0
            out[name][0].append(elapsed)
            out[name][1].append(s.hits(result))
    return out


def recall(results: list[Hits], truth: list[list[int]], ids: list[str]) -> float:
    got = 0
    for hits, gt in zip(results, truth, strict=True):
        want = {ids[g] for g in gt}
        got += len(want & {h for h, _ in hits})
    return got / (len(truth) * K)


def fill_rate(results: list[Hits]) -> float:
    ok = sum(
        1 for hits in results
        if len(hits) == K and all(m.get("bucket") == FILTER_BUCKET for _, m in hits)
    )
    return ok / len(results)


def doc_hits(result: list[tuple[Any, float]]) -> Hits:
    return [(str(doc.id), doc.metadata) for doc, _ in result]


# -- the table -------------------------------------------------------------------------------
@dataclass
class Row:
    section: str
    measure: str
    ours: str
    peer: str = "-"
    raw: str = "-"
    vs_peer: float | None = None
    vs_raw: float | None = None
    target: str = ""


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "?"
    return "PASS" if value <= limit else "FAIL"


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n### {title}\n")
    header = ("#", "measure", "ours", "peer (LC FAISS)", "raw faiss", "ours/peer", "ours/raw",
              "target")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        cells = (r.section, r.measure, r.ours, r.peer, r.raw, fmt_ratio(r.vs_peer),
                 fmt_ratio(r.vs_raw), r.target)
        print("| " + " | ".join(cells) + " |")


# -- machine ---------------------------------------------------------------------------------
def machine_info(workdir: Path) -> list[str]:
    import faiss
    import langchain_community
    import langchain_core

    import vectordb_manager

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        ram = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        ram = "?"
    fs = "?"
    try:
        best = ""
        target = str(workdir.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            _dev, mount, kind, *_ = line.split()
            if target.startswith(mount) and len(mount) > len(best):
                best, fs = mount, kind
    except OSError:
        pass
    pkg = Path(vectordb_manager.__file__).resolve().parent
    where = f"from {pkg}"
    try:
        top = subprocess.run(
            ["git", "-C", str(pkg), "rev-parse", "--show-toplevel", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        dirty = subprocess.run(
            ["git", "-C", top[0], "status", "--porcelain", "--", str(pkg)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        where += f", git {top[1]}" + (
            " + uncommitted changes: " + dirty.replace("\n", ",") if dirty else " (clean)"
        )
    except (OSError, IndexError, subprocess.CalledProcessError):
        where += " (not a git checkout)"
    return [
        f"- machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {cpu}, "
        f"{ram} RAM, {platform.system()} {platform.release()}",
        f"- python {platform.python_version()}, numpy {np.__version__}, faiss {faiss.__version__} "
        f"({faiss.omp_get_max_threads()} OpenMP threads), "
        f"langchain-core {langchain_core.__version__}, "
        f"langchain-community {langchain_community.__version__}",
        f"- vectordb-manager {vectordb_manager.__version__} {where}",
        f"- workdir {workdir} ({fs})",
    ]


class CpuWatch:
    """CPU time other processes used while we ran (from /proc/stat; Linux only)."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        ticks = [int(f) for f in fields]
        hz = os.sysconf("SC_CLK_TCK")
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / hz  # all but idle and iowait
        t = os.times()
        mine = t.user + t.system + t.children_user + t.children_system
        return busy, mine, time.monotonic()

    def report(self) -> str:
        end = self._sample()
        if self.start is None or end is None:
            return "- CPU used by other processes during the run: unknown"
        others = max(0.0, (end[0] - self.start[0]) - (end[1] - self.start[1]))
        wall = end[2] - self.start[2]
        share = others / (wall * (os.cpu_count() or 1))
        note = ("; WARNING: the machine was shared, latencies are inflated and noisy"
                if share > 0.1 else "")
        return (f"- CPU used by other processes during the run: {others:.1f} CPU-s in "
                f"{wall:.0f} s wall ({share:.0%} of the machine){note}")


def wait_quiet(max_wait: float, threshold: float = 0.1) -> str:
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` of the CPUs."""
    deadline = time.monotonic() + max_wait
    share = 1.0
    while True:
        watch = CpuWatch()
        time.sleep(2.0)
        end = watch._sample()
        if watch.start is None or end is None:
            return "- waited: /proc/stat unreadable"
        others = (end[0] - watch.start[0]) - (end[1] - watch.start[1])
        share = max(0.0, others) / ((end[2] - watch.start[2]) * (os.cpu_count() or 1))
        if share < threshold or time.monotonic() >= deadline:
            break
    waited = max_wait - max(0.0, deadline - time.monotonic())
    return f"- waited {waited:.0f} s for a quiet machine; others used {share:.0%} when we started"


# -- child processes (peak memory) ----------------------------------------------------------
def _proc_status_bytes(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (Linux), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _peak_rss_bytes() -> int:
    """This process's peak RSS.

    ``VmHWM`` is per address space, so it starts from zero at ``exec``; ``ru_maxrss`` does
    not (Linux carries the forking parent's high-water mark over), hence only a fallback.
    """
    hwm = _proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def child_main(kind: str, path: str, seed: int) -> None:
    """Open one store, run one query, print JSON: peak RSS, RSS after imports, timings."""
    import faiss

    if kind == "ours":
        from vectordb_manager import LocalVectorStore
    elif kind == "peer":
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy
    rng = np.random.default_rng(seed)
    q = _unit(rng.standard_normal((1, DIM), dtype=np.float32))
    emb = PrecomputedEmbeddings(DIM)
    baseline = _peak_rss_bytes()
    t0 = time.perf_counter()
    if kind == "ours":
        store = LocalVectorStore(emb, path, distance="cosine")
        t1 = time.perf_counter()
        n = len(store.similarity_search_with_score_by_vector(q[0].tolist(), K))
    elif kind == "peer":
        peer = FAISS.load_local(
            path, emb, allow_dangerous_deserialization=True,
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        t1 = time.perf_counter()
        n = len(peer.similarity_search_with_score_by_vector(q[0].tolist(), K))
    else:
        index = faiss.read_index(path)
        t1 = time.perf_counter()
        n = int((index.search(q, K)[1] >= 0).sum())
    t2 = time.perf_counter()
    print(json.dumps({
        "peak": _peak_rss_bytes(), "baseline": baseline, "open": t1 - t0, "total": t2 - t0,
        "hits": n, "rss": _proc_status_bytes("VmRSS") or 0,
    }))


def run_child(kind: str, path: Path, seed: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--path", str(path),
         "--seed", str(seed)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- the benchmark ---------------------------------------------------------------------------
def bench(args: argparse.Namespace) -> None:
    import faiss
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

    from vectordb_manager import LocalVectorStore

    mip = DistanceStrategy.MAX_INNER_PRODUCT
    base = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="bench_store_", dir=base))
    quiet = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else None
    watch = CpuWatch()
    print(f"## bench_store: N={args.n:,}, dim={DIM}, k={K}, {args.queries} queries, "
          f"seed={args.seed}\n")
    for line in machine_info(work):
        print(line)
    print(f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if quiet:
        print(quiet)
    sys.stdout.flush()

    t_data = time.perf_counter()
    data = make_dataset(args.n, args.queries, args.seed)
    truth = exact_top_k(data.vectors, data.queries, K)
    bucket_rows = np.flatnonzero(np.arange(data.n) % BUCKETS == FILTER_BUCKET)
    truth_filtered = exact_top_k(data.vectors, data.queries, K, bucket_rows)
    pairs = list(zip(data.texts, data.vectors, strict=True))  # (text, numpy row) for both
    queries = data.queries.tolist()  # what a LangChain retriever passes: list[float]
    emb = PrecomputedEmbeddings(DIM)
    print(f"- data: generated in {time.perf_counter() - t_data:.1f} s "
          f"({data.vectors.nbytes / 2**20:.0f} MB of vectors)")
    sys.stdout.flush()

    ours_dir, peer_dir, raw_file = work / "ours", work / "peer", work / "raw" / "index.faiss"
    raw_file.parent.mkdir()
    rows: list[Row] = []

    # 1. add + persist ------------------------------------------------------------------------
    def ours_build() -> Any:
        store = LocalVectorStore(emb, ours_dir, distance="cosine")
        for a in range(0, data.n, ADD_BATCH):
            b = min(a + ADD_BATCH, data.n)
            store.add_embeddings(pairs[a:b], data.metadatas[a:b], ids=data.ids[a:b])
        return store

    def peer_build() -> Any:
        peer = FAISS.from_embeddings(
            pairs, emb, metadatas=data.metadatas, ids=data.ids, distance_strategy=mip
        )
        peer.save_local(str(peer_dir))
        return peer

    def raw_build() -> Any:
        index = faiss.IndexFlatIP(DIM)
        index.add(data.vectors)
        faiss.write_index(index, str(raw_file))
        return index

    t_ours, store = timed(ours_build)
    t_peer, peer = timed(peer_build)
    t_raw, raw = timed(raw_build)
    ours_stats_after_add = store.stats()
    rows.append(Row("1", f"add + persist {data.n:,} docs", fmt_s(t_ours), fmt_s(t_peer),
                    fmt_s(t_raw), ratio(t_ours, t_peer), ratio(t_ours, t_raw)))
    print(f"- 1 done: ours {fmt_s(t_ours)}, peer {fmt_s(t_peer)}, raw {fmt_s(t_raw)}; ours "
          f"segments after add: {ours_stats_after_add['segments']}")
    sys.stdout.flush()
    disk_after_add = {
        "ours": dir_bytes(ours_dir), "peer": dir_bytes(peer_dir), "raw": dir_bytes(raw_file)
    }

    # 2. unfiltered search ----------------------------------------------------------------------
    res = measure_interleaved(
        {
            "ours": Searcher(lambda q: store.similarity_search_with_score_by_vector(q, K),
                             doc_hits),
            "peer": Searcher(lambda q: peer.similarity_search_with_score_by_vector(q, K),
                             doc_hits),
            "raw": Searcher(
                lambda q: raw.search(np.asarray([q], dtype=np.float32), K),
                lambda r: [(data.ids[i], data.metadatas[i]) for i in r[1][0] if i >= 0],
            ),
        },
        queries,
    )
    p50 = {name: pct(v[0], 50) for name, v in res.items()}
    p95 = {name: pct(v[0], 95) for name, v in res.items()}
    rec = {name: recall(v[1], truth, data.ids) for name, v in res.items()}
    target = f"ours <= {TARGET_SEARCH_VS_RAW}x raw"
    rows.append(Row("2", f"search p50 (k={K}, {len(queries)} queries)", fmt_s(p50["ours"]),
                    fmt_s(p50["peer"]), fmt_s(p50["raw"]), ratio(p50["ours"], p50["peer"]),
                    ratio(p50["ours"], p50["raw"]),
                    f"{target}: {verdict(ratio(p50['ours'], p50['raw']), TARGET_SEARCH_VS_RAW)}"))
    rows.append(Row("2", "search p95", fmt_s(p95["ours"]), fmt_s(p95["peer"]), fmt_s(p95["raw"]),
                    ratio(p95["ours"], p95["peer"]), ratio(p95["ours"], p95["raw"]),
                    f"{target}: {verdict(ratio(p95['ours'], p95['raw']), TARGET_SEARCH_VS_RAW)}"))
    rows.append(Row("2", "search recall@10 vs exact", f"{rec['ours']:.3f}", f"{rec['peer']:.3f}",
                    f"{rec['raw']:.3f}"))
    print(f"- 2 done: p50 ours {fmt_s(p50['ours'])}, peer {fmt_s(p50['peer'])}, "
          f"raw {fmt_s(p50['raw'])}")
    sys.stdout.flush()

    # 3. filtered search ------------------------------------------------------------------------
    allowed = np.zeros(data.n, dtype=bool)
    allowed[bucket_rows] = True
    packed = np.packbits(allowed, bitorder="little")
    selector = faiss.IDSelectorBitmap(data.n, faiss.swig_ptr(packed))  # packed must outlive it
    raw_params = faiss.SearchParameters()
    raw_params.sel = selector
    res_f = measure_interleaved(
        {
            "ours": Searcher(
                lambda q: store.similarity_search_with_score_by_vector(q, K, FILTER), doc_hits
            ),
            "peer": Searcher(
                lambda q: peer.similarity_search_with_score_by_vector(q, K, filter=FILTER),
                doc_hits,
            ),
            "raw": Searcher(  # the floor: a bitmap of the allowed rows built once, in advance
                lambda q: raw.search(np.asarray([q], dtype=np.float32), K, params=raw_params),
                lambda r: [(data.ids[i], data.metadatas[i]) for i in r[1][0] if i >= 0],
            ),
        },
        queries,
    )
    fp50 = {name: pct(v[0], 50) for name, v in res_f.items()}
    fp95 = {name: pct(v[0], 95) for name, v in res_f.items()}
    fill = {name: fill_rate(v[1]) for name, v in res_f.items()}
    frec = {name: recall(v[1], truth_filtered, data.ids) for name, v in res_f.items()}
    mean_hits = {name: statistics.fmean(len(h) for h in v[1]) for name, v in res_f.items()}
    label = f"filter {FILTER} (1% pass)"
    rows.append(Row("3", f"{label}: fill rate", f"{fill['ours']:.1%}", f"{fill['peer']:.1%}",
                    f"{fill['raw']:.1%}"))
    rows.append(Row("3", "filtered: mean hits returned / recall@10",
                    f"{mean_hits['ours']:.2f} / {frec['ours']:.3f}",
                    f"{mean_hits['peer']:.2f} / {frec['peer']:.3f}",
                    f"{mean_hits['raw']:.2f} / {frec['raw']:.3f}"))
    rows.append(Row("3", "filtered search p50", fmt_s(fp50["ours"]), fmt_s(fp50["peer"]),
                    fmt_s(fp50["raw"]), ratio(fp50["ours"], fp50["peer"]),
                    ratio(fp50["ours"], fp50["raw"])))
    rows.append(Row("3", "filtered search p95", fmt_s(fp95["ours"]), fmt_s(fp95["peer"]),
                    fmt_s(fp95["raw"]), ratio(fp95["ours"], fp95["peer"]),
                    ratio(fp95["ours"], fp95["raw"])))
    print(f"- 3 done: fill ours {fill['ours']:.1%} peer {fill['peer']:.1%}; p50 ours "
          f"{fmt_s(fp50['ours'])}, peer {fmt_s(fp50['peer'])}")
    sys.stdout.flush()

    # 4. persisting 100 more documents ---------------------------------------------------------
    upd: dict[str, list[float]] = {"ours": [], "peer": [], "raw": []}
    for r in range(UPDATE_ROUNDS):
        a, b = data.n + r * UPDATE_DOCS, data.n + (r + 1) * UPDATE_DOCS
        vecs = data.extra[r * UPDATE_DOCS : (r + 1) * UPDATE_DOCS]
        texts = make_texts(np.random.default_rng(args.seed + 1 + r), a, UPDATE_DOCS)
        new_pairs = list(zip(texts, vecs, strict=True))
        metas: list[dict[str, Any]] = [{"i": i, "bucket": i % BUCKETS} for i in range(a, b)]
        new_ids = [f"id{i}" for i in range(a, b)]

        def ours_update(new_pairs: Any = new_pairs, metas: Any = metas, new_ids: Any = new_ids
                        ) -> Any:
            return store.add_embeddings(new_pairs, metas, ids=new_ids)

        def peer_update(new_pairs: Any = new_pairs, metas: Any = metas, new_ids: Any = new_ids
                        ) -> Any:
            peer.add_embeddings(new_pairs, metadatas=metas, ids=new_ids)
            peer.save_local(str(peer_dir))

        def raw_update(vecs: Matrix = vecs) -> Any:
            raw.add(vecs)
            faiss.write_index(raw, str(raw_file))

        upd["ours"].append(timed(ours_update)[0])
        upd["peer"].append(timed(peer_update)[0])
        upd["raw"].append(timed(raw_update)[0])
    med = {name: statistics.median(v) for name, v in upd.items()}
    worst = {name: max(v) for name, v in upd.items()}
    target = f"ours < {TARGET_UPDATE_VS_PEER}x peer"
    rows.append(Row("4", f"persist {UPDATE_DOCS} more docs (median of {UPDATE_ROUNDS})",
                    fmt_s(med["ours"]), fmt_s(med["peer"]), fmt_s(med["raw"]),
                    ratio(med["ours"], med["peer"]), ratio(med["ours"], med["raw"]),
                    f"{target}: {verdict(ratio(med['ours'], med['peer']), TARGET_UPDATE_VS_PEER)}"))
    rows.append(Row("4", f"persist {UPDATE_DOCS} more docs (worst of {UPDATE_ROUNDS})",
                    fmt_s(worst["ours"]), fmt_s(worst["peer"]), fmt_s(worst["raw"]),
                    ratio(worst["ours"], worst["peer"]), ratio(worst["ours"], worst["raw"]),
                    f"{target}: "
                    f"{verdict(ratio(worst['ours'], worst['peer']), TARGET_UPDATE_VS_PEER)}"))
    print(f"- 4 done: ours {[fmt_s(t) for t in upd['ours']]}, peer "
          f"{[fmt_s(t) for t in upd['peer']]}")
    sys.stdout.flush()
    total_docs = data.n + UPDATE_ROUNDS * UPDATE_DOCS
    ours_stats = store.stats()

    # 5. load + first query ----------------------------------------------------------------------
    q0 = queries[0]
    expected = [h for h, _ in doc_hits(store.similarity_search_with_score_by_vector(q0, K))]
    store = peer = raw = None  # free them before timing the loads
    gc.collect()

    def ours_load() -> Any:
        s = LocalVectorStore(emb, ours_dir, distance="cosine")
        return len(s), s.similarity_search_with_score_by_vector(q0, K)

    def peer_load() -> Any:
        p = FAISS.load_local(str(peer_dir), emb, allow_dangerous_deserialization=True,
                             distance_strategy=mip)
        return len(p.index_to_docstore_id), p.similarity_search_with_score_by_vector(q0, K)

    def raw_load() -> Any:
        index = faiss.read_index(str(raw_file))
        return index.ntotal, index.search(np.asarray([q0], dtype=np.float32), K)

    loads: dict[str, list[float]] = {"ours": [], "peer": [], "raw": []}
    for _ in range(LOAD_REPEATS):
        for name, fn in (("ours", ours_load), ("peer", peer_load), ("raw", raw_load)):
            t, (count, result) = timed(fn)
            loads[name].append(t)
            if count != total_docs:
                raise AssertionError(f"{name} reopened with {count} docs, not {total_docs}")
            if name != "raw" and [h for h, _ in doc_hits(result)] != expected:
                raise AssertionError(f"{name} answers differently after reopening")
            del result
            gc.collect()
    lmed = {name: statistics.median(v) for name, v in loads.items()}
    target = f"ours < {TARGET_LOAD_VS_PEER}x peer"
    rows.append(Row("5", f"load + first query ({total_docs:,} docs, median of {LOAD_REPEATS})",
                    fmt_s(lmed["ours"]), fmt_s(lmed["peer"]), fmt_s(lmed["raw"]),
                    ratio(lmed["ours"], lmed["peer"]), ratio(lmed["ours"], lmed["raw"]),
                    f"{target}: {verdict(ratio(lmed['ours'], lmed['peer']), TARGET_LOAD_VS_PEER)}"))
    print(f"- 5 done: ours {[fmt_s(t) for t in loads['ours']]}, peer "
          f"{[fmt_s(t) for t in loads['peer']]}")
    sys.stdout.flush()

    # 6. disk --------------------------------------------------------------------------------
    disk_end = {
        "ours": dir_bytes(ours_dir), "peer": dir_bytes(peer_dir), "raw": dir_bytes(raw_file)
    }
    for label_, disk in ((f"after add of {data.n:,}", disk_after_add),
                         (f"after +{UPDATE_ROUNDS * UPDATE_DOCS} updates", disk_end)):
        rows.append(Row(
            "6", f"disk size {label_} (files)",
            f"{fmt_mb(disk['ours'][0])} ({disk['ours'][1]})",
            f"{fmt_mb(disk['peer'][0])} ({disk['peer'][1]})",
            f"{fmt_mb(disk['raw'][0])} ({disk['raw'][1]})",
            ratio(disk["ours"][0], disk["peer"][0]), ratio(disk["ours"][0], disk["raw"][0]),
        ))

    # 7. peak memory of a fresh process: open + one query ---------------------------------------
    kids: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": [], "raw": []}
    for _ in range(CHILD_REPEATS):
        kids["ours"].append(run_child("ours", ours_dir, args.seed))
        kids["peer"].append(run_child("peer", peer_dir, args.seed))
        kids["raw"].append(run_child("raw", raw_file, args.seed))
    peak = {name: statistics.median(c["peak"] for c in cs) for name, cs in kids.items()}
    delta = {
        name: statistics.median(c["peak"] - c["baseline"] for c in cs) for name, cs in kids.items()
    }
    fresh = {name: statistics.median(c["total"] for c in cs) for name, cs in kids.items()}
    steady = {name: statistics.median(c["rss"] for c in cs) for name, cs in kids.items()}
    rows.append(Row("7", f"peak RSS, fresh process: open + 1 query (median of {CHILD_REPEATS})",
                    fmt_mb(peak["ours"]),
                    fmt_mb(peak["peer"]), fmt_mb(peak["raw"]), ratio(peak["ours"], peak["peer"]),
                    ratio(peak["ours"], peak["raw"])))
    rows.append(Row("7", "  same, minus the high-water mark after imports", fmt_mb(delta["ours"]),
                    fmt_mb(delta["peer"]), fmt_mb(delta["raw"]),
                    ratio(delta["ours"], delta["peer"]), ratio(delta["ours"], delta["raw"])))
    rows.append(Row("7", "  RSS after open + 1 query (current, not peak)", fmt_mb(steady["ours"]),
                    fmt_mb(steady["peer"]), fmt_mb(steady["raw"]),
                    ratio(steady["ours"], steady["peer"]), ratio(steady["ours"], steady["raw"])))
    rows.append(Row("7", "  open + 1 query in that fresh process", fmt_s(fresh["ours"]),
                    fmt_s(fresh["peer"]), fmt_s(fresh["raw"]), ratio(fresh["ours"], fresh["peer"]),
                    ratio(fresh["ours"], fresh["raw"])))

    # HNSW (optional) --------------------------------------------------------------------------
    hnsw_rows: list[Row] = []
    if args.hnsw:
        hnsw_rows = bench_hnsw(args, data, emb, work)

    print_table(f"N = {data.n:,} (ours: {ours_stats['segments']} segments at the end; "
                f"{ours_stats_after_add['segments']} after the initial add)", rows)
    if hnsw_rows:
        print_table(f"HNSW, N = {min(args.hnsw_n, data.n):,}", hnsw_rows)
    print()
    print(watch.report())
    sys.stdout.flush()

    if args.profile:
        profile_ours(data, emb, work, pairs, queries)

    if args.keep:
        print(f"\nstores kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def bench_hnsw(args: argparse.Namespace, data: Dataset, emb: Embeddings, work: Path) -> list[Row]:
    import faiss

    from vectordb_manager import LocalVectorStore

    n = min(args.hnsw_n, data.n)
    vectors = data.vectors[:n]
    pairs = list(zip(data.texts[:n], vectors, strict=True))
    queries = data.queries.tolist()
    truth = exact_top_k(vectors, data.queries, K)
    m, ef_c, ef_s = 32, 100, 128  # LocalVectorStore's defaults, given to raw faiss too

    def ours_build() -> Any:
        store = LocalVectorStore(emb, work / "ours_hnsw", distance="cosine", index="hnsw")
        for a in range(0, n, ADD_BATCH):
            b = min(a + ADD_BATCH, n)
            store.add_embeddings(pairs[a:b], data.metadatas[a:b], ids=data.ids[a:b])
        return store

    def raw_build() -> Any:
        index = faiss.IndexHNSWFlat(DIM, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_c
        index.add(vectors)
        index.hnsw.efSearch = ef_s
        return index

    t_ours, store = timed(ours_build)
    t_raw, raw = timed(raw_build)
    res = measure_interleaved(
        {
            "ours": Searcher(lambda q: store.similarity_search_with_score_by_vector(q, K),
                             doc_hits),
            "raw": Searcher(
                lambda q: raw.search(np.asarray([q], dtype=np.float32), K),
                lambda r: [(data.ids[i], data.metadatas[i]) for i in r[1][0] if i >= 0],
            ),
        },
        queries,
    )
    p50 = {name: pct(v[0], 50) for name, v in res.items()}
    p95 = {name: pct(v[0], 95) for name, v in res.items()}
    rec = {name: recall(v[1], truth, data.ids) for name, v in res.items()}
    t_load, _ = timed(lambda: LocalVectorStore(emb, work / "ours_hnsw", distance="cosine",
                                               index="hnsw"))
    return [
        Row("H", f"build (ours: + persist, batches of {ADD_BATCH:,}; M={m}, efC={ef_c})",
            fmt_s(t_ours), raw=fmt_s(t_raw), vs_raw=ratio(t_ours, t_raw)),
        Row("H", f"search p50 (efSearch={ef_s})", fmt_s(p50["ours"]), raw=fmt_s(p50["raw"]),
            vs_raw=ratio(p50["ours"], p50["raw"])),
        Row("H", "search p95", fmt_s(p95["ours"]), raw=fmt_s(p95["raw"]),
            vs_raw=ratio(p95["ours"], p95["raw"])),
        Row("H", "recall@10 vs exact", f"{rec['ours']:.3f}", raw=f"{rec['raw']:.3f}"),
        Row("H", "ours: reopen (index snapshot)", fmt_s(t_load)),
    ]


# -- profiling -------------------------------------------------------------------------------
def profile_ours(data: Dataset, emb: Embeddings, work: Path, pairs: list[Any],
                 queries: list[list[float]]) -> None:
    """cProfile each phase of ours on a fresh store; print the top functions by own time."""
    import vectordb_manager
    from vectordb_manager import LocalVectorStore

    package_root = str(Path(vectordb_manager.__file__).resolve().parent.parent) + os.sep
    path = work / "ours_profile"
    holder: dict[str, Any] = {}

    def add_all() -> None:
        store = LocalVectorStore(emb, path, distance="cosine")
        for a in range(0, data.n, ADD_BATCH):
            b = min(a + ADD_BATCH, data.n)
            store.add_embeddings(pairs[a:b], data.metadatas[a:b], ids=data.ids[a:b])
        holder["store"] = store

    def search_all() -> None:
        for q in queries:
            holder["store"].similarity_search_with_score_by_vector(q, K)

    def search_filtered() -> None:
        for q in queries:
            holder["store"].similarity_search_with_score_by_vector(q, K, FILTER)

    def add_small() -> None:
        for r in range(UPDATE_ROUNDS):
            a = data.n + r * UPDATE_DOCS
            vecs = data.extra[r * UPDATE_DOCS : (r + 1) * UPDATE_DOCS]
            texts = [f"profile doc {a + j}" for j in range(UPDATE_DOCS)]
            holder["store"].add_embeddings(
                list(zip(texts, vecs, strict=True)),
                [{"i": a + j, "bucket": (a + j) % BUCKETS} for j in range(UPDATE_DOCS)],
                ids=[f"id{a + j}" for j in range(UPDATE_DOCS)],
            )

    def reopen() -> None:
        store = LocalVectorStore(emb, path, distance="cosine")
        store.similarity_search_with_score_by_vector(queries[0], K)

    phases: list[tuple[str, Callable[[], None]]] = [
        (f"add {data.n:,} in batches of {ADD_BATCH:,}", add_all),
        (f"{len(queries)} unfiltered searches", search_all),
        (f"{len(queries)} filtered searches {FILTER}", search_filtered),
        (f"{UPDATE_ROUNDS} x add {UPDATE_DOCS}", add_small),
        ("reopen + first query", reopen),
    ]
    print("\n### cProfile of ours (top functions by own time)\n")
    for title, fn in phases:
        gc.collect()
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(fn)
        wall = time.perf_counter() - t0
        print(f"#### {title}: {wall:.3f} s under the profiler\n")
        print("```")
        print("-- by own time:")
        print(_stats_text(prof, "tottime", 14))
        print("-- vectordb_manager functions by cumulative time:")
        print(_stats_text(prof, "cumulative", 12, package_root))
        print("```\n")


def _stats_text(prof: cProfile.Profile, key: str, top: int, only: str | None = None) -> str:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    if only is None:
        stats.strip_dirs().sort_stats(key).print_stats(top)
    else:
        stats.sort_stats(key).print_stats(re.escape(only), top)
    body = out.getvalue()
    start = body.find("   ncalls")
    body = body[start:] if start >= 0 else body
    if only is not None:
        body = body.replace(only, "")
    return body.rstrip()


# -- entry point -----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="documents (default 100000)")
    parser.add_argument("--queries", type=int, default=200, help="queries (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hnsw", action="store_true", help="also benchmark index='hnsw'")
    parser.add_argument("--hnsw-n", type=int, default=20_000, help="documents for --hnsw")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile ours' phases afterwards and print the hot functions")
    parser.add_argument("--workdir", help="where to create the stores (default: the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for other processes to go idle")
    parser.add_argument("--child", choices=("ours", "peer", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.path, args.seed)
        return
    if args.n < ADD_BATCH // 10 or args.queries < 1:
        parser.error(f"--n must be at least {ADD_BATCH // 10} and --queries at least 1")
    bench(args)


if __name__ == "__main__":
    main()
