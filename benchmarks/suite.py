"""The benchmark suite: every part in a fresh child process, one markdown document.

    make bench                                     # the full suite; writes docs/performance.md
    .venv/bin/python benchmarks/suite.py --quick   # small sizes, a few minutes, to try it out
    .venv/bin/python benchmarks/suite.py --quick --parts small,s3

Parts (each a script in this directory that can also run alone; see its --help):

  small        bench_store.py at 100k: ours vs LangChain's FAISS vs raw faiss: build, adding
               100k in batches of 1,000, exact and filtered search, persisting 100 more,
               open + first query and memory in fresh processes, disk
  inmem-small  bench_inmem.py at 100k: InMemoryVectorStore on the same data (its own process)
  large        bench_store.py at 1M (no batched add; fewer queries and peer rounds)
  inmem-large  bench_inmem.py at 1M, only if psutil reports the memory it needs as available
  hnsw-large   bench_hnsw.py at 1M (with --hnsw-1m): build in batches, compact(), reopen,
               p50 and recall@10 at efSearch=128; the longest part (~7 min on 2 cores)
  text         bench_text.py: real text (CPython's reference topics) embedded with the offline
               model; ours / LC FAISS / InMemoryVectorStore search p50 and top-10 agreement
  ingest       bench_ingest.py: ingestion throughput against the model alone
  s3           bench_s3.py at 100k against moto's server: requests, open time vs local
  keyword      bench_keyword.py at 100k passages of real text: BM25 keyword search p50 vs bm25s
               and BM25Retriever, hybrid vs vector + keyword, adding / disk / open / ingestion
               with the text index vs keyword_index=False
  quality      bench_quality.py: recall@10 and nDCG@10 on the judged pydoc topics set: vector,
               keyword, hybrid, bm25s, BM25Retriever and the hand-built EnsembleRetriever
  cold         bench_cold.py: cold start in fresh processes (wall time to exit, medians):
               `import vectordb_manager`, `vectordb --version`, and on a 100k store
               `vectordb stats` and `vectordb search` with the offline model, with the search's
               breakdown (imports, open, model, embed, search, exit)
  embed        bench_embed.py: the offline model in NumPy vs sentence-transformers: cosine over
               1,000 real texts, a fresh process's first query vector, bulk texts/s
  serve        bench_serve.py: `vectordb serve` with 16 clients x 60 s of mixed queries and
               writes: one server, two over moto's S3 (150 s), two with one killed half-way
  filters-cold bench_filters_cold.py at 1M: in fresh processes, the first equality, $in,
               numeric and date range queries after open (from the stored value columns)
               against an unfiltered search, memory kept, and the same store written
               without the columns (the path before them)
  temporal     bench_temporal.py: ingestion on Temporal with 1, 2 and 4 worker processes, a
               remote-like model (fixed latency per call) and the offline model, against a
               plain ingest of the same files

Each part writes its rows as JSON; the suite merges them into one document (machine, targets,
tables), prints it on stdout, keeps the raw JSON and the document in benchmarks/results/, and
with --write-docs replaces the generated part of docs/performance.md (between the
``<!-- bench:begin -->`` and ``<!-- bench:end -->`` markers). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common, machine
from benchmarks.bench_inmem import needed_bytes
from benchmarks.common import (
    BENCH_DIR,
    REPO_ROOT,
    SYSTEM_COLUMNS,
    TARGETS,
    CpuWatch,
    PartResult,
    Row,
    Table,
    Target,
)

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
DOCS = REPO_ROOT / "docs" / "performance.md"
RESULTS = BENCH_DIR / "results"
PART_TIMEOUT = 3 * 3600.0
TARGET_PERSIST_SAME = 1.5  # "the same at 1M as at 100k": within this factor
TARGET_AUTO_FACTOR = 2.0  # auto_threshold within this factor of the measured crossover
MEMORY_MARGIN = 2**30  # leave this much of the available memory free (the estimate is generous)


@dataclass
class Sizes:
    small: int
    large: int
    small_queries: int
    large_queries: int
    inmem_small_queries: int
    inmem_large_queries: int
    hnsw_queries: int
    large_child_repeats: int
    s3: int
    ingest_files: int
    text: str = ""  # bench_text.py's options
    keyword: str = ""  # bench_keyword.py's options (its defaults: 100k passages)
    keyword_n: int = 100_000
    cold: int = 100_000
    cold_runs: int = 5
    embed: str = ""  # bench_embed.py's options (its defaults: 1,000 texts, 8 batches)
    serve: str = ""  # bench_serve.py's options (its defaults: 16 clients x 60 s, 3 runs)
    temporal: str = ""  # bench_temporal.py's options (its defaults: 79 files, 200 ms a call)


FULL = Sizes(
    small=100_000, large=1_000_000, small_queries=200, large_queries=50,
    inmem_small_queries=20, inmem_large_queries=3, hnsw_queries=200, large_child_repeats=2,
    s3=100_000, ingest_files=40,
)  # fmt: skip
QUICK = Sizes(
    small=20_000, large=50_000, small_queries=50, large_queries=20, inmem_small_queries=5,
    inmem_large_queries=3, hnsw_queries=50, large_child_repeats=1, s3=20_000, ingest_files=10,
    text="--max-chunks 500 --queries 20 --repeats 3",
    keyword="--n 20000 --queries 40 --repeats 2 --lc-queries 3 --child-repeats 1 "
    "--ingest-chunks 128", keyword_n=20_000, cold=20_000, cold_runs=3,
    embed="--texts 200 --cold-repeats 1 --batches 2",
    serve="--seconds 10 --s3-seconds 10 --docs 2000",
    temporal="--files 20",
)  # fmt: skip


@dataclass
class Part:
    name: str
    script: str
    argv: list[str]
    where: str  # how the targets summary names it
    needs_bytes: int = 0  # skipped when psutil says less is available (plus a margin)
    result: PartResult | None = None
    error: str = ""
    reused: str = ""  # the earlier run its result comes from (``--reuse``), else ""

    def command(self) -> str:
        return shlex.join([f"benchmarks/{self.script}", *self.argv])


def plan(args: argparse.Namespace) -> list[Part]:
    s = QUICK if args.quick else FULL
    small, large = f"{s.small:,}", f"{s.large:,}"
    repeats = 1 if args.quick else 3
    rows: list[tuple[str, str, str, str, int]] = [  # name, script, options, where, memory
        ("small", "bench_store.py", f"--n {s.small} --queries {s.small_queries} "
         f"--batched-n {s.small} --child-repeats {repeats}", small, 0),
        ("inmem-small", "bench_inmem.py", f"--n {s.small} --queries {s.inmem_small_queries}",
         small, needed_bytes(s.small)),
        ("large", "bench_store.py", f"--n {s.large} --queries {s.large_queries} --batched-n 0 "
         f"--peer-persist-rounds 3 --child-repeats {s.large_child_repeats} --open-limit 5 "
         "--memory-factor 1.2", large, 0),
        ("inmem-large", "bench_inmem.py", f"--n {s.large} --queries {s.inmem_large_queries}",
         large, needed_bytes(s.large)),
        ("hnsw-large", "bench_hnsw.py", f"--n {s.large} --queries {s.hnsw_queries}", large, 0),
        ("text", "bench_text.py", s.text, "real text", 0),
        ("ingest", "bench_ingest.py", f"--files {s.ingest_files}", "ingestion", 0),
        ("s3", "bench_s3.py", f"--n {s.s3}", f"S3, {s.s3:,}", 0),
        ("keyword", "bench_keyword.py", s.keyword, f"keyword, {s.keyword_n:,}", 0),
        ("quality", "bench_quality.py", "", "judged set", 0),
        ("cold", "bench_cold.py", f"--n {s.cold} --runs {s.cold_runs}",
         f"cold start, {s.cold:,}", 0),
        ("embed", "bench_embed.py", s.embed, "embedding", 0),
        ("serve", "bench_serve.py", s.serve, "service", 0),
        ("filters-cold", "bench_filters_cold.py", f"--n {s.large} --queries {s.large_queries // 2} "
         f"--child-repeats {s.large_child_repeats} --old", f"cold filters, {large}", 0),
        ("temporal", "bench_temporal.py", s.temporal, "Temporal ingestion", 0),
    ]  # fmt: skip
    parts = [Part(n, script, opts.split(), where, need) for n, script, opts, where, need in rows]
    if not args.hnsw_1m:
        parts = [p for p in parts if p.name != "hnsw-large"]
    if args.parts:
        wanted = set(args.parts.split(","))
        unknown = wanted - {p.name for p in parts}
        if unknown:
            raise SystemExit(
                f"unknown part(s) {', '.join(sorted(unknown))}; parts: "
                f"{', '.join(p.name for p in parts)} (hnsw-large needs --hnsw-1m)"
            )
        if not args.reuse:
            parts = [p for p in parts if p.name in wanted]
    return parts


def reuse(parts: list[Part], args: argparse.Namespace) -> list[Part]:
    """The parts to run now (``--parts``); every other one takes its result from the raw
    results of an earlier full run (``--reuse FILE``, a ``latest.json``), which the document
    then names beside it."""
    if not args.reuse:
        return parts
    wanted = set(args.parts.split(",")) if args.parts else {p.name for p in parts}
    earlier = json.loads(Path(args.reuse).read_text())
    when = datetime.datetime.fromtimestamp(Path(args.reuse).stat().st_mtime, datetime.UTC)
    source = f"the run of {when:%Y-%m-%d %H:%M} UTC (`{shlex.join(earlier['argv'])}`)"
    for part in parts:
        if part.name in wanted:
            continue
        found = earlier["parts"].get(part.name) or {}
        if found.get("result"):
            part.result = PartResult.from_json(found["result"])
        elif found.get("error"):
            part.error = found["error"]  # skipped or failed then: shown as it was
        else:
            raise SystemExit(f"--reuse: {args.reuse} has no result for part {part.name!r}")
        part.reused = source
    return [p for p in parts if p.name in wanted]


def available_bytes() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def run(part: Part, args: argparse.Namespace, tmp: Path) -> None:
    if part.needs_bytes:
        free = available_bytes()
        if free is not None and part.needs_bytes > free - MEMORY_MARGIN:
            part.error = (
                f"skipped: needs {part.needs_bytes / 2**30:.1f} GB, {free / 2**30:.1f} GB available"
            )
            common.log(f"== {part.name}: {part.error}")
            return
    out = tmp / f"{part.name}.json"
    argv = [*part.argv, "--json-out", str(out)]
    if args.wait_quiet > 0:
        argv += ["--wait-quiet", str(args.wait_quiet)]
    common.log(f"== {part.name}: {part.command()}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    child = machine.run_child(
        BENCH_DIR / part.script, argv, echo_stderr=True, timeout=PART_TIMEOUT, env=env
    )
    took = time.perf_counter() - t0
    if child.returncode != 0 or not out.exists():
        part.error = f"FAILED (exit code {child.returncode}): " + " / ".join(
            line.strip() for line in child.stderr_tail[-3:]
        )
        common.log(f"== {part.name}: {part.error}")
        return
    part.result = PartResult.from_json(json.loads(out.read_text()))
    common.log(
        f"== {part.name}: {fmt_minutes(took)} (CPU used by other processes: "
        f"{part.result.others_cpu})"
    )


def fmt_minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds // 60:.0f} min {seconds % 60:.0f} s"


# -- assembling the document -----------------------------------------------------------------
def merge(base: Table, extra: Table) -> None:
    """Add ``extra``'s cells to ``base``'s rows of the same key; insert its other rows."""
    pos = 0
    for r in extra.rows:
        mine = base.row(r.key)
        if mine is None:
            base.rows.insert(pos, r)
            pos += 1
        else:
            mine.cells.update(r.cells)
            mine.values.update(r.values)
            mine.targets += r.targets
            pos = base.rows.index(mine) + 1


def local_table(parts: dict[str, Part], size: str, title: str) -> Table | None:
    """The table of ``size`` ("small"/"large"): ours, LC FAISS and raw faiss, + the mem column."""
    main, mem = parts.get(size), parts.get(f"inmem-{size}")
    if main is None or main.result is None:
        return None
    table = main.result.tables[0]
    table.title = title
    table.columns = SYSTEM_COLUMNS
    if mem is not None and mem.result is not None:
        merge(table, mem.result.tables[0])
    elif mem is not None:
        merge(table, Table("", [], [Row("search.p50", "", {"mem": mem.error})]))
    return table


def persist_same(parts: dict[str, Part], table: Table) -> None:
    """ "Persisting 100 more: the same at 1M as at 100k": ours' medians from the two parts."""
    small, large = parts.get("small"), parts.get("large")
    if not (small and large and small.result and large.result):
        return
    a = small.result.tables[0].row("persist.median")
    b = table.row("persist.median")
    if a is None or b is None or b.values.get("ours") is None:
        return
    r = common.ratio(b.values["ours"], a.values.get("ours"))
    row = Row(
        "persist.same",
        f"  ours: {large.where} / {small.where} (persist 100 more, medians)",
        {"ours": common.fmt_ratio(r)},
        {"ours": r or 0.0},
        [Target("persist", f"{large.where}/{small.where}", r, TARGET_PERSIST_SAME)],
    )
    table.rows.insert(table.rows.index(b) + 2, row)


