"""The storage protocol: the five operations the engine needs from a directory or a bucket.

Names are relative POSIX paths chosen by the engine (``manifests/…``, ``segments/…``); they never
contain user input. Every ``write`` is atomic (a reader sees the whole object or none of it) and
durable when it returns. ``write_if_absent`` is the commit primitive: it creates the object only
if no object of that name exists, atomically with respect to every other writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Protocol, runtime_checkable


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

        ``size``, when known (from a manifest), lets large objects use a parallel download.
        """
        ...

    def open(self, name: str, size: int | None = None) -> IO[bytes]:
        """A binary stream of the object, to read front to back and close; raises
        `ObjectNotFound` when absent. Lets large files be read without holding them whole."""
        ...

    def write(self, name: str, data: bytes) -> None:
        """Create or replace the object atomically and durably."""
        ...

    def write_if_absent(self, name: str, data: bytes) -> bool:
        """Create the object only if absent; ``False`` when it already existed."""
        ...

    def list(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        """Every object whose name starts with ``prefix`` (and sorts after ``start_after``),
        sorted by name."""
        ...

    def delete(self, name: str) -> None:
        """Remove the object; absent objects are ignored."""
        ...

    def describe(self) -> str:
        """Where this storage points, for messages (never credentials)."""
        ...
