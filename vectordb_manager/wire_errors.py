"""The error codes of `vectordb serve`, in one table both sides derive from.

The server answers every failure with ``{"code", "message"}``; the client (SDK) raises an
exception for the code. `CODES` lists each code once, with its HTTP status, the exception
the client raises for it, the package exceptions the server answers with it and what to do
when the exception's message does not say. The server's status table and exception mapping
(`vectordb_manager.server.errors`) and the client's code mapping
(`vectordb_manager.client.transport`) are both computed from it, so a code cannot be added
on one side only. This module imports neither FastAPI nor httpx.

Codes without an exception of the package's (keys, conflicts, unknown paths) raise
`ServiceError` or one of its subclasses on the client; every exception raised for a code
carries the answer's ``status`` and ``code``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
    VectorDBError,
)


class ServiceError(VectorDBError):
    """The server refused a request for a reason the package has no exception of its own for
    (a missing or insufficient API key, a conflicting create, an unexpected failure)."""

    status: int
    code: str

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AccessDeniedError(ServiceError):
    """The API key is missing, unknown (401), or may not do this (403)."""


class CollectionExistsError(ServiceError):
    """A collection of that name exists already (409)."""


@dataclass(frozen=True)
class Code:
    """One error code: its HTTP ``status``, the exception the client raises (``raises``),
    the exceptions the server answers with it (``catches``) and a ``hint`` (what to do)."""

    name: str
    status: int
    raises: type[Exception]
    catches: tuple[type[BaseException], ...] = ()
    hint: str = ""


CODES: tuple[Code, ...] = (
    # 400: bad input
    Code("invalid_input", 400, InvalidInputError, (InvalidInputError, ValueError),
         "fix the request"),
    Code("invalid_filter", 400, InvalidInputError),
    Code("dimension_mismatch", 400, DimensionMismatchError, (DimensionMismatchError,),
         "send vectors of the collection's dimension"),
    Code("invalid_configuration", 400, ConfigurationError, (ConfigurationError,),
         "fix the setting named"),
    Code("malformed_body", 400, InvalidInputError),
    Code("unprocessable_file", 400, DocumentProcessingError, (DocumentProcessingError,),
         "fix or remove the file"),
    Code("no_embedding_model", 400, InvalidInputError),  # a text to a vectors-only collection
    # 401, 403: keys
    Code("missing_key", 401, AccessDeniedError),
    Code("invalid_key", 401, AccessDeniedError),
    Code("read_only_key", 403, AccessDeniedError),
    Code("collection_not_allowed", 403, AccessDeniedError),
    # 404, 405: what is not there
    Code("not_found", 404, ServiceError),
    Code("collection_not_found", 404, StoreNotFoundError, (StoreNotFoundError,),
         "create the collection first"),
    Code("document_not_found", 404, DocumentNotFoundError, (DocumentNotFoundError,),
         "check the id, or add the document first"),
    Code("method_not_allowed", 405, ServiceError),
    # 409, 413, 422
    Code("collection_exists", 409, CollectionExistsError),
    Code("location_in_use", 409, CollectionExistsError),
    Code("payload_too_large", 413, InvalidInputError),
    Code("validation_error", 422, InvalidInputError),
    # 5xx
    Code("internal_error", 500, ServiceError, (VectorDBError,),
         "report this to the server's operator"),
    Code("integrity_error", 500, IntegrityError, (IntegrityError,),
         "restore the collection from a backup"),
    Code("embedding_failed", 502, EmbeddingError, (EmbeddingError,),
         "retry later, or check the server's model"),
    Code("busy", 503, ConcurrentModificationError, (ConcurrentModificationError,),
         "retry the request"),
    Code("storage_unavailable", 503, StorageError, (StorageError,), "retry the request later"),
    Code("not_ready", 503, ServiceError),
)  # fmt: skip
"""Every code an error answer may carry (documented in docs/server.md)."""

STATUS: Mapping[str, int] = {c.name: c.status for c in CODES}
"""code -> HTTP status."""

RAISES: Mapping[str, type[Exception]] = {c.name: c.raises for c in CODES}
"""code -> the exception the client raises (unknown codes: `ServiceError`)."""


def _caught() -> tuple[tuple[type[BaseException], str, str], ...]:
    pairs = [(kind, c.name, c.hint) for c in CODES for kind in c.catches]
    kinds = [kind for kind, _, _ in pairs]
    if len(set(kinds)) != len(kinds):
        raise AssertionError("an exception is caught by two codes")
    # a subclass has a longer MRO than each of its bases: most specific first
    return tuple(sorted(pairs, key=lambda p: -len(p[0].__mro__)))


CAUGHT: Sequence[tuple[type[BaseException], str, str]] = _caught()
"""(exception, code, hint) in the order the server matches them, most specific first."""


__all__ = [
    "CAUGHT",
    "CODES",
    "RAISES",
    "STATUS",
    "AccessDeniedError",
    "Code",
    "CollectionExistsError",
    "ServiceError",
]