def auto_table(parts: dict[str, Part]) -> Table | None:
    """Where flat search costs as much as embedding the query: the case for `auto_threshold`."""
    small, large, text, hnsw = (parts.get(n) for n in ("small", "large", "text", "hnsw-large"))
    got: dict[str, tuple[int, float]] = {}
    for part in (small, large):
        if part and part.result:
            r = part.result.tables[0].row("search.p50")
            if r and "ours" in r.values:
                got[part.name] = (int(part.result.facts["n"]), r.values["ours"])
    embed = text.result.facts.get("embed_query_p50") if text and text.result else None
    if len(got) < 2 or embed is None:
        return None
    (n1, t1), (n2, t2) = got["small"], got["large"]
    slope = (t2 - t1) / (n2 - n1)
    crossover = (embed - (t1 - slope * n1)) / slope if slope > 0 else None
    try:
        from vectordb_manager.engine.index import IndexParams

        threshold: int | None = IndexParams().auto_threshold
    except (ImportError, AttributeError):
        threshold = None
    rows = [
        Row("auto.flat1", f"flat search p50 at {n1:,} (ours)", {"value": common.fmt_s(t1)}),
        Row("auto.flat2", f"flat search p50 at {n2:,} (ours)", {"value": common.fmt_s(t2)}),
        Row(
            "auto.embed",
            "embedding the query with the offline model (p50)",
            {"value": common.fmt_s(embed)},
        ),
    ]
    if hnsw and hnsw.result:
        h = hnsw.result.facts
        rows.append(
            Row(
                "auto.hnsw",
                f"HNSW p50 / recall@10 at {int(h['n']):,}",
                {"value": f"{common.fmt_s(h['p50'])} / {h['recall']:.3f}"},
            )
        )
    factor = None
    if crossover and threshold:
        factor = max(threshold / crossover, crossover / threshold) if crossover > 0 else None
    rows.append(
        Row(
            "auto.crossover",
            "flat search costs as much as the query's embedding at",
            {"value": f"~{crossover:,.0f} documents" if crossover else "-"},
        )
    )
    rows.append(
        Row(
            "auto.threshold",
            "`auto_threshold` (flat below, HNSW from there)",
            {"value": f"{threshold:,}" if threshold else "?"},
            {},
            [Target("auto", "factor from the crossover", factor, TARGET_AUTO_FACTOR)],
        )
    )
    return Table(
        "`auto` index: where the switch from flat to HNSW belongs",
        [("value", "value")],
        rows,
        notes=[
            "flat search grows linearly with N (fitted through the two sizes); below "
            "the crossover it costs less than embedding the query, so exact search "
            "is nearly free; above it, HNSW pays off",
        ],
    )


