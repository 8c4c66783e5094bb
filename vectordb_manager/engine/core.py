"""`Engine`: records, vectors, search and the commit protocol, over any `Storage`.

The engine holds one `StoreState` in memory. A write builds a segment, writes its files, then
commits the next manifest with ``write_if_absent``. If another writer committed that version
first, the engine reads the winner's manifest, applies its segments, and commits its own
segment on top (adds and deletes compose in commit order); after ``commit_attempts`` losses it
raises `ConcurrentModificationError` and leaves the store as it was. Only then is the change
applied in memory, so a failed write never shows. With ``storage=None`` the engine is purely
in memory and the same code applies segments directly.

Threads: one writer at a time per engine (``_write_lock``); searches run concurrently and only
wait while a committed change is being applied (a readers-writer lock).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import faiss
import numpy as np
from langchain_core.documents import Document

from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.filters import Plan, Predicate, compile_filter, plan_filter
from vectordb_manager.engine.format import (
    INDEX_DIR,
    MANIFEST_DIR,
    SEGMENT_DIR,
    FileRef,
    HashingReader,
    Manifest,
    SegmentData,
    SegmentRef,
    SnapshotRef,
    Vectors,
    VectorSink,
    canonical_json,
    content_hash,
    encode_segment,
    manifest_name,
    new_segment_name,
    now_iso,
    parse_manifest_name,
    read_segment,
)
from vectordb_manager.engine.index import IndexParams, VectorIndex
from vectordb_manager.engine.limits import MAX_VERSION, check_record_size
from vectordb_manager.engine.locks import ReadWriteLock
from vectordb_manager.engine.retention import (
    MANIFEST_RETENTION_SECONDS,
    expired_count,
    next_due,
    plan_collection,
)
from vectordb_manager.engine.retry import LOAD_POLICY, commit_policy
from vectordb_manager.engine.state import StoreState
from vectordb_manager.errors import (
    ConcurrentModificationError,
    ConfigurationError,
    DimensionMismatchError,
    IntegrityError,
    InvalidInputError,
    StorageError,
    StoreNotFoundError,
)
from vectordb_manager.storage.base import ObjectNotFound, Storage

logger = logging.getLogger(__name__)
T = TypeVar("T")

DISTANCES = ("cosine", "l2", "inner_product")
INDEX_TYPES = ("flat", "hnsw", "ivf", "auto")
_IO_THREADS = 8
_PREFETCH_BYTES = 64 << 20  # fetch ahead while at most this much waits to be decoded...
_PREFETCH_MIN = 2  # ...but always keep this many segments in flight (S3 latency)
_UNVERIFIED_BYTES = 256 << 20  # manifest-claimed sizes trusted for allocation without a LIST


@dataclass(frozen=True)
class Hit:
    """A search result: the document, its raw distance (lower is closer) and, when asked
    for, its stored vector (normalised for cosine)."""

    document: Document
    distance: float
    vector: Vectors | None = None


class Engine:
    """The store engine; `LocalVectorStore` and `S3VectorStore` are thin layers over it."""

    def __init__(
        self,
        storage: Storage | None,
        *,
        distance: str = "cosine",
        index: str = "flat",
        params: IndexParams | None = None,
        dimension: int | None = None,
        embedding_model: str | None = None,
        compaction: CompactionPolicy | None = None,
        commit_attempts: int = 32,
        check_model: bool = True,
        create: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if distance not in DISTANCES:
            raise ConfigurationError(
                f"distance={distance!r} is not supported; use one of {', '.join(DISTANCES)}"
            )
        if index not in INDEX_TYPES:
            raise ConfigurationError(
                f"index={index!r} is not supported; use one of {', '.join(INDEX_TYPES)}"
            )
        if commit_attempts < 1:
            raise ConfigurationError(f"commit_attempts={commit_attempts} must be at least 1")
        self.storage = storage
        self.distance = distance
        self.requested_index = index
        self.params = params or IndexParams()
        self.embedding_model = embedding_model
        self.policy = compaction or CompactionPolicy()
        self.commit_attempts = commit_attempts
        self.check_model = check_model
        self._commit_policy = commit_policy(commit_attempts, sleep=sleep, rng=rng)
        self._write_lock = threading.RLock()
        self._rw = ReadWriteLock()
        self._manifest: Manifest | None = None
        self._listed_at = time.monotonic()
        self._clock = clock  # wall-clock time, comparable with files' modification times
        # no collection can find anything before this time, or this version (see retention)
        self._gc_due: tuple[float, int | None] = (0.0, None)
        self._state = StoreState(self._kind_for(0), dimension, distance, self.params)
        if storage is not None:
            self._open(dimension, create=create)

    # -- properties ------------------------------------------------------------------------
    @property
    def dimension(self) -> int | None:
        return (
            self._state.dim
            if self._state.dim is not None
            else (self._manifest.dimension if self._manifest else None)
        )

    @property
    def version(self) -> int:
        return self._manifest.version if self._manifest else 0

    @property
    def manifest(self) -> Manifest | None:
        return self._manifest

    def count(self) -> int:
        return self._state.live

    def _kind_for(self, live: int) -> str:
        if self.requested_index == "auto":
            return "hnsw" if live >= self.params.auto_threshold else "flat"
        return self.requested_index

    # -- opening and refreshing -----------------------------------------------------------
    def _open(self, dimension: int | None, *, create: bool) -> None:
        assert self.storage is not None
        versions = self._versions()
        if not versions:
            self._refuse_remains()
            if not create:
                raise StoreNotFoundError(
                    f"no store at {self.storage.describe()}; check the location, or create "
                    "the store by adding documents to it"
                )
            first = Manifest(
                version=1,
                distance=self.distance,
                index=self.requested_index,
                index_params=self.params.to_json(),
                dimension=dimension,
                embedding_model=self.embedding_model,
            )
            if self.storage.write_if_absent(manifest_name(1), first.to_bytes()):
                self._manifest = first
                logger.debug("created store at %s", self.storage.describe())
                return
        manifest = self._read_latest(versions)
        if manifest.distance != self.distance:
            raise ConfigurationError(
                f"the store at {self.storage.describe()} uses distance={manifest.distance!r}; "
                f"open it with distance={manifest.distance!r} (it was given {self.distance!r})"
            )
        if (
            dimension is not None
            and manifest.dimension is not None
            and dimension != manifest.dimension
        ):
            raise DimensionMismatchError(
                f"the embedding model gives {dimension}-dimensional vectors but the store at "
                f"{self.storage.describe()} holds {manifest.dimension}-dimensional ones "
                f"(model {manifest.embedding_model!r}); open it with the model it was built with"
            )
        stored_model = manifest.embedding_model
        if (
            self.check_model
            and stored_model
            and self.embedding_model
            and (stored_model != self.embedding_model)
        ):
            raise ConfigurationError(
                f"the store at {self.storage.describe()} was built with embedding model "
                f"{stored_model!r} but is being opened with {self.embedding_model!r}; open it "
                "with the model it was built with, or rebuild it for the new model with "
                "VectorDatabaseManager.reembed()"
            )
        self._load(manifest)

    def _refuse_remains(self) -> None:
        """Raise `IntegrityError` if files of a store are here without any manifest.

        A store exists where any of its files do (a segment, an index snapshot or a manifest).
        Creating a new store over the segments of one whose manifests were lost would hide
        them, and the next vacuum would delete them.
        """
        assert self.storage is not None
        for prefix in (SEGMENT_DIR, INDEX_DIR):
            found = self.storage.list(prefix)
            if found:
                raise IntegrityError(
                    f"{self.storage.describe()} holds {len(found)} file(s) of a store under "
                    f"{prefix} (such as {found[0].name}) but no manifest: its manifests/ "
                    "folder was removed or lost. Restore manifests/ from a backup; nothing "
                    "was written. To start a new store, use an empty location."
                )

    def _versions(self, after: int | None = None) -> list[int]:
        assert self.storage is not None
        return sorted(v for v, _ in self._manifest_infos(after))

    def _manifest_infos(self, after: int | None = None) -> list[tuple[int, float]]:
        """(version, modified time) of the manifests, only those newer than ``after`` if given."""
        assert self.storage is not None
        listed_at = time.monotonic()
        start = manifest_name(after) if after is not None else None
        listing = self.storage.list(MANIFEST_DIR, start_after=start)
        self._listed_at = listed_at
        found = [(parse_manifest_name(o.name), o.modified) for o in listing]
        infos = [(v, t) for v, t in found if v is not None]
        if after is None:
            self._gc_due = next_due(infos, self._clock())
        return infos

    def _read_latest(self, versions: list[int] | None = None) -> Manifest:
        """The newest manifest (``versions``: a listing just made, to save listing again).

        The newest manifest is never removed, so a listed one that cannot be read was removed
        while the listing got old; listing again then shows a newer one (progress), and the
        same one missing twice means it is gone: `IntegrityError`."""
        assert self.storage is not None
        missing: int | None = None
        for _ in LOAD_POLICY.attempts():
            versions = versions or self._versions()
            if not versions:
                raise IntegrityError(
                    f"{self.storage.describe()} has no manifest; it is not a vectordb-manager "
                    "store or its manifests/ folder was removed"
                )
            name = manifest_name(versions[-1])
            try:
                return Manifest.from_bytes(self.storage.read(name), name)
            except ObjectNotFound:
                if missing == versions[-1]:
                    raise IntegrityError(
                        f"{name} is listed but cannot be read in {self.storage.describe()}"
                    ) from None
                missing, versions = versions[-1], None
        raise StorageError(f"the manifests at {self.storage.describe()} keep changing; try again")

    def _load(self, manifest: Manifest) -> None:
        state, manifest = self._build_newest(manifest)
        with self._rw.write():
            self._state = state
            self._manifest = manifest

    def _build_newest(
        self, manifest: Manifest, *, lazy: bool = True
    ) -> tuple[StoreState, Manifest]:
        """`_build_state` of ``manifest``, or of a newer version if the store moved on while
        its files were read (a file the manifest names is gone only once a newer version has
        replaced it and the retention time has passed; else it is missing: `IntegrityError`)."""
        for _ in LOAD_POLICY.attempts():
            try:
                return self._build_state(manifest, lazy=lazy), manifest
            except ObjectNotFound as missing:
                newer = self._read_latest()
                if newer.version == manifest.version:
                    raise IntegrityError(
                        f"{missing.args[0]} is listed in the manifest but missing from "
                        f"{self.storage.describe() if self.storage else 'the store'}; "
                        "restore it from a backup"
                    ) from None
                manifest = newer
        raise StorageError(
            f"the store at {self.storage.describe() if self.storage else 'memory'} kept "
            "changing faster than it could be read; try again"
        )

    def _build_state(self, manifest: Manifest, *, lazy: bool = True) -> StoreState:
        """Read, verify and replay a manifest's files.

        Files are streamed and checksummed in parallel while earlier segments are replayed.
        A flat index's storage is allocated once and each segment's vectors are read straight
        into their slots, so no file is held whole in memory (the vectors exist once).
        """
        snapshot = manifest.snapshot
        kind = self._kind_for(manifest.live_count)
        segments = manifest.segments
        dim = manifest.dimension
        use_snapshot = (
            snapshot is not None
            and segments
            and snapshot.segment == segments[0].name
            and snapshot.kind == kind
            and dim is not None
        )
        if use_snapshot and snapshot is not None and snapshot.rows != segments[0].rows:
            raise IntegrityError(
                f"the index snapshot covers {snapshot.rows} rows but its segment has "
                f"{segments[0].rows}"
            )
        self._check_sizes(segments)
        index: VectorIndex | None = None
        slots: Vectors | None = None
        if kind == "flat" and dim is not None:
            index = VectorIndex(kind, dim, self.distance, self.params)
            slots = index.extend(sum(ref.rows for ref in segments))
        starts = np.cumsum([0, *(ref.rows for ref in segments)]).tolist()

        def sink(i: int) -> VectorSink | None:
            if slots is not None:
                view = slots[starts[i] : starts[i + 1]]
                return lambda rows, d: view
            if use_snapshot and i == 0 and kind == "hnsw":
                return lambda rows, d: None  # the snapshot holds them
            return None  # into a new array, added to the index below

        with ThreadPoolExecutor(_IO_THREADS) as pool:
            if use_snapshot:
                assert snapshot is not None and dim is not None
                snap_future = pool.submit(self._read_snapshot, snapshot, kind, dim)
            # read ahead, bounded in bytes (memory) but never serial (latency)
            pending: deque[tuple[SegmentRef, Future[SegmentData]]] = deque()
            waiting = 0
            upcoming = iter(enumerate(segments))
            following = next(upcoming, None)

            def prefetch() -> None:
                nonlocal waiting, following
                while following is not None and (
                    len(pending) < _PREFETCH_MIN
                    or waiting + _size(following[1]) <= _PREFETCH_BYTES
                ):
                    i, ref = following
                    read = functools.partial(self._read_segment, ref, dim, sink(i), lazy)
                    pending.append((ref, pool.submit(read)))
                    waiting += _size(ref)
                    following = next(upcoming, None)

            prefetch()
            indexed = 0
            if use_snapshot:
                assert snapshot is not None
                index = snap_future.result()
                indexed = snapshot.rows
            state = StoreState(kind, dim, self.distance, self.params, index=index)
            if slots is None and state.index is not None:
                state.index.reserve(sum(ref.rows for ref in segments) - indexed)
            for i in range(len(segments)):
                ref, future = pending.popleft()
                seg = future.result()
                waiting -= _size(ref)
                prefetch()
                in_index = len(seg) if slots is not None else indexed if i == 0 else 0
                state.apply(seg, ref.name, indexed_rows=in_index)
                del seg
        _check_live(state, manifest)
        return state

    def _check_sizes(self, segments: Sequence[SegmentRef]) -> None:
        """Check that each segment is stored with exactly the size its manifest claims.

        A manifest carries no checksum of its own, and the rows it claims size the index
        before any file is read; the manifest's parser bounds rows by the files' claimed
        sizes, and, when those add up to more than `_UNVERIFIED_BYTES`, one listing here
        bounds them by what is really stored (each sized read checks its file's length too).
        """
        claimed = sum(ref.file.bytes for ref in segments)
        if claimed <= _UNVERIFIED_BYTES:
            return  # the most a lying manifest can make us allocate before reading fails
        assert self.storage is not None
        stored = {o.name: o.size for o in self.storage.list(SEGMENT_DIR)}
        for ref in segments:
            size = stored.get(ref.file.path)
            if size is None:
                raise ObjectNotFound(ref.file.path)
            if size != ref.file.bytes:
                raise IntegrityError(
                    f"{ref.file.path} is {size} bytes but the manifest says {ref.file.bytes}; "
                    "the file is truncated or replaced. Restore it from a backup."
                )

    def _with_file(self, ref: FileRef, use: Callable[[IO[bytes]], T]) -> T:
        """``use(stream)`` on a stored file; a cached copy that fails its checksum is dropped
        and the original read once more."""
        storage = self.storage
        assert storage is not None
        try:
            with storage.open(ref.path, ref.bytes) as stream:
                return use(stream)
        except IntegrityError:
            evict = getattr(storage, "evict", None)
            if evict is None:
                raise
            evict(ref.path)
            with storage.open(ref.path, ref.bytes) as stream:
                return use(stream)

    def _read_segment(
        self, ref: SegmentRef, dim: int | None, sink: VectorSink | None, lazy: bool
    ) -> SegmentData:
        return self._with_file(ref.file, lambda f: read_segment(ref, f, dim, sink, lazy=lazy))

    def _read_snapshot(self, snapshot: SnapshotRef, kind: str, dim: int) -> VectorIndex:
        def load(stream: IO[bytes]) -> VectorIndex:
            # verified before FAISS parses it: damaged bytes never reach FAISS's reader
            HashingReader(stream, snapshot.file).finish()
            stream.seek(0)
            return VectorIndex.from_snapshot(
                stream,
                kind=kind,
                dim=dim,
                distance=self.distance,
                params=self.params,
                rows=snapshot.rows,
            )

        return self._with_file(snapshot.file, load)

    def refresh(self) -> bool:
        """Pick up commits made by other writers; ``True`` if anything changed."""
        with self._write_lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> bool:
        if self.storage is None or self._manifest is None:
            return False
        current = self._manifest
        versions = self._versions(after=current.version)
        if not versions or versions[-1] <= current.version:
            return False
        name = manifest_name(versions[-1])
        try:
            latest = Manifest.from_bytes(self.storage.read(name), name)
        except ObjectNotFound:
            latest = self._read_latest()
        n = len(current.segments)
        if latest.segments[:n] == current.segments and latest.snapshot == current.snapshot:
            added = latest.segments[n:]
            dim = latest.dimension or self.dimension
            try:
                with ThreadPoolExecutor(max(1, min(_IO_THREADS, len(added)))) as pool:
                    futures = [
                        pool.submit(self._read_segment, ref, dim, None, True) for ref in added
                    ]
                    segs = [f.result() for f in futures]
            except ObjectNotFound:
                self._load(self._read_latest())
                return True
            with self._rw.write():
                for ref, seg in zip(added, segs, strict=True):
                    self._state.apply(seg, ref.name)
                self._manifest = latest
            _check_live(self._state, latest)
        else:
            self._load(latest)
        return True

    # -- writing ---------------------------------------------------------------------------
    def upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
        vectors: Vectors,
    ) -> int:
        """Add or replace records (inputs already validated); returns how many were written.

        Records whose text, metadata and vector are unchanged are skipped.
        """
        vectors = self._prepare(vectors)
        meta_json = [canonical_json(m) for m in metadatas]
        for i, (text, mj) in enumerate(zip(texts, meta_json, strict=True)):
            check_record_size(i, text, mj)
        hashes = [content_hash(t, mj) for t, mj in zip(texts, meta_json, strict=True)]
        with self._write_lock:
            self._refresh_locked()
            self._check_dimension(int(vectors.shape[1]))
            st = self._state
            stored = st.index.vectors() if st.index is not None else None
            keep = []
            for i, doc_id in enumerate(ids):
                slot = st.slot.get(doc_id)
                if (
                    slot is not None
                    and stored is not None
                    and st.record(slot)[2] == hashes[i]
                    and np.array_equal(stored[slot], vectors[i])
                ):
                    continue
                keep.append(i)
            if not keep:
                return 0
            now = now_iso()
            seg = SegmentData(
                ids=[ids[i] for i in keep],
                texts=[texts[i] for i in keep],
                metadatas=[dict(metadatas[i]) for i in keep],
                hashes=[hashes[i] for i in keep],
                created=[st.record(st.slot[ids[i]])[3] if ids[i] in st.slot else now for i in keep],
                updated=[now] * len(keep),
                vectors=vectors[keep] if len(keep) < len(ids) else vectors,
            )
            self._commit_locked(seg)
            return len(keep)

    def delete(self, ids: Sequence[str]) -> int:
        """Delete the records with these ids; returns how many existed."""
        with self._write_lock:
            self._refresh_locked()
            present = [i for i in dict.fromkeys(ids) if i in self._state.slot]
            if not present:
                return 0
            dim = self.dimension or 0
            seg = SegmentData([], [], [], [], [], [], np.zeros((0, dim), np.float32), present)
            self._commit_locked(seg)
            return len(present)

    def _prepare(self, vectors: Vectors) -> Vectors:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.distance == "cosine" and len(vectors):
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            if not np.all(norms > 0):
                bad = int(np.argmin(norms[:, 0]))
                raise InvalidInputError(
                    f"vector {bad} is all zeros, which has no direction for cosine distance; "
                    "check the embedding model's output or use distance='l2'"
                )
            vectors = vectors / norms
        return vectors

    def _check_dimension(self, dim: int) -> None:
        known = self.dimension
        if known is not None and dim != known:
            raise DimensionMismatchError(
                f"vectors have dimension {dim} but the store's is {known}; "
                "use the embedding model the store was built with"
            )

    def prepare_query(self, vector: Sequence[float] | Vectors) -> Vectors | None:
        """Validate a query vector into shape (1, d); ``None`` if the store has no dimension yet."""
        try:
            q = np.asarray(vector, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"a query vector must be a flat list of numbers ({exc}); embed the query "
                "with the store's embedding model"
            ) from None
        if q.ndim != 1 or q.size == 0:
            raise InvalidInputError(
                f"a query vector must be a flat list of floats, got shape {q.shape}"
            )
        if not np.isfinite(q).all():
            raise InvalidInputError("the query vector contains NaN or infinite values")
        known = self.dimension
        if known is None:
            return None
        if q.shape[0] != known:
            raise DimensionMismatchError(
                f"the query vector has dimension {q.shape[0]} but the store's is {known}; "
                "embed the query with the model the store was built with"
            )
        if self.distance == "cosine":
            norm = float(np.linalg.norm(q))
            if norm == 0.0:
                raise InvalidInputError(
                    "the query vector is all zeros; cosine distance needs a direction"
                )
            q = q / norm
        return q.reshape(1, -1)

    def _commit_locked(self, seg: SegmentData) -> None:
        if self.storage is None:
            with self._rw.write():
                self._state.apply(seg, None)
            self._maybe_compact_locked()
            return
        name = new_segment_name()
        ref, blobs = encode_segment(name, seg)
        with self._uncommitted(blobs):
            for _ in self._commit_policy.attempts():
                if time.monotonic() - self._listed_at > MANIFEST_RETENTION_SECONDS / 2:
                    self._refresh_locked()
                current = self._manifest
                assert current is not None
                dim = current.dimension or (int(seg.vectors.shape[1]) if len(seg) else None)
                proposed = current.next(
                    segments=(*current.segments, ref),
                    live_count=_live_after(self._state, seg),
                    dimension=dim,
                    embedding_model=current.embedding_model or self.embedding_model,
                    index=self.requested_index,
                    index_params=self.params.to_json(),
                )
                if self._propose(proposed):
                    with self._rw.write():
                        self._state.apply(seg, name)
                        self._manifest = proposed
                    logger.debug(
                        "committed version %d: +%d rows, -%d ids",
                        proposed.version,
                        len(seg),
                        len(seg.deletes),
                    )
                    break
                logger.debug("version %d was taken by another writer; retrying", proposed.version)
                self._refresh_locked()
                if len(seg) and self.dimension not in (None, seg.vectors.shape[1]):
                    self._check_dimension(int(seg.vectors.shape[1]))
            else:
                raise ConcurrentModificationError(
                    f"gave up after {self.commit_attempts} attempts: other writers kept "
                    f"committing to {self.storage.describe()} first; the change was not "
                    "applied, retry it"
                )
        self._after_commit()

    def _after_commit(self) -> None:
        """Merge segments and collect garbage; the change is committed, so neither may fail
        the call (what they leave undone, a later commit does)."""
        try:
            self._maybe_compact_locked()
            self._collect_garbage_locked()
        except StorageError as exc:
            logger.warning("maintenance after version %d failed: %s", self.version, exc)

    def _propose(self, proposed: Manifest) -> bool:
        """Create the manifest of the next version; ``True`` if it is ours.

        When the storage fails, the write may still have landed (its answer lost), so the
        version is read back: our bytes mean committed, other bytes mean another writer won.
        If that cannot be told either, `_CommitUnknown` keeps the change's files in place.
        """
        assert self.storage is not None
        if proposed.version > MAX_VERSION:
            raise StorageError(
                f"{self.storage.describe()} has reached the highest version number "
                f"{MAX_VERSION}; copy its documents to a new store"
            )
        name, data = manifest_name(proposed.version), proposed.to_bytes()
        try:
            return self.storage.write_if_absent(name, data)
        except StorageError as failed:
            try:
                there = self.storage.read(name)
            except ObjectNotFound:
                raise failed from None  # it did not land: nothing was committed
            except StorageError:
                raise _CommitUnknown(
                    f"{failed}; whether version {proposed.version} was committed is unknown "
                    "(refresh() tells)"
                ) from failed
            if there != data:
                return False
            logger.warning("committed version %d despite an error: %s", proposed.version, failed)
            return True

    @contextlib.contextmanager
    def _uncommitted(self, blobs: Mapping[str, bytes]) -> Iterator[None]:
        """Write a change's files; if the block fails (the change was not committed), remove
        them again, so that a failed write or compaction leaves nothing behind."""
        try:
            self._put(blobs)
            yield
        except _CommitUnknown:
            raise  # the files may be named by a committed manifest: vacuum() decides later
        except BaseException:
            self._discard(blobs)
            raise

    def _put(self, blobs: Mapping[str, bytes]) -> None:
        assert self.storage is not None
        storage = self.storage
        if len(blobs) <= 1:
            for path, data in blobs.items():
                storage.write(path, data)
            return
        with ThreadPoolExecutor(min(_IO_THREADS, len(blobs))) as pool:
            list(pool.map(lambda item: storage.write(*item), blobs.items()))

    def _discard(self, paths: Mapping[str, bytes] | Sequence[str]) -> None:
        assert self.storage is not None
        for path in paths:
            try:
                self.storage.delete(path)
            except StorageError as exc:  # garbage only: never fail a call over it
                logger.warning("could not remove unused %s: %s", path, exc)

    # -- compaction --------------------------------------------------------------------------
    def compact(self) -> bool:
        """Merge every segment into one, drop tombstones and save the index; ``True`` if done."""
        with self._write_lock:
            self._refresh_locked()
            if self.storage is None:
                self._cleanup_memory(force=True)
                return True
            try:
                done = self._compact_locked(0, self._kind_for(self._state.live))
            except _LostRace:
                self._refresh_locked()
                done = False
            self._collect_garbage_locked()
            return done

    def vacuum(self, older_than: float = MANIFEST_RETENTION_SECONDS) -> list[str]:
        """Remove files left by crashes or lost races (named by no manifest) once they are
        ``older_than`` seconds old, so that no writer still in progress owns them, and files
        that newer versions replaced more than ``older_than`` seconds ago (by default they are
        kept for the retention time, for readers still loading an old version; a smaller
        value frees their space sooner, say on a full disk)."""
        if self.storage is None:
            return []
        with self._write_lock:
            self._refresh_locked()
            self._collect_garbage_locked(older_than)
            # the files of the manifests replaced less than older_than ago are kept
            listing = self._manifest_infos()
            recent = [v for v, _ in listing[expired_count(listing, self._clock(), older_than) :]]
            keep = set().union(*(_files(m) for m in self._read_manifests(recent)))
            cutoff = self._clock() - older_than
            garbage = [
                o.name
                for prefix in (SEGMENT_DIR, INDEX_DIR)
                for o in self.storage.list(prefix)
                if o.name not in keep and o.modified < cutoff
            ]
            self._discard(garbage)
            remove_temp = getattr(self.storage, "remove_temporary", None)
            if callable(remove_temp):
                garbage += remove_temp(cutoff)
            if garbage:
                logger.debug("vacuum removed %d unreferenced files", len(garbage))
            return garbage

    def _cleanup_memory(self, *, force: bool = False) -> None:
        st = self._state
        kind = self._kind_for(st.live)
        if force or kind != st.kind or self.policy.needs_cleanup(st.slots, st.dead):
            new = st.compacted(kind)
            with self._rw.write():
                self._state = new

    def _maybe_compact_locked(self) -> None:
        if not self.policy.enabled:
            return
        if self.storage is None:
            self._cleanup_memory()
            return
        for _ in range(16):
            st = self._state
            assert self._manifest is not None
            kind = self._kind_for(st.live)
            snapshots = kind != "flat"
            start = (
                0
                if kind != st.kind
                else self.policy.plan(
                    self._manifest.segments, st.slots, st.dead, snapshots=snapshots
                )
            )
            if start is None:
                return
            try:
                if not self._compact_locked(start, kind):
                    return
            except _LostRace:
                self._refresh_locked()  # another writer committed first: it may compact
                return

    def _compact_locked(self, start: int, kind: str) -> bool:
        assert self.storage is not None and self._manifest is not None
        current = self._manifest
        st = self._state
        segments = current.segments
        if not segments:
            return False
        if (
            start == 0
            and len(segments) == 1
            and not st.dead
            and kind == st.kind
            and (current.snapshot is not None or st.index is None or not st.index.snapshotable)
        ):
            return False  # already one segment with its index saved: nothing to gain
        name = new_segment_name()
        snapshot = current.snapshot
        new_state = st
        if start == 0:
            if st.dead or kind != st.kind:
                new_state = st.compacted(kind)
            seg = new_state.encoded_rows(range(new_state.slots))
        else:
            run = segments[start:]
            added = dict.fromkeys(i for r in run for i in st.segment_ids[r.name][0] if i in st.slot)
            seg = st.encoded_rows(sorted(st.slot[i] for i in added))
            seg.deletes = [
                d
                for d in dict.fromkeys(d for r in run for d in st.segment_ids[r.name][1])
                if d not in st.slot
            ]
        ref, blobs = encode_segment(name, seg)
        if start == 0:
            snapshot = None
            data = new_state.index.serialize() if new_state.index is not None else None
            if data is not None:
                file = FileRef.of(f"{INDEX_DIR}{name}.faiss", data)
                blobs[file.path] = data
                snapshot = SnapshotRef(file, name, len(seg), new_state.kind)
        proposed = current.next(
            segments=(*segments[:start], ref), snapshot=snapshot, live_count=st.live
        )
        with self._uncommitted(blobs):
            if not self._propose(proposed):
                raise _LostRace
        with self._rw.write():
            if start == 0:
                new_state.segment_ids = {name: (seg.ids, [])}
                self._state = new_state
            else:
                for r in segments[start:]:
                    del st.segment_ids[r.name]
                st.segment_ids[name] = (seg.ids, seg.deletes)
            self._manifest = proposed
        logger.debug("compacted segments %d.. into %s (version %d)", start, name, proposed.version)
        return True

    def _collect_garbage_locked(self, file_retention: float | None = None) -> None:
        """Remove expired manifests and the files only they name (see `retention`); with
        ``file_retention``, now, and files replaced more than that many seconds ago.

        Listing the manifests costs a LIST (locally a stat per manifest), so it is skipped
        until a manifest can have expired, or an expired one is old enough to go."""
        if self.storage is None or self._manifest is None:
            return
        due_time, due_version = self._gc_due
        if (
            file_retention is None
            and self._clock() < due_time
            and (due_version is None or self.version < due_version)
        ):
            return
        plan = plan_collection(
            self._manifest_infos(),
            self.version,
            self._clock(),
            MANIFEST_RETENTION_SECONDS if file_retention is None else file_retention,
        )
        if plan is None:
            return
        manifests = self._read_manifests([*plan.scan, plan.boundary])
        named = set().union(*(_files(m) for m in manifests[:-1]))
        garbage = sorted(named - _files(manifests[-1]))
        self._discard(garbage + [manifest_name(v) for v in plan.remove])
        logger.debug(
            "removed %d replaced files and %d expired manifests", len(garbage), len(plan.remove)
        )

    def _read_manifests(self, versions: Sequence[int]) -> list[Manifest]:
        """The manifests of these versions (the current one from memory), read in parallel."""
        assert self.storage is not None and self._manifest is not None
        storage, current = self.storage, self._manifest

        def read(version: int) -> Manifest:
            if version == current.version:
                return current
            name = manifest_name(version)
            return Manifest.from_bytes(storage.read(name), name)

        try:
            with ThreadPoolExecutor(max(1, min(_IO_THREADS, len(versions)))) as pool:
                return list(pool.map(read, versions))
        except ObjectNotFound as gone:  # another writer collected them meanwhile
            raise StorageError(f"{gone.args[0]} was removed meanwhile; try again") from None

    # -- reading ---------------------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> list[Document]:
        with self._rw.read():
            st = self._state
            return [_document(st, st.slot[i]) for i in ids if i in st.slot]

    def search(
        self,
        query: Sequence[float] | Vectors,
        k: int,
        filter: Mapping[str, Any] | None = None,
        *,
        with_vectors: bool = False,
    ) -> list[Hit]:
        """The k nearest live records passing the filter, closest first."""
        k = require_k(k)
        predicate = compile_filter(filter)
        plan, complete = plan_filter(filter) if predicate is not None else (None, True)
        q = self.prepare_query(query)
        if q is None:
            return []
        with self._rw.read():
            st = self._state
            if st.index is None or not st.live:
                return []
            if predicate is None:
                scores, slots = self._search_all(st, q, k)
            else:
                allowed = _passing(st, predicate, plan, complete)
                if not allowed.size:
                    return []
                scores, slots = self._search_subset(st, q, k, allowed)
            stored = st.index.vectors() if with_vectors else None
            return [
                Hit(
                    _document(st, int(s)),
                    self._distance(float(d)),
                    np.array(stored[int(s)]) if stored is not None else None,
                )
                for d, s in zip(scores, slots, strict=True)
            ]

    def ids(self, filter: Mapping[str, Any] | None = None) -> list[str]:
        """The live ids (passing ``filter``, if given), in insertion order."""
        predicate = compile_filter(filter)
        with self._rw.read():
            st = self._state
            if predicate is None:
                return list(st.slot)
            plan, complete = plan_filter(filter)
            return [st.ids[s] for s in _passing(st, predicate, plan, complete).tolist()]

    def ids_by_value(self, key: str) -> list[tuple[Any, list[str]]]:
        """The live ids grouped by their value of metadata ``key`` (from the key's value index,
        without decoding the records); documents without the key, or with a list or dict
        there, are left out."""
        with self._rw.read():
            st = self._state
            ids = st.ids
            groups = [
                (vk[1], [ids[s] for s in slots if ids[s] is not None])
                for vk, slots in st.key_index(key).items()
            ]
        return [(value, names) for value, names in groups if names]  # type: ignore[misc]

    def _search_all(
        self, st: StoreState, q: Vectors, k: int
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        assert st.index is not None
        if not st.dead:
            scores, slots = st.index.search(q, k)
            valid = slots[0] >= 0
            if int(valid.sum()) >= min(k, st.live):
                return scores[0][valid], slots[0][valid]
            # an approximate index can come back short (HNSW among many equal vectors, IVF
            # probing too few lists): fewer than k only when fewer exist, so search exactly
            return self._exact(st, q, min(k, st.live), st.live_slots())
        if st.dead <= 4096:
            scores, slots = st.index.search(q, k + st.dead)
            ids = st.ids
            keep = [j for j, s in enumerate(slots[0]) if s >= 0 and ids[s] is not None][:k]
            if len(keep) >= min(k, st.live):
                return scores[0][keep], slots[0][keep]
        return self._search_subset(st, q, k, st.live_slots())

    def _search_subset(
        self, st: StoreState, q: Vectors, k: int, allowed: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        assert st.index is not None
        want = min(k, int(allowed.size))
        # a bitmap search costs a bit test per slot; gathering the allowed vectors costs a copy
        # of each: past an eighth of the slots, the bitmap is cheaper (measured)
        if allowed.size > st.slots // 8 and st.index.trained:
            bits = np.zeros(st.slots, dtype=bool)
            bits[allowed] = True
            packed = np.packbits(bits, bitorder="little")
            selector = faiss.IDSelectorBitmap(st.slots, faiss.swig_ptr(packed))
            scores, slots = st.index.search(q, k, selector)
            valid = slots[0] >= 0
            if int(valid.sum()) >= want:
                return scores[0][valid][:want], slots[0][valid][:want]
        return self._exact(st, q, want, allowed)

    def _exact(
        self, st: StoreState, q: Vectors, k: int, allowed: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        assert st.index is not None
        vecs = st.index.vectors()[allowed]
        if self.distance == "l2":
            scores = ((vecs - q) ** 2).sum(axis=1)
            order = _top(scores, k)
        else:
            scores = vecs @ q[0]
            order = _top(-scores, k)
        return scores[order], allowed[order]

    def _distance(self, raw: float) -> float:
        """FAISS's raw score as a distance: lower is closer, for every metric."""
        if self.distance == "l2":
            return float(np.sqrt(max(raw, 0.0)))
        if self.distance == "cosine":
            return 1.0 - raw
        return -raw

    def iter_rows(self, batch_size: int = 1000) -> Iterator[SegmentData]:
        """Every live record with its vector, in batches (a consistent snapshot per batch)."""
        with self._rw.read():
            slots = self._state.live_slots()
        for start in range(0, len(slots), batch_size):
            with self._rw.read():  # released before yielding: the consumer may write
                st = self._state
                chunk = [int(s) for s in slots[start : start + batch_size] if st.ids[s] is not None]
                rows = st.rows(chunk)
            yield rows

    # -- checking ----------------------------------------------------------------------------
    def verify(self) -> dict[str, Any]:
        """Pick up other writers' commits, re-read and check every file of that version, and
        compare them with memory.

        Raises:
            IntegrityError: on any mismatch.
        """
        with self._write_lock:
            self._refresh_locked()
            st = self._state
            report: dict[str, Any] = {"documents": st.live, "tombstones": st.dead}
            if self.storage is not None:
                # the files of the version in memory: kept for the retention time even when
                # other writers commit newer versions meanwhile
                assert self._manifest is not None
                fresh, checked = self._build_newest(self._manifest, lazy=False)
                if checked is self._manifest:
                    _compare(fresh, st)
                else:  # its files expired while being read: the newest was checked instead
                    st = fresh
                    with self._rw.write():
                        self._state, self._manifest = fresh, checked
                report.update(
                    documents=st.live,
                    tombstones=st.dead,
                    version=checked.version,
                    segments=len(checked.segments),
                    bytes=sum(f.bytes for s in checked.segments for f in s.files())
                    + (checked.snapshot.file.bytes if checked.snapshot else 0),
                )
            st.materialize()
            for slot, doc_id in enumerate(st.ids):
                if doc_id is None:
                    continue
                text, meta, digest = st.record(slot)[:3]
                if digest != content_hash(text, canonical_json(meta)):
                    raise IntegrityError(f"record {doc_id!r} does not match its content hash")
            if st.index is not None and st.index.ntotal != st.slots:
                raise IntegrityError(
                    f"the index holds {st.index.ntotal} vectors for {st.slots} records"
                )
            return report

    def stats(self) -> dict[str, Any]:
        st = self._state
        m = self._manifest
        return {
            "documents": st.live,
            "tombstones": st.dead,
            "dimension": self.dimension,
            "distance": self.distance,
            "index": st.kind,
            "requested_index": self.requested_index,
            "version": m.version if m else None,
            "segments": len(m.segments) if m else None,
            "embedding_model": (m.embedding_model if m else None) or self.embedding_model,
            "location": self.storage.describe() if self.storage else None,
        }


def _passing(
    st: StoreState, predicate: Predicate, plan: Plan | None, complete: bool
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The live slots whose metadata passes the filter, ascending."""
    if plan is None:
        return np.fromiter((s for s, m in st.metas() if predicate(m)), dtype=np.int64)
    candidates = st.plan_slots(plan)
    ids = st.ids
    if complete:
        if not st.dead:
            return candidates
        return np.fromiter((s for s in candidates.tolist() if ids[s] is not None), np.int64)
    return np.fromiter(
        (s for s in candidates.tolist() if ids[s] is not None and predicate(st.record(s)[1])),
        dtype=np.int64,
    )


class _LostRace(Exception):
    """Another writer committed the version a compaction proposed."""


class _CommitUnknown(StorageError):
    """Committing failed, and whether the manifest landed could not be told."""


def _files(manifest: Manifest) -> set[str]:
    """Every file a manifest names."""
    names = {f.path for s in manifest.segments for f in s.files()}
    if manifest.snapshot is not None:
        names.add(manifest.snapshot.file.path)
    return names


def _check_live(state: StoreState, manifest: Manifest) -> None:
    if state.live != manifest.live_count:
        raise IntegrityError(
            f"manifest version {manifest.version} says {manifest.live_count} documents but "
            f"its segments hold {state.live}"
        )


def _size(ref: SegmentRef) -> int:
    return sum(f.bytes for f in ref.files())


def _live_after(st: StoreState, seg: SegmentData) -> int:
    gone = {d for d in seg.deletes if d in st.slot}
    new = sum(1 for i in dict.fromkeys(seg.ids) if i not in st.slot or i in gone)
    return st.live - len(gone) + new


_SCALAR_TYPES = (str, int, float, bool, type(None))


def _document(st: StoreState, slot: int) -> Document:
    text, meta = st.record(slot)[:2]
    # a copy, so callers cannot change the store through it; flat metadata needs no deep copy
    flat = all(type(v) in _SCALAR_TYPES for v in meta.values())
    return Document(
        id=st.ids[slot],
        page_content=text,
        metadata=dict(meta) if flat else copy.deepcopy(meta),
    )


def _top(keys: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    if k < len(keys):
        part = np.argpartition(keys, k - 1)[:k]
        return part[np.argsort(keys[part], kind="stable")]
    return np.argsort(keys, kind="stable")


def require_k(k: object, name: str = "k") -> int:
    """``k`` as an int (NumPy integers included); `InvalidInputError` unless it is a positive
    integer."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise InvalidInputError(f"{name}={k!r} must be a positive integer")
    return int(k)


def _compare(fresh: StoreState, mem: StoreState) -> None:
    if set(fresh.slot) != set(mem.slot):
        missing = sorted(set(fresh.slot) - set(mem.slot))[:5]
        extra = sorted(set(mem.slot) - set(fresh.slot))[:5]
        raise IntegrityError(
            f"the files and memory disagree on which documents exist (only on disk: {missing}, "
            f"only in memory: {extra}); reopen the store"
        )
    fv = fresh.index.vectors() if fresh.index is not None else None
    mv = mem.index.vectors() if mem.index is not None else None
    for doc_id, a in fresh.slot.items():
        b = mem.slot[doc_id]
        if fresh.record(a)[:3] != mem.record(b)[:3]:
            raise IntegrityError(f"record {doc_id!r} differs between the files and memory")
        if fv is not None and mv is not None and not np.array_equal(fv[a], mv[b]):
            raise IntegrityError(f"the vector of {doc_id!r} differs between the files and memory")
