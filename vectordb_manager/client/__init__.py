"""The Python SDK of `vectordb serve`: `RemoteVectorStore`, a LangChain vector store over a
server's collection, and `VectorDBClient` (`AsyncVectorDBClient`: async), the small admin
client (collections, uploads, verify, compact). All use httpx and retry what was not sent,
and 503 answers (tenacity).

    from vectordb_manager.client import RemoteVectorStore, VectorDBClient

    admin = VectorDBClient("http://localhost:8000", api_key="...")
    admin.create_collection("docs", exist_ok=True)
    admin.upload("docs", ["handbook.pdf", "notes/"])
    store = RemoteVectorStore("http://localhost:8000", "docs", api_key="...")
    store.as_retriever(search_kwargs={"k": 4}).invoke("how do I rotate keys?")

The names are loaded on first use, so that ``vectordb_manager.client.cli`` (the CLI's
``--server`` option) costs nothing until a command runs remotely.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vectordb_manager.client.admin import AsyncVectorDBClient as AsyncVectorDBClient
    from vectordb_manager.client.admin import VectorDBClient as VectorDBClient
    from vectordb_manager.client.remote_store import RemoteRetriever as RemoteRetriever
    from vectordb_manager.client.remote_store import RemoteVectorStore as RemoteVectorStore
    from vectordb_manager.client.transport import AccessDeniedError as AccessDeniedError
    from vectordb_manager.client.transport import CollectionExistsError as CollectionExistsError
    from vectordb_manager.client.transport import ServiceError as ServiceError

_WHERE = {
    "AccessDeniedError": "transport",
    "AsyncVectorDBClient": "admin",
    "CollectionExistsError": "transport",
    "RemoteRetriever": "remote_store",
    "RemoteVectorStore": "remote_store",
    "ServiceError": "transport",
    "VectorDBClient": "admin",
}

__all__ = [
    "AccessDeniedError",
    "AsyncVectorDBClient",
    "CollectionExistsError",
    "RemoteRetriever",
    "RemoteVectorStore",
    "ServiceError",
    "VectorDBClient",
]


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(import_module(f"vectordb_manager.client.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'vectordb_manager.client' has no attribute {name!r}")
