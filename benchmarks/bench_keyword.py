"""Keyword part: BM25 keyword and hybrid search in the store, against bm25s and BM25Retriever.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_keyword.py             # 100k, ~10 min
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_keyword.py --n 20000 --lc-queries 3

Corpus: `kwcorpus.make_corpus` (real text, CPython's reference topics and the stdlib's
docstrings in ~600-character passages, repeated with Zipf-distributed word substitutions up
to N; see that module). Vectors: `HashingEmbeddings` (no model). Queries: the judged set's
questions and identifiers (``benchmarks/data``), one at a time. ``--only adding`` runs (c)
and (e) alone (the two targets of adding).

In one run, side by side:
  (a) keyword search p50/p95 (k=10): ours (``keyword_search_with_score``) against bm25s (its
      own index of the same texts, PyStemmer's English stemmer and English stopwords; the
      query's tokenization is timed as ours' analysis is) and LangChain's ``BM25Retriever``
      (rank-bm25, its default whitespace split; fewer queries, it scores every document);
  (b) hybrid search p50 (``hybrid_search_with_score``, rrf and weighted) against the sum of
      vector p50 (``similarity_search_with_score``) and keyword p50, interleaved;
  (c) adding N documents in batches of 1,000, durable after each, with the text index and
      with ``keyword_index=False``, the two stores taking turns batch by batch: with
      ``add_texts`` (``HashingEmbeddings`` embedding inside the add, as an application adds;
      the target), and again with the vectors precomputed (``add_embeddings``: the stores'
      own cost alone, for information);
  (d) the text index's bytes on disk (the store with it minus the store without) against the
      raw text, and open + first query in fresh processes, with and without;
  (e) ingestion with the offline model (``add_documents`` of the topics' chunks in batches of
      64, the two stores taking turns), with and without the index.
Until the engine and the API have landed, our rows say what they need and the peers run.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common, kwcorpus, machine
from benchmarks.bench_store import dir_bytes
from benchmarks.common import K, PartResult, Row, Table, Target

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BATCH = 1_000
INGEST_BATCH = 64
TARGET_VS_BM25S = 2.0
TARGET_LC_OVER_OURS = 20.0
TARGET_HYBRID = 1.2
TARGET_ADD = 1.25
TARGET_INDEX_VS_TEXT = 0.5
TARGET_OPEN = 1.2
TARGET_INGEST = 1.05
NEEDS_API = "not measured (needs the API: store.keyword_search, hybrid_search)"
NEEDS_OPTION = "not measured (needs the store option keyword_index=False)"
COLUMNS = [
    ("ours", "ours"),
    ("bm25s", "bm25s"),
    ("lc", "BM25Retriever"),
    ("without", "ours, keyword_index=False"),
    ("ratio", "ratio"),
]


# -- what has landed -------------------------------------------------------------------------
def has_api() -> bool:
    """Whether the store's keyword/hybrid methods and the engine's text index have landed."""
    from vectordb_manager import LocalVectorStore
    from vectordb_manager.engine.core import Engine

    methods = ("keyword_search_with_score", "hybrid_search_with_score")
    return hasattr(Engine, "keyword_search") and all(hasattr(LocalVectorStore, m) for m in methods)


def has_option() -> bool:
    from vectordb_manager.vectorstores.engine_store import STORE_OPTIONS

    return "keyword_index" in STORE_OPTIONS


# -- timing ----------------------------------------------------------------------------------
def interleaved(
    runs: dict[str, Callable[[str], Any]], queries: list[str], warmup: int = 3
) -> dict[str, tuple[list[float], list[Any]]]:
    """Per-query latencies and results; systems take turns on each query (rotating order)."""
    names = list(runs)
    for q in queries[:warmup]:
        for name in names:
            runs[name](q)
    out: dict[str, tuple[list[float], list[Any]]] = {n: ([], []) for n in names}
    for i, q in enumerate(queries):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            t0 = time.perf_counter()
            got = runs[name](q)
            out[name][0].append(time.perf_counter() - t0)
            out[name][1].append(got)
    return out


def p50_p95(times: list[float]) -> tuple[float, float]:
    return common.pct(times, 50), common.pct(times, 95)


def cell(value: float | None, unit: str = "s", missing: str = "-") -> str:
    return missing if value is None else common.FORMATS[unit](value)


# -- the peers -------------------------------------------------------------------------------
class Bm25s:
    """bm25s over the texts: English stopwords, PyStemmer's English stemmer (as ours)."""

    def __init__(self, texts: list[str]) -> None:
        import bm25s
        import Stemmer

        self._bm25s = bm25s
        self.stemmer = Stemmer.Stemmer("english")
        t0 = time.perf_counter()
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=self.stemmer, show_progress=False)
        self.index = bm25s.BM25()
        self.index.index(tokens, show_progress=False)
        self.build_s = time.perf_counter() - t0

    def search(self, query: str) -> list[int]:
        tokens = self._bm25s.tokenize(
            [query], stopwords="en", stemmer=self.stemmer, return_ids=False, show_progress=False
        )
        if not tokens[0]:
            return []
        docs, _scores = self.index.retrieve(tokens, k=K, show_progress=False, n_threads=1)
        return [int(d) for d in docs[0]]

    def save_bytes(self, path: Path) -> int:
        self.index.save(str(path), show_progress=False)
        return dir_bytes(path)[0]


