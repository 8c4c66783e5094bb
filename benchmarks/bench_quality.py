"""Quality part: recall@10 and nDCG@10 on a judged set over CPython's reference topics.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_quality.py      # ~1 minute

Documents: every topic of ``pydoc_data.topics`` written as a file and split by
`DocumentProcessor` with the default configuration (chunks of up to 1,000 characters, 200 of
overlap; ~640 chunks), each chunk carrying its topic id in ``metadata["topic"]``, embedded
once with the offline all-MiniLM-L6-v2. Queries: the hand-written judged set
(``benchmarks/data/pydoc_topics_qrels.json``): natural-language questions and exact
identifiers (``__getattr__``, ``str.format_map``...), each with the topics that answer it.

Judging is by document: a retrieved chunk counts if its topic satisfies one of the query's
answer groups (a group is a topic, or alternatives; a topic whose text another topic reprints,
such as ``if`` inside ``compound``, is satisfied by either), each group once, at the rank of
its first chunk among the top 10. recall@10 = groups found / groups; nDCG@10 = sum over found
groups of 1 / log2(1 + rank), over the same for the ideal ranking (min(groups, 10) hits at
ranks 1, 2, ...). Macro-averaged over queries, per query type and overall.

Systems: ours by vector (``similarity_search``), by keyword (``keyword_search``), hybrid
(``hybrid_search`` with ``fusion="rrf"`` and ``"weighted"``, their defaults otherwise); the
peers bm25s (stopwords + PyStemmer English), LangChain's ``BM25Retriever`` (its default
whitespace split) and the hand-built ``EnsembleRetriever([BM25Retriever, ours.as_retriever()],
weights=[0.5, 0.5])`` (LangChain's weighted RRF), cut to its top 10.
"""

from __future__ import annotations

import argparse
import math
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

from benchmarks import common, kwcorpus
from benchmarks.common import K, PartResult, Row, Table, Target

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NEEDS_API = "not measured (needs the API: store.keyword_search, hybrid_search)"
TARGET_MARGIN = 0.001  # "beats": hybrid minus the best other at least this
KINDS = (("question", "questions"), ("identifier", "identifiers"), ("all", "all"))


def judge(topics_ranked: list[str], groups: tuple[frozenset[str], ...]) -> tuple[float, float]:
    """(recall@10, nDCG@10) of a ranked list of chunks' topics for one query."""
    found: dict[int, int] = {}  # group -> 1-based rank of its first chunk
    for rank, topic in enumerate(topics_ranked[:K], start=1):
        for g, members in enumerate(groups):
            if g not in found and topic in members:
                found[g] = rank
    dcg = sum(1.0 / math.log2(1 + r) for r in found.values())
    ideal = sum(1.0 / math.log2(1 + r) for r in range(1, min(len(groups), K) + 1))
    return len(found) / len(groups), dcg / ideal


def scores(
    system: Callable[[str], list[str]], judged: list[kwcorpus.Judged]
) -> dict[str, tuple[float, float]]:
    """Mean (recall@10, nDCG@10) per query kind and overall."""
    per: dict[str, list[tuple[float, float]]] = {"question": [], "identifier": [], "all": []}
    for j in judged:
        got = judge(system(j.q), j.groups)
        per[j.kind].append(got)
        per["all"].append(got)
    return {
        kind: (statistics.fmean(r for r, _ in v), statistics.fmean(n for _, n in v))
        for kind, v in per.items()
        if v
    }


def topics_of(docs: Sequence[Any]) -> list[str]:
    return [str(d.metadata["topic"]) for d in docs]


def chunks_of_topics(work: Path) -> list[Any]:
    from vectordb_manager import DocumentProcessor, VectorDBConfig

    root = work / "topics"
    root.mkdir()
    for name in sorted(kwcorpus.topics):
        (root / f"{name}.txt").write_text(kwcorpus.topics[name], encoding="utf-8")
    chunks = DocumentProcessor.from_config(VectorDBConfig(local_path=str(work / "x"))).process(
        [root]
    )
    for i, c in enumerate(chunks):
        c.metadata = {
            "topic": Path(c.metadata["source"]).stem,
            "chunk_index": c.metadata.get("chunk_index", 0),
        }
        c.id = f"c{i}"
    return chunks