# the parts that measure each target
TARGET_PARTS: dict[str, tuple[str, ...]] = {
    "exact": ("small", "large"), "hnsw": ("hnsw-large",), "filter": ("small", "large"),
    "batched": ("small",), "batched1": ("small",), "small": ("text",),
    "persist": ("small", "large"), "open": ("small", "large"),
    "memory": ("small", "large"), "ingest": ("ingest",), "s3": ("s3",),
    "auto": ("small", "large", "text"), "keyword": ("keyword",), "hybrid": ("keyword",),
    "kwadd": ("keyword",), "kwdisk": ("keyword",), "quality": ("quality",),
    "cold": ("cold",),
    "embed": ("embed",),
    "serve": ("serve",),
    "coldfilter": ("filters-cold",), "coldrange": ("filters-cold",),
    "temporal": ("temporal",),
}  # fmt: skip


def not_measured(key: str, parts: list[Part], args: argparse.Namespace) -> str:
    ran = {p.name: p for p in parts}
    failed = [n for n in TARGET_PARTS[key] if n in ran and ran[n].error]
    if failed:
        return f"not measured: {', '.join(failed)} failed"
    if key == "hnsw" and not args.hnsw_1m:
        return "not measured: add --hnsw-1m"
    return f"not measured: needs the part(s) {', '.join(TARGET_PARTS[key])}"


