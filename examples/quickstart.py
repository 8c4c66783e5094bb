"""Quick start: ingest a folder of documents, search it, filter it, re-ingest for free.

What it shows, with `VectorDatabaseManager` and the offline all-MiniLM-L6-v2 model:

1. ingesting ``examples/documents`` (plain text) and ``examples/more_documents`` (Markdown,
   HTML, JSON Lines and CSV) into a local store, with the `IngestReport` it returns;
2. searching with relevance scores (in [0, 1], higher is closer), printing the score, the
   source file (with its section, row or record) and a snippet;
3. a metadata-filtered search: the k best documents *among those that pass the filter*;
4. ingesting the same files again: chunk ids are derived from the content, so nothing is
   re-embedded ("0 texts embedded").

Run it from the repository root::

    HF_HUB_OFFLINE=1 .venv/bin/python examples/quickstart.py              # temporary store
    HF_HUB_OFFLINE=1 .venv/bin/python examples/quickstart.py --store ./kb # kept in ./kb

With ``--store`` the store is kept: run it twice and the first ingest already embeds nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from vectordb_manager import VectorDatabaseManager, VectorDBConfig

HERE = Path(__file__).resolve().parent
DOCUMENTS = [HERE / "documents", HERE / "more_documents"]

QUESTIONS = [
    "How can two writers commit to object storage without a lock?",
    "How should I split documents before embedding them?",
    "What is retrieval-augmented generation?",
]
FILTERED_QUESTION = "something quick for dinner"
QUICK_RECIPES: dict[str, Any] = {"file_type": "jsonl", "minutes": {"$lte": 30}}


def where(doc: Document) -> str:
    """The file a chunk came from, and where in it: ``rag_guide.md > Chunking``, ``row 2``..."""
    meta = doc.metadata
    name = Path(str(meta.get("source", "?"))).name
    if "headers" in meta:
        return f"{name} > {str(meta['headers']).split(' > ')[-1]}"
    for key in ("row", "line", "record", "page"):
        if key in meta:
            return f"{name} {key} {meta[key]}" + (f" ({meta['title']})" if "title" in meta else "")
    return f"{name} ({meta['title']})" if "title" in meta else name


def snippet(text: str, width: int = 90) -> str:
    """The text on one line, cut to ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def show_hits(db: VectorDatabaseManager, query: str, k: int, filter: dict[str, Any] | None) -> None:
    """Print the k best matches for ``query``: score, where it comes from, and a snippet."""
    print(f"Q: {query}" + (f"   filter={filter}" if filter else ""))
    for rank, (doc, score) in enumerate(db.search_with_scores(query, k=k, filter=filter), 1):
        print(f"  {rank}. {score:.3f}  {where(doc)}")
        print(f"     {snippet(doc.page_content)}")
    print()


def run(store_dir: Path, documents: Sequence[Path]) -> None:
    """Ingest, search, filter and re-ingest against the store in ``store_dir``."""
    # Small chunks suit these short documents; every field has a default (see VectorDBConfig).
    config = VectorDBConfig(local_path=str(store_dir), chunk_size=500, chunk_overlap=50)
    with VectorDatabaseManager(config) as db:
        print(f"store: {store_dir}")
        print("== ingest ==")
        report = db.ingest(documents)
        print(f"{report}\n")
        if not report.ok:
            raise SystemExit("some files could not be ingested (see above)")

        print("== search ==")
        for question in QUESTIONS:
            show_hits(db, question, k=2, filter=None)

        print("== filtered search ==")
        show_hits(db, FILTERED_QUESTION, k=2, filter=None)
        show_hits(db, FILTERED_QUESTION, k=2, filter=QUICK_RECIPES)

        print("== ingest again (nothing changed, so nothing is embedded) ==")
        again = db.ingest(documents)
        print(again)
        print(f"{again!r}\n")

        stats = db.stats()
        print(
            f"stats: {stats['documents']} chunks, {stats['dimension']} dimensions, "
            f"model {stats['embedding_model']}, {stats['segments']} segment(s)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", type=Path, help="keep the store in this directory (default: a temporary one)"
    )
    parser.add_argument(
        "--docs", type=Path, nargs="+", default=DOCUMENTS, help="files or directories to ingest"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in a package: no downloads
    if args.store is not None:
        run(args.store, args.docs)
    else:
        with tempfile.TemporaryDirectory(prefix="vdbm-quickstart-") as tmp:
            run(Path(tmp) / "store", args.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
