"""Group commit: writes that queue while another write commits share the next commit.

A write to an engine is one commit (a segment file and a manifest, each made durable), so
writers of one engine (a server's request threads, ingestion threads) used to wait for each
other's commits in turn: with S3, or with another process racing for the same versions, each
commit can take from tens of milliseconds to seconds, and every queued write added one more.

Now each write is queued (`PendingWrite`) before it waits for the engine's writer lock. The
thread that gets the lock takes every write queued so far (its own among them) and commits
them together; the others find theirs done when they get the lock, and only wait for that
commit's manifest to be durable before they return. So a write is acknowledged exactly as
before (after its commit is durable), and under contention N queued writes cost one commit.

The writes of a group are applied as if one after the other, in the order they were queued:
`combine` turns them into one equivalent write (the last record given for an id wins; a
delete drops an earlier record of the group and the stored one; an id deleted and then given
a record ends up with it) and computes each write's own answer (how many records it changed
and how many of its deleted ids existed) against the store as the writes before it left it.
A write refused on its own (a vector of another dimension) fails alone; a commit that fails
fails every write of the group, and none of them shows.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from vectordb_manager.engine import vectors as vectors_module
from vectordb_manager.engine.commit_log import CommitLog, CommitUnknown
from vectordb_manager.engine.format import Manifest, Vectors
from vectordb_manager.engine.postings_process import Ahead, FromHelper
from vectordb_manager.engine.state import StoreState

logger = logging.getLogger(__name__)


class Write(Protocol):
    """What one write commits (a `PendingWrite`, or a group's writes `Combined`)."""

    @property
    def ids(self) -> Sequence[str]: ...
    @property
    def texts(self) -> Sequence[str]: ...
    @property
    def metadatas(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def vectors(self) -> Vectors: ...
    @property
    def deletes(self) -> Sequence[str]: ...
    @property
    def hashes(self) -> list[str]: ...
    @property
    def from_helper(self) -> FromHelper | None: ...


@dataclass(eq=False)
class PendingWrite:
    """One `Engine.apply` call, queued; once ``done`` (set by whichever thread committed
    it), ``result`` and ``committed``, or ``error``, say how it went."""

    ids: Sequence[str]
    texts: Sequence[str]
    metadatas: Sequence[Mapping[str, Any]]
    vectors: Vectors
    deletes: Sequence[str]
    hashes: list[str]
    postings: Ahead | None = None  # its texts' postings, from the helper process
    result: tuple[int, int] = (0, 0)
    committed: Manifest | None = None  # the manifest that holds it (to wait for)
    error: BaseException | None = None
    done: bool = False
    owner: bool = field(default=False, repr=False)  # whether this thread committed the group

    @property
    def from_helper(self) -> FromHelper | None:
        """Where its rows' postings are on their way from, if they are."""
        return None if self.postings is None else FromHelper((self.postings,))

    def fail(self, exc: BaseException, *, own: bool) -> None:
        """Fail with ``exc`` (its own exception for the thread that raised it, a copy with
        the same message for the others: one exception object must not be raised by several
        threads at once)."""
        if own:
            self.error = exc
            return
        if not isinstance(exc, Exception):  # (the committing thread was interrupted)
            self.error = CommitUnknown(
                f"the commit this write shared with others was interrupted "
                f"({type(exc).__name__}); whether it landed is unknown (refresh() tells)"
            )
            return
        try:
            twin = copy.copy(exc)
        except Exception:  # (an exception that cannot be copied: shared, as a last resort)
            twin = exc
        else:
            twin.__cause__ = exc.__cause__
        self.error = twin


@dataclass
class Combined:
    """A group of writes as one (the arguments of a single write), and each write's answer."""

    ids: list[str]
    texts: list[str]
    metadatas: list[Mapping[str, Any]]
    vectors: Vectors
    deletes: list[str]
    hashes: list[str]
    results: list[tuple[int, int]]
    from_helper: FromHelper | None = None  # where its rows' postings are on their way from


def combine(writes: Sequence[PendingWrite], st: StoreState, dim: int) -> Combined:
    """The writes (each already checked, their vectors of dimension ``dim``) as one write
    that leaves the store as applying them in order would, and each write's answer as it
    would have been (see the module docstring)."""
    rows: dict[str, tuple[int, int]] = {}  # id -> (write, row): the group's record for it
    deleted: dict[str, None] = {}  # every id a write of the group deletes, in order
    gone: set[str] = set()  # stored ids deleted by a write so far
    results: list[tuple[int, int]] = []
    for w, write in enumerate(writes):
        existed = 0
        for doc_id in dict.fromkeys(write.deletes):
            if rows.pop(doc_id, None) is not None or (doc_id in st.slot and doc_id not in gone):
                existed += 1
            gone.add(doc_id)
            deleted[doc_id] = None
        changed = 0
        for i, doc_id in enumerate(write.ids):
            before = rows.get(doc_id)
            if before is not None:
                other = writes[before[0]]
                same = other.hashes[before[1]] == write.hashes[i] and np.array_equal(
                    other.vectors[before[1]], write.vectors[i]
                )
            elif doc_id in st.slot and doc_id not in gone:
                same = st.unchanged(st.slot[doc_id], write.hashes[i], write.vectors[i])
            else:
                same = False
            if not same:
                changed += 1
                rows[doc_id] = (w, i)
        results.append((changed, existed))
    chosen = list(rows.values())
    starts = np.cumsum([0] + [len(write.ids) for write in writes])
    every = np.concatenate([write.vectors.reshape(len(write.ids), dim) for write in writes])
    at = np.fromiter((starts[w] + i for w, i in chosen), dtype=np.int64, count=len(chosen))
    sources = [write.postings for write in writes]
    return Combined(
        ids=list(rows),
        texts=[writes[w].texts[i] for w, i in chosen],
        metadatas=[writes[w].metadatas[i] for w, i in chosen],
        vectors=every[at],
        deletes=list(deleted),
        hashes=[writes[w].hashes[i] for w, i in chosen],
        results=results,
        from_helper=None if sources.count(None) == len(sources) else FromHelper(sources, chosen),
    )


class GroupCommits:
    """`Engine`'s queue of writes (see the module docstring)."""

    log: CommitLog | None
    _state: StoreState
    _write_lock: threading.RLock
    _queue_lock: threading.Lock
    _queue: list[PendingWrite]

    @property
    def dimension(self) -> int | None:
        raise NotImplementedError

    def _refresh_locked(self) -> bool:
        raise NotImplementedError

    def _write_locked(self, write: Write) -> tuple[tuple[int, int], Manifest | None]:
        raise NotImplementedError

    def _apply_queued(self, write: PendingWrite) -> tuple[int, int]:
        """Queue ``write``, commit it (with the others queued, when this thread gets the
        writers' lock first), and return its answer once its commit is durable."""
        with self._queue_lock:
            self._queue.append(write)
        with self._write_lock:
            if not write.done:  # (else a thread that had the lock committed it)
                with self._queue_lock:
                    group, self._queue = self._queue, []
                write.owner = True
                self._write_group_locked(group)
        if write.error is not None:
            raise write.error
        if write.committed is not None and self.log is not None:
            self.log.settle(write.committed)  # (outside the writers' lock: the upkeep may commit)
        return write.result

    def _write_group_locked(self, group: list[PendingWrite]) -> None:
        """Commit the queued writes together; each gets its outcome."""
        try:
            self._refresh_locked()
            accepted = []
            dim = self.dimension
            for write in group:
                try:
                    if len(write.ids):
                        vectors_module.check_dimension(int(write.vectors.shape[1]), dim)
                        dim = int(write.vectors.shape[1])
                except Exception as exc:  # this write alone is refused
                    write.fail(exc, own=write.owner)
                else:
                    accepted.append(write)
            if len(accepted) == 1:
                accepted[0].result, accepted[0].committed = self._write_locked(accepted[0])
            elif accepted:
                both = combine(accepted, self._state, dim or 0)
                committed = self._write_locked(both)[1]
                for write, result in zip(accepted, both.results, strict=True):
                    write.result, write.committed = result, committed
                logger.debug("committed %d queued writes together", len(accepted))
        except BaseException as exc:
            for write in group:
                if write.error is None:
                    write.fail(exc, own=write.owner)
        finally:
            for write in group:
                write.done = True


__all__ = ["Combined", "GroupCommits", "PendingWrite", "Write", "combine"]
