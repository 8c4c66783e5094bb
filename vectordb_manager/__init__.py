"""vectordb-manager: safe, durable, exact FAISS vector stores for LangChain.

Everything public is importable from here::

    from vectordb_manager import LocalVectorStore, VectorDBConfig, EmbeddingService

Names are imported when first used (PEP 562), so ``import vectordb_manager`` stays quick and a
script that only needs the configuration or the errors never loads LangChain, FAISS or a model.
The client of `vectordb serve` (``RemoteVectorStore``, ``VectorDBClient``) is importable from
here too (it needs the ``client`` or ``server`` extra: httpx).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vectordb_manager.errors import (
    ConcurrentModificationError,
    ConfigurationError,
    DimensionMismatchError,
    DocumentNotFoundError,
    DocumentProcessingError,
    EmbeddingError,
    IntegrityError,
    InvalidInputError,
    StorageError,
    StoreNotFoundError,
    UnsafePickleError,
    VectorDBError,
)
from vectordb_manager.lazy import attach

if TYPE_CHECKING:  # what type checkers see; at run time each is imported on first use
    from vectordb_manager.client import RemoteVectorStore, VectorDBClient
    from vectordb_manager.config import VectorDBConfig
    from vectordb_manager.embeddings import EmbeddingService, HashingEmbeddings
    from vectordb_manager.manager import IngestReport, VectorDatabaseManager
    from vectordb_manager.processing import DocumentProcessor, FileResult
    from vectordb_manager.self_query import VectorDBTranslator
    from vectordb_manager.vectorstores import (
        LocalVectorStore,
        S3VectorStore,
        create_vector_store,
    )
else:
    __getattr__, __dir__ = attach(
        __name__,
        {
            "VectorDBConfig": "vectordb_manager.config",
            "EmbeddingService": "vectordb_manager.embeddings",
            "HashingEmbeddings": "vectordb_manager.embeddings",
            "IngestReport": "vectordb_manager.manager",
            "VectorDatabaseManager": "vectordb_manager.manager",
            "DocumentProcessor": "vectordb_manager.processing",
            "FileResult": "vectordb_manager.processing",
            "VectorDBTranslator": "vectordb_manager.self_query",
            "RemoteVectorStore": "vectordb_manager.client",
            "VectorDBClient": "vectordb_manager.client",
            "LocalVectorStore": "vectordb_manager.vectorstores",
            "S3VectorStore": "vectordb_manager.vectorstores",
            "create_vector_store": "vectordb_manager.vectorstores",
        },
    )


__version__ = "0.1.0"

__all__ = [
    "ConcurrentModificationError",
    "ConfigurationError",
    "DimensionMismatchError",
    "DocumentNotFoundError",
    "DocumentProcessingError",
    "DocumentProcessor",
    "EmbeddingError",
    "EmbeddingService",
    "FileResult",
    "HashingEmbeddings",
    "IngestReport",
    "IntegrityError",
    "InvalidInputError",
    "LocalVectorStore",
    "RemoteVectorStore",
    "S3VectorStore",
    "StorageError",
    "StoreNotFoundError",
    "UnsafePickleError",
    "VectorDBClient",
    "VectorDBConfig",
    "VectorDBError",
    "VectorDBTranslator",
    "VectorDatabaseManager",
    "__version__",
    "create_vector_store",
]