def lc_bm25(texts: list[str]) -> tuple[Any, float]:
    from langchain_community.retrievers import BM25Retriever

    t0 = time.perf_counter()
    retriever = BM25Retriever.from_texts(texts, ids=[f"d{i}" for i in range(len(texts))], k=K)
    return retriever, time.perf_counter() - t0


# -- ours ------------------------------------------------------------------------------------
def open_store(path: Path, with_index: bool, embedding: Any = None) -> Any:
    from vectordb_manager import HashingEmbeddings, LocalVectorStore

    options: dict[str, Any] = {} if with_index else {"keyword_index": False}
    return LocalVectorStore(embedding or HashingEmbeddings(), path, distance="cosine", **options)


def add_rows(
    args: argparse.Namespace, texts: list[str], vectors: np.ndarray[Any, Any], work: Path
) -> tuple[list[Row], dict[str, Path]]:
    """(c): N documents in batches of 1,000 into both stores, taking turns: with ``add_texts``
    (`HashingEmbeddings` computing the vectors inside each add: the target's measure), then
    into two more stores with the vectors precomputed (``add_embeddings``: the stores' own
    cost alone, for information). Returns the rows and the paths of the first two stores."""
    option = has_option()
    metas = [{"i": i, "bucket": i % 100} for i in range(len(texts))]
    rows: list[Row] = []
    paths: dict[str, Path] = {}
    for kind in ("texts", "vectors"):
        where = {"with": work / f"with_{kind}", "without": work / f"without_{kind}"}
        stores = {"with": open_store(where["with"], True)}
        if option:
            stores["without"] = open_store(where["without"], False)
        times: dict[str, list[float]] = {name: [] for name in stores}
        for j, a in enumerate(range(0, len(texts), BATCH)):
            b = min(a + BATCH, len(texts))
            ids = [f"d{i}" for i in range(a, b)]
            pairs = list(zip(texts[a:b], vectors[a:b], strict=True)) if kind == "vectors" else []
            order = list(stores) if j % 2 == 0 else list(reversed(stores))
            for name in order:
                t0 = time.perf_counter()
                if kind == "texts":
                    stores[name].add_texts(texts[a:b], metas[a:b], ids=ids)
                else:
                    stores[name].add_embeddings(pairs, metas[a:b], ids=ids)
                times[name].append(time.perf_counter() - t0)
        total = {name: sum(ts) for name, ts in times.items()}
        common.log(
            f"- add ({kind}): " + ", ".join(f"{n} {common.fmt_s(t)}" for n, t in total.items())
        )
        r = common.ratio(total.get("with"), total.get("without"))
        cells = {
            "ours": cell(total["with"]) + ("" if option and has_api() else " (no index yet)"),
            "without": cell(total.get("without"), missing=NEEDS_OPTION),
            "ratio": common.fmt_ratio(r),
        }
        if kind == "texts":
            for s in stores.values():  # drop files compaction replaced, so that sizes compare
                s.vacuum(older_than=0.0)
            paths = where
            what = "with/without" if option else NEEDS_OPTION
            rows.append(
                Row(
                    "kw.add",
                    f"add {len(texts):,} with add_texts in batches of {BATCH:,}, durable after "
                    "each (HashingEmbeddings embeds inside the add; the stores take turns)",
                    cells,
                    dict(total),
                    [Target("kwadd", what, r, TARGET_ADD)],
                )
            )
        else:
            del stores
            for path in where.values():
                shutil.rmtree(path, ignore_errors=True)
            rows.append(
                Row(
                    "kw.add.vectors",
                    "  the same with the vectors precomputed (add_embeddings): the stores' "
                    "own cost alone (for information, no target)",
                    cells,
                    dict(total),
                )
            )
    return rows, paths


