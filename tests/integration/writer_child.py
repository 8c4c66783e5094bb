"""A child process for crash and multi-process tests: writes to a store and acknowledges.

Usage: python -m tests.integration.writer_child PATH PREFIX COUNT [--deletes]
Prints "ADD <id>" after each add returns, "DELETING <id>" before a delete starts and
"DEL <id>" after it returns.
"""

from __future__ import annotations

import sys

from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings


def main() -> None:
    path, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    deletes = "--deletes" in sys.argv
    store = LocalVectorStore(HashingEmbeddings(64), path, commit_attempts=1000)
    for i in range(count):
        doc_id = f"{prefix}-{i}"
        store.add_texts([f"text {prefix} number {i}", f"extra {prefix} {i}"],
                        [{"i": i}, {"i": i, "extra": True}], ids=[doc_id, doc_id + "-x"])
        print(f"ADD {doc_id}", flush=True)
        if deletes and i % 3 == 2:
            victim = f"{prefix}-{i - 1}"
            print(f"DELETING {victim}", flush=True)
            store.delete([victim])
            print(f"DEL {victim}", flush=True)


if __name__ == "__main__":
    main()
