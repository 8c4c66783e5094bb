"""vectordb-manager: safe, durable, exact FAISS vector stores for LangChain.

Everything public is importable from here::

    from vectordb_manager import LocalVectorStore, VectorDBConfig, EmbeddingService
"""

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
