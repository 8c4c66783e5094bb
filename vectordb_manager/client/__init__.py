"""The Python SDK of `vectordb serve`: `RemoteVectorStore`, a LangChain vector store over a
server's collection, and `VectorDBClient`, the small admin client (collections, uploads,
verify, compact). Both use httpx and retry what was not sent, and 503 answers (tenacity).

    from vectordb_manager.client import RemoteVectorStore, VectorDBClient

    admin = VectorDBClient("http://localhost:8000", api_key="...")
    admin.create_collection("docs", exist_ok=True)
    admin.upload("docs", ["handbook.pdf", "notes/"])
    store = RemoteVectorStore("http://localhost:8000", "docs", api_key="...")
    store.as_retriever(search_kwargs={"k": 4}).invoke("how do I rotate keys?")
"""

from vectordb_manager.client.admin import VectorDBClient
from vectordb_manager.client.remote_store import RemoteRetriever, RemoteVectorStore
from vectordb_manager.client.transport import (
    AccessDeniedError,
    CollectionExistsError,
    ServiceError,
)

__all__ = [
    "AccessDeniedError",
    "CollectionExistsError",
    "RemoteRetriever",
    "RemoteVectorStore",
    "ServiceError",
    "VectorDBClient",
]
