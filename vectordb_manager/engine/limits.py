"""Limits on what a store accepts and what a reader believes (documented in docs/format.md).

Writers enforce them when a record is added, with a clear `InvalidInputError`; readers enforce
them on files, with `IntegrityError`, so a crafted store can neither exhaust memory nor make a
search fail later (deeply nested metadata once made every search that returned it raise
`RecursionError`). The numbers are generous for real documents and small enough that no
single record, filter or manifest can hurt the process reading it.
"""

from __future__ import annotations

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
