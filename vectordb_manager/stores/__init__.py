"""The LangChain vector stores and the factory that builds one from a config."""

from vectordb_manager.stores.factory import create_vector_store
from vectordb_manager.stores.local import LocalVectorStore

__all__ = ["LocalVectorStore", "create_vector_store"]
