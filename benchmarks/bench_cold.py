"""Cold-start part: how long the package and the ``vectordb`` command take from a fresh process.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_cold.py [--n 100000] [--runs 5]

Builds a local store of N documents once (synthetic 384-dimensional unit vectors and short
texts, added through ``add_embeddings``, nothing embedded), recorded as built with the offline
all-MiniLM-L6-v2 model, so that the default configuration (provider ``huggingface``) opens it
and ``vectordb search`` embeds its query with the real model. Then, each in a fresh process,
the wall time from starting the process to its exit (median of ``--runs``, after one unmeasured
run that warms the file cache):

- ``python -c "import vectordb_manager"``
- ``vectordb --version``
- ``vectordb --path STORE stats``
- ``vectordb --path STORE search QUERY -k 5``

(the command run as ``python -m vectordb_manager``, which runs what the console script runs),
each with the CPU time it used (user + system), which other processes inflate less,
and the search's breakdown, from a fresh process doing what ``vectordb search`` does (through
the engine, `quick_search.EngineSearch`) with a clock between the steps: starting the
interpreter, the imports, loading the model, opening the store, embedding the query,
searching, exiting; plus the heaviest imports of the real command (from ``python -X
importtime``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common
from benchmarks.common import PartResult, Row, Table, Target

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGET_IMPORT = 0.3
TARGET_STATS = 0.5
TARGET_SEARCH = 1.5
QUERY = "which index gives exact nearest neighbours"
BUILD_BATCH = 25_000

# what ``vectordb search`` does, with a clock between the steps (printed as JSON): the command
# answers from the engine (`quick_search.EngineSearch`: the offline model and a local store)
BREAKDOWN = """
import json, os, sys, time
began = time.time()
t = [time.perf_counter()]
from vectordb_manager.cli import build_parser
from vectordb_manager.commands import build_config
from vectordb_manager.quick_search import EngineSearch
import vectordb_manager.vectorstores.opening, vectordb_manager.vectorstores.requests
t.append(time.perf_counter())
args = build_parser().parse_args(["--path", sys.argv[1], "search", sys.argv[2], "-k", "5"])
config = build_config(args)
assert EngineSearch.can_answer(config)  # (and loads the model)
t.append(time.perf_counter())
searcher = EngineSearch(config)
t.append(time.perf_counter())
vector = searcher._embed(sys.argv[2])
t.append(time.perf_counter())
hits = searcher.engine.search(vector, 5, None, checked=True)
t.append(time.perf_counter())
assert len(hits) == 5
steps = ["imports", "model", "open", "embed", "search"]
out = {s: b - a for s, a, b in zip(steps, t, t[1:])}
print(json.dumps({**out, "began": began, "ended": time.time()}), flush=True)
os._exit(0)  # as `cli.run` ends the command
"""


def cli() -> list[str]:
    """The command: ``python -m vectordb_manager``, which runs what the console script runs
    (`cli.run`) whichever entry point the installed script was generated with."""
    return [sys.executable, "-m", "vectordb_manager"]


def build_store(path: Path, n: int, seed: int) -> None:
    """N documents with precomputed vectors, under the offline model's name and dimension."""
    from vectordb_manager import LocalVectorStore
    from vectordb_manager.embeddings import DEFAULT_HF_MODEL

    data = common.make_dataset(n, 1, seed, n_extra=0)
    emb = common.PrecomputedEmbeddings()
    emb.model_name = DEFAULT_HF_MODEL  # the identity `vectordb search` will open it with
    store = LocalVectorStore(emb, path)
    for start in range(0, n, BUILD_BATCH):
        end = min(n, start + BUILD_BATCH)
        store.add_embeddings(data.pairs(start, end), data.metadatas[start:end], data.ids[start:end])
    store.compact()
    stats = store.stats()
    assert stats["documents"] == n and stats["embedding_model"] == DEFAULT_HF_MODEL


