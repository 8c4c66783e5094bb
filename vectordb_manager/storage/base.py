"""The storage protocol: the operations the engine needs from a directory or a bucket.

Names are relative POSIX paths chosen by the engine (``manifests/…``, ``segments/…``); they never
contain user input, but a manifest read from a store names its files, so a back end checks
every name (`split_name`). Every ``write`` is atomic (a reader sees the whole object or none of
it) and durable when it returns (or, asked with ``durable=False``, by the time a
``write_if_absent`` naming it in ``after`` returns). ``write_if_absent`` is the commit
primitive: it creates the object only if no object of that name exists, atomically with
respect to every other writer.

What a reader may rely on, whatever the store holds (a store may come from someone else's
archive or bucket):

* **A sized read is exact.** ``read(name, size)`` and ``open(name, size)`` raise
  `IntegrityError` unless the object is exactly ``size`` bytes, before any byte is read. So a
  size taken from a manifest can bound an allocation: no object is ever read past it.
* **An unsized read is bounded.** Without ``size`` (manifests are read that way) the object must
  be at most `MAX_MANIFEST_BYTES`, else `IntegrityError` before it is read.
* **Only regular files, never links.** A local back end never follows a symbolic link beneath
  its root and never opens anything but a regular file (a FIFO, device, socket or folder
  where a file should be is an `IntegrityError`); nothing it does can block on a FIFO or reach
  outside its directory.
* **Sized opens are of immutable objects** (segments and index snapshots, whose manifest
  records their size and checksum); an unsized read may be of a mutable one. A back end may
  cache what it is asked for with a size, never what it is asked for without one.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Protocol, runtime_checkable

from vectordb_manager.engine.limits import MAX_MANIFEST_BYTES
from vectordb_manager.errors import IntegrityError


class ObjectNotFound(LookupError):
    """The named object does not exist (raised by `Storage.read`)."""


@dataclass(frozen=True)
class ObjectInfo:
    """A listed object: its name, size in bytes and last-modified time (epoch seconds)."""

    name: str
    size: int
    modified: float


@runtime_checkable
class Storage(Protocol):
    """Where a store's immutable files and manifests live."""

    def read(self, name: str, size: int | None = None) -> bytes:
        """The object's bytes; raises `ObjectNotFound` when absent, `StorageError` on failure.

        With ``size`` (from a manifest: the object is immutable) the object must be exactly
        that long and large objects may use a parallel download; without it the object must
        be at most `MAX_MANIFEST_BYTES`. Either check fails with `IntegrityError` before
        anything is read.
        """
        ...

    def open(self, name: str, size: int | None = None) -> IO[bytes]:
        """A binary stream of the object, to read front to back and close; raises
        `ObjectNotFound` when absent. Lets large files be read without holding them whole.

        The same guarantees as `read`: a sized open guarantees the object's actual length (so
        a manifest's claimed size can bound allocations), an unsized one is bounded by
        `MAX_MANIFEST_BYTES`, and a local stream is always of a regular file reached without
        following links.
        """
        ...

    def write(
        self, name: str, data: bytes | bytearray | memoryview, *, durable: bool = True
    ) -> None:
        """Create or replace the object atomically and durably. With ``durable=False`` it
        need only be durable once a `write_if_absent` naming it in ``after`` returns (a back
        end may then sync it in the background meanwhile: a commit's files and its manifest
        are synced together)."""
        ...

    def write_if_absent(
        self, name: str, data: bytes, *, after: Iterable[str] = (), durable: bool = True
    ) -> bool:
        """Create the object only if absent; ``False`` when it already existed. The objects
        in ``after`` (written with ``durable=False``) are durable before it is created. With
        ``durable=False`` the new object may become durable only by the time `sync` of it
        returns (it is in place, and visible, at once)."""
        ...

    def sync(self, names: Iterable[str]) -> None:
        """Wait until these objects, written with ``durable=False``, are durable;
        `StorageError` if one could not be made so."""
        ...

    def list(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        """Every object whose name starts with ``prefix`` (and sorts after ``start_after``),
        sorted by name. A local back end raises `IntegrityError` on a link or on anything
        that is neither a regular file nor a folder (among the entries it looks at: after a
        name in the prefix's folder, those that can sort after it)."""
        ...

    def delete(self, name: str) -> None:
        """Remove the object; absent objects are ignored."""
        ...

    def describe(self) -> str:
        """Where this storage points, for messages (never credentials)."""
        ...

    # capabilities a back end may lack answer trivially, so callers never probe for them
    def evict(self, name: str) -> bool:
        """Forget a local cached copy of an object (it failed its checksum); ``True`` if a
        cache may have held one, so that reading the object again may succeed."""
        ...

    def remove_temporary(self, older_than: float) -> builtins.list[str]:
        """Remove what interrupted writes left (temporary files, unfinished multipart
        uploads) started before ``older_than`` (epoch seconds); returns their names."""
        ...


def split_name(name: str) -> list[str]:
    """The parts of an object name; `IntegrityError` unless it is a relative path without
    empty, ``.`` or ``..`` parts (names come from manifests, which a store may have forged)."""
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") for p in parts):
        raise IntegrityError(
            f"invalid file name {name!r} in the store: names are relative paths without "
            "empty, '.' or '..' parts; the manifest naming it is damaged or forged"
        )
    return parts


def check_length(where: str, length: int, size: int | None) -> None:
    """`IntegrityError` unless an object of ``length`` bytes may be read for ``size``: exactly
    ``size`` when given, else at most `MAX_MANIFEST_BYTES`."""
    if size is not None and length != size:
        raise IntegrityError(
            f"{where} is {length} bytes but the manifest says {size}; the file is truncated "
            "or replaced. Restore it from a backup."
        )
    if size is None and length > MAX_MANIFEST_BYTES:
        raise IntegrityError(
            f"{where} is {length} bytes, more than the {MAX_MANIFEST_BYTES} a manifest may "
            "have; it is not a manifest of this store. Restore it from a backup."
        )
