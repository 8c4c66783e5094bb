"""The LangChain vector stores and the factory that builds one from a config."""

from vectordb_manager.vectorstores.factory import create_vector_store
from vectordb_manager.vectorstores.local import LocalVectorStore
from vectordb_manager.vectorstores.s3 import S3VectorStore

__all__ = ["LocalVectorStore", "S3VectorStore", "create_vector_store"]
