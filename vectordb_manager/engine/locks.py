"""A readers-writer lock: many concurrent searches, one writer applying a change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadWriteLock:
    """Writer-preferring: once a writer waits, new readers wait behind it."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)  # (a reader takes the mutex itself: in C)
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0
        self.reading = _Reading(self)
        """`read`'s context itself, for the hottest paths (``with lock.reading:``, a call less)."""

    @property
    def writers_waiting(self) -> int:
        """How many writers wait for the lock (new readers wait behind them)."""
        with self._cond:
            return self._waiting_writers

    def read(self) -> _Reading:
        """A context in which to read: ``with lock.read(): ...``."""
        return self.reading

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _Reading:
    """`ReadWriteLock.read`'s context: a plain object, not a generator (a search takes it
    once or twice, and a generator's context costs a few microseconds more), that takes the
    lock itself (a call less: with cold caches, after an application's other work, 4-5 us of
    a small store's ~270 us search)."""

    __slots__ = ("_lock",)

    def __init__(self, lock: ReadWriteLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        lock = self._lock
        with lock._mutex:
            while lock._writer or lock._waiting_writers:
                lock._cond.wait()
            lock._readers += 1

    def __exit__(self, *exc: object) -> None:
        lock = self._lock
        with lock._mutex:
            lock._readers -= 1
            if not lock._readers and lock._waiting_writers:
                lock._cond.notify_all()
