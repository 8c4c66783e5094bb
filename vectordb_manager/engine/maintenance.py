"""The engine's upkeep after commits: merging segments (inline or on a thread), collecting
garbage, `compact` and `vacuum`.

`Maintenance` is a mixin of `Engine` (engine/core.py). After each commit `_after_commit` asks
`CompactionPolicy.plan` whether segments should merge. With ``policy.background`` (the
default, for stores on storage) the merging happens on a thread of the engine's own, so that a
writer adding batch after batch does not wait for merges:

* a merge of the tail (`TailMerge`) takes its rows under the readers' lock (a view of flat
  and IVF vectors, which later adds never move, or a copy of HNSW's; the stored record
  lines, the rows' postings: no encoding; a writer meanwhile
  prepares its commit, and waits only to apply it), then encodes, writes and fsyncs the
  merged file without any lock, and takes the writers' lock only to commit it (the
  manifest's last fsync is awaited after the lock is released): its manifest puts the
  merged segment where the run is *then*, with the segments committed meanwhile
  still after it (later rows still win, so the store reads the same). If the run is gone
  meanwhile (another writer merged it, or the state was replaced), the merge is dropped and
  its file removed;
* a full compaction (it rebuilds the state and the index) runs on the thread too, but under
  the writers' lock, as inline.

The thread waits for a pause in the writes (`_PAUSE` without a commit) before it merges,
unless the tail is past ``max_tail``: a merge running beside a writer takes the interpreter's
lock and a core from it, and the run that waited merges in one go (see `_Worker`). It is
started on demand and ends when nothing was left to do for a moment (so a writer committing
batch after batch wakes one thread rather than starting one per commit);
it is not a daemon, so a process that exits right after a write first finishes the merge in
progress (a killed one leaves a file that no manifest names, for `vacuum`).
`wait_for_compaction` waits until the upkeep is done. Failures of the upkeep never fail a
write: they are logged, and the next commit tries again.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable

from vectordb_manager.engine.columns import EncodedValues
from vectordb_manager.engine.commit_log import CommitLog
from vectordb_manager.engine.compaction import CompactionPolicy, TailMerge, prepare_merge
from vectordb_manager.engine.format import Manifest, SegmentRef, lay_out_segment, segment_ref
from vectordb_manager.engine.locks import ReadWriteLock
from vectordb_manager.engine.retention import MANIFEST_RETENTION_SECONDS, require_age
from vectordb_manager.engine.retry import RetryPolicy
from vectordb_manager.engine.state import StoreState
from vectordb_manager.errors import StorageError

logger = logging.getLogger(__name__)

_MAX_MERGES = 16  # merges in a row after one commit (each makes the next plan smaller)
_FULL = object()  # (the next merge is a full compaction: made under the writers' lock)


_WORKERS: weakref.WeakSet[_Worker] = weakref.WeakSet()


class _LostRace(Exception):
    """Another writer committed the version a merge proposed, or merged its run first."""


class Maintenance:
    """Compaction, garbage collection and vacuum of `Engine`."""

    log: CommitLog | None
    policy: CompactionPolicy
    keyword_index: bool
    value_index: bool
    _write_lock: threading.RLock
    _rw: ReadWriteLock
    _state: StoreState
    _manifest: Manifest | None
    _commit_policy: RetryPolicy
    _upkeep: _Worker | None = None

    def _kind_for(self, live: int) -> str:
        raise NotImplementedError

    def _refresh_locked(self) -> bool:
        raise NotImplementedError

    def _catch_up_locked(self) -> None:
        raise NotImplementedError

    # -- public ----------------------------------------------------------------------------
    def compact(self) -> bool:
        """Merge every segment into one, drop tombstones and save the index; ``True`` if done."""
        self.wait_for_compaction()
        with self._write_lock:
            self._refresh_locked()
            if self.log is None or self._manifest is None:
                self._cleanup_memory(force=True)
                return True
            done = self._merge_locked(0, self._kind_for(self._state.live))
            self.log.collect_garbage(self._manifest)
            return done

    def wait_for_compaction(self) -> None:
        """Return once the merges and garbage collection started by earlier commits are
        done (at once when there are none, or when they run inline)."""
        upkeep = self._upkeep
        if upkeep is not None:
            upkeep.wait()

    def vacuum(self, older_than: float = MANIFEST_RETENTION_SECONDS) -> list[str]:
        """Remove files left by crashes or lost races (named by no manifest) once they are
        ``older_than`` seconds old, so that no writer still in progress owns them, and files
        that newer versions replaced more than ``older_than`` seconds ago (by default they are
        kept for the retention time, for readers still loading an old version; a smaller
        value frees their space sooner, say on a full disk)."""
        require_age(older_than)
        if self.log is None:
            return []
        self.wait_for_compaction()
        with self._write_lock:
            self._refresh_locked()
            assert self._manifest is not None
            return self.log.vacuum(self._manifest, older_than)

    # -- after a commit --------------------------------------------------------------------
    def _after_commit(self) -> None:
        """Merge segments and collect garbage (now, or on the upkeep thread); the change is
        committed, so neither may fail the call (what they leave undone, a later commit
        does)."""
        if self.log is not None and self.policy.background:
            if self._upkeep is None:
                self._upkeep = _Worker(self._upkeep_pass, self._crowded)
            self._upkeep.wake()
            return
        try:
            self._maybe_compact_locked()
            self._collect_garbage()
        except StorageError as exc:
            logger.warning("maintenance after version %d failed: %s", self._version(), exc)

    def _version(self) -> int:
        return self._manifest.version if self._manifest else 0

    def _collect_garbage(self) -> None:
        if self.log is not None and self._manifest is not None:
            self.log.collect_garbage(self._manifest)

    def _crowded(self) -> bool:
        """Whether the tail's merge is due now, even while writes keep coming."""
        manifest = self._manifest  # (read without a lock: a manifest is never changed)
        return manifest is not None and self.policy.crowded(manifest.segments)

    def _upkeep_pass(self) -> None:
        """What the upkeep thread does after commits: merges as the policy asks, then the
        garbage collection."""
        try:
            for _ in range(_MAX_MERGES):
                job = self._next_tail_merge()
                if job is _FULL:
                    with self._write_lock:
                        job = self._next_job_locked()
                if job is None or (isinstance(job, TailMerge) and not self._commit_tail(job)):
                    break
            with self._write_lock:
                self._collect_garbage()
        except StorageError as exc:
            logger.warning("maintenance after version %d failed: %s", self._version(), exc)

    def _next_tail_merge(self) -> TailMerge | object | None:
        """The next merge of the tail, prepared under the readers' lock (so that a writer
        goes on meanwhile, and waits, if at all, only to apply its commit in memory); `_FULL`
        if the policy asks for a full compaction, ``None`` if there is nothing to do."""
        with self._rw.read():
            start, _ = self._plan_locked()
            if start is None or start == 0:
                return None if start is None else _FULL
            return self._prepare_tail(start)

    def _next_job_locked(self) -> TailMerge | bool | None:
        """The next merge to make: a `TailMerge` to encode and commit, ``True`` if a full
        compaction was just made here, ``None`` if there is nothing (more) to do."""
        start, kind = self._plan_locked()
        if start is None:
            return None
        if start == 0:
            return self._merge_locked(0, kind) or None
        return self._prepare_tail(start)

    def _prepare_tail(self, start: int) -> TailMerge | None:
        """The merge of the segments from ``start`` (> 0) on (hold one of the locks)."""
        assert self._manifest is not None
        return TailMerge.prepare(
            self._manifest,
            self._state,
            start,
            keywords=self.keyword_index,
            values=self.value_index,
        )

    def _commit_tail(self, job: TailMerge) -> bool:
        """Encode and write a prepared merge, then commit it; ``False`` if it was dropped."""
        log = self.log
        assert log is not None
        path, data = lay_out_segment(job.name, job.segment)  # (no lock: writers go on)
        try:
            with log.uncommitted({path: data}):
                ref = segment_ref(job.name, job.segment, path, data)  # (while it is written out)
                log.make_durable([path])  # (here: a writer never waits on the lock for it)
                committed = self._propose_tail(job, ref)
        except _LostRace:
            logger.debug("dropped a merge of %d segments: the store changed", len(job.run))
            return False
        log.settle(committed)  # (outside the writers' lock)
        logger.debug(
            "merged %d segments into %s (version %d)", len(job.run), job.name, committed.version
        )
        return True

    def _propose_tail(self, job: TailMerge, ref: SegmentRef) -> Manifest:
        """Commit a written merge where its run now is (`_LostRace` if it is gone); the
        manifest committed, not yet settled."""
        log = self.log
        assert log is not None
        for attempt in self._commit_policy.attempts():
            with self._write_lock:
                if attempt or log.listing_is_old:  # lost a race: caught up after the backoff
                    self._catch_up_locked()
                assert self._manifest is not None
                proposed = job.rebase(self._manifest, self._state, ref)
                if proposed is None:
                    raise _LostRace
                if log.propose(proposed, durable=False):
                    with self._rw.write():
                        job.install()
                        self._manifest = proposed
                    return proposed
        raise _LostRace

    # -- inline ----------------------------------------------------------------------------
    def _plan_locked(self) -> tuple[int | None, str]:
        """Where the policy would start a merge now (0: a full compaction), and the index
        kind the store should have."""
        st, current = self._state, self._manifest
        kind = self._kind_for(st.live)
        if not self.policy.enabled or current is None:
            return None, kind
        if kind != st.kind:
            return 0, kind
        return self.policy.plan(current.segments, st.slots, st.dead, snapshots=kind != "flat"), kind

    def _cleanup_memory(self, *, force: bool = False) -> None:
        st = self._state
        kind = self._kind_for(st.live)
        if force or kind != st.kind or self.policy.needs_cleanup(st.slots, st.dead):
            keep = st.text.ready and self.keyword_index  # else built from the texts when needed
            live = st.live_slots()
            values = EncodedValues(st.values.select(live), "memory") if self.value_index else None
            new = st.compacted(kind, st.text.select(live) if keep else None, values)
            with self._rw.write():
                self._state = new

    def _maybe_compact_locked(self) -> None:
        if not self.policy.enabled:
            return
        if self.log is None:
            self._cleanup_memory()
            return
        for _ in range(_MAX_MERGES):
            start, kind = self._plan_locked()
            if start is None or not self._merge_locked(start, kind):
                return

    def _merge_locked(self, start: int, kind: str) -> bool:
        """Merge the segments from ``start`` on and commit; ``False`` if there was nothing to
        gain or another writer committed first (its commits are then picked up)."""
        assert self.log is not None and self._manifest is not None
        current = self._manifest
        merge = prepare_merge(
            current, self._state, start, kind, keywords=self.keyword_index, values=self.value_index
        )
        if merge is None:
            return False
        try:
            with self.log.uncommitted(merge.blobs):
                if not self.log.propose(merge.proposed):
                    raise _LostRace
        except _LostRace:
            self._refresh_locked()  # the winner's commits; it may have compacted already
            return False
        with self._rw.write():
            self._state = merge.install(current.segments[start:])
            self._manifest = merge.proposed
        logger.debug(
            "compacted segments %d.. into %s (version %d)",
            start,
            merge.name,
            merge.proposed.version,
        )
        return True


