"""What `RemoteVectorStore` sends and receives: keyword arguments checked, texts and
documents converted (metadata dates in the JSON tagged form both ways), distances cut at a
threshold."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.documents import Document

from vectordb_manager.engine.records import untag_metadata
from vectordb_manager.errors import InvalidInputError

_IGNORED = ("verbose",)  # what LangChain's retrievers pass down
SIMILARITY_OPTIONS = ("score_threshold", "fetch_k")


def within(
    pairs: list[tuple[Document, float]], kwargs: dict[str, Any]
) -> list[tuple[Document, float]]:
    """The pairs within ``score_threshold`` (a distance), if one is given."""
    threshold = kwargs.get("score_threshold")
    if threshold is None:
        return pairs
    return [(doc, d) for doc, d in pairs if d <= float(threshold)]


def checked_options(kwargs: dict[str, Any], accepted: Sequence[str]) -> dict[str, Any]:
    """The keyword arguments a search takes; `InvalidInputError` names any other."""
    unknown = sorted(k for k in kwargs if k not in accepted and k not in _IGNORED)
    if unknown:
        raise InvalidInputError(
            f"unknown keyword argument(s) {', '.join(unknown)}; this search takes "
            f"{', '.join(('k', 'filter', *accepted))}"
        )
    return {k: v for k, v in kwargs.items() if k in accepted}


def texts_of(texts: Iterable[str]) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInputError("texts must be a list of strings, not one string")
    return list(texts)


def document(item: dict[str, Any]) -> Document:
    metadata = untag_metadata(item.get("metadata") or {}, "the server's answer")
    return Document(id=item["id"], page_content=item["text"], metadata=metadata)


__all__ = ["SIMILARITY_OPTIONS", "checked_options", "document", "texts_of", "within"]
