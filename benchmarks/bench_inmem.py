"""InMemoryVectorStore part: langchain_core's brute-force store on the local part's data.

    .venv/bin/python benchmarks/bench_inmem.py --n 100000 --queries 20

Same data as ``bench_store.py`` (same generator and seed). `InMemoryVectorStore` keeps every
vector as a list of Python floats (about 16 KB per 384-d document, ~17 GB at 1M) and turns
them all into one numpy array on every query, so the suite runs this part in a process of
its own, with few queries, and only when enough memory is available (`needed_bytes`).
Filters are callables on a `Document`, as that store takes them. Nothing is persisted: the
store has no incremental save (``dump`` writes everything as JSON).

Its rows carry the keys of ``bench_store.py``'s rows and fill their "mem" column.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common, machine
from benchmarks.common import (
    DIM,
    FILTERS,
    SYSTEM_COLUMNS,
    K,
    PartResult,
    PrecomputedEmbeddings,
    Row,
    Searcher,
    Table,
)

BYTES_PER_DOC = 3_500  # the store's dict, metadata, text and id per document, measured


def needed_bytes(n: int, dim: int = DIM) -> int:
    """Peak memory of this part at ``n`` documents: the vectors as lists of Python floats
    (8-byte pointer + 24-byte float each), the float64 array a query builds from them plus
    its temporaries (16 bytes per float), and the rest of each document (about 21 GB at 1M;
    21.8 KB per document measured at 50k)."""
    return n * (dim * (32 + 16) + BYTES_PER_DOC)


def bench(args: argparse.Namespace) -> PartResult:
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    baseline = machine.rss_bytes()
    t0 = time.perf_counter()
    data = common.make_dataset(args.n, args.queries, args.seed)
    truth = common.exact_top_k(data.vectors, data.queries)
    truths = {
        s.label: common.exact_top_k(data.vectors, data.queries, K, np.flatnonzero(s.mask(data.n)))
        for s in FILTERS
    }
    queries = data.queries.tolist()
    vectors: dict[str, list[float]] = {}
    for a in range(0, data.n, 50_000):
        chunk = data.vectors[a : a + 50_000].tolist()
        vectors.update(zip(data.texts[a : a + 50_000], chunk, strict=True))
    data.vectors = np.empty((0, DIM), dtype=np.float32)
    common.log(f"- data: {data.n:,} x {DIM} as Python lists in {time.perf_counter() - t0:.1f} s")

    store = InMemoryVectorStore(PrecomputedEmbeddings(DIM, documents=vectors))
    t_add = 0.0
    for a in range(0, data.n, 10_000):
        docs = [
            Document(page_content=t, metadata=m)
            for t, m in zip(data.texts[a : a + 10_000], data.metadatas[a : a + 10_000], strict=True)
        ]
        t1 = time.perf_counter()
        store.add_documents(docs, ids=data.ids[a : a + 10_000])
        t_add += time.perf_counter() - t1
    del vectors, docs
    gc.collect()
    held = machine.rss_bytes() - baseline
    common.log(f"- add_documents: {common.fmt_s(t_add)}; holding it: {common.fmt_mb(held)}")

    def searcher(passes: Any = None) -> Searcher:
        def flt(doc: Document) -> bool:
            return bool(passes(doc.metadata))

        where = None if passes is None else flt
        return Searcher(
            lambda q: store.similarity_search_with_score_by_vector(q, K, filter=where),
            common.doc_hits,
        )

    q = f" ({len(queries)} queries)"
    res = common.measure_interleaved({"mem": searcher()}, queries, warmup=1)["mem"]
    p50 = common.pct(res[0], 50)
    rows = [
        Row(
            "build",
            f"add_documents of {data.n:,}",
            {"mem": f"{common.fmt_s(t_add)} (add_documents, in memory only)"},
            {"mem": t_add},
        ),
        Row(
            "search.p50", f"exact search p50 (k={K})", {"mem": common.fmt_s(p50) + q}, {"mem": p50}
        ),
        Row("search.p95", "  p95", {"mem": common.fmt_s(common.pct(res[0], 95))}),
        Row(
            "search.recall",
            "  recall@10 vs exact",
            {"mem": f"{common.recall(res[1], truth, data.ids):.3f}"},
        ),
    ]
    common.log(f"- search: p50 {common.fmt_s(p50)}")
    for spec in FILTERS:
        res = common.measure_interleaved({"mem": searcher(spec.passes)}, queries, warmup=1)["mem"]
        fill = common.fill_rate(res[1], spec.passes)
        rec = common.recall(res[1], truths[spec.label], data.ids)
        f50 = common.pct(res[0], 50)
        rows.append(
            Row(
                f"filter.{spec.label}.fill",
                f"filter ({spec.label} pass): fill rate / recall@10",
                {"mem": f"{fill:.1%} / {rec:.3f}"},
            )
        )
        rows.append(
            Row(
                f"filter.{spec.label}.p50",
                f"  filtered ({spec.label}) p50",
                {"mem": common.fmt_s(f50) + q},
            )
        )
        common.log(f"- filter {spec.label}: p50 {common.fmt_s(f50)}")
    rows.append(
        Row(
            "rss.peak",
            "peak RSS",
            {"mem": f"{common.fmt_mb(machine.peak_rss_bytes())} (built in process)"},
        )
    )
    rows.append(
        Row(
            "rss.delta",
            "RSS holding the store, minus RSS after imports",
            {"mem": f"{common.fmt_mb(held)} (RSS holding it)"},
            {"mem": float(held)},
        )
    )
    table = Table(f"InMemoryVectorStore, {data.n:,} x {DIM}", SYSTEM_COLUMNS, rows)
    return PartResult(
        "inmem",
        f"InMemoryVectorStore, N = {data.n:,}",
        [table],
        facts={
            "n": data.n,
            "queries": len(queries),
            "held_bytes": held,
            "bytes_per_doc": held / data.n,
            "needed_estimate": needed_bytes(data.n),
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    common.size_options(parser, 100_000, 20, "; each reads every vector")
    common.run_part(common.parse_sized(parser, argv), bench)


if __name__ == "__main__":
    main()