def targets_table(
    sections: list[tuple[str, Table]], parts: list[Part], args: argparse.Namespace
) -> Table:
    """Every target of the issue, in its order, with each place it was measured."""
    found: dict[str, list[tuple[str, Target]]] = {key: [] for key in TARGETS}
    for where, table in sections:
        for r in table.rows:
            for t in r.targets:
                found.setdefault(t.key, []).append((where, t))
    rows: list[Row] = []
    for key, text in TARGETS.items():
        if not found[key]:
            rows.append(Row(key, text, {"where": "-", "result": not_measured(key, parts, args)}))
        for i, (where, t) in enumerate(found[key]):
            rows.append(Row(key, text if i == 0 else "", {"where": where, "result": t.cell()}))
    passed = sum(1 for ts in found.values() for _, t in ts if t.passed)
    total = sum(len(ts) for ts in found.values())
    columns = [("where", "where"), ("result", "result")]
    return Table(f"Targets: {passed} of {total} pass", columns, rows, first="target")


def sections_of(parts: list[Part], args: argparse.Namespace) -> list[tuple[str, Table]]:
    """The document's tables, in order, each with where it was measured."""
    by_name = {p.name: p for p in parts}
    s = QUICK if args.quick else FULL
    out: list[tuple[str, Table | None]] = [
        (
            f"{s.small:,}",
            local_table(by_name, "small", f"{s.small:,} x 384 (clustered synthetic unit vectors)"),
        ),
    ]
    large = local_table(by_name, "large", f"{s.large:,} x 384")
    if large is not None:
        persist_same(by_name, large)
    out.append((f"{s.large:,}", large))
    for name in (
        "hnsw-large", "text", "ingest", "s3", "keyword", "quality", "cold", "embed", "serve",
        "filters-cold", "temporal",
    ):  # fmt: skip
        part = by_name.get(name)
        if part and part.result:
            out += [(part.where, t) for t in part.result.tables]
    out.append(("auto", auto_table(by_name)))
    return [(where, t) for where, t in out if t is not None]


