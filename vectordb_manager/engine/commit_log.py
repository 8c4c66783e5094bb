"""`CommitLog`: the sequence of manifests in one storage, and the commit protocol.

A store is its newest manifest. This module lists the manifests, reads the newest, proposes the
next version (``write_if_absent`` of ``manifests/<version>.json``: whoever creates it first has
committed), writes and removes a change's files, and collects what old versions leave behind
(see `retention`). It knows nothing of records, vectors or indexes; the `Engine` decides what
a version contains, and retries a lost race with its `RetryPolicy`.

Durability: a change's files are written first (`uncommitted`), without waiting for them to
be durable (``durable=False``: a local directory fsyncs them together with the manifest's
temporary file); proposing a manifest passes the storage the files it names that are still
so written (``after``), which it makes durable before it creates the manifest. So a
manifest is never durable before the files it names, and a proposal that returns ``True``
has made both durable.

The ambiguous failure: when the storage fails while creating a manifest, the write may still
have landed with its answer lost. `CommitLog.propose` then reads the version back and decides
whether it is *ours* (our bytes), *theirs* (other bytes) or *absent*; only when even that
cannot be told does it raise `CommitUnknown`, and the change's files are then left in place
(`vacuum` removes them later if no manifest names them).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from vectordb_manager.engine.format import (
    INDEX_DIR,
    MANIFEST_DIR,
    SEGMENT_DIR,
    Blob,
    Manifest,
    manifest_name,
    parse_manifest_name,
)
from vectordb_manager.engine.limits import MAX_VERSION
from vectordb_manager.engine.retention import (
    MANIFEST_RETENTION_SECONDS,
    Listing,
    expired_count,
    next_due,
    plan_collection,
)
from vectordb_manager.engine.retry import LOAD_POLICY
from vectordb_manager.errors import IntegrityError, StorageError
from vectordb_manager.storage.base import ObjectNotFound, Storage

logger = logging.getLogger(__name__)
IO_THREADS = 8


class CommitUnknown(StorageError):
    """Creating a manifest failed, and whether it landed could not be told."""


def files_of(manifest: Manifest) -> set[str]:
    """Every file a manifest names."""
    names = {f.path for s in manifest.segments for f in s.files()}
    if manifest.snapshot is not None:
        names.add(manifest.snapshot.file.path)
    return names


class CommitLog:
    """The manifests of the store in ``storage``. ``clock``: wall-clock time, comparable with
    the storage's modification times; ``monotonic``: for how long ago it last listed them.
    Both are public so that tests can move time on."""

    def __init__(
        self,
        storage: Storage,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.monotonic = monotonic
        self._listed_at = monotonic()
        # (version, monotonic time): no newer manifest existed then (see `versions`)
        self._newest: tuple[int, float] | None = None
        # one cheap look for a single name, where one exists (a local folder). Not on S3: a
        # LIST after a name is one request there too, and a HEAD answered 404 does not
        # refill botocore's retry quota as an answered LIST does (tried: under throttling and
        # dropped connections, 20 of 40 writes ran out of retries instead of none)
        self._probes = callable(getattr(storage, "has", None))
        # files `uncommitted` wrote that may not be durable yet (any thread's changes)
        self._staged: set[str] = set()
        self._staged_lock = threading.Lock()
        # no collection can find anything before this time, or this version (see retention)
        self._gc_due: tuple[float, int | None] = (0.0, None)

    def describe(self) -> str:
        return self.storage.describe()

    # -- listing and reading -----------------------------------------------------------------
    def listing(self, after: int | None = None) -> list[tuple[int, float]]:
        """(version, time committed) of each manifest, ascending; only those newer than
        ``after`` if given."""
        listed_at = self.monotonic()
        start = manifest_name(after) if after is not None else None
        found = self.storage.list(MANIFEST_DIR, start_after=start)
        self._listed_at = listed_at
        parsed = [(parse_manifest_name(o.name), o.modified) for o in found]
        listing = sorted((v, t) for v, t in parsed if v is not None)
        if after is None:
            self._gc_due = next_due(listing, self.clock())
        newest = listing[-1][0] if listing else after
        if newest is not None:
            self._newest = (newest, listed_at)
        return listing

    def versions(self, after: int | None = None) -> list[int]:
        """The versions committed (after ``after``), ascending.

        Asked for those after the version known to be the newest less than half the
        retention time ago (`MANIFEST_RETENTION_SECONDS`), a local store looks for the next
        version's manifest alone instead of listing them all (a folder of thousands took
        milliseconds on every commit). That answers for all of them: versions are created one
        after another (a manifest is created only when the one before it exists), and none
        created since can have expired yet, so if the next is absent, so is any later one."""
        known, now = self._newest, self.monotonic()
        if (
            after is not None
            and self._probes
            and known is not None
            and known[0] == after
            and now - known[1] < MANIFEST_RETENTION_SECONDS / 2
            and not self.storage.has(manifest_name(after + 1))  # type: ignore[attr-defined]
        ):
            self._newest = (after, now)
            return []
        return [v for v, _ in self.listing(after)]

    @property
    def listing_is_old(self) -> bool:
        """Whether more than half the retention time passed since the last listing: a writer
        then lists again before committing, so that it never proposes a version number whose
        manifest was removed meanwhile (see `retention`)."""
        return self.monotonic() - self._listed_at > MANIFEST_RETENTION_SECONDS / 2

    def read(self, version: int) -> Manifest:
        """The manifest of ``version``; `ObjectNotFound` if it is gone."""
        name = manifest_name(version)
        return Manifest.from_bytes(self.storage.read(name), name)

    def read_latest(self, versions: list[int] | None = None) -> Manifest:
        """The newest manifest (``versions``: a listing just made, to save listing again).

        The newest manifest is never removed, so a listed one that cannot be read was removed
        while the listing got old; listing again then shows a newer one (progress), and the
        same one missing twice means it is gone: `IntegrityError`."""
        missing: int | None = None
        for _ in LOAD_POLICY.attempts():
            versions = versions or self.versions()
            if not versions:
                raise IntegrityError(
                    f"{self.describe()} has no manifest; it is not a vectordb-manager store or "
                    "its manifests/ folder was removed"
                )
            try:
                return self.read(versions[-1])
            except ObjectNotFound:
                if missing == versions[-1]:
                    raise IntegrityError(
                        f"{manifest_name(versions[-1])} is listed but cannot be read in "
                        f"{self.describe()}"
                    ) from None
                missing, versions = versions[-1], None
        raise StorageError(f"the manifests at {self.describe()} keep changing; try again")

    def read_many(self, versions: Sequence[int], current: Manifest) -> list[Manifest]:
        """The manifests of these versions (``current`` from memory), read in parallel."""

        def read(version: int) -> Manifest:
            return current if version == current.version else self.read(version)

        try:
            with ThreadPoolExecutor(max(1, min(IO_THREADS, len(versions)))) as pool:
                return list(pool.map(read, versions))
        except ObjectNotFound as gone:  # another writer collected them meanwhile
            raise StorageError(f"{gone.args[0]} was removed meanwhile; try again") from None

    def refuse_remains(self) -> None:
        """`IntegrityError` if files of a store are here without any manifest.

        A store exists where any of its files are (a segment, an index snapshot or a
        manifest). Creating a new store over the segments of one whose manifests were lost
        would hide them, and the next vacuum would delete them.
        """
        for prefix in (SEGMENT_DIR, INDEX_DIR):
            found = self.storage.list(prefix)
            if found:
                raise IntegrityError(
                    f"{self.describe()} holds {len(found)} file(s) of a store under {prefix} "
                    f"(such as {found[0].name}) but no manifest: its manifests/ folder was "
                    "removed or lost. Restore manifests/ from a backup; nothing was written. "
                    "To start a new store, use an empty location."
                )

    # -- committing --------------------------------------------------------------------------
    def propose(self, proposed: Manifest, *, durable: bool = True) -> bool:
        """Create the manifest of the next version; ``True`` if it is ours, ``False`` if
        another writer created that version first. ``durable=False``: the manifest is in
        place (committed) but may become durable only in `settle`, so that the caller can
        apply the change in memory meanwhile."""
        if proposed.version > MAX_VERSION:
            raise StorageError(
                f"{self.describe()} has reached the highest version number {MAX_VERSION}; "
                "copy its documents to a new store"
            )
        name, data = manifest_name(proposed.version), proposed.to_bytes()
        with self._staged_lock:
            after = sorted(files_of(proposed) & self._staged) if self._staged else []
        started = self.monotonic()
        try:
            created = self.storage.write_if_absent(name, data, after=after, durable=durable)
        except StorageError as failed:
            try:
                there = self.storage.read(name)
            except ObjectNotFound:
                raise failed from None  # it did not land: nothing was committed
            except StorageError:
                raise CommitUnknown(
                    f"{failed}; whether version {proposed.version} was committed is unknown "
                    "(refresh() tells)"
                ) from failed
            if there != data:
                return False
            logger.warning("committed version %d despite an error: %s", proposed.version, failed)
            created = True
        if created:  # (created after the one before it: the newest since ``started``)
            self._newest = (proposed.version, started)
        return created

    def settle(self, committed: Manifest) -> None:
        """Wait until a manifest proposed with ``durable=False`` is durable. It is committed
        either way: a failure is logged, as `propose` does for a manifest found in place
        after an error."""
        try:
            self.storage.sync([manifest_name(committed.version)])
        except StorageError as exc:
            logger.warning("committed version %d despite an error: %s", committed.version, exc)

    def make_durable(self, names: Sequence[str]) -> None:
        """Make files written by `uncommitted` durable now, rather than with the manifest
        that names them (a merge does so before it takes the writers' lock)."""
        self.storage.sync(names)

    @contextlib.contextmanager
    def uncommitted(self, blobs: Mapping[str, Blob]) -> Iterator[None]:
        """Write a change's files, not yet durably: `propose` makes them durable before a
        manifest naming them. If the block fails (the change was not committed), remove them
        again, so that a failed write or compaction leaves nothing behind."""
        try:
            self.put(blobs, durable=False)
            yield
        except CommitUnknown:
            raise  # a committed manifest may name the files: vacuum() decides later
        except BaseException:
            self.discard(blobs)
            raise
        finally:
            with self._staged_lock:
                self._staged.difference_update(blobs)

    def put(self, blobs: Mapping[str, Blob], *, durable: bool = True) -> None:
        """Write files (in parallel when there are several); ``durable=False``: see
        `uncommitted`."""
        storage = self.storage

        def write(path: str, data: Blob) -> None:
            if not durable:
                with self._staged_lock:
                    self._staged.add(path)
            storage.write(path, data, durable=durable)

        if len(blobs) <= 1:
            for path, data in blobs.items():
                write(path, data)
            return
        with ThreadPoolExecutor(min(IO_THREADS, len(blobs))) as pool:
            list(pool.map(lambda item: write(*item), blobs.items()))

    def discard(self, paths: Mapping[str, Blob] | Sequence[str]) -> None:
        """Remove files that are garbage; a failure is logged, never raised."""
        for path in paths:
            try:
                self.storage.delete(path)
            except StorageError as exc:
                logger.warning("could not remove unused %s: %s", path, exc)

    # -- old versions --------------------------------------------------------------------------
    def collect_garbage(self, current: Manifest, file_retention: float | None = None) -> None:
        """Remove expired manifests and the files only they name (see `retention`); with
        ``file_retention``, now, and also files replaced more than that many seconds ago.

        Listing the manifests costs a LIST (locally a stat per manifest), so it is skipped
        until a manifest can have expired, or an expired one is old enough to go."""
        due_time, due_version = self._gc_due
        if (
            file_retention is None
            and self.clock() < due_time
            and (due_version is None or current.version < due_version)
        ):
            return
        retention = MANIFEST_RETENTION_SECONDS if file_retention is None else file_retention
        plan = plan_collection(self.listing(), current.version, self.clock(), retention)
        if plan is None:
            return
        manifests = self.read_many([*plan.scan, plan.boundary], current)
        named = set().union(*(files_of(m) for m in manifests[:-1]))
        garbage = sorted(named - files_of(manifests[-1]))
        self.discard(garbage + [manifest_name(v) for v in plan.remove])
        logger.debug(
            "removed %d replaced files and %d expired manifests", len(garbage), len(plan.remove)
        )

    def vacuum(self, current: Manifest, older_than: float) -> list[str]:
        """Remove what no version needs any more (see `Engine.vacuum`); returns the names."""
        self.collect_garbage(current, older_than)
        listing: Listing = self.listing()
        recent = [v for v, _ in listing[expired_count(listing, self.clock(), older_than) :]]
        keep = set().union(*(files_of(m) for m in self.read_many(recent, current)))
        cutoff = self.clock() - older_than
        garbage = [
            o.name
            for prefix in (SEGMENT_DIR, INDEX_DIR)
            for o in self.storage.list(prefix)
            if o.name not in keep and o.modified < cutoff
        ]
        self.discard(garbage)
        garbage += self.storage.remove_temporary(cutoff)
        if garbage:
            logger.debug("vacuum removed %d unreferenced files", len(garbage))
        return garbage
