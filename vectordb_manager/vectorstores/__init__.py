"""The LangChain vector stores and the factory that builds one from a config.

The names are imported on first use (`vectordb_manager.lazy`): importing a light module of
this package (``vectorstores.fusion``, say) does not load every store, boto3 and LangChain's
tracing with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vectordb_manager.lazy import attach

if TYPE_CHECKING:
    from vectordb_manager.vectorstores.factory import create_vector_store
    from vectordb_manager.vectorstores.local import LocalVectorStore
    from vectordb_manager.vectorstores.s3 import S3VectorStore
else:
    __getattr__, __dir__ = attach(
        __name__,
        {
            "LocalVectorStore": "vectordb_manager.vectorstores.local",
            "S3VectorStore": "vectordb_manager.vectorstores.s3",
            "create_vector_store": "vectordb_manager.vectorstores.factory",
        },
    )

__all__ = ["LocalVectorStore", "S3VectorStore", "create_vector_store"]
