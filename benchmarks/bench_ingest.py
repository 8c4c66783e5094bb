"""Ingestion throughput with the offline model, next to the model's own speed in the same run.

Writes CPython's reference topics (``pydoc_data.topics``) as text files, then measures:
1. the model alone: ``embed_documents`` over exactly the chunks ingestion will produce;
2. ``VectorDatabaseManager.ingest`` of the files (load, split, embed, store, persist).

Run: ``.venv/bin/python benchmarks/bench_ingest.py [--files 40]``
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from pydoc_data.topics import topics

from vectordb_manager import DocumentProcessor, VectorDatabaseManager, VectorDBConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40, help="topics to write as files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "docs"
        root.mkdir()
        for name in sorted(topics)[: args.files]:
            (root / f"{name}.txt").write_text(topics[name], encoding="utf-8")
        config = VectorDBConfig(local_path=str(Path(tmp) / "store"))
        chunks = DocumentProcessor.from_config(config).process([root])
        texts = [c.page_content for c in chunks]
        db = VectorDatabaseManager(config)
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
    assert report.chunks_added == len(texts), report
    size = sum(len(t) for t in texts)
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"corpus: {args.files} files, {len(texts)} chunks, {size / 1e3:.0f} kB of text")
    print("| measure | texts/s | seconds | ratio |")
    print("|---|---|---|---|")
    print(f"| model alone (embed_documents) | {len(texts) / alone:.1f} | {alone:.2f} | 1.00 |")
    print(
        f"| ingest (load, split, embed, store) | {len(texts) / ingest:.1f} | {ingest:.2f} "
        f"| {alone / ingest:.2f} |"
    )


if __name__ == "__main__":
    main()
