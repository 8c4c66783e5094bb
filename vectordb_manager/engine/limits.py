"""Limits on what a store accepts and what a reader believes (documented in docs/format.md).

Writers enforce them when a record is added, with a clear `InvalidInputError`; readers enforce
them on files, with `IntegrityError`, so a crafted store can neither exhaust memory nor make a
search fail later (deeply nested metadata once made every search that returned it raise
`RecursionError`). The numbers are generous for real documents and small enough that no
single record, filter or manifest can hurt the process reading it.
"""

from __future__ import annotations

from vectordb_manager.errors import InvalidInputError

MAX_METADATA_DEPTH = 32
"""Nesting levels in one record's metadata: the metadata dict itself is level 1."""

MAX_KEY_BYTES = 1024
"""UTF-8 bytes in one metadata key (at any level)."""

MAX_METADATA_BYTES = 1 << 20
"""Bytes of one record's metadata as canonical JSON (so also the most one value can take)."""

MAX_RECORD_BYTES = 32 << 20
"""Bytes of one record's text plus its metadata, as stored."""

MAX_ID_BYTES = 4096
"""UTF-8 bytes in one document id."""

MAX_FILTER_DEPTH = 32
"""Nesting levels of a metadata filter (each ``$and``/``$or``/``$not`` or field adds one)."""

MAX_MANIFEST_BYTES = 64 << 20
"""Bytes of one manifest: a larger file is refused before it is read whole."""

MAX_VERSION = 10**19 - 1
"""The highest manifest version: manifest names have 20 digits, and a writer must always be
able to name the next version (a version past the width would commit an invisible manifest)."""

MAX_DIMENSION = 65536
"""The most dimensions a store's vectors may have."""


def check_record_size(i: int, text: str, metadata_json: str) -> None:
    """`InvalidInputError` if record ``i`` (its text and canonical metadata JSON) is too large."""
    if len(metadata_json) * 4 > MAX_METADATA_BYTES:
        size = len(metadata_json.encode("utf-8", "surrogatepass"))
        if size > MAX_METADATA_BYTES:
            raise InvalidInputError(
                f"metadata {i} is {size:,} bytes as JSON; the limit is {MAX_METADATA_BYTES:,}. "
                "Keep large content in the text or outside the store"
            )
    if (len(text) + len(metadata_json)) * 4 > MAX_RECORD_BYTES:
        size = len(text.encode("utf-8", "surrogatepass")) + len(
            metadata_json.encode("utf-8", "surrogatepass")
        )
        if size > MAX_RECORD_BYTES:
            raise InvalidInputError(
                f"text {i} with its metadata is {size:,} bytes; the limit is "
                f"{MAX_RECORD_BYTES:,}. Split it into chunks (DocumentProcessor does)"
            )


def deeper_than(value: object, limit: int) -> bool:
    """Whether a JSON-like value nests dicts and lists more than ``limit`` levels (a scalar is
    level 0, ``{}`` level 1). Iterative, so no value is too deep to check."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: object = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)  # type: ignore[attr-defined]
    return False
