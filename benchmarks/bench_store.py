"""Local part: `LocalVectorStore` against LangChain's FAISS and raw faiss on N documents.

    .venv/bin/python benchmarks/bench_store.py --n 100000              # a few minutes
    .venv/bin/python benchmarks/bench_store.py --n 20000 --queries 50  # quick
    .venv/bin/python benchmarks/bench_store.py --n 20000 --profile     # + where ours spends it
    .venv/bin/python benchmarks/bench_store.py --n 30000 --batched-only  # the batched add alone

The suite runs it at 100k and at 1M. Data: N x 384 clustered synthetic unit vectors (1000
random centres + gaussian noise), ~100-character texts and metadata ``{"i", "half": i % 2,
"bucket": i % 100}``, so that ``{"bucket": 7}`` passes 1% of the documents and ``{"half": 0}``
50%. Vectors are precomputed: every system takes them through ``add_embeddings`` and is
searched by vector, so no model runs. Queries are fresh vectors from the same clusters.

Systems:
  ours  `LocalVectorStore(emb, dir, distance="cosine")` (flat index); every call is durable
        (fsynced) when it returns.
  peer  `langchain_community.vectorstores.FAISS` with ``MAX_INNER_PRODUCT`` (IndexFlatIP; the
        vectors are unit-norm, so this is cosine); ``save_local`` persists (no fsync).
  raw   faiss ``IndexFlatIP``, ``write_index``/``read_index``: the floor.

Latencies are per query (one vector at a time, as a retriever calls), interleaved query by
query so that drift on a shared machine hits every system alike. Open time and peak memory
are measured in a fresh child process per system (open + one query). The batched add takes
turns with the peer adding the same batches and saving once, 3 rounds each (medians).
The write path's sections (the batched add, persisting 100 more) are in `store_writes`.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common, machine, store_writes
from benchmarks.common import (
    DIM,
    FILTERS,
    SYSTEM_COLUMNS,
    UPDATE_DOCS,
    Dataset,
    K,
    PartResult,
    PrecomputedEmbeddings,
    Row,
    Table,
    Target,
)

BUILD_BATCH = 10_000
TARGET_SEARCH_VS_RAW = 1.1
TARGET_FILTER_VS_UNFILTERED = 1.5
TARGET_OPEN_VS_PEER = 0.5
TARGET_MEMORY_VS_PEER = 1.0


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


def build_ours(path: Path, data: Dataset, n: int, batch: int, **options: Any) -> Any:
    """A `LocalVectorStore` at ``path`` holding documents 0..n-1, added ``batch`` at a time."""
    from vectordb_manager import LocalVectorStore

    store = LocalVectorStore(PrecomputedEmbeddings(), path, distance="cosine", **options)
    for a in range(0, n, batch):
        b = min(a + batch, n)
        store.add_embeddings(data.pairs(a, b), data.metadatas[a:b], ids=data.ids[a:b])
    return store


# -- sections (the write path's: `store_writes`) -------------------------------------------
def search_rows(
    data: Dataset, queries: list[list[float]], store: Any, peer: Any, raw: Any
) -> list[Row]:
    truth = common.exact_top_k(data.vectors, data.queries)
    res = common.measure_interleaved(
        {
            "ours": common.store_searcher(store),
            "peer": common.store_searcher(peer),
            "raw": common.raw_searcher(raw, data.ids, data.metadatas),
        },
        queries,
    )
    p50 = {name: common.pct(v[0], 50) for name, v in res.items()}
    p95 = {name: common.pct(v[0], 95) for name, v in res.items()}
    rec = {name: common.recall(v[1], truth, data.ids) for name, v in res.items()}
    common.log(
        f"- search: p50 ours {common.fmt_s(p50['ours'])}, peer {common.fmt_s(p50['peer'])}, "
        f"raw {common.fmt_s(p50['raw'])}"
    )
    r = common.ratio(p50["ours"], p50["raw"])
    return [
        common.system_row(
            "search.p50",
            f"exact search p50 (k={K}, {len(queries)} queries)",
            {**p50},
            targets=[Target("exact", "ours/raw", r, TARGET_SEARCH_VS_RAW)],
        ),
        common.system_row("search.p95", "  p95", {**p95}),
        common.system_row("search.recall", "  recall@10 vs exact", {**rec}, "recall", ratios=False),
    ]


def filter_rows(
    data: Dataset, queries: list[list[float]], store: Any, peer: Any, raw: Any
) -> list[Row]:
    import faiss

    rows: list[Row] = []
    for spec in FILTERS:
        allowed = spec.mask(data.n)
        truth = common.exact_top_k(data.vectors, data.queries, K, np.flatnonzero(allowed))
        packed = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(data.n, faiss.swig_ptr(packed))  # packed outlives it
        params = faiss.SearchParameters()
        params.sel = selector
        res = common.measure_interleaved(
            {
                "unfiltered": common.store_searcher(store),
                "ours": common.store_searcher(store, spec.where),
                "peer": common.store_searcher(peer, spec.where),
                # the floor: a bitmap of the allowed rows, built once in advance
                "raw": common.raw_searcher(raw, data.ids, data.metadatas, params),
            },
            queries,
        )
        p50 = {name: common.pct(v[0], 50) for name, v in res.items()}
        fill = {name: common.fill_rate(v[1], spec.passes) for name, v in res.items()}
        rec = {name: common.recall(v[1], truth, data.ids) for name, v in res.items()}
        self_ratio = common.ratio(p50["ours"], p50["unfiltered"])
        systems = ("ours", "peer", "raw")
        rows.append(
            Row(
                f"filter.{spec.label}.fill",
                f"filter {spec.where} ({spec.label} pass): fill rate / recall@10",
                {s: f"{fill[s]:.1%} / {rec[s]:.3f}" for s in systems},
                {s: fill[s] for s in systems},
                [Target("filter", f"ours fill ({spec.label})", fill["ours"], 1.0, "share", ">=")],
            )
        )
        rows.append(
            common.system_row(
                f"filter.{spec.label}.p50",
                f"  filtered ({spec.label}) p50",
                {s: p50[s] for s in systems},
            )
        )
        rows.append(
            Row(
                f"filter.{spec.label}.self",
                f"  ours filtered ({spec.label}) / ours unfiltered "
                f"({common.fmt_s(p50['unfiltered'])}) p50",
                {"ours": common.fmt_ratio(self_ratio)},
                {"ours": self_ratio or 0.0},
                [
                    Target(
                        "filter",
                        f"filtered/unfiltered ({spec.label})",
                        self_ratio,
                        TARGET_FILTER_VS_UNFILTERED,
                    )
                ],
            )
        )
        common.log(
            f"- filter {spec.label}: fill ours {fill['ours']:.1%}, peer {fill['peer']:.1%}; "
            f"p50 ours {common.fmt_s(p50['ours'])} (unfiltered {common.fmt_s(p50['unfiltered'])}), "
            f"peer {common.fmt_s(p50['peer'])}, raw {common.fmt_s(p50['raw'])}"
        )
        del selector, params, packed
    return rows


def open_rows(
    args: argparse.Namespace, data: Dataset, paths: dict[str, Path], total_docs: int
) -> list[Row]:
    """Open + one query in a fresh process per system: time and memory."""
    kids: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
    for _ in range(args.child_repeats):
        for name, path in paths.items():
            got = machine.run_child(
                Path(__file__), ["--child", name, "--path", str(path), "--seed", str(args.seed)]
            ).json()
            if got["count"] != total_docs:
                raise AssertionError(f"{name} reopened {got['count']} docs, not {total_docs}")
            kids[name].append(got)

    def med(key: str) -> dict[str, float | None]:
        return {name: statistics.median(float(c[key]) for c in cs) for name, cs in kids.items()}

    total, peak, after, baseline = med("total"), med("peak"), med("rss"), med("baseline")
    delta: dict[str, float | None] = {
        name: statistics.median(float(c["peak"] - c["baseline"]) for c in cs)
        for name, cs in kids.items()
    }
    common.log(
        f"- open + 1 query: {', '.join(f'{k} {common.fmt_s(v)}' for k, v in total.items())}; "
        f"peak RSS {', '.join(f'{k} {common.fmt_mb(v)}' for k, v in peak.items())}"
    )
    open_targets = [
        Target("open", "ours/peer", common.ratio(total["ours"], total["peer"]), TARGET_OPEN_VS_PEER)
    ]
    if args.open_limit:
        open_targets.append(
            Target("open", f"ours at {total_docs:,}", total["ours"], args.open_limit, "s")
        )
    mem_targets = [
        Target(
            "memory", "ours/peer", common.ratio(delta["ours"], delta["peer"]), TARGET_MEMORY_VS_PEER
        )
    ]
    payload = data.vectors.nbytes + data.text_bytes()
    if args.memory_factor:
        mem_targets.append(
            Target(
                "memory",
                "ours/(vectors + text)",
                common.ratio(delta["ours"], payload),
                args.memory_factor,
            )
        )
    reps = f"median of {args.child_repeats}"
    return [
        common.system_row(
            "open",
            f"open {total_docs:,} + first query, fresh process ({reps})",
            total,
            targets=open_targets,
        ),
        common.system_row(
            "open.import",
            "  importing the store's class first (not in the open: both import LangChain's "
            "vector store base)",
            med("import"),
            ratios=False,
        ),
        common.system_row("rss.peak", "peak RSS of that process", peak, "mb"),
        common.system_row(
            "rss.baseline", "  its high-water mark after imports", baseline, "mb", ratios=False
        ),
        common.system_row(
            "rss.delta",
            f"  peak minus that: the store's memory (vectors + text: {common.fmt_mb(payload)})",
            delta,
            "mb",
            targets=mem_targets,
        ),
        common.system_row(
            "rss.current", "  RSS after open + 1 query (current, not peak)", after, "mb"
        ),
    ]


def child_main(kind: str, path: str, seed: int) -> None:
    """Open one store, run one query, print JSON: timings, count, peak RSS, RSS after imports."""
    import faiss

    import vectordb_manager  # noqa: F401  (imports before the baseline, as in an application)

    # each side's store class imported before the clock starts, as an application imports
    # it at its start (LangChain's vector store base class, which both import, takes about
    # half a second: `langsmith`); timed apart, reported beside the open
    t_import = time.perf_counter()
    if kind == "ours":
        from vectordb_manager import LocalVectorStore
    elif kind == "peer":
        from langchain_community.vectorstores import FAISS  # noqa: F401
    imported = time.perf_counter() - t_import
    q = common.unit(np.random.default_rng(seed).standard_normal((1, DIM), dtype=np.float32))
    baseline = machine.peak_rss_bytes()
    t0 = time.perf_counter()
    if kind == "ours":
        store = LocalVectorStore(PrecomputedEmbeddings(), path, distance="cosine")
        t1 = time.perf_counter()
        hits = len(store.similarity_search_with_score_by_vector(q[0].tolist(), K))
        count = len(store)
    elif kind == "peer":
        peer = common.lc_faiss_load(path)
        t1 = time.perf_counter()
        hits = len(peer.similarity_search_with_score_by_vector(q[0].tolist(), K))
        count = len(peer.index_to_docstore_id)
    else:
        index = faiss.read_index(path)
        t1 = time.perf_counter()
        hits = int((index.search(q, K)[1] >= 0).sum())
        count = index.ntotal
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "peak": machine.peak_rss_bytes(),
                "baseline": baseline,
                "open": t1 - t0,
                "total": t2 - t0,
                "import": imported,
                "hits": hits,
                "count": count,
                "rss": machine.rss_bytes(),
            }
        )
    )


# -- the part --------------------------------------------------------------------------------
def bench(args: argparse.Namespace) -> PartResult:
    base = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="bench_store_", dir=base))
    try:
        return _bench(args, work)
    finally:
        if args.keep:
            common.log(f"- stores kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, work: Path) -> PartResult:
    import faiss

    t0 = time.perf_counter()
    data = common.make_dataset(args.n, args.queries, args.seed)
    queries = data.queries.tolist()  # what a LangChain retriever passes: list[float]
    common.log(
        f"- data: {data.n:,} x {DIM} in {time.perf_counter() - t0:.1f} s "
        f"({common.fmt_mb(data.vectors.nbytes)} of vectors)"
    )
    rows: list[Row] = []
    if args.batched_n > 0:  # first: it needs nothing else in memory
        rows += store_writes.batched_add(args, data, work)
    if args.batched_only:
        return PartResult(
            "store",
            f"Local stores, batched add of {min(args.batched_n, data.n):,}",
            [Table(f"{data.n:,} x {DIM}", SYSTEM_COLUMNS, rows)],
            facts={"n": data.n},
        )

    ours_dir, peer_dir, raw_file = work / "ours", work / "peer", work / "raw" / "index.faiss"
    raw_file.parent.mkdir()

    def peer_build() -> Any:
        peer = common.lc_faiss(data.pairs(0, data.n), data.metadatas, data.ids)
        peer.save_local(str(peer_dir))
        return peer

    def raw_build() -> Any:
        index = common.raw_flat(data.vectors)
        faiss.write_index(index, str(raw_file))
        return index

    t_ours, store = common.timed(lambda: build_ours(ours_dir, data, data.n, BUILD_BATCH))
    t_peer, peer = common.timed(peer_build)
    t_raw, raw = common.timed(raw_build)
    segments = store.stats().get("segments")
    common.log(
        f"- built: ours {common.fmt_s(t_ours)} ({segments} segments), peer {common.fmt_s(t_peer)}, "
        f"raw {common.fmt_s(t_raw)}"
    )
    rows.insert(
        0,
        common.system_row(
            "build",
            f"build + persist {data.n:,} (ours: batches of {BUILD_BATCH:,})",
            {"ours": t_ours, "peer": t_peer, "raw": t_raw},
        ),
    )
    paths = {"ours": ours_dir, "peer": peer_dir, "raw": raw_file}
    disk_built = {name: dir_bytes(p) for name, p in paths.items()}

    rows += search_rows(data, queries, store, peer, raw)
    rows += filter_rows(data, queries, store, peer, raw)
    rows += store_writes.persist_rows(args, data, {"ours": store, "peer": peer, "raw": raw}, paths)
    added = args.persist_rounds * UPDATE_DOCS
    if args.peer_persist_rounds != args.persist_rounds:  # same content everywhere to reopen
        for r in range(args.peer_persist_rounds, args.persist_rounds):
            pairs, metas, ids = common.extra_batch(data, r, args.seed)
            peer.add_embeddings(pairs, metadatas=metas, ids=ids)
            raw.add(np.asarray([v for _, v in pairs], dtype=np.float32))
        peer.save_local(str(peer_dir))
        faiss.write_index(raw, str(raw_file))
    disk_end = {name: dir_bytes(p) for name, p in paths.items()}
    for label, disk in (
        (f"after the build of {data.n:,}", disk_built),
        (f"after {added} more", disk_end),
    ):
        row = common.system_row(
            f"disk.{'end' if disk is disk_end else 'built'}",
            f"disk size {label} (files)",
            {k: v[0] for k, v in disk.items()},
            "mb",
        )
        for name, (_, files) in disk.items():
            row.cells[name] += f" ({files})"
        rows.append(row)

    store = peer = raw = None  # free them before the children open theirs
    gc.collect()
    rows += open_rows(args, data, paths, data.n + added)
    if args.profile:
        profile_ours(data, work, queries[:50])
    table = Table(
        f"{data.n:,} x {DIM}",
        SYSTEM_COLUMNS,
        rows,
        notes=[
            f"ours: {segments} segments after the build; searches: k={K}, one query at a time, "
            "systems interleaved query by query",
        ],
    )
    return PartResult(
        "store",
        f"Local stores, N = {data.n:,}",
        [table],
        facts={
            "n": data.n,
            "queries": len(queries),
            "payload_bytes": data.vectors.nbytes + data.text_bytes(),
            "segments_after_build": segments,
        },
    )


# -- profiling -------------------------------------------------------------------------------
def profile_ours(data: Dataset, work: Path, queries: list[list[float]]) -> None:
    """cProfile ours' phases on a fresh store; print the top functions (on stderr)."""
    import vectordb_manager
    from vectordb_manager import LocalVectorStore

    package_root = str(Path(vectordb_manager.__file__).resolve().parent.parent) + os.sep
    path = work / "ours_profile"
    holder: dict[str, Any] = {}

    def add_all() -> None:
        holder["store"] = build_ours(path, data, data.n, BUILD_BATCH)

    def searches(where: dict[str, Any] | None) -> Callable[[], None]:
        def run() -> None:
            for q in queries:
                holder["store"].similarity_search_with_score_by_vector(q, K, filter=where)

        return run

    def small_batches() -> None:
        s = LocalVectorStore(PrecomputedEmbeddings(), work / "profile_small", distance="cosine")
        for j in range(20):
            a, b = j * store_writes.SMALL_BATCH, min((j + 1) * store_writes.SMALL_BATCH, data.n)
            s.add_embeddings(data.pairs(a, b), data.metadatas[a:b], ids=data.ids[a:b])

    def add_100() -> None:
        for r in range(5):
            pairs, metas, ids = common.extra_batch(data, r, 0)
            holder["store"].add_embeddings(pairs, metas, ids=ids)

    def reopen() -> None:
        store = LocalVectorStore(PrecomputedEmbeddings(), path, distance="cosine")
        store.similarity_search_with_score_by_vector(queries[0], K)

    phases: list[tuple[str, Callable[[], None]]] = [
        (f"add {data.n:,} in batches of {BUILD_BATCH:,}", add_all),
        (f"{len(queries)} unfiltered searches", searches(None)),
        *(
            (f"{len(queries)} searches, filter {s.where} ({s.label})", searches(s.where))
            for s in FILTERS
        ),
        (f"20 durable batches of {store_writes.SMALL_BATCH:,}", small_batches),
        (f"5 x add {UPDATE_DOCS}", add_100),
        ("reopen + first query", reopen),
    ]
    out = sys.stderr
    print("\n### cProfile of ours (top functions by own time)\n", file=out)
    for title, fn in phases:
        gc.collect()
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(fn)
        print(f"#### {title}: {time.perf_counter() - t0:.3f} s under the profiler\n\n```", file=out)
        print("-- by own time:", file=out)
        print(machine.stats_text(prof, "tottime", 14), file=out)
        print("-- vectordb_manager functions by cumulative time:", file=out)
        print(machine.stats_text(prof, "cumulative", 12, package_root), file=out)
        print("```\n", file=out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    common.size_options(parser, 100_000, 200)
    parser.add_argument(
        "--batched-n",
        type=int,
        default=100_000,
        help="documents added in batches of 1,000 (at most N; 0: skip)",
    )
    parser.add_argument(
        "--batched-only",
        action="store_true",
        help="measure the batched add alone (of --batched-n, default --n), nothing else",
    )
    parser.add_argument(
        "--peer-budget",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="stop the peer's batched add after this long and extrapolate",
    )
    parser.add_argument(
        "--persist-rounds",
        type=int,
        default=9,
        help=f"times ours persists {UPDATE_DOCS} more (default 9, at most 10)",
    )
    parser.add_argument(
        "--peer-persist-rounds",
        type=int,
        help="times the peer and raw faiss do (default: --persist-rounds)",
    )
    parser.add_argument(
        "--child-repeats",
        type=int,
        default=3,
        help="fresh processes per system for open time and memory",
    )
    parser.add_argument(
        "--open-limit",
        type=float,
        metavar="SECONDS",
        help="also check that ours opens within this long",
    )
    parser.add_argument(
        "--memory-factor",
        type=float,
        help="also check ours' memory against this x (vectors + text)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile ours' phases afterwards (printed on stderr)",
    )
    parser.add_argument("--workdir", help="where to create the stores (default: the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    parser.add_argument("--child", choices=("ours", "peer", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = common.parse_sized(parser, argv, min_n=2 * store_writes.SMALL_BATCH)
    if args.child:
        child_main(args.child, args.path, args.seed)
        return
    if args.peer_persist_rounds is None:
        args.peer_persist_rounds = args.persist_rounds
    if not 1 <= args.peer_persist_rounds <= args.persist_rounds <= 10:
        parser.error("need 1 <= --peer-persist-rounds <= --persist-rounds <= 10")
    common.run_part(args, bench)


if __name__ == "__main__":
    main()
