"""Move a local store to S3 with `VectorDatabaseManager.switch_backend`, without re-embedding.

What it shows:

1. building a local store from the example documents (the `IngestReport` says how many texts
   were embedded);
2. ``switch_backend(s3_config)``: every document is copied to S3 *with its vector*, and the
   manager uses the S3 store from then on. An embedding counter proves that no text is
   embedded during the migration;
3. the document counts on both sides, the same query giving the same hits and the same
   scores on both sides (the vectors were copied, not recomputed), ``verify()`` of the S3 store,
   and an incremental re-ingest into S3 that embeds nothing (chunk ids travelled too).

Run it against a local moto server that the script starts itself::

    HF_HUB_OFFLINE=1 .venv/bin/python examples/migrate_local_to_s3.py --moto

or against your own bucket (environment as for ``examples/s3_store.py``: VDBM_S3_BUCKET,
VDBM_S3_PREFIX, VDBM_S3_ENDPOINT and the standard AWS credentials)::

    HF_HUB_OFFLINE=1 .venv/bin/python examples/migrate_local_to_s3.py --local ./kb
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from langchain_core.embeddings import Embeddings
from s3_store import S3Location, moto_s3  # the sibling example: moto server and env settings

from vectordb_manager import (
    EmbeddingService,
    LocalVectorStore,
    VectorDatabaseManager,
    VectorDBConfig,
    VectorDBError,
)

HERE = Path(__file__).resolve().parent
DOCUMENTS = [HERE / "documents", HERE / "more_documents"]
QUESTION = "How should I split documents before embedding them?"


class CountingEmbeddings(Embeddings):
    """Wraps an embedding model and counts the texts it embeds (queries counted apart)."""

    def __init__(self, inner: Embeddings, model_name: str | None, size: int | None) -> None:
        self.inner = inner
        self.model_name = model_name  # recorded in the store's manifest
        self.size = size  # the dimension, known without embedding anything
        self.texts = 0
        self.queries = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.queries += 1
        return self.inner.embed_query(text)


def run(local_dir: Path, location: S3Location) -> None:
    """Build (or update) the local store in ``local_dir``, then migrate it to ``location``."""
    local = VectorDBConfig(local_path=str(local_dir), chunk_size=500, chunk_overlap=50)
    model = EmbeddingService.from_config(local, lazy=True)  # loaded on first use
    counter = CountingEmbeddings(model.inner, model.model_name, model.known_dimension)

    with VectorDatabaseManager(local, embeddings=counter) as db:
        print(f"== 1. local store {local_dir} ==")
        print(db.ingest(DOCUMENTS))
        local_count = db.count()
        print(f"local documents: {local_count}; texts embedded so far: {counter.texts}\n")

        print(f"== 2. switch_backend to {location.url} ==")
        s3 = local.replace(
            storage_type="s3",
            s3_bucket=location.bucket,
            s3_prefix=location.prefix,
            s3_endpoint_url=location.endpoint_url,
        )
        before = counter.texts
        copied = db.switch_backend(s3)  # copies documents *and* vectors, then uses S3
        embedded = counter.texts - before
        print(f"copied {copied} documents; texts embedded during the migration: {embedded}")
        print(f"the manager now uses: {db.vector_store!r}\n")

        print("== 3. both sides ==")
        local_store = LocalVectorStore(counter, local_dir)  # reopen the source from disk
        print(f"documents: local {len(local_store)}, s3 {db.count()}")
        local_hits = local_store.similarity_search_with_score(QUESTION, k=3)
        s3_hits = db.vector_store.similarity_search_with_score(QUESTION, k=3)
        print(f"Q: {QUESTION}   (cosine distance, lower is closer)")
        for (_, l_dist), (s_doc, s_dist) in zip(local_hits, s3_hits, strict=True):
            name = Path(str(s_doc.metadata["source"])).name
            section = str(s_doc.metadata.get("headers", "")).split(" > ")[-1]
            print(f"  local {l_dist:.6f}  s3 {s_dist:.6f}  {name} {section}".rstrip())
        identical = [(d.id, s) for d, s in local_hits] == [(d.id, s) for d, s in s3_hits]
        print(f"identical ids and scores on both sides: {identical}")
        report = db.verify()
        print("verify() of the S3 store: OK, " + ", ".join(f"{k}={v}" for k, v in report.items()))

        print("\n== 4. ingest the same files into the S3 store ==")
        print(db.ingest(DOCUMENTS))
        print(f"texts embedded in total: {counter.texts} (all of them in step 1)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--moto", action="store_true", help="start a local moto S3 server and use it"
    )
    parser.add_argument(
        "--local", type=Path, help="the local store's directory (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in a package: no downloads
    try:
        with tempfile.TemporaryDirectory(prefix="vdbm-migrate-") as tmp:
            local_dir = args.local or Path(tmp) / "local-store"
            if args.moto:
                with moto_s3("vdbm-examples", "stores/migrated") as location:
                    run(local_dir, location)
            else:
                run(local_dir, S3Location.from_env())
    except VectorDBError as exc:  # bucket missing, access denied, endpoint unreachable...
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
