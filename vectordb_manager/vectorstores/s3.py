"""`S3VectorStore`: the engine persisted to ``s3://bucket/prefix/`` through boto3."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings

from vectordb_manager.engine.options import DEFAULT_DISTANCE, DEFAULT_INDEX
from vectordb_manager.vectorstores.engine_store import EngineVectorStore, StoreOptions
from vectordb_manager.vectorstores.opening import S3_OPTIONS, s3_storage, split_s3_options


class S3VectorStore(EngineVectorStore):
    """FAISS vector store for LangChain, persisted to an S3 bucket (or any S3-compatible server).

    The same engine and format as `LocalVectorStore`: immutable segment objects plus versioned
    manifests under ``s3://bucket/prefix/``. A commit uploads one segment object and then
    creates the next manifest with a conditional put (``If-None-Match: *``), so writers on
    other machines never overwrite each other: the loser re-reads, re-applies and retries.
    Every write is durable in S3 when the call returns. Adding 500 documents costs three
    requests; opening costs one GET per segment, in parallel.

    Scores: ``similarity_search_with_score`` returns a distance (lower is closer), as in
    `LocalVectorStore`; ``similarity_search_with_relevance_scores`` a score in [0, 1].

    Setup:
        .. code-block:: bash

            pip install "vectordb-manager[s3,huggingface]"

    Instantiate:
        .. code-block:: python

            from vectordb_manager import S3VectorStore

            store = S3VectorStore(embeddings, "my-bucket", "stores/docs", region_name="eu-west-1")
            # any S3-compatible server (MinIO, LocalStack, moto):
            store = S3VectorStore(embeddings, "my-bucket", endpoint_url="http://localhost:9000")
            # or a ready client: S3VectorStore(embeddings, "my-bucket", client=boto3.client("s3"))

    Add, delete, search, filter, async and retriever use: exactly as `LocalVectorStore`.

    Options (keyword): ``profile_name``, ``aws_access_key_id``, ``aws_secret_access_key``,
    ``aws_session_token``, ``sse`` (``"AES256"`` or ``"aws:kms"``), ``kms_key_id``,
    ``max_attempts`` (botocore's ``total_max_attempts``, default 5), ``retry_mode``
    (``"standard"`` or ``"adaptive"``), ``connect_timeout``, ``read_timeout``, ``cache_dir``
    (a local directory caching immutable segments), ``transfer_config`` (boto3
    ``TransferConfig`` for large objects), plus every `LocalVectorStore` option.
    """

    def __init__(
        self,
        embedding: Embeddings,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        distance: str = DEFAULT_DISTANCE,
        index: str = DEFAULT_INDEX,
        **kwargs: Any,
    ) -> None:
        """Open the store at ``s3://bucket/prefix/``, creating it if absent. As with
        `LocalVectorStore`, an existing store keeps the distance, index type and tuning it
        records where the caller does not choose them.

        Raises:
            ConfigurationError: a bad option, bucket name or profile.
            StorageError: the bucket is missing, access is denied, the credentials are wrong or
                the endpoint cannot be reached (raised quickly; 4xx answers are not retried).
            DimensionMismatchError, IntegrityError: as for `LocalVectorStore`.
        """
        s3_options = split_s3_options(kwargs)
        options = StoreOptions.from_kwargs(kwargs)
        super().__init__(embedding, batch_size=options.batch_size)
        client, storage = s3_storage(
            bucket,
            prefix,
            s3_options,
            client=client,
            region_name=region_name,
            endpoint_url=endpoint_url,
        )
        self.bucket = bucket
        self.client = client
        self.prefix = storage.prefix
        self._start_engine(storage, distance=distance, index=index, options=options)

    def __repr__(self) -> str:
        return (
            f"S3VectorStore('s3://{self.bucket}/{self.prefix}', documents={len(self)}, "
            f"distance={self._engine.distance!r})"
        )


__all__ = ["S3_OPTIONS", "S3VectorStore"]
