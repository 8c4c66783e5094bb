"""An `S3VectorStore` on any S3-compatible server: add documents, search, reopen, verify.

What it shows:

* opening (creating) a store at ``s3://BUCKET/PREFIX/`` on Amazon S3 or any S3-compatible
  server (MinIO, Ceph, LocalStack, moto), with credentials from the standard AWS chain
  (environment variables, ``~/.aws`` profiles, instance roles);
* adding the example documents (split by `DocumentProcessor`), and the objects this writes;
* searching, with and without a metadata filter;
* reopening the store from S3 in a fresh object (same documents, same results) and
  ``verify()``, which re-reads every object and checks its SHA-256 checksum.

Run it against a local moto server that the script starts itself (no AWS account needed)::

    HF_HUB_OFFLINE=1 .venv/bin/python examples/s3_store.py --moto

or against your own bucket (it must exist; the prefix is created)::

    export VDBM_S3_BUCKET=my-bucket                     # required
    export VDBM_S3_PREFIX=examples/s3-store             # optional
    export VDBM_S3_ENDPOINT=http://localhost:9000       # optional: MinIO etc.; unset for AWS
    export AWS_PROFILE=...  # or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_REGION
    HF_HUB_OFFLINE=1 .venv/bin/python examples/s3_store.py
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vectordb_manager import (
    DocumentProcessor,
    EmbeddingService,
    S3VectorStore,
    VectorDBConfig,
    VectorDBError,
)

HERE = Path(__file__).resolve().parent
DOCUMENTS = [HERE / "documents", HERE / "more_documents"]
QUESTION = "How can two writers commit to object storage without a lock?"
FILTERED = ("Which index gives exact results?", {"file_type": "csv"})


@dataclass(frozen=True)
class S3Location:
    """Where the store lives: bucket, key prefix and (for non-AWS servers) endpoint URL."""

    bucket: str
    prefix: str
    endpoint_url: str | None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}/"

    @classmethod
    def from_env(cls) -> S3Location:
        """Read ``VDBM_S3_BUCKET``, ``VDBM_S3_PREFIX`` and ``VDBM_S3_ENDPOINT``."""
        bucket = os.environ.get("VDBM_S3_BUCKET")
        if not bucket:
            raise SystemExit(
                "set VDBM_S3_BUCKET (and optionally VDBM_S3_PREFIX, VDBM_S3_ENDPOINT), "
                "or run with --moto to use a local moto server"
            )
        return cls(
            bucket=bucket,
            prefix=os.environ.get("VDBM_S3_PREFIX", "vectordb-manager-examples/s3-store"),
            endpoint_url=os.environ.get("VDBM_S3_ENDPOINT") or None,
        )


@contextlib.contextmanager
def moto_s3(bucket: str, prefix: str) -> Iterator[S3Location]:
    """Run moto's S3 server on 127.0.0.1 (a free port) with an empty ``bucket``.

    Dummy credentials are put in this process's environment, so the standard AWS chain finds
    them and no real credential is ever sent anywhere.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request log lines
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        print(f"moto S3 server at {endpoint}, bucket {bucket!r} created")
        yield S3Location(bucket, prefix, endpoint)
    finally:
        server.stop()


def list_objects(store: S3VectorStore) -> list[tuple[str, int]]:
    """(key, size) of every object under the store's prefix."""
    pages = store.client.get_paginator("list_objects_v2").paginate(
        Bucket=store.bucket, Prefix=store.prefix
    )
    return [(o["Key"], o["Size"]) for page in pages for o in page.get("Contents", [])]


def show(hits: list[tuple[Any, float]]) -> None:
    for rank, (doc, score) in enumerate(hits, 1):
        text = " ".join(doc.page_content.split())
        print(f"  {rank}. {score:.3f}  {Path(doc.metadata['source']).name}  {text[:70]}...")


def run(location: S3Location) -> None:
    """Create or open the store at ``location``, fill it, search it, reopen it, verify it."""
    embeddings = EmbeddingService.from_config(VectorDBConfig()).embeddings  # offline MiniLM

    def open_store() -> S3VectorStore:
        # credentials and region: the standard AWS chain (environment, profile, role)
        return S3VectorStore(
            embeddings, location.bucket, location.prefix, endpoint_url=location.endpoint_url
        )

    store = open_store()
    print(f"opened {store!r}")

    chunks = DocumentProcessor(chunk_size=500, chunk_overlap=50).process(DOCUMENTS)
    ids = store.add_documents(chunks)  # chunk ids are deterministic: re-running replaces them
    print(f"added {len(ids)} chunks: the store now holds {len(store)} documents")
    objects = list_objects(store)
    print(f"{len(objects)} objects under {location.url}:")
    for key, size in objects:
        print(f"  {size:>8} B  {key}")

    print(f"\nQ: {QUESTION}")
    first = store.similarity_search_with_relevance_scores(QUESTION, k=2)
    show(first)
    question, filter_ = FILTERED
    print(f"Q: {question}   filter={filter_}")
    show(store.similarity_search_with_relevance_scores(question, k=2, filter=filter_))

    reopened = open_store()  # a new object: everything is read back from S3
    print(f"\nreopened {reopened!r}")
    again = reopened.similarity_search_with_relevance_scores(QUESTION, k=2)
    same = [d.id for d, _ in again] == [d.id for d, _ in first]
    print(f"after reopening: {len(reopened)} documents (before: {len(store)}), same hits: {same}")
    report = reopened.verify()
    print("verify(): OK, " + ", ".join(f"{k}={v}" for k, v in report.items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--moto", action="store_true", help="start a local moto S3 server and use it"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in a package: no downloads
    try:
        if args.moto:
            with moto_s3("vdbm-examples", "stores/s3-example") as location:
                run(location)
        else:
            run(S3Location.from_env())
    except VectorDBError as exc:  # bucket missing, access denied, endpoint unreachable...
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
