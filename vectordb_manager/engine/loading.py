"""`Loader`: a manifest's files in, a verified `StoreState` out (opening and refreshing).

Opening streams each file once. Segments are read and checksummed in parallel, a bounded
number of bytes ahead, while earlier ones are replayed in manifest order. A flat index's
storage is allocated once and each segment's vectors are read straight into their slots, so
no file is held whole in memory; an HNSW or IVF index starts from its saved snapshot when the
manifest has one. Records are not decoded: they stay in a read-only map of the verified file
until a search needs them.

Nothing is trusted before it is verified: the sizes a manifest claims are checked against the
stored files before they size any memory (above `UNVERIFIED_BYTES`), every file's size and
SHA-256 are checked while it is read, and what went into the index from a file that then fails
its checksum is thrown away with the whole state.
"""

from __future__ import annotations

import functools
import gc
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, TypeVar

import numpy as np

from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.commit_log import IO_THREADS, CommitLog
from vectordb_manager.engine.format import (
    SEGMENT_DIR,
    FileRef,
    HashingReader,
    Manifest,
    SegmentData,
    SegmentRef,
    SnapshotRef,
    Vectors,
    VectorSink,
    read_segment,
)
from vectordb_manager.engine.index import IndexParams, VectorIndex
from vectordb_manager.engine.retry import LOAD_POLICY
from vectordb_manager.engine.state import StoreState
from vectordb_manager.errors import IntegrityError, StorageError
from vectordb_manager.storage.base import ObjectNotFound

T = TypeVar("T")
PREFETCH_BYTES = 64 << 20  # read ahead while at most this much waits to be replayed...
PREFETCH_MIN = 2  # ...but always keep this many segments in flight (S3 latency)
UNVERIFIED_BYTES = 256 << 20  # manifest-claimed sizes trusted for allocation without a LIST


