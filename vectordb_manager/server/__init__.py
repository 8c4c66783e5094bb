"""The HTTP service of `vectordb serve`: a thin layer over the manager and the stores.

`create_app(settings)` builds the FastAPI application; `ServerSettings` holds what it needs
(the storage root and default model as a `VectorDBConfig`, host and port, API keys, the
refresh interval, body limits). See docs/server.md for the endpoints, error codes, keys and
running several servers over one root. Needs the ``server`` extra
(``pip install "vectordb-manager[server]"``); the client is `vectordb_manager.client`.
"""

from typing import TYPE_CHECKING

from vectordb_manager.server.settings import ApiKey, ServerSettings

if TYPE_CHECKING:
    from vectordb_manager.server.app import create_app as create_app

__all__ = ["ApiKey", "ServerSettings", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":  # FastAPI is imported only when the app is built
        from vectordb_manager.server.app import create_app

        return create_app
    raise AttributeError(name)
