"""`create_vector_store`: a store from a `VectorDBConfig`."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import ConfigurationError
from vectordb_manager.vectorstores.opening import config_options


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

    options = config_options(config, create=create)
    if config.storage_type in ("local", "memory"):
        path = config.local_path if config.storage_type == "local" else None
        return LocalVectorStore(embedding, path, **options)
    if config.storage_type == "s3":
        if not config.s3_bucket:
            raise ConfigurationError("storage_type='s3' needs s3_bucket")
        return S3VectorStore(embedding, config.s3_bucket, config.s3_prefix, **options)
    raise ConfigurationError(f"unknown storage_type {config.storage_type!r}")
