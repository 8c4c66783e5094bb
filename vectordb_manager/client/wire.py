"""What `RemoteVectorStore` sends and receives: keyword arguments checked, texts and
documents converted (metadata dates in the JSON tagged form both ways), answers read into
documents with their distances or scores, distances cut at a threshold, id listings paged.
Each function here serves a sync method and its async twin alike."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.documents import Document

from vectordb_manager.engine.records import untag_metadata
from vectordb_manager.errors import InvalidInputError

_IGNORED = ("verbose",)  # what LangChain's retrievers pass down
SIMILARITY_OPTIONS = ("score_threshold", "fetch_k")
HYBRID_OPTIONS = ("fusion", "alpha", "rank_constant")
ID_PAGE = 100_000  # ids per listing request

Query = dict[str, Any]
Hit = tuple[Document, dict[str, Any]]
"""A result: the document, and the result's JSON (``score``, ``distance``)."""


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


def hits_of(answer: dict[str, Any]) -> list[Hit]:
    """The results of a ``/query`` answer."""
    return [(document(r), r) for r in answer["results"]]


def distances_of(hits: list[Hit]) -> list[tuple[Document, float]]:
    """Vector results with their distance (lower is closer)."""
    return [(doc, float(r["distance"])) for doc, r in hits]


def scores_of(hits: list[Hit]) -> list[tuple[Document, float]]:
    """Results with their score (higher is better; the answer says what it means)."""
    return [(doc, float(r["score"])) for doc, r in hits]


def documents_of(hits: list[Hit]) -> list[Document]:
    return [doc for doc, _ in hits]


def found_documents(answer: dict[str, Any]) -> list[Document]:
    """The documents of a ``/documents/get`` answer (missing ids left out)."""
    return [document(d) for d in answer["documents"]]


def page_params(filter: dict[str, Any] | None, ids: list[str]) -> dict[str, Any]:
    """The query of the next page of an id listing, after the ``ids`` read so far."""
    params: dict[str, Any] = {"limit": ID_PAGE, "offset": len(ids)}
    if filter:
        params["filter"] = json.dumps(filter)
    return params


def add_page(ids: list[str], page: dict[str, Any]) -> bool:
    """Add a listing page's ids to ``ids``; whether there are more to read."""
    ids += page["ids"]
    return bool(page["ids"]) and len(ids) < page["total"]


__all__ = [
    "HYBRID_OPTIONS",
    "SIMILARITY_OPTIONS",
    "Hit",
    "Query",
    "add_page",
    "checked_options",
    "distances_of",
    "document",
    "documents_of",
    "found_documents",
    "hits_of",
    "page_params",
    "scores_of",
    "texts_of",
    "within",
]
