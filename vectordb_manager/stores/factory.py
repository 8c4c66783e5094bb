"""`create_vector_store`: a store from a `VectorDBConfig`."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import ConfigurationError


def create_vector_store(config: VectorDBConfig, embedding: Embeddings) -> VectorStore:
    """Build the store a config describes (``local``, ``memory``; ``s3`` once available).

    Raises:
        ConfigurationError: the storage type is not available.
    """
    from vectordb_manager.stores.local import LocalVectorStore

    if config.storage_type in ("local", "memory"):
        path = config.local_path if config.storage_type == "local" else None
        return LocalVectorStore(
            embedding,
            path,
            distance=config.distance_metric,
            index=config.index_type,
            batch_size=config.embedding_batch_size,
        )
    raise ConfigurationError(
        f"storage_type={config.storage_type!r} is not available in this release; "
        "use 'local' or 'memory'"
    )
