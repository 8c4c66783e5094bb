"""`Engine`: the store's public operations, over any `Storage` (or none, in memory).

The engine is a thin facade that holds the locks and one in-memory `StoreState`; each concern
lives in its own module (see `vectordb_manager.engine`):

* a write (`apply`) builds a segment and commits it through the `CommitLog`: the segment's file
  first, then the next manifest, created only if absent. If another writer committed that
  version first, the engine backs off, picks up the commits made meanwhile (listing again
  until nothing new appears, so that it does not propose a version taken while it read
  them) and proposes the next version (its `RetryPolicy` decides how often and how long to
  wait); only after a commit is the change applied in memory, so a failed write never
  shows, and its files are removed again;
* after a commit, compaction (`compaction`) may merge segments, itself a commit, and the
  commit log collects what old versions no longer need (`retention`), both on the upkeep
  thread (`maintenance`);
* opening and refreshing read manifests' files through the `Loader` (`loading`);
* searching runs on the current state (`search`); `verify` re-reads the files
  (`verification`).

Threads: one writer at a time per engine (``_write_lock``; writes queued meanwhile share the
next commit, `group_commit`), and merges on the upkeep thread (`maintenance`); searches run
concurrently and only wait while a committed change is being applied (a readers-writer lock).
With ``storage=None`` the same code applies segments directly, in memory.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from vectordb_manager.engine import postings_process, settings
from vectordb_manager.engine import vectors as vectors_module
from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.carry_over import carry_over
from vectordb_manager.engine.columns import EncodedValues, build_values
from vectordb_manager.engine.commit_log import CommitLog
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.format import (
    SEGMENT_DIR,
    Manifest,
    SegmentData,
    Vectors,
    lay_out_segment,
    new_segment_name,
    now_iso,
    record_lines,
    segment_ref,
)
from vectordb_manager.engine.group_commit import GroupCommits, PendingWrite, Write
from vectordb_manager.engine.hashing import content_hashes
from vectordb_manager.engine.index import IndexParams
from vectordb_manager.engine.loading import Loader, check_live
from vectordb_manager.engine.locks import ReadWriteLock
from vectordb_manager.engine.maintenance import Maintenance
from vectordb_manager.engine.manifest import KEYWORD_INDEX, TYPED_VALUES, VALUE_INDEX
from vectordb_manager.engine.options import (
    DEFAULT_COMMIT_ATTEMPTS,
    DEFAULT_DISTANCE,
    DEFAULT_INDEX,
    DISTANCES,
    INDEX_TYPES,
    chosen,
)
from vectordb_manager.engine.postings_process import Ahead, FromHelper
from vectordb_manager.engine.queries import Queries
from vectordb_manager.engine.records import flat_scalars, is_typed
from vectordb_manager.engine.retry import commit_policy
from vectordb_manager.engine.search import Hit, KeywordHit, require_k
from vectordb_manager.engine.state import StoreState
from vectordb_manager.engine.verification import check_records, compare, summary
from vectordb_manager.errors import (
    ConcurrentModificationError,
    ConfigurationError,
    StoreNotFoundError,
)
from vectordb_manager.storage.base import ObjectNotFound, Storage

logger = logging.getLogger(__name__)

CATCH_UP_ROUNDS = 8
"""At most this many refreshes in a row before a writer proposes again after losing a
race (`Engine._catch_up_locked`): each that finds something new is progress."""

__all__ = ["Engine", "Hit", "KeywordHit", "require_k"]


class Engine(Queries, Maintenance, GroupCommits):
    """The store engine; `LocalVectorStore` and `S3VectorStore` are thin layers over it.

    ``clock`` (wall-clock seconds, comparable with the storage's modification times), ``sleep``
    and ``rng`` are injected for tests.
    """

    def __init__(
        self,
        storage: Storage | None,
        *,
        distance: str = DEFAULT_DISTANCE,
        index: str = DEFAULT_INDEX,
        params: IndexParams | Mapping[str, Any] | None = None,
        dimension: int | None = None,
        embedding_model: str | None = None,
        compaction: CompactionPolicy | None = None,
        commit_attempts: int = DEFAULT_COMMIT_ATTEMPTS,
        check_model: bool = True,
        create: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        analyzer: Analyzer | None = None,
        keyword_index: bool = True,
        value_index: bool = True,
        keyword_process: bool = True,
    ) -> None:
        """``distance``, ``index`` and ``params`` (an `IndexParams`, or a mapping of the fields
        the caller chose) the caller left at their defaults (`options.chosen`) are taken from
        the store when one exists; chosen ones must agree with its distance, and replace its
        index type and tuning from the next commit on.

        ``analyzer``: the keyword index's text analyzer; ``None`` takes the store's (or
        `Analyzer()` for a new store), a chosen one must equal the store's. With
        ``keyword_index=False`` commits and compactions write no keyword postings (a keyword
        search then builds them in memory from the texts, as for stores written before the
        keyword index existed); with ``value_index=False`` no metadata value columns (filters
        then build them from the records, as for stores written before they existed).
        ``keyword_process``: a write of many texts has their postings built in a helper
        process meanwhile (`postings_process`; False: always in the writing thread)."""
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
        self._chosen = settings.Choices(
            distance if chosen(distance) else None,
            index if chosen(index) else None,
            params,
        )
        self.storage = storage
        self.distance = str(distance)
        self.requested_index = str(index)
        self.params = params if isinstance(params, IndexParams) else IndexParams(**params or {})
        self.embedding_model = embedding_model
        self.policy = compaction or CompactionPolicy()
        self.commit_attempts = commit_attempts
        self.check_model = check_model
        self._chosen_analyzer = analyzer
        self._analyzer = analyzer or Analyzer()
        self.keyword_index = keyword_index
        self.value_index = value_index
        self.keyword_process = keyword_process
        self._commit_policy = commit_policy(commit_attempts, sleep=sleep, rng=rng)
        self._write_lock = threading.RLock()
        self._queue_lock = threading.Lock()
        self._queue: list[PendingWrite] = []  # writes waiting for the writers' lock (`apply`)
        self._rw = ReadWriteLock()
        self._manifest: Manifest | None = None
        self._state = self._new_state(dimension)
        self.log: CommitLog | None = None
        self._loader: Loader | None = None
        if storage is not None:
            self.log = CommitLog(storage, clock=clock)
            self._open(self.log, dimension, create=create)

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
        """The version in memory (0 for a store in memory)."""
        return self._manifest.version if self._manifest else 0

    @property
    def state(self) -> StoreState:
        """The current in-memory state (for inspection; replaced, never changed, by writes
        that compact)."""
        return self._state

    @property
    def analyzer(self) -> Analyzer:
        """The text analyzer of the keyword index (the store's)."""
        return self._analyzer

    def count(self) -> int:
        return self._state.live

    def _new_state(self, dim: int | None) -> StoreState:
        return StoreState(
            self._kind_for(0), dim, self.distance, self.params, analyzer=self._analyzer
        )

    def _kind_for(self, live: int) -> str:
        if self.requested_index == "auto":
            return "hnsw" if live >= self.params.auto_threshold else "flat"
        return self.requested_index

    # -- opening and refreshing -----------------------------------------------------------
    def _open(self, log: CommitLog, dimension: int | None, *, create: bool) -> None:
        versions = log.versions()
        if not versions:
            log.refuse_remains()
            if not create:
                raise StoreNotFoundError(
                    f"no store at {log.describe()}; check the location, or create the store "
                    "by adding documents to it"
                )
            first = Manifest(
                version=1,
                distance=self.distance,
                index=self.requested_index,
                index_params=self.params.to_json(),
                dimension=dimension,
                embedding_model=self.embedding_model,
                analyzer=self._analyzer.to_json(),
            )
            if log.propose(first):
                self._manifest = first
                self._loader = self._new_loader(log)
                logger.debug("created store at %s", log.describe())
                return
        manifest = log.read_latest(versions)
        self._adopt_settings(manifest)
        self._loader = self._new_loader(log)
        self._load(manifest)

    def _new_loader(self, log: CommitLog) -> Loader:
        return Loader(
            log,
            distance=self.distance,
            params=self.params,
            kind_for=self._kind_for,
            analyzer=self._analyzer,
        )

    def _adopt_settings(self, manifest: Manifest) -> None:
        """Check the caller's settings against the store's, and take the store's where the
        caller chose none (`settings`)."""
        where = self.log.describe() if self.log else "memory"
        settings.check(
            manifest,
            self._chosen,
            dimension=self._state.dim,
            embedding_model=self.embedding_model,
            check_model=self.check_model,
            where=where,
        )
        current = settings.Settings(self.distance, self.requested_index, self.params)
        self.distance, self.requested_index, self.params = settings.adopt(
            manifest, self._chosen, current, where
        )
        self._analyzer = settings.adopt_analyzer(manifest, self._chosen_analyzer, where)
        self._state = self._new_state(self._state.dim)

    def _load(self, manifest: Manifest) -> None:
        assert self._loader is not None
        state, manifest = self._loader.build_newest(manifest)
        with self._rw.write():
            self._state = state
            self._manifest = manifest

    def refresh(self, *, wait: bool = True) -> bool | None:
        """Pick up commits made by other writers; ``True`` if anything changed.

        ``wait=False``: if a write of this engine is under way, return ``None`` at once
        instead of waiting for it (its commit may take several round trips to the storage,
        and it picks up the other writers' commits itself)."""
        if not self._write_lock.acquire(blocking=wait):
            return None
        try:
            return self._refresh_locked()
        finally:
            self._write_lock.release()

    def _refresh_locked(self) -> bool:
        log, loader, current = self.log, self._loader, self._manifest
        if log is None or loader is None or current is None:
            return False
        versions = log.versions(after=current.version)
        if not versions or versions[-1] <= current.version:
            return False
        try:
            latest = log.read(versions[-1])
        except ObjectNotFound:
            latest = log.read_latest()
        n = len(current.segments)
        if latest.segments[:n] != current.segments or latest.snapshot != current.snapshot:
            self._reload(current, latest)  # compacted meanwhile
            return True
        added = latest.segments[n:]
        try:
            segs = loader.read_added(added, latest.dimension or self.dimension)
        except ObjectNotFound:  # replaced by an even newer version meanwhile
            self._load(log.read_latest())
            return True
        with self._rw.write():
            for ref, seg in zip(added, segs, strict=True):
                self._state.apply(seg, ref.name)
            self._manifest = latest
        check_live(self._state, latest)
        return True

    def _catch_up_locked(self) -> None:
        """Refresh until a refresh finds nothing new (at most `CATCH_UP_ROUNDS` times).

        Before a writer proposes again after losing a race: loading the winners' commits can
        take a while (reading their segments, or carrying a compaction over), and a proposal
        made right after it would name a version that a writer committing steadily has taken
        meanwhile, again and again: that writer would starve. A refresh that finds nothing new
        costs one listing, so the proposal follows the newest version closely."""
        for _ in range(CATCH_UP_ROUNDS):
            if not self._refresh_locked():
                return

    def _reload(self, current: Manifest, latest: Manifest) -> None:
        """Move to ``latest``, which another writer compacted: from the state in memory and
        the segments it lacks where possible (`carry_over`), else from all its files."""
        loader = self._loader
        assert loader is not None and self.log is not None
        dim = latest.dimension or self.dimension
        try:
            new = carry_over(
                self._state,
                current,
                latest,
                lambda refs: loader.read_added(refs, dim),
                keywords=self.keyword_index,
                values=self.value_index,
            )
        except ObjectNotFound:  # replaced by an even newer version meanwhile
            new, latest = None, self.log.read_latest()
        if new is None:
            self._load(latest)
            logger.debug("reloaded at version %d (from %d)", self.version, current.version)
            return
        with self._rw.write():
            self._state = new
            self._manifest = latest
        logger.debug("carried over to version %d (from %d)", latest.version, current.version)

    # -- writing ---------------------------------------------------------------------------
    def apply(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
        vectors: Vectors,
        deletes: Sequence[str] = (),
        *,
        postings: Ahead | None = None,
    ) -> tuple[int, int]:
        """Add or replace records and delete ids, all in one commit (inputs already
        validated); returns how many records were written and how many deleted ids existed.
        ``postings``: `postings_ahead` of these texts (the caller starts it before it
        embeds them or checks their vectors: they are built meanwhile).

        Records whose text, metadata and vector are unchanged are skipped; an id both deleted
        and given a record ends up with the record. Calls made while another commits queue,
        and share one commit (`group_commit`); each returns once its commit is durable.
        """
        vectors = self._prepare(vectors) if len(ids) else vectors
        hashes = content_hashes(texts, metadatas)  # (and each record's size checked)
        write = PendingWrite(ids, texts, metadatas, vectors, deletes, hashes, postings=postings)
        return self._apply_queued(write)

    def postings_ahead(self, texts: Sequence[str]) -> Ahead | None:
        """Start building the keyword postings of these texts (strings), about to be written,
        in the helper process (`postings_process`); the write (`apply`) takes them from it.
        ``None`` where the writer will build them (few texts, no helper, no keyword index)."""
        if not (self.keyword_index and self.keyword_process):
            return None
        return postings_process.submit(texts, self._analyzer)

    def _write_locked(self, write: Write) -> tuple[tuple[int, int], Manifest | None]:
        """One write's commit (see `apply`), under the writers' lock, the store refreshed:
        (records written, deleted ids that existed) and the manifest committed, if any."""
        ids, texts, metadatas = write.ids, write.texts, write.metadatas
        vectors, deletes, hashes = write.vectors, write.deletes, write.hashes
        st = self._state  # (the dimension was checked when the write was queued)
        wanted = dict.fromkeys(deletes)
        present = [d for d in wanted if d in st.slot]
        deleted = set(present)
        existing = st.slot.keys() & ids if st.slot else ()  # (one intersection, in C)
        keep = (
            [
                i
                for i, doc_id in enumerate(ids)
                if doc_id not in existing
                or doc_id in deleted
                or not st.unchanged(st.slot[doc_id], hashes[i], vectors[i])
            ]
            if existing
            else range(len(ids))  # all new: every row is written
        )
        if len(present) < len(wanted):
            absent = [d for d in wanted if d not in deleted]
            logger.debug(
                "delete at version %d: %d of %d ids absent (such as %r)",
                self.version,
                len(absent),
                len(wanted),
                absent[0],
            )
        if not keep and not present:
            return (0, 0), None
        now = now_iso()
        every = len(keep) == len(ids)  # (then ``keep`` is every row, in order)
        seg = SegmentData(
            ids=list(_pick(ids, keep, every)),
            texts=list(_pick(texts, keep, every)),
            metadatas=list(map(dict, _pick(metadatas, keep, every))),
            hashes=list(_pick(hashes, keep, every)),
            created=[
                st.record(st.slot[ids[i]]).created_at if ids[i] in existing else now
                for i in keep
            ]
            if existing
            else [now] * len(keep),
            updated=[now] * len(keep),
            vectors=(
                vectors[keep]
                if len(keep) < len(ids)
                else vectors
                if len(ids)
                else np.zeros((0, self.dimension or 0), np.float32)
            ),
            deletes=present,
        )
        helped = write.from_helper  # (of only some of its rows: theirs are gathered)
        committed = self._commit_locked(seg, helped if every or not helped else helped.kept(keep))
        return (len(keep), len(present)), committed

    def upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
        vectors: Vectors,
        *,
        postings: Ahead | None = None,
    ) -> int:
        """Add or replace records (see `apply`); returns how many were written."""
        return self.apply(ids, texts, metadatas, vectors, postings=postings)[0]

    def delete(self, ids: Sequence[str]) -> int:
        """Delete the records with these ids; returns how many existed."""
        return self.apply([], [], [], np.zeros((0, 0), np.float32), ids)[1]

    def _prepare(self, vectors: Vectors) -> Vectors:
        return vectors_module.prepare_rows(vectors, self.distance)

    def _check_dimension(self, dim: int) -> None:
        vectors_module.check_dimension(dim, self.dimension)

    def _commit_locked(self, seg: SegmentData, helped: FromHelper | None = None) -> Manifest | None:
        """Commit a segment and apply it in memory; the manifest committed (``None`` in
        memory), whose last fsync the caller awaits (`CommitLog.settle`) after the lock.
        ``helped``: where its rows' postings come from the helper process, if they were sent."""
        log = self.log
        name = new_segment_name()
        typed = (  # dates: a feature
            seg.raw is None
            and not flat_scalars(seg.metadatas)
            and any(map(is_typed, seg.metadatas))
        )
        if self.value_index and len(seg) and seg.raw is None and seg.values is None:
            seg.values = EncodedValues(build_values(seg.metadatas), f"{SEGMENT_DIR}{name}.seg")
        texts = seg.texts if seg.raw is None else None  # (raw records: none built here)
        if len(seg) and seg.raw is None:
            # kept as the encoded lines, as an opened store keeps them: decoded on demand
            lines = record_lines(seg, f"{SEGMENT_DIR}{name}.seg")
            seg = replace(seg, texts=[], metadatas=[], hashes=[], created=[], updated=[], raw=lines)
        if self.keyword_index and len(seg) and texts is not None and seg.postings is None:
            seg.postings = postings_process.postings_of(texts, self._analyzer, helped)  # (last)
        if log is None:
            with self._rw.write():
                self._state.apply(seg, None)
            self._maybe_compact_locked()
            return None
        path, data = lay_out_segment(name, seg)
        with log.uncommitted({path: data}):
            ref = segment_ref(name, seg, path, data)  # (hashed while its file is synced)
            for attempt in self._commit_policy.attempts():
                if attempt or log.listing_is_old:
                    # after a lost race, pick up the winners' commits only now, after the
                    # backoff: a proposal made from a refresh before it would be stale
                    self._catch_up_locked()
                    if len(seg):
                        self._check_dimension(int(seg.vectors.shape[1]))
                current = self._manifest
                assert current is not None
                settings.check_unchanged_analyzer(current, self._analyzer, log.describe())
                features = current.with_feature(TYPED_VALUES) if typed else current.features
                for flag, part in ((KEYWORD_INDEX, seg.postings), (VALUE_INDEX, seg.values)):
                    if part is not None and flag not in features:
                        features = (*features, flag)
                added_dim = int(seg.vectors.shape[1]) if len(seg) else None
                proposed = current.next(
                    segments=(*current.segments, ref),
                    live_count=_live_after(self._state, seg),
                    dimension=current.dimension or added_dim,
                    embedding_model=current.embedding_model or self.embedding_model,
                    index=self.requested_index,
                    index_params=self.params.to_json(),
                    features=features,
                    analyzer=self._analyzer.to_json(),
                )
                if log.propose(proposed, durable=False):
                    with self._rw.write():  # (while the manifest's folder is synced)
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
            else:
                raise ConcurrentModificationError(
                    f"gave up after {self.commit_attempts} attempts: other writers kept "
                    f"committing to {log.describe()} first; the change was not applied, retry it"
                )
        self._after_commit()
        return proposed

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
            if self._loader is not None and self._manifest is not None:
                # the files of the version in memory: kept for the retention time even when
                # other writers commit newer versions meanwhile
                fresh, checked = self._loader.build_newest(self._manifest, lazy=False)
                if checked is self._manifest:
                    compare(fresh, st)
                else:  # its files expired while being read: the newest was checked instead
                    st = fresh
                    with self._rw.write():
                        self._state, self._manifest = fresh, checked
                report.update(summary(st, checked))
            check_records(st)
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


def _pick(items: Sequence[Any], keep: Sequence[int], every: bool) -> Iterable[Any]:
    """The items at ``keep`` (all of them, in order, when ``every``)."""
    return items if every else map(items.__getitem__, keep)


def _live_after(st: StoreState, seg: SegmentData) -> int:
    gone = st.slot.keys() & seg.deletes
    ids = set(seg.ids)
    # (``ids - st.slot.keys()`` would iterate over every key: set.difference of a dict looks
    # up only the batch's ids; gone ones are in the slot map)
    new = len(ids.difference(st.slot)) + len(ids & gone)
    return st.live - len(gone) + new
