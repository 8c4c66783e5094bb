"""A child process for crash and multi-process tests: writes to a store and acknowledges.

Usage: python -m tests.integration.writer_child STORE PREFIX COUNT [--deletes]
STORE is a directory, or s3://bucket/prefix with the endpoint in $VDBM_S3_ENDPOINT.
Prints "ADD <id>" after each add returns, "DELETING <id>" before a delete starts and
"DEL <id>" after it returns.
"""

from __future__ import annotations

import os
import sys

from vectordb_manager import LocalVectorStore, S3VectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.vectorstores.engine_store import EngineVectorStore


def open_store(spec: str) -> EngineVectorStore:
    emb = HashingEmbeddings(64)
    if spec.startswith("s3://"):
        bucket, _, prefix = spec[len("s3://") :].partition("/")
        return S3VectorStore(
            emb, bucket, prefix, endpoint_url=os.environ["VDBM_S3_ENDPOINT"], region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            max_attempts=10, commit_attempts=1000,
        )
    return LocalVectorStore(emb, spec, commit_attempts=1000)


def main() -> None:
    spec, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    deletes = "--deletes" in sys.argv
    store = open_store(spec)
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