def wall(cmd: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Seconds from starting ``cmd`` to its exit, and the CPU seconds it used (user + system:
    what other processes on the machine inflate less), ``runs`` times after one unmeasured
    run."""
    times, cpu = [], []
    for i in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        took = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        if i:
            times.append(took)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times, cpu


def breakdown(store: Path, runs: int) -> dict[str, float]:
    """Median seconds of each step of a search in a fresh process, from starting the process
    to its exit."""
    parts: list[dict[str, float]] = []
    for _ in range(runs):
        started = time.time()  # wall clock: the child's is the same clock
        done = subprocess.run(
            [sys.executable, "-c", BREAKDOWN, str(store), QUERY],
            capture_output=True,
            text=True,
            check=False,
        )
        exited = time.time()
        if done.returncode != 0:
            raise RuntimeError(f"the breakdown failed:\n{done.stderr[-2000:]}")
        steps: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
        steps["start"] = steps.pop("began") - started
        steps["exit"] = exited - steps.pop("ended")
        parts.append(steps)
    return {step: statistics.median(p[step] for p in parts) for step in parts[0]}


def heaviest_imports(args: list[str], top: int = 8) -> list[tuple[str, float]]:
    """The top-level packages ``vectordb ARGS`` spends the most importing (cumulative s)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vectordb_manager", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    totals: dict[str, float] = {}
    for cumulative_us, indent, name in re.findall(
        r"^import time:\s+\d+ \|\s+(\d+) \| ( *)([\w.]+)$", done.stderr, re.M
    ):
        if not indent:  # imported at the top level: its own and its imports' time
            top_name = name.split(".")[0]
            totals[top_name] = totals.get(top_name, 0.0) + int(cumulative_us) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def row(key: str, measure: str, times: list[float], cpu: list[float], limit: float | None) -> Row:
    med = statistics.median(times)
    cells = {
        "median": common.fmt_s(med),
        "min": common.fmt_s(min(times)),
        "max": common.fmt_s(max(times)),
        "cpu": common.fmt_s(statistics.median(cpu)),
    }
    targets = [Target("cold", f"{key} median", med, limit, "s")] if limit else []
    return Row(f"cold.{key}", measure, cells, {"median": med}, targets)


def bench(args: argparse.Namespace) -> PartResult:
    tmp = Path(tempfile.mkdtemp(prefix="bench_cold_"))
    try:
        store = tmp / "store"
        t0 = time.perf_counter()
        build_store(store, args.n, args.seed)
        common.log(f"- built a {args.n:,}-document store in {time.perf_counter() - t0:.1f} s")
        vectordb = cli()
        at = ["--path", str(store)]
        commands = [
            ("import", "`python -c \"import vectordb_manager\"`",
             [sys.executable, "-c", "import vectordb_manager"], TARGET_IMPORT),
            ("version", "`vectordb --version`", [*vectordb, "--version"], None),
            ("stats", f"`vectordb stats` ({args.n:,} documents)", [*vectordb, *at, "stats"],
             TARGET_STATS),
            ("search", f"`vectordb search QUERY -k 5` ({args.n:,} documents, the offline model)",
             [*vectordb, *at, "search", QUERY, "-k", "5"], TARGET_SEARCH),
        ]  # fmt: skip
        rows = []
        for key, measure, cmd, limit in commands:
            times, cpu = wall(cmd, args.runs)
            common.log(
                f"- {key}: median {statistics.median(times):.3f} s "
                f"({', '.join(f'{t:.3f}' for t in times)})"
            )
            rows.append(row(key, measure, times, cpu, limit))
        steps = breakdown(store, args.runs)
        common.log("- search breakdown: " + ", ".join(f"{k} {v:.3f} s" for k, v in steps.items()))
        heavy = heaviest_imports([*at, "search", QUERY, "-k", "5"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    order = ["start", "imports", "model", "open", "embed", "search", "exit"]
    labels = {
        "start": "starting the interpreter",
        "exit": "exiting (`os._exit`, as `cli.run` does: no teardown)",
        "imports": "imports (the CLI, the engine, LangChain's Document, FAISS, NumPy)",
        "model": "loading the model",
        "open": f"opening the store ({args.n:,} documents)",
        "embed": "embedding the query (the model's first)",
        "search": "searching (k=5, exact)",
    }
    parts = Table(
        "`vectordb search`: where its time goes (fresh process, medians)",
        [("seconds", "seconds")],
        [Row(f"cold.step.{s}", labels[s], {"seconds": common.fmt_s(steps[s])},
             {"seconds": steps[s]}) for s in order],
        notes=["heaviest imports of the real command (`python -X importtime`, cumulative): "
               + ", ".join(f"{name} {common.fmt_s(s)}" for name, s in heavy)],
    )  # fmt: skip
    columns = [("median", "median"), ("min", "min"), ("max", "max"), ("cpu", "CPU (median)")]
    title = f"Cold start: fresh processes, wall time to exit ({args.runs} runs each)"
    return PartResult(
        "cold",
        "Cold start of the package and the command line",
        [Table(title, columns, rows), parts],
        facts={"n": args.n, "runs": args.runs, **{f"step_{k}": v for k, v in steps.items()}},
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="documents (default 100000)")
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each (default 5)")
    args = parser.parse_args(argv)
    if args.n < 10 or args.runs < 1:
        parser.error("--n must be at least 10 and --runs at least 1")
    common.run_part(args, bench)


if __name__ == "__main__":
    main()
