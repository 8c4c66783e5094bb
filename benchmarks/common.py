"""What the benchmark parts and the suite share: data, timing, result rows, machine, children.

Every part (``bench_store.py``, ``bench_inmem.py``, ``bench_hnsw.py``, ``bench_s3.py``,
``bench_ingest.py``, ``bench_text.py``, ``bench_keyword.py``, ``bench_quality.py``,
``bench_cold.py``, ``bench_embed.py``, ``bench_serve.py``, ``bench_filters_cold.py``,
``bench_temporal.py``) is a
script that measures one thing and hands back a `PartResult`: tables of `Row` s, some of
which carry a `Target` (PASS/FAIL against the issue's figures). Run alone, a part prints its
tables; under ``suite.py`` it writes them as JSON (``--json-out``) and the suite assembles
one document.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from benchmarks.machine import REPO_ROOT, CpuWatch, machine_facts, machine_lines, wait_quiet

BENCH_DIR = REPO_ROOT / "benchmarks"

DIM = 384
K = 10
CENTRES = 1000
NOISE = 0.05  # per-dimension std; noise norm ~ 0.05 * sqrt(384) ~ 1, about a centre's
WARMUP = 5
UPDATE_DOCS = 100  # "persisting 100 more documents"
WORDS: tuple[str, ...] = (
    "vector",
    "store",
    "index",
    "query",
    "search",
    "filter",
    "segment",
    "manifest",
    "durable",
    "commit",
    "faiss",
    "cosine",
    "distance",
    "embedding",
    "retrieval",
    "chain",
    "document",
    "metadata",
    "bucket",
    "cluster",
    "centre",
    "noise",
    "random",
    "python",
    "langchain",
    "benchmark",
    "latency",
    "memory",
    "disk",
    "load",
    "persist",
    "exact",
    "approximate",
    "graph",
)

Matrix = np.ndarray[Any, np.dtype[np.float32]]
Hits = list[tuple[str, dict[str, Any]]]  # (id, metadata) per result, closest first

# The issue's targets, in its order: `Target.key` names one of them.
TARGETS: dict[str, str] = {
    "exact": "Exact search p50 <= 1.1x raw faiss",
    "hnsw": "HNSW at 1M: p50 under 1 ms at recall@10 >= 0.95",
    "filter": "Filtered search (1% and 50% pass): fill 100%, p50 <= 1.5x unfiltered",
    "batched": "Adding 100k in batches of 1,000, durable after each: <= 0.6x the peer's add + save",
    "small": "Small stores: similarity search p50 on ~2,000 real-text chunks <= LangChain FAISS's",
    "batched1": "Adding 100k in batches of 1,000, durable after each: <= the peer's adds + 1 save",
    "persist": "Persisting 100 more documents: <= 0.1x the peer's save; the same at 1M as at 100k",
    "open": "Open + first query <= 0.5x the peer's load; 1M x 384 opens in <= 5 s",
    "memory": "Peak memory <= the peer's, and <= 1.2x (vectors + text) at 1M",
    "ingest": "Ingestion with the offline model >= 90% of the model's own texts/s",
    "s3": "S3 on moto: open 100k <= 2x the local open; a 500-document add <= 5 requests",
    "auto": "`auto` index: the flat-to-HNSW switch chosen from these measurements",
    "keyword": "Keyword search p50 at 100k: <= 2x bm25s, >= 20x faster than BM25Retriever",
    "hybrid": "Hybrid search p50 <= 1.2x (vector p50 + keyword p50)",
    "kwadd": "Adding with the text index <= 1.25x without; ingestion with the model within 5%",
    "kwdisk": "Text index <= 0.5x the raw text on disk; open <= 1.2x without the index",
    "quality": "Judged set: hybrid beats vector, keyword and the EnsembleRetriever",
    "cold": "Cold start, fresh processes: `import vectordb_manager` <= 0.3 s; on a 100k store "
    "`vectordb stats` <= 0.5 s, `vectordb search` <= 1.5 s",
    "embed": "The offline model without torch: cosine >= 0.9999 to sentence-transformers, "
    "cold query embedding <= 0.4 s, bulk >= 1.0x sentence-transformers' texts/s",
    "serve": "`vectordb serve`, 16 clients x 60 s (150 s over S3): 0 errors, memory stable, "
    "nothing lost",
    "coldfilter": "First filtered query (equality, $in) in a fresh process at 1M: <= 100 ms",
    "coldrange": "Range filters at 1M: <= 1.5x unfiltered; no lasting memory beyond the index",
    "temporal": "Ingestion on Temporal, remote-like model: 2 workers >= 1.7x 1 worker's rate; "
    "1 worker <= 1.15x a plain ingest's time for as many embedding calls",
}


def log(msg: str) -> None:
    """Progress, on stderr (stdout carries a part's tables or the suite's document)."""
    print(msg, file=sys.stderr, flush=True)


class PrecomputedEmbeddings(Embeddings):
    """Embeddings that look texts up in tables of precomputed vectors (no model).

    Stores filled through ``add_embeddings`` and searched by vector never call it; the tables
    serve peers (InMemoryVectorStore) that embed through ``add_documents``.
    """

    def __init__(
        self,
        dim: int = DIM,
        documents: dict[str, list[float]] | None = None,
        queries: dict[str, list[float]] | None = None,
    ) -> None:
        self.size = dim  # lets the stores know the dimension without embedding
        self.model_name = f"precomputed-{dim}"
        self._documents = documents or {}
        self._queries = queries or {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._documents[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._queries[text]


# -- data ------------------------------------------------------------------------------------
MODULI: dict[str, int] = {"half": 2, "bucket": 100}


def metadata(i: int) -> dict[str, Any]:
    """``{"half": 0}`` passes 50% of the documents, ``{"bucket": 7}`` 1%."""
    return {"i": i, "half": i % 2, "bucket": i % 100}


@dataclass(frozen=True)
class FilterSpec:
    label: str  # "1%"
    key: str
    value: int

    @property
    def where(self) -> dict[str, Any]:
        """The filter as ours and LangChain's FAISS take it."""
        return {self.key: self.value}

    def passes(self, meta: dict[str, Any]) -> bool:
        return bool(meta.get(self.key) == self.value)

    def mask(self, n: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which of documents 0..n-1 pass."""
        return np.asarray(np.arange(n) % MODULI[self.key] == self.value)


FILTERS: tuple[FilterSpec, ...] = (FilterSpec("1%", "bucket", 7), FilterSpec("50%", "half", 0))


def unit(x: np.ndarray[Any, Any]) -> Matrix:
    x = x.astype(np.float32, copy=False)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def clustered(rng: np.random.Generator, centres: Matrix, n: int) -> Matrix:
    """n unit vectors: a random centre plus gaussian noise each."""
    out = np.empty((n, centres.shape[1]), dtype=np.float32)
    for start in range(0, n, 50_000):  # in chunks to bound the temporaries
        m = min(50_000, n - start)
        which = rng.integers(0, len(centres), size=m)
        noise = rng.standard_normal((m, centres.shape[1]), dtype=np.float32) * NOISE
        out[start : start + m] = unit(centres[which] + noise)
    return out


def make_texts(rng: np.random.Generator, start: int, n: int) -> list[str]:
    """~100-character texts, unique by their leading ``doc {i}``."""
    words = np.asarray(WORDS)[rng.integers(0, len(WORDS), size=(n, 14))]
    return [f"doc {start + i} " + " ".join(row)[:90] for i, row in enumerate(words.tolist())]


@dataclass
class Dataset:
    vectors: Matrix  # (n, DIM), unit rows
    texts: list[str]
    metadatas: list[dict[str, Any]]
    ids: list[str]
    queries: Matrix  # (n_queries, DIM), unit rows
    extra: Matrix  # vectors for documents added later (the "persist 100 more" rounds)

    @property
    def n(self) -> int:
        return len(self.ids)

    def pairs(self, a: int, b: int) -> list[tuple[str, Any]]:
        """(text, vector) of documents a..b-1, as ``add_embeddings`` takes them."""
        return list(zip(self.texts[a:b], self.vectors[a:b], strict=True))

    def text_bytes(self) -> int:
        return sum(len(t.encode()) for t in self.texts)


def make_dataset(n: int, n_queries: int, seed: int, n_extra: int = 10 * UPDATE_DOCS) -> Dataset:
    """N x 384 clustered synthetic unit vectors (1000 random centres + noise), texts, metadata."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((CENTRES, DIM), dtype=np.float32))
    vectors = clustered(rng, centres, n)
    queries = clustered(rng, centres, n_queries)
    extra = clustered(rng, centres, n_extra)
    texts = make_texts(rng, 0, n)
    metadatas = [metadata(i) for i in range(n)]
    return Dataset(vectors, texts, metadatas, [f"id{i}" for i in range(n)], queries, extra)


def extra_batch(
    data: Dataset, round_: int, seed: int, size: int = UPDATE_DOCS
) -> tuple[list[tuple[str, Any]], list[dict[str, Any]], list[str]]:
    """Pairs, metadatas and ids of the ``round_``-th batch of documents added after the N."""
    a = data.n + round_ * size
    vecs = data.extra[round_ * size : (round_ + 1) * size]
    texts = make_texts(np.random.default_rng(seed + 1 + round_), a, size)
    return (
        list(zip(texts, vecs, strict=True)),
        [metadata(i) for i in range(a, a + size)],
        [f"id{i}" for i in range(a, a + size)],
    )


def exact_top_k(
    vectors: Matrix, queries: Matrix, k: int = K, rows: np.ndarray[Any, Any] | None = None
) -> list[list[int]]:
    """Ground truth: the k rows with the largest inner product (= cosine), per query."""
    sub = vectors if rows is None else vectors[rows]
    out: list[list[int]] = []
    for start in range(0, len(queries), 50):
        scores = queries[start : start + 50] @ sub.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for row, cand in zip(scores, part, strict=True):
            best = cand[np.argsort(-row[cand])]
            out.append([int(rows[b]) if rows is not None else int(b) for b in best])
    return out


# -- timing and quality ----------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def pct(values: Sequence[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


@dataclass
class Searcher:
    """One system's search: ``run(query)`` is timed, ``hits(result)`` is not."""

    run: Callable[[list[float]], Any]
    hits: Callable[[Any], Hits]


def measure_interleaved(
    searchers: dict[str, Searcher], queries: list[list[float]], warmup: int = WARMUP
) -> dict[str, tuple[list[float], list[Hits]]]:
    """Per-query latencies and results; the systems take turns on each query, so that drift
    on a shared machine hits them all equally. The order of each turn is another of all the
    orders, shuffled (seeded), and every order is used before any is used again: a rotation
    would keep the same system after the same one, and the one that follows a slow system
    (InMemoryVectorStore's ~20 ms of Python) starts with cold caches. Drawn at random, the
    orders put one system after the slow one more often than another (57 against 41 times
    in 200 turns of four): with all of them, each system follows each other equally often."""
    names = list(searchers)
    for q in queries[:warmup]:
        for name in names:
            searchers[name].run(q)
    out: dict[str, tuple[list[float], list[Hits]]] = {name: ([], []) for name in names}
    gc.collect()
    for q, turn in zip(queries, _balanced_orders(names, len(queries)), strict=True):
        for name in turn:
            s = searchers[name]
            t0 = time.perf_counter()
            result = s.run(q)
            elapsed = time.perf_counter() - t0
            out[name][0].append(elapsed)
            out[name][1].append(s.hits(result))
    return out


def _balanced_orders(names: list[str], count: int) -> list[tuple[str, ...]]:
    """``count`` orders of ``names``: rounds of all their orders, each round shuffled (seeded;
    orders of more than 6 names: a random order each time)."""
    rng = random.Random(count)
    if len(names) > 6:
        return [tuple(rng.sample(names, len(names))) for _ in range(count)]
    every = list(itertools.permutations(names))
    orders: list[tuple[str, ...]] = []
    while len(orders) < count:
        rng.shuffle(every)
        orders += every
    return orders[:count]


def doc_hits(result: list[tuple[Any, float]]) -> Hits:
    """Hits of a LangChain ``..._with_score`` result."""
    return [(str(doc.id), doc.metadata) for doc, _ in result]


def recall(results: list[Hits], truth: list[list[int]], ids: list[str], k: int = K) -> float:
    got = 0
    for hits, gt in zip(results, truth, strict=True):
        want = {ids[g] for g in gt}
        got += len(want & {h for h, _ in hits})
    return got / (len(truth) * k)


def fill_rate(results: list[Hits], passes: Callable[[dict[str, Any]], bool], k: int = K) -> float:
    """Share of queries answered with k hits that all pass the filter."""
    ok = sum(1 for hits in results if len(hits) == k and all(passes(m) for _, m in hits))
    return ok / len(results)


# -- formatting ------------------------------------------------------------------------------
def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_mb(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**20:,.1f} MB"


def fmt_bytes(n: float) -> str:
    if n < 10_000:
        return f"{n:,.0f} B"
    if n < 10 * 2**20:
        return f"{n / 2**10:,.1f} KiB"
    return f"{n / 2**20:,.1f} MiB"


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def fmt_count(n: float | None) -> str:
    return "-" if n is None else f"{n:,.0f}"


def fmt_share(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def fmt_recall(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


FORMATS: dict[str, Callable[[float | None], str]] = {
    "s": fmt_s,
    "mb": fmt_mb,
    "x": fmt_ratio,
    "n": fmt_count,
    "share": fmt_share,
    "recall": fmt_recall,
    "cos": lambda x: "-" if x is None else f"{x:.6f}",
}


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# -- results ---------------------------------------------------------------------------------
@dataclass
class Target:
    """One figure checked against a limit: ``what`` (e.g. "ours/raw") ``op`` ``limit``."""

    key: str  # which of TARGETS
    what: str
    value: float | None
    limit: float
    unit: str = "x"  # a FORMATS key
    op: str = "<="  # or ">="

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def cell(self) -> str:
        fmt = FORMATS[self.unit]
        verdict = {True: "PASS", False: "FAIL", None: "?"}[self.passed]
        return f"{verdict}: {self.what} {fmt(self.value)} {self.op} {fmt(self.limit)}"


@dataclass
class Row:
    key: str  # stable within its table, so that parts can add cells to one another's rows
    measure: str
    cells: dict[str, str] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)  # numbers behind the cells
    targets: list[Target] = field(default_factory=list)


@dataclass
class Table:
    title: str
    columns: list[tuple[str, str]]  # (cell key, header), between "measure" and "target"
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first: str = "measure"  # the first column's header

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)

    def markdown(self, heading: str = "###") -> list[str]:
        lines = [f"{heading} {self.title}", ""] if self.title else []
        has_target = any(r.targets for r in self.rows)
        columns = [
            (k, h) for k, h in self.columns if any(r.cells.get(k, "-") != "-" for r in self.rows)
        ]  # drop empty ones
        header = [self.first, *(h for _, h in columns), *(["target"] if has_target else [])]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        for r in self.rows:
            cells = [r.measure, *(r.cells.get(k, "-") for k, _ in columns)]
            if has_target:
                cells.append("; ".join(t.cell() for t in r.targets))
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        lines.append("")
        return lines


# The local tables: ours against each peer, on the same data in the same run.
SYSTEM_COLUMNS: list[tuple[str, str]] = [
    ("ours", "ours"),
    ("peer", "LC FAISS"),
    ("mem", "InMemoryVectorStore"),
    ("raw", "raw faiss"),
    ("vs_peer", "ours/LC FAISS"),
    ("vs_raw", "ours/raw"),
]


def system_row(
    key: str,
    measure: str,
    values: dict[str, float | None],
    unit: str = "s",
    *,
    ratios: bool = True,
    targets: Sequence[Target] = (),
) -> Row:
    """A row of per-system figures (ours, peer, mem, raw), with ours' ratios to peer and raw."""
    fmt = FORMATS[unit]
    cells = {name: fmt(v) for name, v in values.items()}
    if ratios:
        cells["vs_peer"] = fmt_ratio(ratio(values.get("ours"), values.get("peer")))
        cells["vs_raw"] = fmt_ratio(ratio(values.get("ours"), values.get("raw")))
    numbers = {name: float(v) for name, v in values.items() if v is not None}
    return Row(key, measure, cells, numbers, list(targets))


@dataclass
class PartResult:
    part: str
    title: str
    tables: list[Table]
    facts: dict[str, Any] = field(default_factory=dict)  # sizes, counts, versions...
    elapsed_s: float = 0.0
    others_cpu: str = ""  # how much CPU other processes took while it ran

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartResult:
        tables = [
            Table(
                t["title"],
                [(k, h) for k, h in t["columns"]],
                [
                    Row(
                        r["key"],
                        r["measure"],
                        r["cells"],
                        r["values"],
                        [Target(**x) for x in r["targets"]],
                    )
                    for r in t["rows"]
                ],
                t["notes"],
                t["first"],
            )
            for t in data["tables"]
        ]
        return cls(
            data["part"],
            data["title"],
            tables,
            data["facts"],
            data["elapsed_s"],
            data["others_cpu"],
        )

    def table(self, title_prefix: str = "") -> Table | None:
        return next((t for t in self.tables if t.title.startswith(title_prefix)), None)


# -- peers -----------------------------------------------------------------------------------
def lc_faiss(
    pairs: list[tuple[str, Any]],
    metadatas: list[dict[str, Any]],
    ids: list[str],
    emb: Embeddings | None = None,
) -> Any:
    """LangChain's FAISS store over precomputed unit vectors (IndexFlatIP, i.e. cosine)."""
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

    return FAISS.from_embeddings(
        pairs,
        emb or PrecomputedEmbeddings(),
        metadatas=metadatas,
        ids=ids,
        distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
    )


def lc_faiss_load(path: Path | str, emb: Embeddings | None = None) -> Any:
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

    return FAISS.load_local(
        str(path),
        emb or PrecomputedEmbeddings(),
        allow_dangerous_deserialization=True,
        distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
    )


def raw_flat(vectors: Matrix) -> Any:
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def raw_searcher(
    index: Any, ids: list[str], metadatas: list[dict[str, Any]], params: Any = None
) -> Searcher:
    """A Searcher over a raw faiss index whose row i is document ``ids[i]``."""

    def run(q: list[float]) -> Any:
        x = np.asarray([q], dtype=np.float32)
        return index.search(x, K) if params is None else index.search(x, K, params=params)

    return Searcher(run, lambda r: [(ids[i], metadatas[i]) for i in r[1][0] if i >= 0])


def store_searcher(store: Any, where: dict[str, Any] | None = None, k: int = K) -> Searcher:
    """A Searcher over a LangChain store's ``similarity_search_with_score_by_vector``."""
    if where is None:
        return Searcher(lambda q: store.similarity_search_with_score_by_vector(q, k), doc_hits)
    return Searcher(
        lambda q: store.similarity_search_with_score_by_vector(q, k, filter=where), doc_hits
    )


# -- a part's command line -------------------------------------------------------------------
def part_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every part takes: ``--seed``, ``--wait-quiet``, ``--json-out``."""
    parser = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0],
        epilog="Run alone, a part prints its tables; benchmarks/suite.py runs them all.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for other processes to go idle",
    )
    parser.add_argument(
        "--json-out",
        metavar="FILE",
        help="write the result as JSON here instead of printing tables",
    )
    return parser


def size_options(parser: argparse.ArgumentParser, n: int, queries: int, note: str = "") -> None:
    """``--n`` (documents) and ``--queries``, with their defaults."""
    parser.add_argument("--n", type=int, default=n, help=f"documents (default {n})")
    parser.add_argument(
        "--queries", type=int, default=queries, help=f"queries (default {queries}{note})"
    )


def parse_sized(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, min_n: int = 1000
) -> argparse.Namespace:
    """Parse, checking that ``--n`` is at least ``min_n`` and ``--queries`` at least 1."""
    args = parser.parse_args(argv)
    if args.n < min_n or args.queries < 1:
        parser.error(f"--n must be at least {min_n} and --queries at least 1")
    return args


def run_part(
    args: argparse.Namespace, bench: Callable[[argparse.Namespace], PartResult]
) -> PartResult:
    """Run a part's ``bench`` with the common options: wait, time, watch the CPU, emit."""
    if args.wait_quiet > 0:
        log(f"- {wait_quiet(args.wait_quiet)}")
    watch = CpuWatch()
    t0 = time.perf_counter()
    result = bench(args)
    result.elapsed_s = time.perf_counter() - t0
    result.others_cpu = watch.report()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result.to_json(), indent=1))
    else:
        print(f"## {result.title}\n")
        print("\n".join(machine_lines(machine_facts())))
        print()
        for table in result.tables:
            print("\n".join(table.markdown()))
        print(f"{result.elapsed_s:.0f} s; CPU used by other processes: {result.others_cpu}")
    return result