def document(
    parts: list[Part], args: argparse.Namespace, facts: dict[str, str], others: str, elapsed: float
) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cmd = shlex.join(["benchmarks/suite.py", *args.argv])
    lines = [
        "## Latest results",
        "",
        f"Generated by `{cmd}` on {when}, in {fmt_minutes(elapsed)}. This part of the file "
        "is rewritten by `make bench`; edit the text around it.",
        "",
        *machine.machine_lines(facts),
        f"- CPU used by other processes during the run: {others}",
        "",
    ]
    reused = [p.name for p in parts if p.reused]
    if reused:
        lines += [
            f"**Rerun in this run: {', '.join(p.name for p in parts if not p.reused)}; the "
            f"other parts' figures ({', '.join(reused)}) are reused from an earlier run, "
            "named in the table of parts below.**",
            "",
        ]
    if args.quick:
        lines += [
            "**Quick run (`--quick`): small sizes, few queries; not the reference figures.**",
            "",
        ]
    sections = sections_of(parts, args)
    lines += targets_table(sections, parts, args).markdown()
    for _, table in sections:
        lines += table.markdown()
    failed = [p for p in parts if p.error]
    if failed:
        lines += [f"- {p.name}: {p.error}" for p in failed] + [""]
    lines += [
        "### Parts",
        "",
        "| part | command | time | CPU used by other processes |",
        "|---|---|---|---|",
    ]
    for p in parts:
        took = fmt_minutes(p.result.elapsed_s) if p.result else "-"
        state = p.result.others_cpu if p.result else p.error
        if p.reused:
            state += f"; **reused from {p.reused}**"
        lines.append(f"| {p.name} | `{p.command()}` | {took} | {state} |")
    lines.append("")
    return "\n".join(lines)