def search_rows(
    args: argparse.Namespace, texts: list[str], store: Any, queries: list[str], work: Path
) -> tuple[list[Row], dict[str, Any]]:
    """(a) and (b): keyword p50 ours / bm25s / BM25Retriever, hybrid against the sum."""
    facts: dict[str, Any] = {}
    peer = Bm25s(texts)
    common.log(f"- bm25s: indexed {len(texts):,} in {peer.build_s:.1f} s")
    api = has_api()
    runs: dict[str, Callable[[str], Any]] = {"bm25s": peer.search}
    if api:
        runs["ours"] = lambda q: store.keyword_search_with_score(q, k=K)
        runs["vector"] = lambda q: store.similarity_search_with_score(q, k=K)
        runs["rrf"] = lambda q: store.hybrid_search_with_score(q, k=K, fusion="rrf")
        runs["weighted"] = lambda q: store.hybrid_search_with_score(q, k=K, fusion="weighted")
    else:
        runs["vector"] = lambda q: store.similarity_search_with_score(q, k=K)
    res = interleaved(runs, queries * args.repeats)
    stats = {name: p50_p95(ts) for name, (ts, _) in res.items()}
    common.log("- p50: " + ", ".join(f"{n} {common.fmt_s(s[0])}" for n, s in stats.items()))

    lc, lc_build = lc_bm25(texts)
    common.log(f"- BM25Retriever: built over {len(texts):,} in {lc_build:.1f} s")
    lc_q = queries[: args.lc_queries]
    lc_times: list[float] = []
    for q in lc_q:
        lc_times.append(common.timed(functools.partial(lc.invoke, q))[0])
    lc_p50, lc_p95 = p50_p95(lc_times)
    common.log(f"- BM25Retriever p50 {common.fmt_s(lc_p50)} ({len(lc_q)} queries)")
    del lc

    ours = stats.get("ours")
    r_bm25s = common.ratio(ours[0] if ours else None, stats["bm25s"][0])
    r_lc = common.ratio(lc_p50, ours[0] if ours else None)
    n_q = f"{len(queries)} queries x {args.repeats}"
    agree = None
    if api:
        pairs = zip(res["ours"][1], res["bm25s"][1], strict=True)
        agree = statistics.fmean(
            len({d.id for d, _ in a} & {f"d{i}" for i in b}) / K for a, b in pairs
        )
    rows = [
        Row(
            "kw.p50",
            f"keyword search p50 (k={K}; {n_q}; BM25Retriever: {len(lc_q)} queries)",
            {
                "ours": cell(ours[0] if ours else None, missing=NEEDS_API),
                "bm25s": cell(stats["bm25s"][0]),
                "lc": cell(lc_p50),
                "ratio": f"ours/bm25s {common.fmt_ratio(r_bm25s)}; BM25Retriever/ours "
                f"{common.fmt_ratio(r_lc)}",
            },
            {
                "bm25s": stats["bm25s"][0],
                "lc": lc_p50,
                **({"ours": ours[0]} if ours else {}),
            },
            [
                Target("keyword", "ours/bm25s" if api else NEEDS_API, r_bm25s, TARGET_VS_BM25S),
                Target(
                    "keyword",
                    "BM25Retriever/ours" if api else NEEDS_API,
                    r_lc,
                    TARGET_LC_OVER_OURS,
                    op=">=",
                ),
            ],
        ),
        Row(
            "kw.p95",
            "  p95",
            {
                "ours": cell(ours[1] if ours else None),
                "bm25s": cell(stats["bm25s"][1]),
                "lc": cell(lc_p95),
            },
        ),
        Row(
            "kw.build",
            f"  peers' index of {len(texts):,} texts, built in memory (ours: see adding)",
            {"bm25s": cell(peer.build_s), "lc": cell(lc_build)},
        ),
        Row(
            "kw.agree",
            "  top 10 shared with bm25s (both BM25 with stemming; parameters may differ)",
            {"ours": "-" if agree is None else f"{agree:.1%}"},
        ),
    ]
    vec = stats["vector"][0]
    rows.append(
        Row(
            "kw.vector",
            "vector search p50 (similarity_search_with_score, HashingEmbeddings, flat)",
            {"ours": cell(vec)},
            {"ours": vec},
        )
    )
    for fusion in ("rrf", "weighted"):
        got = stats.get(fusion)
        base = vec + ours[0] if ours else None
        r = common.ratio(got[0] if got else None, base)
        rows.append(
            Row(
                f"kw.hybrid.{fusion}",
                f"hybrid search p50, fusion={fusion!r}; ratio: / (vector p50 + keyword p50)",
                {
                    "ours": cell(got[0] if got else None, missing=NEEDS_API),
                    "ratio": common.fmt_ratio(r),
                },
                {"ours": got[0]} if got else {},
                [Target("hybrid", f"{fusion}/(vector + keyword)" if api else NEEDS_API, r,
                        TARGET_HYBRID)] if fusion == "rrf" else [],
            )
        )  # fmt: skip
    bm25s_bytes = peer.save_bytes(work / "bm25s")
    facts.update(bm25s_build_s=peer.build_s, lc_build_s=lc_build, bm25s_bytes=bm25s_bytes)
    return rows, facts


