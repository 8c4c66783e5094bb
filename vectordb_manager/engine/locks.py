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
        self._reading = _Reading(self)

    @property
    def writers_waiting(self) -> int:
        """How many writers wait for the lock (new readers wait behind them)."""
        with self._cond:
            return self._waiting_writers

    def read(self) -> _Reading:
        """A context in which to read: ``with lock.read(): ...``."""
        return self._reading

    def _enter_read(self) -> None:
        with self._mutex:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1

    def _exit_read(self) -> None:
        with self._mutex:
            self._readers -= 1
            if not self._readers and self._waiting_writers:
                self._cond.notify_all()

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
    once or twice, and a generator's context costs a few microseconds more)."""

    __slots__ = ("_lock",)

    def __init__(self, lock: ReadWriteLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock._enter_read()

    def __exit__(self, *exc: object) -> None:
        self._lock._exit_read()
