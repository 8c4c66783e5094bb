"""HNSW part: ours with ``index="hnsw"`` on N documents: build, compact, reopen, search.

    .venv/bin/python benchmarks/bench_hnsw.py --n 1000000    # ~7 minutes on 2 cores
    .venv/bin/python benchmarks/bench_hnsw.py --n 50000      # quick

Same data as ``bench_store.py``. Ours is built with ``add_embeddings`` in batches of 10,000
(every batch durable; M=32, efConstruction=100, the store's defaults), then ``compact()``
merges the segments and writes the HNSW graph, so that reopening loads the graph instead of
rebuilding it. The store is then reopened with ``ef_search`` (default 128) and searched one
query at a time: p50, p95 and recall@10 against exact search (numpy); then reopened with
each ``--sweep`` efSearch (default 64, 96) for the trade-off between the two.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common
from benchmarks.common import DIM, K, PartResult, PrecomputedEmbeddings, Table, Target

BUILD_BATCH = 10_000


def bench(args: argparse.Namespace) -> PartResult:
    from vectordb_manager import LocalVectorStore

    data = common.make_dataset(args.n, args.queries, args.seed)
    truth = common.exact_top_k(data.vectors, data.queries)
    queries = data.queries.tolist()
    work = Path(tempfile.mkdtemp(prefix="bench_hnsw_"))
    path = work / "ours_hnsw"
    emb = PrecomputedEmbeddings()
    try:

        def build() -> Any:
            store = LocalVectorStore(emb, path, distance="cosine", index="hnsw")
            t0 = time.perf_counter()
            for a in range(0, data.n, BUILD_BATCH):
                b = min(a + BUILD_BATCH, data.n)
                store.add_embeddings(data.pairs(a, b), data.metadatas[a:b], ids=data.ids[a:b])
                if (b // BUILD_BATCH) % 10 == 0 or b == data.n:
                    spent = time.perf_counter() - t0
                    common.log(
                        f"- hnsw build: {b:,} of {data.n:,} in {spent:.0f} s "
                        f"(about {spent * (data.n - b) / b:.0f} s to go)"
                    )
            return store

        t_build, store = common.timed(build)
        t_compact, _ = common.timed(store.compact)
        common.log(
            f"- hnsw: built in {common.fmt_s(t_build)}, compacted in {common.fmt_s(t_compact)}"
        )
        del store
        gc.collect()
        t_open, store = common.timed(
            lambda: LocalVectorStore(
                emb, path, distance="cosine", index="hnsw", ef_search=args.ef_search
            )
        )
        t_first, _ = common.timed(
            lambda: store.similarity_search_with_score_by_vector(queries[0], K)
        )
        res = common.measure_interleaved({"ours": common.store_searcher(store)}, queries)["ours"]
        p50, p95 = common.pct(res[0], 50), common.pct(res[0], 95)
        rec = common.recall(res[1], truth, data.ids)
        common.log(
            f"- hnsw efSearch={args.ef_search}: p50 {common.fmt_s(p50)}, recall@10 {rec:.3f}, "
            f"reopen {common.fmt_s(t_open)}"
        )
        store = None  # (its memory, before the next opens)
        sweep: list[tuple[int, float, float]] = []  # (efSearch, p50, recall): the trade-off
        for ef in sorted(set(args.sweep) - {args.ef_search}):
            gc.collect()
            other = LocalVectorStore(emb, path, distance="cosine", index="hnsw", ef_search=ef)
            other.similarity_search_with_score_by_vector(queries[0], K)
            got = common.measure_interleaved({"ours": common.store_searcher(other)}, queries)
            sweep.append((ef, common.pct(got["ours"][0], 50), common.recall(got["ours"][1],
                                                                            truth, data.ids)))
            common.log(f"- hnsw efSearch={ef}: p50 {common.fmt_s(sweep[-1][1])}, "
                       f"recall@10 {sweep[-1][2]:.3f}")
            del other
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ef = f"efSearch={args.ef_search}"
    rows = [
        common.system_row(
            "hnsw.build",
            f"build + persist {data.n:,} (batches of {BUILD_BATCH:,})",
            {"ours": t_build},
            ratios=False,
        ),
        common.system_row(
            "hnsw.compact",
            "  then compact() (merges, writes the graph)",
            {"ours": t_compact},
            ratios=False,
        ),
        common.system_row(
            "hnsw.open", "reopen (loads the graph) / first query", {"ours": t_open}, ratios=False
        ),
        common.system_row(
            "hnsw.p50",
            f"search p50 ({ef}, {len(queries)} queries)",
            {"ours": p50},
            ratios=False,
            targets=[Target("hnsw", "p50", p50, args.p50_limit, "s")],
        ),
        common.system_row("hnsw.p95", "  p95", {"ours": p95}, ratios=False),
        common.system_row(
            "hnsw.recall",
            "  recall@10 vs exact",
            {"ours": rec},
            "recall",
            ratios=False,
            targets=[Target("hnsw", "recall@10", rec, args.recall_min, "recall", ">=")],
        ),
    ]
    for other_ef, p, r in sweep:
        row = common.system_row(
            f"hnsw.ef{other_ef}",
            f"  efSearch={other_ef} (the store's ``ef_search``): p50 / recall@10",
            {"ours": p},
            ratios=False,
        )
        row.cells["ours"] += f" / {r:.3f}"
        rows.append(row)
    rows[2].cells["ours"] += f" / {common.fmt_s(t_first)}"
    table = Table(
        f"HNSW, {data.n:,} x {DIM} (M=32, efConstruction=100, {ef})", [("ours", "ours")], rows
    )
    return PartResult(
        "hnsw",
        f"HNSW, N = {data.n:,}",
        [table],
        facts={
            "n": data.n,
            "queries": len(queries),
            "ef_search": args.ef_search,
            "p50": p50,
            "recall": rec,
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    common.size_options(parser, 1_000_000, 200)
    parser.add_argument("--ef-search", type=int, default=128, help="efSearch (default 128)")
    parser.add_argument(
        "--p50-limit",
        type=float,
        default=0.001,
        metavar="SECONDS",
        help="target p50 (default 0.001)",
    )
    parser.add_argument(
        "--recall-min", type=float, default=0.95, help="target recall@10 (default 0.95)"
    )
    parser.add_argument(
        "--sweep",
        type=lambda text: [int(x) for x in text.split(",") if x],
        default=[64, 96],
        metavar="EF,EF",
        help="other efSearch values measured after the store is reopened (default 64,96)",
    )
    common.run_part(common.parse_sized(parser, argv), bench)


if __name__ == "__main__":
    main()