def bench(args: argparse.Namespace) -> PartResult:
    work = Path(tempfile.mkdtemp(prefix="bench_quality_"))
    try:
        return _bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, work: Path) -> PartResult:
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever

    from benchmarks.bench_keyword import Bm25s, has_api
    from vectordb_manager import EmbeddingService, LocalVectorStore, VectorDBConfig

    judged = kwcorpus.load_judged()
    chunks = chunks_of_topics(work)
    texts = [c.page_content for c in chunks]
    model = EmbeddingService.from_config(VectorDBConfig()).embeddings
    t0 = time.perf_counter()
    vectors = np.asarray(model.embed_documents(texts), dtype=np.float32)
    common.log(f"- quality: {len(chunks)} chunks embedded in {time.perf_counter() - t0:.1f} s")
    store = LocalVectorStore(model, work / "store", distance="cosine")
    store.add_embeddings(
        list(zip(texts, vectors, strict=True)),
        [c.metadata for c in chunks],
        ids=[str(c.id) for c in chunks],
    )
    topic_of = {str(c.id): str(c.metadata["topic"]) for c in chunks}
    peer = Bm25s(texts)
    lc = BM25Retriever.from_documents(chunks, k=K)
    ensemble = EnsembleRetriever(
        retrievers=[lc, store.as_retriever(search_kwargs={"k": K})], weights=[0.5, 0.5]
    )
    systems: dict[str, tuple[str, Callable[[str], list[str]] | None]] = {
        "vector": ("ours: vector (similarity_search, all-MiniLM-L6-v2)",
                   lambda q: topics_of(store.similarity_search(q, k=K))),
        "keyword": ("ours: keyword (keyword_search, BM25)", None),
        "rrf": ("ours: hybrid, fusion='rrf'", None),
        "weighted": ("ours: hybrid, fusion='weighted'", None),
        "ensemble": ("EnsembleRetriever([BM25Retriever, ours.as_retriever()], weights=[0.5, 0.5])",
                     lambda q: topics_of(ensemble.invoke(q)[:K])),
        "lc": ("BM25Retriever (rank-bm25, whitespace split)",
               lambda q: topics_of(lc.invoke(q))),
        "bm25s": ("bm25s (stopwords, PyStemmer English)",
                  lambda q: [topic_of[f"c{i}"] for i in peer.search(q)]),
    }  # fmt: skip
    if has_api():
        systems["keyword"] = (
            systems["keyword"][0],
            lambda q: topics_of(store.keyword_search(q, k=K)),
        )
        for fusion in ("rrf", "weighted"):
            systems[fusion] = (
                systems[fusion][0],
                lambda q, f=fusion: topics_of(store.hybrid_search(q, k=K, fusion=f)),
            )
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for name, (_, run) in systems.items():
        if run is not None:
            results[name] = scores(run, judged)
            common.log(
                f"- quality {name}: "
                + ", ".join(f"{k} R {r:.3f} nDCG {n:.3f}" for k, (r, n) in results[name].items())
            )

    targets: list[Target] = []
    rrf = results.get("rrf")
    for i, metric in enumerate(("recall@10", "nDCG@10")):
        others = [results[n]["all"][i] for n in ("vector", "keyword", "ensemble") if n in results]
        value = rrf["all"][i] - max(others) if rrf and len(others) == 3 else None
        what = f"rrf {metric} - best of vector/keyword/Ensemble" if rrf else NEEDS_API
        targets.append(Target("quality", what, value, TARGET_MARGIN, "recall", ">="))
    rows: list[Row] = []
    for name, (label, _) in systems.items():
        got = results.get(name)
        cells: dict[str, str] = {}
        values: dict[str, float] = {}
        for kind, _ in KINDS:
            if got is None:
                cells[f"r.{kind}"] = NEEDS_API if kind == "question" else "-"
                continue
            r, n = got[kind]
            cells[f"r.{kind}"], cells[f"n.{kind}"] = f"{r:.3f}", f"{n:.3f}"
            values[f"r.{kind}"], values[f"n.{kind}"] = r, n
        rows.append(Row(f"q.{name}", label, cells, values, targets if name == "rrf" else []))
    n_q = sum(1 for j in judged if j.kind == "question")
    columns = [
        (f"{m}.{kind}", f"{label} {metric}")
        for kind, label in KINDS
        for m, metric in (("r", "R@10"), ("n", "nDCG@10"))
    ]
    title = (
        f"Retrieval quality: {n_q} questions and {len(judged) - n_q} identifiers over "
        f"{len(chunks)} chunks of CPython's reference topics (judged by topic)"
    )
    notes = [
        "judged set: benchmarks/data/pydoc_topics_qrels.json (hand-written); a chunk counts "
        "if its topic answers the query; each answer group once, at its first chunk's rank; "
        "macro averages",
        "EnsembleRetriever's output is cut to its top 10; BM25Retriever and the ensemble are "
        "what a LangChain user builds by hand today",
    ]
    return PartResult(
        "quality",
        "Retrieval quality on a judged set",
        [Table(title, columns, rows, notes, first="system")],
        facts={"chunks": len(chunks), "queries": len(judged), "questions": n_q},
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    args = parser.parse_args(argv)
    common.run_part(args, bench)


if __name__ == "__main__":
    main()
