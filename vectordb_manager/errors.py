"""The package's exception hierarchy.

Every error raised on purpose by vectordb-manager derives from :class:`VectorDBError`.
Errors about bad input also derive from :class:`ValueError`, which is what LangChain code
expects from a vector store given bad arguments.
"""

from __future__ import annotations


class VectorDBError(Exception):
    """Base class of every error raised by vectordb-manager."""


class ConfigurationError(VectorDBError, ValueError):
    """A configuration value or constructor argument is invalid."""


class InvalidInputError(VectorDBError, ValueError):
    """An argument to a store method is invalid (lengths, ids, metadata, k, filter)."""


class UnsafePickleError(InvalidInputError):
    """A pickle to import (a LangChain FAISS ``index.pkl``) names a class or function outside
    the allowlist; nothing was loaded."""


class EmbeddingError(VectorDBError):
    """The embedding model failed or returned vectors that cannot be stored."""


class DimensionMismatchError(VectorDBError, ValueError):
    """A vector's dimension differs from the store's."""


class DocumentProcessingError(VectorDBError):
    """A file could not be loaded or split."""


class StorageError(VectorDBError):
    """Reading or writing the store's files or objects failed."""


class DocumentNotFoundError(VectorDBError, KeyError):
    """No document has the given id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class IntegrityError(StorageError):
    """The persisted store is damaged: a checksum, size or cross-reference does not match."""


class StoreNotFoundError(StorageError):
    """No store exists at the given location (and the caller asked not to create one)."""


class ConcurrentModificationError(StorageError):
    """Another writer kept committing first; the change was not applied."""


__all__ = [
    "ConcurrentModificationError",
    "ConfigurationError",
    "DimensionMismatchError",
    "DocumentNotFoundError",
    "DocumentProcessingError",
    "EmbeddingError",
    "IntegrityError",
    "InvalidInputError",
    "StorageError",
    "StoreNotFoundError",
    "UnsafePickleError",
    "VectorDBError",
]