def write_docs(path: Path, body: str) -> None:
    text = path.read_text(encoding="utf-8")
    a, b = text.find(BEGIN), text.find(END)
    if a < 0 or b < a:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} markers to write between")
    path.write_text(
        text[: a + len(BEGIN)] + "\n" + body.rstrip() + "\n" + text[b:], encoding="utf-8"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(__doc__ or "").split("\n\n", 2)[2],
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (20k and 50k instead of 100k and 1M), few queries",
    )
    parser.add_argument(
        "--hnsw-1m", action="store_true", help="also build HNSW at the large size (~7 min at 1M)"
    )
    parser.add_argument("--parts", help="comma-separated parts to run (default: all)")
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help=f"replace the generated part of {DOCS.relative_to(REPO_ROOT)}",
    )
    parser.add_argument(
        "--reuse",
        metavar="FILE",
        help="with --parts: take the other parts' results from an earlier full run's raw "
        "results (benchmarks/results/latest.json); the document says which are reused",
    )
    parser.add_argument("--docs", type=Path, default=DOCS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each part, wait up to this long for other processes to go idle",
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.write_docs and (args.quick or (args.parts and not args.reuse)) and args.docs == DOCS:
        parser.error(
            "--write-docs writes the reference figures: not with --quick, nor with --parts "
            "unless --reuse gives the other parts' results"
        )
    parts = plan(args)
    to_run = reuse(parts, args)
    facts = machine.machine_facts()
    if args.wait_quiet > 0:
        common.log(f"- {machine.wait_quiet(args.wait_quiet)}")
    watch = CpuWatch()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_suite_") as tmp:
        for part in to_run:
            run(part, args, Path(tmp))
    elapsed = time.perf_counter() - t0
    # the parts' results as measured: the document adds rows and columns to their tables
    raw: dict[str, Any] = {
        "argv": args.argv,
        "elapsed_s": elapsed,
        "machine": facts,
        "parts": {
            p.name: {
                "command": p.command(),
                "error": p.error,
                "reused": p.reused,
                "result": p.result.to_json() if p.result else None,
            }
            for p in parts
        },
    }
    doc = document(parts, args, facts, watch.report(), elapsed)
    print(doc)
    RESULTS.mkdir(exist_ok=True)
    stem = "latest-quick" if args.quick else "latest"
    (RESULTS / f"{stem}.json").write_text(json.dumps(raw, indent=1))
    (RESULTS / f"{stem}.md").write_text(doc)
    common.log(
        f"== all parts: {fmt_minutes(elapsed)}; results in "
        f"{(RESULTS / stem).relative_to(REPO_ROOT)}.json/.md"
    )
    failed = [p.name for p in parts if p.error.startswith("FAILED")]
    # InMemoryVectorStore fills a peer's column: if it fails (say, killed for lack of memory),
    # the document says so and the rest still goes into the docs
    if [name for name in failed if not name.startswith("inmem-")]:
        common.log(f"== failed: {', '.join(failed)}; docs not written")
        return 1
    if args.write_docs:
        write_docs(args.docs, doc)
        common.log(f"== wrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
