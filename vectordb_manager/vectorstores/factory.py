"""`create_vector_store`: a store from a `VectorDBConfig`."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import ConfigurationError


def create_vector_store(
    config: VectorDBConfig, embedding: Embeddings, *, create: bool = True
) -> VectorStore:
    """Build the store a config describes: ``local`` (a directory), ``memory`` or ``s3``.

    ``create=False`` opens an existing store only (`StoreNotFoundError` where there is none).

    Raises:
        ConfigurationError: the configuration cannot make a store.
        StorageError: the store's location cannot be used (missing bucket, access denied...).
    """
    from vectordb_manager.vectorstores.local import LocalVectorStore
    from vectordb_manager.vectorstores.s3 import S3VectorStore

    common: dict[str, Any] = {
        "distance": config.distance_metric,
        "index": config.index_type,
        "batch_size": config.embedding_batch_size,
    }
    analyzer = config.text_analyzer()
    if analyzer is not None:  # else: the store's own (a new store's: the default)
        common["analyzer"] = analyzer
    if config.storage_type != "memory":
        common["create"] = create
    if config.storage_type in ("local", "memory"):
        path = config.local_path if config.storage_type == "local" else None
        return LocalVectorStore(embedding, path, **common)
    if config.storage_type == "s3":
        if not config.s3_bucket:
            raise ConfigurationError("storage_type='s3' needs s3_bucket")
        return S3VectorStore(
            embedding,
            config.s3_bucket,
            config.s3_prefix,
            region_name=config.aws_region,
            endpoint_url=config.s3_endpoint_url,
            profile_name=config.aws_profile,
            sse=config.s3_sse,
            kms_key_id=config.s3_kms_key_id,
            max_attempts=config.s3_max_attempts,
            retry_mode=config.s3_retry_mode,
            cache_dir=config.s3_cache_dir,
            **common,
        )
    raise ConfigurationError(f"unknown storage_type {config.storage_type!r}")
