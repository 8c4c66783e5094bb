"""Cold filters part: the first filtered queries of a fresh process, from the value columns.

    .venv/bin/python benchmarks/bench_filters_cold.py                 # 1M documents, ~6 min
    .venv/bin/python benchmarks/bench_filters_cold.py --n 100000 --old

Builds a `LocalVectorStore` of N documents (batches of 10,000; N x 384 clustered synthetic
unit vectors as in bench_store.py, ~100-character texts) whose metadata are ``{"i": i,
"half": i % 2, "bucket": i % 100, "source": "docs/file{i % 1000}.md", "day": a date}`` (the
date walks 1,500 days from 2020-01-01, so the records are typed). Then, in fresh processes
(``--child-repeats``, medians), it opens the store and times, in this order: the first
equality query (``{"bucket": 7}``, 1% pass), the first ``$in`` (three sources, 0.3%), an
unfiltered search (p50 of ``--queries``), the first numeric range (``{"i": {"$gte": N/4,
"$lt": 3N/4}}``, 50%) and the first date range (``{"day": {"$gte": 2021-01-01, "$lt":
2021-07-01}}``, ~12%), each against the unfiltered p50 of the same process, then p50s of the
ranges; and the process's memory: RSS after open, what all the queries kept, and the peak
(VmHWM reset where Linux allows) and what stays of the range queries, against the value
index's size (the ``values`` sections on disk); and how many records were decoded (searches
decode only their results).

``--old`` also builds the same store written without the section (``value_index=False``, as
stores before it were) and runs the same child on it: this release builds the columns of the
keys filtered on from the records. ``--before DIR`` opens that store with the package of an
earlier release (a checkout in DIR), as it was answered before the value columns.
k = 10, one query at a time, by vector (no model runs).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common, machine
from benchmarks.common import (
    CENTRES,
    DIM,
    K,
    PartResult,
    PrecomputedEmbeddings,
    Row,
    Table,
    Target,
)

BATCH = 10_000
TARGET_FIRST_S = 0.1  # first equality / $in query after open
TARGET_RANGE_VS_UNFILTERED = 1.5
TARGET_LASTING_VS_INDEX = 1.0
DAY0 = dt.date(2020, 1, 1)
SOURCES = ["docs/file0003.md", "docs/file0500.md", "docs/file0999.md"]


def metadata(i: int) -> dict[str, Any]:
    return {
        "i": i,
        "half": i % 2,
        "bucket": i % 100,
        "source": f"docs/file{i % 1000:04d}.md",
        "day": DAY0 + dt.timedelta(days=i % 1500),
    }


def filters(n: int) -> dict[str, dict[str, Any]]:
    return {
        "eq": {"bucket": 7},
        "in": {"source": {"$in": SOURCES}},
        "range": {"i": {"$gte": n // 4, "$lt": 3 * n // 4}},
        "dates": {"day": {"$gte": dt.date(2021, 1, 1), "$lt": dt.date(2021, 7, 1)}},
    }


def centres(seed: int) -> common.Matrix:
    rng = np.random.default_rng(seed)
    return common.unit(rng.standard_normal((CENTRES, DIM), dtype=np.float32))


def build(path: Path, n: int, seed: int, *, value_index: bool = True) -> int:
    """The store of N documents at ``path``; returns its segment count."""
    from vectordb_manager import LocalVectorStore

    store = LocalVectorStore(PrecomputedEmbeddings(), path, distance="cosine")
    store.engine.value_index = value_index  # False: written as stores before the section
    rng = np.random.default_rng(seed + 7)
    middle = centres(seed)
    for a in range(0, n, BATCH):
        m = min(BATCH, n - a)
        vectors = common.clustered(rng, middle, m)
        texts = common.make_texts(rng, a, m)
        store.add_embeddings(
            list(zip(texts, vectors, strict=True)),
            [metadata(i) for i in range(a, a + m)],
            ids=[f"id{i}" for i in range(a, a + m)],
        )
    return int(store.stats()["segments"])


def values_bytes(path: Path) -> int:
    """The ``values`` sections' bytes in the segment files of the store's newest version
    (their section tables)."""
    latest = json.loads(sorted((path / "manifests").glob("*.json"))[-1].read_text())
    total = 0
    for ref in latest["segments"]:
        with (path / ref["file"]["path"]).open("rb") as f:
            head = f.read(16)
            table = json.loads(f.read(int.from_bytes(head[8:16], "little")))["sections"]
        total += table.get("values", [0, 0])[1]
    return total


# -- the child: one fresh process ------------------------------------------------------------
def rss_now() -> dict[str, int]:
    """RSS, its anonymous part (memory the process holds) and its file part (pages of mapped
    files: page cache, shared and reclaimable), once the allocator has returned its free
    memory (glibc's ``malloc_trim``): memory in use, not freed temporaries kept for reuse."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    total = machine.rss_bytes()
    anon = machine.proc_status_bytes("RssAnon")
    return {"rss": total, "anon": total if anon is None else anon, "file": total - (anon or total)}


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux: ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child_main(path: str, n: int, seed: int, queries: int, code: str | None) -> None:
    if code:  # an earlier release's package, to open the store as it did
        sys.path.insert(0, code)
    import vectordb_manager
    from vectordb_manager.engine.filters import compile_filter
    from vectordb_manager.engine.state import LAZY

    qs = common.clustered(np.random.default_rng(seed + 1), centres(seed), queries + 8).tolist()
    where = filters(n)
    t0 = time.perf_counter()
    store = vectordb_manager.LocalVectorStore(PrecomputedEmbeddings(), path, distance="cosine")
    opened = time.perf_counter() - t0
    rss_open = rss_now()
    checks = {name: compile_filter(spec) for name, spec in where.items()}

    # the time each search spends finding the passing documents (the filter's own cost, as
    # opposed to ranking them and reading the records it returns)
    from vectordb_manager.engine import search as searching

    selecting: list[float] = []
    real_passing = searching.passing

    def passing(st: Any, where: Any) -> Any:
        t = time.perf_counter()
        found = real_passing(st, where)
        selecting.append(time.perf_counter() - t)
        return found

    searching.passing = passing
    collecting = [0.0, 0.0]  # Python's garbage collections: time, when the last one started

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[1] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - collecting[1]

    gc.callbacks.append(on_gc)

    def run(name: str | None, q: list[float]) -> float:
        selecting.clear()
        collecting[0] = 0.0
        t = time.perf_counter()
        hits = store.similarity_search_with_score_by_vector(q, K, filter=where.get(name or ""))
        took = time.perf_counter() - t
        test = checks.get(name or "")
        if len(hits) != K or (test is not None and not all(test(d.metadata) for d, _ in hits)):
            raise AssertionError(f"{name}: {len(hits)} hits, or some do not pass")
        return took

    first = {"eq": run("eq", qs[0])}
    select, collect = {"eq": sum(selecting)}, {"eq": collecting[0]}
    first["in"] = run("in", qs[1])
    select["in"], collect["in"] = sum(selecting), collecting[0]
    run(None, qs[2])  # (the first unfiltered search warms nothing filters did not)
    unfiltered = [run(None, q) for q in qs[8:]]
    rss_ranges = rss_now()  # searching itself has taken what it keeps by now
    peak_reset = reset_peak()
    first["range"] = run("range", qs[3])
    select["range"], collect["range"] = sum(selecting), collecting[0]
    first["dates"] = run("dates", qs[4])
    select["dates"], collect["dates"] = sum(selecting), collecting[0]
    p50: dict[str, list[float]] = {"range": [], "dates": [], "none": []}
    for q in qs[8:]:
        for name in ("range", "dates", None):
            p50[name or "none"].append(run(name, q))
    state = store.engine.state
    decoded = sum(1 for r in state.recs if r is not LAZY and r is not None)
    values = getattr(state, "values", None)  # (an earlier release: its key_indexes)
    keys = values.decoded if values is not None else getattr(state, "key_indexes", {})
    print(
        json.dumps(
            {
                "open": opened,
                "first": first,
                "select": select,
                "collect": collect,
                "unfiltered": statistics.median(unfiltered),
                "p50": {k: statistics.median(v) for k, v in p50.items()},
                "rss_open": rss_open,
                "rss_ranges": rss_ranges,
                "peak": machine.peak_rss_bytes() - rss_ranges["rss"] if peak_reset else None,
                "rss_end": rss_now(),
                "decoded": decoded,
                "searches": 4 + 1 + len(unfiltered) + 3 * len(qs[8:]),
                "keys": sorted(keys),
                "count": len(store),
            }
        )
    )


# -- the part ----------------------------------------------------------------------------------
def measure(args: argparse.Namespace, kinds: dict[str, tuple[Path, str | None]]) -> dict[str, Any]:
    """Per kind (a store, and the package to open it with, ``None``: this one), the medians
    of ``--child-repeats`` fresh processes, the kinds taking turns (so that load from other
    processes hits them alike)."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in kinds}
    common_argv = ["--n", str(args.n), "--seed", str(args.seed), "--queries", str(args.queries)]
    for _ in range(args.child_repeats):
        for name, (path, code) in kinds.items():
            argv = ["--child", str(path), *common_argv, *(["--code", code] if code else [])]
            runs[name].append(machine.run_child(Path(__file__), argv).json())
    return {name: summarize(args, got) for name, got in runs.items()}


def summarize(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    if any(r["count"] != args.n for r in runs):
        raise AssertionError(f"a child opened {[r['count'] for r in runs]} documents")

    def med(get: Any) -> float | None:
        got = [get(r) for r in runs]
        return None if None in got else statistics.median(got)

    out: dict[str, Any] = {
        "open": med(lambda r: r["open"]),
        "unfiltered": med(lambda r: r["unfiltered"]),
        "decoded": med(lambda r: r["decoded"]),
        "searches": runs[0]["searches"],
        "keys": runs[0]["keys"],
        "rss_open": med(lambda r: r["rss_open"]["rss"]),
        "peak_growth": med(lambda r: r["peak"]),
    }
    for part in ("anon", "file"):
        out[f"kept_all.{part}"] = med(lambda r, p=part: r["rss_end"][p] - r["rss_open"][p])
        out[f"lasting.{part}"] = med(lambda r, p=part: r["rss_end"][p] - r["rss_ranges"][p])
    for name in ("eq", "in", "range", "dates"):
        out[f"first.{name}"] = med(lambda r, name=name: r["first"][name])
        out[f"select.{name}"] = med(lambda r, name=name: r["select"][name])
        out[f"collect.{name}"] = med(lambda r, name=name: r["collect"][name])
    for name in ("range", "dates", "none"):
        out[f"p50.{name}"] = med(lambda r, name=name: r["p50"][name])
    return out


def bench(args: argparse.Namespace) -> PartResult:
    base = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="bench_filters_cold_", dir=base))
    try:
        return _bench(args, work)
    finally:
        if args.keep:
            common.log(f"- stores kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, work: Path) -> PartResult:
    old = args.old or args.before
    stores = {"new": work / "with"} | ({"old": work / "without"} if old else {})
    built: dict[str, float] = {}
    for name, path in stores.items():
        took, segments = common.timed(
            lambda p=path, v=name == "new": build(p, args.n, args.seed, value_index=v)
        )
        built[name] = took
        common.log(f"- built {name} ({args.n:,} docs, {segments} segments) in {took:.0f} s")
    kinds: dict[str, tuple[Path, str | None]] = {name: (p, None) for name, p in stores.items()}
    if args.before:
        kinds["before"] = (stores["old"], str(Path(args.before).resolve()))
    got = measure(args, kinds)
    index = values_bytes(stores["new"])
    new = got["new"]
    for name, m in got.items():
        common.log(
            f"- {name}: open {common.fmt_s(m['open'])}, first eq {common.fmt_s(m['first.eq'])}, "
            f"first range {common.fmt_s(m['first.range'])} (unfiltered "
            f"{common.fmt_s(m['unfiltered'])}), kept {common.fmt_mb(m['lasting.anon'])}"
        )

    def row(key: str, measure: str, unit: str = "s", targets: Sequence[Target] = ()) -> Row:
        fmt = common.FORMATS[unit]
        values = {name: m[key] for name, m in got.items() if m[key] is not None}
        cells = {name: fmt(v) for name, v in values.items()}
        return Row(key, measure, cells, values, list(targets))

    def vs_unfiltered(key: str, label: str) -> Row:
        values = {name: common.ratio(m[key], m["unfiltered"]) for name, m in got.items()}
        return Row(
            f"{key}.ratio",
            f"  {label} / unfiltered p50",
            {name: common.fmt_ratio(v) for name, v in values.items()},
            {name: v for name, v in values.items() if v is not None},
            [Target("coldrange", f"{label}/unfiltered", values["new"], TARGET_RANGE_VS_UNFILTERED)],
        )

    n = f"{args.n:,}"
    lasting = common.ratio(new["lasting.anon"], index)
    rows = [
        row("open", f"open {n} (fresh process)"),
        row("first.eq", "first query, {'bucket': 7} (1% pass)", targets=[
            Target("coldfilter", "first equality", new["first.eq"], TARGET_FIRST_S, "s")]),
        row("select.eq", "  of which finding the passing documents"),
        row("collect.eq", "  of which Python's garbage collections"),
        row("first.in", "first query, source $in 3 of 1,000 files (0.3%)", targets=[
            Target("coldfilter", "first $in", new["first.in"], TARGET_FIRST_S, "s")]),
        row("select.in", "  of which finding the passing documents"),
        row("collect.in", "  of which Python's garbage collections"),
        row("unfiltered", f"unfiltered search p50 ({args.queries} queries)"),
        row("first.range", "first numeric range, i in [N/4, 3N/4) (50%)"),
        row("select.range", "  of which finding the passing documents"),
        row("collect.range", "  of which Python's garbage collections"),
        vs_unfiltered("first.range", "first numeric range"),
        row("first.dates", "first date range, day in [2021-01-01, 2021-07-01) (~12%)"),
        row("select.dates", "  of which finding the passing documents"),
        row("collect.dates", "  of which Python's garbage collections"),
        vs_unfiltered("first.dates", "first date range"),
        row("p50.range", "numeric range p50"),
        row("p50.dates", "date range p50"),
        row("decoded", "records decoded in the process", "n"),
        row("rss_open", "RSS after open", "mb"),
        row("kept_all.anon", "  memory all the queries kept (anonymous)", "mb"),
        row("kept_all.file", "  file pages they mapped (page cache)", "mb"),
        row("peak_growth", "  peak RSS growth during the range queries", "mb"),
        row("lasting.anon", f"  memory the range queries kept (anonymous; value index on "
            f"disk: {common.fmt_mb(index)})", "mb", targets=[
            Target("coldrange", "kept/index", lasting, TARGET_LASTING_VS_INDEX)]),
        row("lasting.file", "  file pages they mapped (page cache)", "mb"),
    ]  # fmt: skip
    columns = [("new", "with the values section")]
    if old:
        columns.append(("old", "without it (built from the records)"))
    if args.before:
        columns.append(("before", f"without it, opened by {args.before}"))
    notes = [
        f"medians of {args.child_repeats} fresh processes per column, the columns taking "
        f"turns; k={K}; one query at a time; "
        f"{new['searches']} searches a process ({args.queries} queries each)",
        f"keys decoded by the filters: {', '.join(new['keys'])} (of i, half, bucket, "
        "source, day); a search decodes only the records it returns",
        "the range queries' memory: from before the first range query (after the equality, "
        "$in and unfiltered searches) to after the last; peak: VmHWM, reset there; memory "
        "after malloc_trim (in use, not freed temporaries); anonymous memory apart from the "
        "pages of mapped files (segments are mapped: reading a record maps its pages)",
    ]
    return PartResult(
        "filters-cold",
        f"Cold filters, N = {n}",
        [Table(f"Filters in a fresh process at {n}", columns, rows, notes)],
        facts={"n": args.n, "values_bytes": index, "build_s": built},
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    common.size_options(parser, 1_000_000, 20)
    parser.add_argument(
        "--child-repeats", type=int, default=3, help="fresh processes per store (default 3)"
    )
    parser.add_argument(
        "--old", action="store_true", help="also measure the store written without the section"
    )
    parser.add_argument("--workdir", help="where to build the stores (default: the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also open the store without the section with the vectordb_manager package in "
        "DIR (a checkout of an earlier release): the path before the value columns",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    args = common.parse_sized(parser, argv)
    if args.child:
        child_main(args.child, args.n, args.seed, args.queries, args.code)
        return
    common.run_part(args, bench)


if __name__ == "__main__":
    main()