def wait_for_all_upkeep() -> None:
    """Wait until every engine's upkeep thread in this process is done (for a program that
    ends without the interpreter's shutdown, which would otherwise wait for them)."""
    for worker in list(_WORKERS):
        worker.wait()


_LINGER = 0.1
"""Seconds an idle upkeep thread waits for the next wake before it ends: a writer committing
batch after batch wakes the same thread instead of starting one per commit."""


_PAUSE = 0.05
"""Seconds without a commit that the upkeep thread waits for before it merges, unless the
tail is crowded (`CompactionPolicy.crowded`) or someone waits for it: see `_Worker`."""


class _Worker:
    """A thread that runs ``work`` after each `wake`, started on demand, ending when no wake
    came for `_LINGER` seconds (not a daemon: the interpreter lets it finish before exiting).

    It runs ``work`` once no wake came for `_PAUSE` seconds: while a writer commits batch
    after batch, a merge beside it would take the interpreter's lock and a core from it
    (100 durable batches of 1,000 took ~1.8 s with merges running between them and ~1.25 s
    without), so merges wait for a pause in the writes, and then merge the run that waited
    in one go (a row rewritten once rather than at every class). Unless ``due()`` says the
    tail is crowded, or `wait` is called: then at once."""

    def __init__(self, work: Callable[[], None], due: Callable[[], bool]) -> None:
        self._work = work
        self._due = due
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pending = False
        self._busy = False
        self._woken = 0.0  # (time.monotonic() of the last wake)
        self._waiting = 0  # threads in `wait`: no pause for them
        _WORKERS.add(self)

    def wake(self) -> None:
        with self._cond:
            self._pending = True
            self._woken = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="vectordb-compaction", daemon=False
                )
                self._thread.start()
            else:
                self._cond.notify_all()

    def wait(self) -> None:
        """Until no work is pending or running (the thread may still wait for the next)."""
        if threading.current_thread() is self._thread:
            return
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()  # (a pause being waited for ends)
            try:
                while self._thread is not None and (self._pending or self._busy):
                    self._cond.wait()
            finally:
                self._waiting -= 1

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: self._pending, timeout=_LINGER):
                    self._thread = None
                    self._cond.notify_all()
                    return
                while not self._waiting and not self._due():  # (a pause in the writes)
                    left = self._woken + _PAUSE - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                self._pending = False
                self._busy = True
            try:
                self._work()
            except Exception:  # a bug: say so, and keep the writer's process going
                logger.exception("background compaction failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
