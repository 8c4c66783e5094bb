"""The quick-start demo: ingest the example documents offline, then answer questions.

Run with ``make demo``. It uses the offline all-MiniLM-L6-v2 model and a local store in
``./demo_store``; a second run re-embeds nothing, because nothing changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from huggingface_hub.utils.tqdm import disable_progress_bars

from vectordb_manager import VectorDatabaseManager, VectorDBConfig

HERE = Path(__file__).parent
QUESTIONS = [
    ("How can two writers commit to object storage without a lock?", None),
    ("Which index gives exact nearest neighbours?", None),
    ("how do I make a loaf of bread", {"file_type": {"$in": ["txt", "md"]}}),
]


def main() -> int:
    # the model loads at the first question: without this, its "Loading weights" bar would
    # come between that question and its answers (transformers follows huggingface_hub's switch)
    disable_progress_bars()
    config = VectorDBConfig(
        local_path=str(HERE.parent / "demo_store"), chunk_size=500, chunk_overlap=50
    )
    with VectorDatabaseManager(config) as db:
        print(f"model: {db.embedding_service.model_name} (offline)")
        report = db.ingest([HERE / "documents"])
        print(f"ingest: {report}\n")
        print(f"store: {config.local_path} with {db.count()} chunks\n")
        for question, filter_ in QUESTIONS:
            print(f"Q: {question}" + (f"   filter={filter_}" if filter_ else ""))
            for doc, score in db.search_with_scores(question, k=2, filter=filter_):
                source = Path(doc.metadata["source"]).name
                snippet = " ".join(doc.page_content.split())[:90]
                print(f"  {score:.3f}  [{source}] {snippet}...")
            print()
        checked = db.verify()
        print(
            f"verify(): {checked['documents']} chunks, {checked['segments']} segment(s), "
            "checksums OK"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
