"""vectordb-manager: safe, durable, exact FAISS vector stores for LangChain.

Everything public is importable from here::

    from vectordb_manager import LocalVectorStore, VectorDBConfig, EmbeddingService

The client of `vectordb serve` (``RemoteVectorStore``, ``VectorDBClient``) is importable from
here too; it is loaded on first use (it needs the ``client`` or ``server`` extra: httpx).
"""

from typing import TYPE_CHECKING

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.embeddings import EmbeddingService, HashingEmbeddings
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
from vectordb_manager.manager import IngestReport, VectorDatabaseManager
from vectordb_manager.processing import DocumentProcessor, FileResult
from vectordb_manager.self_query import VectorDBTranslator
from vectordb_manager.vectorstores import LocalVectorStore, S3VectorStore, create_vector_store

if TYPE_CHECKING:
    from vectordb_manager.client import RemoteVectorStore as RemoteVectorStore
    from vectordb_manager.client import VectorDBClient as VectorDBClient

__version__ = "0.1.0"
_CLIENT_NAMES = ("RemoteVectorStore", "VectorDBClient")


def __getattr__(name: str) -> object:
    if name in _CLIENT_NAMES:  # httpx is imported only when the client is used
        from vectordb_manager import client

        return getattr(client, name)
    raise AttributeError(f"module 'vectordb_manager' has no attribute {name!r}")

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
    "S3VectorStore",
    "StorageError",
    "StoreNotFoundError",
    "UnsafePickleError",
    "VectorDBConfig",
    "VectorDBError",
    "VectorDBTranslator",
    "VectorDatabaseManager",
    "__version__",
    "create_vector_store",
]
