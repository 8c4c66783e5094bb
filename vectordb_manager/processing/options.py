"""Checks of `DocumentProcessor` options: each returns the value to use or raises.

Each raises :class:`ConfigurationError` naming the bad value and what to pass instead.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable

from vectordb_manager.errors import ConfigurationError


def require_chunking(chunk_size: object, chunk_overlap: object) -> tuple[int, int]:
    """``(chunk_size, chunk_overlap)``: integers with ``0 <= chunk_overlap < chunk_size``."""
    if (
        not isinstance(chunk_size, int)
        or not isinstance(chunk_overlap, int)
        or isinstance(chunk_size, bool)
        or isinstance(chunk_overlap, bool)
    ):
        raise ConfigurationError(
            f"chunk_size={chunk_size!r} and chunk_overlap={chunk_overlap!r} must be integers"
        )
    if chunk_size <= 0:
        raise ConfigurationError(f"chunk_size={chunk_size} must be positive, e.g. 1000")
    if chunk_overlap < 0:
        raise ConfigurationError(f"chunk_overlap={chunk_overlap} must be zero or positive")
    if chunk_overlap >= chunk_size:
        raise ConfigurationError(
            f"chunk_overlap={chunk_overlap} must be smaller than chunk_size={chunk_size}; "
            "a fifth of the chunk size is a common choice"
        )
    return chunk_size, chunk_overlap


def require_json_field(value: object) -> str | None:
    """A field name (dotted for nested fields) or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip(".").strip():
        raise ConfigurationError(
            f"json_text_field={value!r} must be a field name, dotted for nested fields "
            "(e.g. 'body.text'), or None"
        )
    return value


def require_columns(name: str, value: object) -> tuple[str, ...]:
    """Column names as a tuple; one string is one column, None is none."""
    if value is None:
        return ()
    columns = (value,) if isinstance(value, str) else value
    if not isinstance(columns, Iterable):
        raise ConfigurationError(f"{name}={value!r} must be a list of column names")
    names = tuple(columns)
    if not all(isinstance(column, str) and column for column in names):
        raise ConfigurationError(f"{name}={value!r} must be a list of non-empty column names")
    return names


def require_delimiter(value: object) -> str:
    """A one-character CSV delimiter."""
    if not isinstance(value, str) or len(value) != 1:
        raise ConfigurationError(f"csv_delimiter={value!r} must be a single character")
    return value


def require_encodings(value: object) -> tuple[str, ...]:
    """Encoding names Python knows, in order; one string is one encoding."""
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, Iterable):
        raise ConfigurationError(f"encoding_fallbacks={value!r} must be a list of encodings")
    result = []
    for name in names:
        try:
            codecs.lookup(name)
        except (LookupError, TypeError):
            raise ConfigurationError(
                f"encoding_fallbacks: unknown encoding {name!r}; use Python codec names "
                "such as 'cp1252' or 'latin-1'"
            ) from None
        result.append(name)
    return tuple(result)


def require_block_size(value: object, chunk_size: int) -> int:
    """Characters of text split at a time: an integer at least ``chunk_size``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < chunk_size:
        raise ConfigurationError(
            f"block_size={value!r} must be an integer of at least chunk_size={chunk_size}; "
            "a few million characters (the default) suits most files"
        )
    return value
