"""Hashing: what identifies a record's content, and reading a file while checking its checksum.

Every file a manifest names carries its size and SHA-256; `HashingReader` reads such a file
front to back in bounded chunks, hashing as it goes, and checks both at the end, so a file is
never held whole to be verified. A record's content hash covers its text and its metadata as
canonical JSON (`canonical_json`, dates and datetimes tagged), so that equal content always
hashes the same.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import operator
from collections.abc import Iterator, Mapping, Sequence
from itertools import repeat
from typing import IO, Any

import numpy as np
import orjson

from vectordb_manager.engine.limits import MAX_METADATA_BYTES, MAX_RECORD_BYTES, check_record_size
from vectordb_manager.engine.manifest import FileRef
from vectordb_manager.engine.records import (
    EXACT_SCALARS,
    flat_scalars,
    is_typed,
    newlines,
    tag_metadata,
)
from vectordb_manager.errors import IntegrityError


def content_hash(text: str, metadata_json: str) -> str:
    """The hash that identifies a record's content (text and canonical metadata)."""
    h = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    h.update(b"\x00")
    h.update(metadata_json.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def canonical_json(value: Any) -> str:
    """A record's metadata as canonical JSON: what its content hash and its size limit
    cover. Metadata holding dates or datetimes is given in its tagged form (see `records`)
    as the one item of a list, so that it never reads the same as metadata without them
    (whose tag-like dicts are stored as they are)."""
    if type(value) is dict:
        if EXACT_SCALARS.issuperset(map(type, value.values())):
            try:  # the common case: orjson writes the same bytes, ~10x sooner
                return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
            except (TypeError, orjson.JSONEncodeError):
                pass  # beyond 64 bits, lone surrogates, keys that are not strings
        elif is_typed(value):
            value = [tag_metadata(value)]
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )



def content_hashes(texts: Sequence[str], metadatas: Sequence[Mapping[str, Any]]) -> list[str]:
    """`content_hash` of each text with its metadata's `canonical_json`, after checking each
    record's size (`check_record_size`: `InvalidInputError` for the first too large). For
    metadata of strings, integers, booleans and nulls, the common case, every step runs in C
    over the whole batch: the same hashes, without a Python call per record."""
    metas = list(metadatas)
    found = _flat_canonical(metas)
    if found is None:
        canonical = list(map(canonical_json, metas))
        for i, (text, mj) in enumerate(zip(texts, canonical, strict=True)):
            check_record_size(i, text, mj)
        return [content_hash(t, mj) for t, mj in zip(texts, canonical, strict=True)]
    longest_text = max(map(len, texts), default=0)
    longest_meta = max(map(len, found), default=0)  # bytes (chars would be fewer)
    if longest_meta > MAX_METADATA_BYTES or longest_text * 4 + longest_meta > MAX_RECORD_BYTES:
        for i, (text, raw) in enumerate(zip(texts, found, strict=True)):
            check_record_size(i, text, raw.decode("utf-8"))
    encoded = map(str.encode, texts, repeat("utf-8"), repeat("surrogatepass"))
    messages = map(_ZERO.join, zip(encoded, found, strict=True))
    return list(map(_HEX, map(hashlib.sha256, messages)))


_ZERO = b"\x00"
_HEX = operator.methodcaller("hexdigest")


def _flat_canonical(metas: list[Any]) -> list[bytes] | None:
    """`canonical_json` of each metadata, UTF-8, when all are dicts of `EXACT_SCALARS` and
    orjson writes them (else ``None``)."""
    if not flat_scalars(metas, EXACT_SCALARS):
        return None
    try:
        return list(map(orjson.dumps, metas, repeat(None), repeat(orjson.OPT_SORT_KEYS)))
    except (TypeError, orjson.JSONEncodeError):
        return None  # beyond 64 bits, lone surrogates, keys that are not strings


class HashingReader:
    """Reads one file front to back, in chunks, checking its size and SHA-256 at the end."""

    CHUNK = 1 << 20

    def __init__(self, stream: IO[builtins.bytes], ref: FileRef) -> None:
        self.stream = stream
        self.ref = ref
        self.pos = 0
        self._hash = hashlib.sha256()

    def _short(self) -> IntegrityError:
        return IntegrityError(
            f"{self.ref.path} ends after {self.pos} bytes but the manifest says "
            f"{self.ref.bytes}; the file is truncated. Restore it from a backup."
        )

    def read(self, n: int) -> builtins.bytes:
        """Exactly ``n`` bytes (`IntegrityError` if the file ends first)."""
        if self.pos + n > self.ref.bytes:
            raise self._short()
        parts = []
        left = n
        while left:
            data = self.stream.read(min(left, self.CHUNK))
            if not data:
                raise self._short()
            self._hash.update(data)
            parts.append(data)
            left -= len(data)
            self.pos += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def chunks(self, n: int, target: memoryview | None = None) -> Iterator[tuple[int, memoryview]]:
        """Read ``n`` bytes in chunks, hashing them, into ``target`` or else a scratch buffer
        that each chunk reuses; yields (offset within the ``n`` bytes, chunk)."""
        if self.pos + n > self.ref.bytes:
            raise self._short()
        scratch = memoryview(bytearray(min(n, self.CHUNK))) if target is None else None
        done = 0
        while done < n:
            size = min(n - done, self.CHUNK)
            chunk = scratch[:size] if scratch is not None else target[done : done + size]  # type: ignore[index]
            got = self.stream.readinto(chunk)  # type: ignore[attr-defined]
            if not got:
                raise self._short()
            self._hash.update(chunk[:got])
            yield done, chunk[:got]
            done += got
            self.pos += got

    def readinto(self, target: memoryview | None, n: int) -> None:
        """Read ``n`` bytes into ``target`` (``None``: read, hash and let them go)."""
        for _ in self.chunks(n, target):
            pass

    def read_lines(self, n: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Read ``n`` bytes of JSON lines without keeping them: where each line ends."""
        found = [newlines(chunk, at) for at, chunk in self.chunks(n)]
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def finish(self) -> None:
        """Read what is left and check the whole file's size and checksum."""
        self.readinto(None, self.ref.bytes - self.pos)
        extra = len(self.stream.read(1))
        self.ref.check_digest(self.pos + extra, self._hash.hexdigest())