def size_open_rows(
    args: argparse.Namespace, texts: list[str], paths: dict[str, Path], bm25s_bytes: float
) -> list[Row]:
    """(d): the text index on disk against the raw text; open + first query, with and without."""
    raw = sum(len(t.encode()) for t in texts)
    with_b = dir_bytes(paths["with"])[0]
    option = has_option()
    without_b = dir_bytes(paths["without"])[0] if option else None
    index_b = with_b - without_b if without_b is not None and has_api() else None
    r = common.ratio(index_b, raw)
    rows = [
        Row(
            "kw.disk",
            f"text index on disk (store with it minus store without) / raw text "
            f"({common.fmt_mb(raw)})",
            {
                "ours": f"{common.fmt_mb(with_b)} store; index "
                + (common.fmt_mb(index_b) if index_b is not None else NEEDS_OPTION),
                "without": cell(without_b, "mb", NEEDS_OPTION),
                "bm25s": f"{cell(bm25s_bytes, 'mb')} (its saved index, no texts)",
                "ratio": common.fmt_ratio(r),
            },
            {"with": with_b, **({"without": without_b} if without_b is not None else {})},
            [Target("kwdisk", "index/text" if index_b is not None else NEEDS_OPTION, r,
                    TARGET_INDEX_VS_TEXT)],
        ),
    ]  # fmt: skip
    kids: dict[str, list[dict[str, Any]]] = {"with": [], "without": []} if option else {"with": []}
    for _ in range(args.child_repeats):
        for name, runs in kids.items():
            got = machine.run_child(
                Path(__file__), ["--child", name, "--path", str(paths[name])]
            ).json()
            if got["count"] != len(texts):
                raise AssertionError(f"{name} reopened {got['count']} docs, not {len(texts)}")
            runs.append(got)

    def med(name: str, key: str) -> float | None:
        vals = [c[key] for c in kids.get(name, []) if c.get(key) is not None]
        return statistics.median(vals) if vals else None

    first = {n: med(n, "first_vector") for n in ("with", "without")}
    r_open = common.ratio(first["with"], first["without"])
    common.log(f"- open + first vector query: {first}")
    rows.append(
        Row(
            "kw.open",
            f"open {len(texts):,} + first vector query, fresh process (median of "
            f"{args.child_repeats})",
            {
                "ours": cell(first["with"]),
                "without": cell(first["without"], missing=NEEDS_OPTION),
                "ratio": common.fmt_ratio(r_open),
            },
            {k: v for k, v in first.items() if v is not None},
            [Target("kwdisk", "open with/without" if option else NEEDS_OPTION, r_open,
                    TARGET_OPEN)],
        )
    )  # fmt: skip
    kw_first = med("with", "first_keyword")
    rows.append(
        Row(
            "kw.open.keyword",
            "  open + first keyword query, fresh process",
            {"ours": cell(kw_first, missing=NEEDS_API)},
        )
    )
    return rows


