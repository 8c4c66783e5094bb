"""Collections without an embedding model: created with ``{"provider": "none", "dimensions":
N}``, they hold vectors computed elsewhere. Adds and replacements must carry a ``vector``,
vector queries must be by ``vector``; keyword (BM25) queries work on the texts as ever.
Anything that would have the server embed a text is refused up front with 400
``no_embedding_model`` (`require_model`), before anything is read or written.

The store underneath gets `NoEmbeddings` as its model: it knows its dimension (recorded in
the manifest at creation, so vectors of another dimension are refused) and is named
``none`` there; if it is ever asked to embed, it refuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from vectordb_manager.errors import InvalidInputError
from vectordb_manager.server.errors import ApiError

if TYPE_CHECKING:
    from vectordb_manager.server.registry import CollectionSpec

VECTORS_ONLY = "none"
"""The embedding provider of a collection without a model."""


class NoEmbeddings(Embeddings):
    """The model of a collection without one: ``size`` dimensions, embeds nothing."""

    model_name = VECTORS_ONLY

    def __init__(self, size: int) -> None:
        self.size = size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise InvalidInputError(f"this store has no embedding model; {_WHAT_TO_DO}")

    def embed_query(self, text: str) -> list[float]:
        raise InvalidInputError(f"this store has no embedding model; {_WHAT_TO_DO}")


_WHAT_TO_DO = (
    'send a "vector" with every document and query by "vector" (or with mode "keyword"), or '
    "use a collection with an embedding model"
)


def has_model(spec: CollectionSpec) -> bool:
    return spec.embedding_provider != VECTORS_ONLY


def require_model(spec: CollectionSpec, doing: str) -> None:
    """Refuse (400 ``no_embedding_model``) ``doing``, which needs the collection's model, if
    it has none."""
    if not has_model(spec):
        raise ApiError(
            "no_embedding_model",
            f"collection {spec.name!r} has no embedding model (it holds "
            f"{spec.embedding_dimensions}-dimensional vectors computed elsewhere), so the "
            f"server cannot {doing}; {_WHAT_TO_DO}",
        )


__all__ = ["VECTORS_ONLY", "NoEmbeddings", "has_model", "require_model"]