class Loader:
    """Builds the in-memory state of a store's versions from its files."""

    def __init__(
        self,
        log: CommitLog,
        *,
        distance: str,
        params: IndexParams,
        kind_for: Callable[[int], str],
        analyzer: Analyzer | None = None,
    ) -> None:
        self.log = log
        self.analyzer = analyzer
        self.storage = log.storage
        self.distance = distance
        self.params = params
        self.kind_for = kind_for

    def build_newest(
        self, manifest: Manifest, *, lazy: bool = True
    ) -> tuple[StoreState, Manifest]:
        """`build` of ``manifest``, or of a newer version if the store moved on while its
        files were read (a file a manifest names is removed only once a newer version replaced
        it and the retention time passed; otherwise it is missing: `IntegrityError`)."""
        for _ in LOAD_POLICY.attempts():
            try:
                state = self.build(manifest, lazy=lazy)
            except ObjectNotFound as missing:
                newer = self.log.read_latest()
                if newer.version == manifest.version:
                    raise IntegrityError(
                        f"{missing.args[0]} is listed in the manifest but missing from "
                        f"{self.log.describe()}; restore it from a backup"
                    ) from None
                manifest = newer
                continue
            # the state's containers (the slot lists and the id map, an entry per document)
            # were made while few other objects were, so they are still in the collector's
            # young generations, which the first searches' allocations would traverse twice
            # (~0.1 s at 1M documents): promote them now, once
            gc.collect(1)
            return state, manifest
        raise StorageError(
            f"the store at {self.log.describe()} kept changing faster than it could be read; "
            "try again"
        )

    def build(self, manifest: Manifest, *, lazy: bool = True) -> StoreState:
        """Read, verify and replay a manifest's files (``lazy``: leave records undecoded).

        An index snapshot never decides the stored vectors: its segment's are read over the
        snapshot's copy, or, when not ``lazy`` (`verify`), compared with it, so that a snapshot
        altered together with its checksum is found instead of changing them."""
        snapshot = manifest.snapshot
        kind = self.kind_for(manifest.live_count)
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
        # a flat index's storage, allocated while the first files are read and hashed (its
        # pages are zeroed as they are first touched: ~1 s at 1M x 384); a file's vectors
        # wait for it when their section comes
        room: Future[Vectors] | None = None
        if kind == "flat" and dim is not None:
            index = VectorIndex(kind, dim, self.distance, self.params)
            room = Future()
        starts = np.cumsum([0, *(ref.rows for ref in segments)]).tolist()
        loaded: list[Future[VectorIndex]] = []  # the snapshot being read

        def sink(i: int) -> VectorSink | None:
            if room is not None:
                storage = room
                return lambda rows, d: storage.result()[starts[i] : starts[i + 1]]
            if use_snapshot and i == 0 and kind == "hnsw" and lazy:
                # over the snapshot's copy: the segment's vectors are the ones that count
                return lambda rows, d: loaded[0].result().vectors()[:rows]
            return None  # into a new array, added to the index below (or compared)

        with ThreadPoolExecutor(IO_THREADS) as pool:
            if use_snapshot:
                assert snapshot is not None and dim is not None
                loaded.append(pool.submit(self._read_snapshot, snapshot, kind, dim))
                snap_future = loaded[0]
            # read ahead, bounded in bytes (memory) but never serial (latency)
            pending: deque[tuple[SegmentRef, Future[SegmentData]]] = deque()
            waiting = 0
            upcoming = iter(enumerate(segments))
            following = next(upcoming, None)

            def prefetch() -> None:
                nonlocal waiting, following
                while following is not None and (
                    len(pending) < PREFETCH_MIN
                    or waiting + _size(following[1]) <= PREFETCH_BYTES
                ):
                    i, ref = following
                    read = functools.partial(self.read_segment, ref, dim, sink(i), lazy)
                    pending.append((ref, pool.submit(read)))
                    waiting += _size(ref)
                    following = next(upcoming, None)

            prefetch()
            if room is not None:
                assert index is not None
                try:
                    room.set_result(index.extend(starts[-1]))
                except BaseException as exc:
                    room.set_exception(exc)  # the readers waiting for it stop too
                    raise
            indexed = 0
            if use_snapshot:
                assert snapshot is not None
                index = snap_future.result()
                indexed = snapshot.rows
            state = StoreState(
                kind, dim, self.distance, self.params, index=index, analyzer=self.analyzer
            )
            if room is None and state.index is not None:
                state.index.reserve(sum(ref.rows for ref in segments) - indexed)
            for i in range(len(segments)):
                ref, future = pending.popleft()
                seg = future.result()
                waiting -= _size(ref)
                prefetch()
                in_index = len(seg) if room is not None else indexed if i == 0 else 0
                if i == 0 and indexed and not lazy and state.index is not None:
                    state.index.check_snapshot(seg.vectors)
                state.apply(seg, ref.name, indexed_rows=in_index)
                del seg
        check_live(state, manifest)
        return state

    def read_added(self, refs: Sequence[SegmentRef], dim: int | None) -> list[SegmentData]:
        """Segments committed after those in memory (a refresh), read in parallel."""
        with ThreadPoolExecutor(max(1, min(IO_THREADS, len(refs)))) as pool:
            futures = [pool.submit(self.read_segment, ref, dim, None, True) for ref in refs]
            return [f.result() for f in futures]

    def _check_sizes(self, segments: Sequence[SegmentRef]) -> None:
        """Check that each segment is stored with exactly the size its manifest claims.

        A manifest carries no checksum of its own, and the rows it claims size the index
        before any file is read; the manifest's parser bounds rows by the files' claimed
        sizes, and, when those add up to more than `UNVERIFIED_BYTES`, one listing here
        bounds them by what is really stored (each sized read checks its file's length too).
        """
        claimed = sum(ref.file.bytes for ref in segments)
        if claimed <= UNVERIFIED_BYTES:
            return  # the most a lying manifest can make us allocate before reading fails
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
        try:
            with storage.open(ref.path, ref.bytes) as stream:
                return use(stream)
        except IntegrityError:
            if not storage.evict(ref.path):
                raise
            with storage.open(ref.path, ref.bytes) as stream:
                return use(stream)

    def read_segment(
        self, ref: SegmentRef, dim: int | None, sink: VectorSink | None, lazy: bool
    ) -> SegmentData:
        """One segment, verified (see `read_segment` in `format`)."""
        # not lazy (`verify`): the postings are decoded and recounted from the texts
        analyzer = None if lazy else self.analyzer
        return self._with_file(
            ref.file, lambda f: read_segment(ref, f, dim, sink, lazy=lazy, analyzer=analyzer)
        )

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


def check_live(state: StoreState, manifest: Manifest) -> None:
    """`IntegrityError` unless replaying the manifest gave the number of documents it says."""
    if state.live != manifest.live_count:
        raise IntegrityError(
            f"manifest version {manifest.version} says {manifest.live_count} documents but "
            f"its segments hold {state.live}"
        )


def _size(ref: SegmentRef) -> int:
    return sum(f.bytes for f in ref.files())