def child_main(kind: str, path: str) -> None:
    """Open one store, one vector query (then a keyword one), print JSON timings."""
    import vectordb_manager  # noqa: F401  (imports before the clock, as in an application)

    t0 = time.perf_counter()
    store = open_store(Path(path), kind == "with")
    t1 = time.perf_counter()
    store.similarity_search_with_score("How do I write a lambda expression?", k=K)
    t2 = time.perf_counter()
    first_keyword = None
    if kind == "with" and has_api():
        store.keyword_search_with_score("lambda expression", k=K)
        first_keyword = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "open": t1 - t0,
                "first_vector": t2 - t0,
                "first_keyword": first_keyword,
                "count": len(store),
            }
        )
    )


def ingest_rows(args: argparse.Namespace, work: Path) -> list[Row]:
    """(e): the topics' chunks added with the offline model, with and without the index."""
    from vectordb_manager import DocumentProcessor, EmbeddingService, VectorDBConfig

    root = work / "topics"
    root.mkdir()
    for name in sorted(kwcorpus.topics):
        (root / f"{name}.txt").write_text(kwcorpus.topics[name], encoding="utf-8")
    config = VectorDBConfig(local_path=str(work / "unused"))
    chunks = DocumentProcessor.from_config(config).process([root])[: args.ingest_chunks]
    model = EmbeddingService.from_config(VectorDBConfig()).embeddings
    model.embed_documents([c.page_content for c in chunks[:8]])  # load and warm up
    option = has_option()
    stores = {"with": open_store(work / "ing_with", True, model)}
    if option:
        stores["without"] = open_store(work / "ing_without", False, model)
    per_batch: dict[str, list[float]] = {name: [] for name in stores}
    for j, a in enumerate(range(0, len(chunks), INGEST_BATCH)):
        batch = chunks[a : a + INGEST_BATCH]
        for name in list(stores) if j % 2 == 0 else list(reversed(stores)):
            t0 = time.perf_counter()
            stores[name].add_documents(batch)
            per_batch[name].append(time.perf_counter() - t0)
    times = {name: sum(v) for name, v in per_batch.items()}
    # the median of the batches' ratios: the model's time is nearly all of each add and varies
    # from call to call (the ratio of the sums: 1.00-1.11x in runs of the same code)
    r = None
    if option:
        pairs = zip(per_batch["with"], per_batch["without"], strict=True)
        r = statistics.median([w / o for w, o in pairs])
    sums = common.ratio(times["with"], times.get("without"))
    common.log(
        f"- ingest with the model: ratio of sums {common.fmt_ratio(sums)}; per batch "
        + "; ".join(f"{k} " + " ".join(f"{t:.2f}" for t in v) for k, v in per_batch.items())
    )
    return [
        Row(
            "kw.ingest",
            f"ingestion with the offline model: {len(chunks)} chunks of the reference topics, "
            f"add_documents in batches of {INGEST_BATCH} (the stores take turns; ratio: the "
            "median of the batches' ratios)",
            {
                "ours": f"{cell(times['with'])} ({len(chunks) / times['with']:.1f} texts/s)",
                "without": cell(times.get("without"), missing=NEEDS_OPTION),
                "ratio": f"{common.fmt_ratio(r)} (sums: {common.fmt_ratio(sums)})",
            },
            {**times},
            [Target("kwadd", "ingest with/without" if option else NEEDS_OPTION, r,
                    TARGET_INGEST)],
        )
    ]  # fmt: skip


