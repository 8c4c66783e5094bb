"""`S3VectorStore`: the engine persisted to ``s3://bucket/prefix/`` through boto3."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings

from vectordb_manager.engine.options import DEFAULT_DISTANCE, DEFAULT_INDEX
from vectordb_manager.errors import ConfigurationError
from vectordb_manager.storage.s3 import S3Storage, build_s3_client, s3_problems
from vectordb_manager.vectorstores.engine_store import EngineVectorStore, StoreOptions

S3_OPTIONS = (
    "profile_name",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "sse",
    "kms_key_id",
    "max_attempts",
    "retry_mode",
    "connect_timeout",
    "read_timeout",
    "cache_dir",
    "transfer_config",
)


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
        s3_opts = {k: kwargs.pop(k) for k in list(kwargs) if k in S3_OPTIONS}
        options = StoreOptions.from_kwargs(kwargs)
        super().__init__(embedding, batch_size=options.batch_size)
        sse = s3_opts.get("sse")
        problems = s3_problems(bucket=bucket, sse=sse, kms_key_id=s3_opts.get("kms_key_id"))
        if problems:
            raise ConfigurationError("; ".join(problems))
        if client is None:
            client = build_s3_client(
                region_name=region_name,
                endpoint_url=endpoint_url,
                **{
                    k: v
                    for k, v in s3_opts.items()
                    if k not in ("sse", "kms_key_id", "cache_dir", "transfer_config")
                },
            )
        self.bucket = bucket
        self.client = client
        storage = S3Storage(
            client,
            bucket,
            prefix,
            sse=sse,
            kms_key_id=s3_opts.get("kms_key_id"),
            transfer_config=s3_opts.get("transfer_config"),
            cache_dir=s3_opts.get("cache_dir"),
        )
        self.prefix = storage.prefix
        self._start_engine(storage, distance=distance, index=index, options=options)

    def __repr__(self) -> str:
        return (
            f"S3VectorStore('s3://{self.bucket}/{self.prefix}', documents={len(self)}, "
            f"distance={self._engine.distance!r})"
        )
