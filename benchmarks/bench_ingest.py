"""Ingestion part: throughput with the offline model, next to the model's own speed.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_ingest.py [--files 40]

Writes CPython's reference topics (``pydoc_data.topics``) as text files, then measures:
1. the model alone: ``embed_documents`` over exactly the chunks ingestion will produce
   (twice, one before and one after ingestion; the better run counts);
2. ``VectorDatabaseManager.ingest`` of the files (load, split, embed, store, persist).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from pydoc_data.topics import topics

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks import common
from benchmarks.common import PartResult, Row, Table, Target

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TARGET_INGEST_VS_MODEL = 0.9


def bench(args: argparse.Namespace) -> PartResult:
    from vectordb_manager import DocumentProcessor, VectorDatabaseManager, VectorDBConfig

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "docs"
        root.mkdir()
        for name in sorted(topics)[: args.files]:
            (root / f"{name}.txt").write_text(topics[name], encoding="utf-8")
        config = VectorDBConfig(local_path=str(Path(tmp) / "store"))
        chunks = DocumentProcessor.from_config(config).process([root])
        texts = [c.page_content for c in chunks]
        with VectorDatabaseManager(config) as db:
            model = db.embedding_service
            model.embed_documents(texts[:8])  # load the model and warm up outside the timings

            start = time.perf_counter()
            model.embed_documents(texts)
            alone = time.perf_counter() - start

            start = time.perf_counter()
            report = db.ingest([root])
            ingest = time.perf_counter() - start

            start = time.perf_counter()  # the model alone again: take its better run
            model.embed_documents(texts)
            alone = min(alone, time.perf_counter() - start)
    if report.chunks_added != len(texts):
        raise AssertionError(f"ingest added {report.chunks_added} chunks, not {len(texts)}")
    size = sum(len(t) for t in texts)
    share = alone / ingest
    common.log(
        f"- ingest: model alone {len(texts) / alone:.1f} texts/s, ingest "
        f"{len(texts) / ingest:.1f} texts/s ({share:.0%})"
    )
    columns = [("rate", "texts/s"), ("seconds", "seconds"), ("share", "of the model's rate")]
    rows = [
        Row(
            "ingest.model",
            "model alone (embed_documents)",
            {
                "rate": f"{len(texts) / alone:.1f}",
                "seconds": f"{alone:.2f}",
                "share": "100%",
            },
            {"rate": len(texts) / alone},
        ),
        Row(
            "ingest.ingest",
            "ingest (load, split, embed, store, persist)",
            {
                "rate": f"{len(texts) / ingest:.1f}",
                "seconds": f"{ingest:.2f}",
                "share": f"{share:.1%}",
            },
            {"rate": len(texts) / ingest, "share": share},
            [Target("ingest", "ingest/model", share, TARGET_INGEST_VS_MODEL, "share", ">=")],
        ),
    ]
    title = (
        f"Ingestion: {args.files} files of CPython's reference topics, {len(texts)} "
        f"chunks ({size / 1e3:.0f} kB), all-MiniLM-L6-v2 on "
        f"{len(os.sched_getaffinity(0))} cores"
    )
    return PartResult(
        "ingest",
        "Ingestion with the offline model",
        [Table(title, columns, rows)],
        facts={"files": args.files, "chunks": len(texts)},
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.part_parser(__doc__)
    parser.add_argument("--files", type=int, default=40, help="topics to write as files")
    args = parser.parse_args(argv)
    common.run_part(args, bench)


if __name__ == "__main__":
    main()
