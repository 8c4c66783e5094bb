"""The quick-start demo: embed the example documents offline, store them, and ask questions.

Run with ``make demo``. It uses the offline all-MiniLM-L6-v2 model and a local store in
``./demo_store`` (reopened, not rebuilt, on a second run).
"""

from __future__ import annotations

import sys
from pathlib import Path

from langchain_core.documents import Document

from vectordb_manager import EmbeddingService, LocalVectorStore, VectorDBConfig

HERE = Path(__file__).parent
QUESTIONS = [
    ("How can two writers commit to object storage without a lock?", None),
    ("Which index gives exact nearest neighbours?", None),
    ("how do I make a loaf", {"topic": {"$in": ["kitchen", "garden"]}}),
]


def main() -> int:
    config = VectorDBConfig(local_path=str(HERE.parent / "demo_store"))
    service = EmbeddingService.from_config(config)
    print(f"model: {service.model_name} ({service.dimension} dimensions, offline)")
    store = LocalVectorStore(service.embeddings, config.local_path)
    docs = [
        Document(
            page_content=path.read_text(encoding="utf-8").strip(),
            metadata={
                "source": path.name,
                "topic": {"cooking.txt": "kitchen", "gardening.txt": "garden"}.get(
                    path.name, "tech"
                ),
            },
            id=path.stem,
        )
        for path in sorted((HERE / "documents").glob("*.txt"))
    ]
    store.add_documents(docs)  # unchanged documents are skipped on a second run
    print(f"store: {config.local_path} with {len(store)} documents\n")
    for question, filter_ in QUESTIONS:
        print(f"Q: {question}" + (f"   filter={filter_}" if filter_ else ""))
        for doc, score in store.similarity_search_with_relevance_scores(
            question, k=2, filter=filter_
        ):
            print(f"  {score:.3f}  [{doc.metadata['source']}] {doc.page_content[:90]}...")
        print()
    report = store.verify()
    print(
        f"verify(): {report['documents']} documents, {report['segments']} segment(s), checksums OK"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