# -- the part --------------------------------------------------------------------------------
def bench(args: argparse.Namespace) -> PartResult:
    work = Path(tempfile.mkdtemp(prefix="bench_keyword_"))
    try:
        return _bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, work: Path) -> PartResult:
    from vectordb_manager import HashingEmbeddings

    t0 = time.perf_counter()
    texts = kwcorpus.make_corpus(args.n, args.seed)
    stats = kwcorpus.corpus_stats(texts)
    common.log(
        f"- corpus: {args.n:,} passages, {common.fmt_mb(stats['bytes'])}, "
        f"{stats['distinct_words']:,.0f} distinct words, in {time.perf_counter() - t0:.1f} s"
    )
    t0 = time.perf_counter()
    vectors = np.asarray(HashingEmbeddings().embed_documents(texts), dtype=np.float32)
    common.log(f"- HashingEmbeddings: {time.perf_counter() - t0:.1f} s")
    queries = [j.q for j in kwcorpus.load_judged()][: args.queries]

    rows, paths = add_rows(args, texts, vectors, work)
    del vectors
    facts: dict[str, Any] = {}
    if args.only != "adding":
        store = open_store(paths["with"], True)
        search, facts = search_rows(args, texts, store, queries, work)
        del store
        rows = search + rows
        rows += size_open_rows(args, texts, paths, facts["bm25s_bytes"])
    if args.ingest_chunks:
        rows += ingest_rows(args, work)
    title = (
        f"Keyword and hybrid search: {args.n:,} passages of real text repeated with variation "
        f"({common.fmt_mb(stats['bytes'])}, {stats['distinct_words']:,.0f} distinct words)"
    )
    notes = [
        "corpus: CPython's reference topics and stdlib docstrings in ~600-character passages "
        f"({len(kwcorpus.base_passages()):,} real ones), then copies with 15% of words replaced "
        "from a Zipf (s=1) vocabulary: the real words by frequency, then 200k rare ones "
        "(benchmarks/kwcorpus.py)",
        "queries: the judged set's questions and identifiers (benchmarks/data); one at a time, "
        "systems interleaved query by query; bm25s: stopwords + PyStemmer English, query "
        "tokenization timed; BM25Retriever: its default whitespace split",
    ]
    if not has_api():
        notes.append("ours: " + NEEDS_API + "; the peers ran")
    return PartResult(
        "keyword",
        "Keyword and hybrid search",
        [Table(title, COLUMNS, rows, notes)],
        facts={**stats, **facts, "n": args.n, "queries": len(queries)},
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    common.size_options(parser, 100_000, 109, " = the whole judged set")
    parser.add_argument("--repeats", type=int, default=3, help="times each query runs (3)")
    parser.add_argument(
        "--lc-queries", type=int, default=10, help="queries for BM25Retriever (default 10)"
    )
    parser.add_argument(
        "--child-repeats", type=int, default=3, help="fresh processes per store for open (3)"
    )
    parser.add_argument(
        "--ingest-chunks",
        type=int,
        default=600,
        help="chunks for the ingestion with the model (default 600, all of the topics; 0: skip)",
    )
    parser.add_argument(
        "--only",
        choices=("adding",),
        help="adding: only (c) and (e), the targets of adding with and without the index",
    )
    parser.add_argument("--child", choices=("with", "without"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.path)
        return
    args = common.parse_sized(parser, argv)
    common.run_part(args, bench)


if __name__ == "__main__":
    main()
