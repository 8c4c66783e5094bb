"""Retention: when old manifests, and the files only they name, may be removed.

A reader lists the manifests, reads the newest, then reads the files it names, which takes a
while on a large store. Meanwhile a writer may commit a version that no longer names some of
those files (a compaction merged them). So nothing is removed the moment it is replaced:

* a manifest has **expired** once its successor was committed more than
  `MANIFEST_RETENTION_SECONDS` ago (the newest manifest never expires);
* a file may be removed once the last manifest that names it has expired. Files are immutable
  and each is named by a contiguous run of versions, so these are exactly the files that the
  expired manifests name and the first unexpired manifest (the *boundary*) does not;
* an expired manifest is itself removed once it is also `KEEP_MANIFESTS` versions old.

A reader slower than the retention time finds a file missing, reads the newest manifest and
starts over from it: the store moved on, which is progress, not damage. Version numbers are
never created twice: a writer lists the manifests again before committing if more than half
the retention time has passed since it last did, so a stalled writer cannot propose a version
whose manifest was removed (it would be invisible, and its acknowledged write lost). Within
that time a local writer that knows the newest version looks for the next one's manifest
alone (`CommitLog.versions`): none created since can have expired, so none is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vectordb_manager.errors import InvalidInputError

KEEP_MANIFESTS = 8
MANIFEST_RETENTION_SECONDS = 600.0

Listing = Sequence[tuple[int, float]]  # (version, time committed) of each manifest, ascending


@dataclass(frozen=True)
class Collection:
    """One collection: read the manifests ``scan`` (the files they name are candidates), keep
    every file manifest ``boundary`` names, remove the other candidates, then the manifests
    ``remove``."""

    scan: tuple[int, ...]
    boundary: int
    remove: tuple[int, ...]


def expired_count(
    listing: Listing, now: float, retention: float = MANIFEST_RETENTION_SECONDS
) -> int:
    """How many of the oldest listed manifests were replaced more than ``retention`` seconds
    ago (they form a prefix)."""
    count = 0
    for _, successor_time in listing[1:]:
        if successor_time >= now - retention:
            break
        count += 1
    return count


def plan_collection(
    listing: Listing, current: int, now: float, file_retention: float = MANIFEST_RETENTION_SECONDS
) -> Collection | None:
    """What may be removed now, given the listed manifests and the newest version.

    ``file_retention`` shortens how long replaced files are kept (`vacuum` when the caller
    knows that no reader is loading an old version; a reader that is would start over from the
    newest); manifests always keep the full retention time, which protects version numbers.
    """
    scanned = expired_count(listing, now, file_retention)
    if not scanned:
        return None
    versions = [v for v, _ in listing]
    expired = versions[: expired_count(listing, now)]
    remove = tuple(v for v in expired if v <= current - KEEP_MANIFESTS)
    return Collection(tuple(versions[:scanned]), versions[scanned], remove)


def next_due(listing: Listing, now: float) -> tuple[float, int | None]:
    """When a collection can next find something: the earliest time a manifest that has not
    expired yet will, and, if expired manifests wait only for newer versions, the version at
    which the oldest may go (``None``: no such wait)."""
    expired = expired_count(listing, now)
    following = listing[expired + 1 : expired + 2]
    # the first unexpired manifest expires once its successor is old enough; if it has none
    # yet, its successor will be committed after now
    due_time = (following[0][1] if following else now) + MANIFEST_RETENTION_SECONDS
    due_version = listing[0][0] + KEEP_MANIFESTS if expired else None
    return due_time, due_version


def require_age(older_than: object) -> None:
    """`InvalidInputError` unless ``older_than`` is a finite number of seconds, 0 or more."""
    if (
        isinstance(older_than, bool)
        or not isinstance(older_than, int | float)
        or not 0 <= older_than < float("inf")
    ):
        raise InvalidInputError(
            f"older_than={older_than!r} must be a number of seconds, 0 or more (files "
            "younger than that may belong to a write in progress)"
        )
