"""`PendingSyncs`: what a `LocalStorage` has written but not yet made durable, and the fsyncs
that make it so.

A file written with ``durable=False`` is renamed into place at once; the system is asked to
start writing its pages out (Linux's ``sync_file_range``), and its descriptor and a duplicate
of its folder's are kept (`keep`). `sync` fsyncs the files it is given and their folders all
at once on the process's fsync threads, together with one more descriptor on the calling
thread (a manifest's temporary file): the file system's journal commits them in one round.
A failure stays recorded, so a later `sync` of that file fails again; `forget` (a deleted
file) closes its descriptors, and those of files never synced nor deleted are closed with
their `PendingSyncs`. `sync_folder_later` fsyncs a folder after a link made in it, in the
background, and `sync` of that name waits for it.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import functools
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from vectordb_manager.errors import StorageError
from vectordb_manager.storage.base import split_name

Failed = Callable[[builtins.list[str], BaseException], StorageError]  # folder parts, cause

_SYNC_THREADS = 4
_SYNC_FILE_RANGE_WRITE = 2
_POOLS: dict[int, ThreadPoolExecutor] = {}  # process id -> its pool
_POOLS_LOCK = threading.Lock()


class PendingSyncs:
    """The files of one storage written but not yet durable (see the module docstring)."""

    def __init__(self, failed: Failed) -> None:
        self._failed = failed  # the error of a failed fsync in a folder
        self._syncs: dict[str, Future[None]] = {}  # name -> its fsyncs, running or failed
        self._unsynced: dict[str, tuple[int, int]] = {}  # name -> its and its folder's fds
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._unsynced)  # (those never synced nor deleted)

    def keep(self, name: str, out: int, folder_fd: int, folder: builtins.list[str]) -> None:
        """Keep the descriptor ``out`` of a file just renamed into the folder ``folder_fd`` (a
        duplicate of it is kept), once its write-out was started; `sync` fsyncs both."""
        _start_write_out(out)
        try:
            kept = os.dup(folder_fd)
        except OSError as exc:
            os.close(out)
            raise self._failed(folder, exc) from exc
        with self._lock:
            self._close_unsynced(name)
            self._unsynced[name] = (out, kept)

    def forget(self, name: str) -> None:
        """A file deleted: its fsyncs are not needed any more (those running run on)."""
        with self._lock:
            self._syncs.pop(name, None)
            self._close_unsynced(name)

    def sync(
        self, names: Iterable[str], *, also: tuple[int, builtins.list[str]] | None = None
    ) -> None:
        """Make these files durable (those not kept here already are): their descriptors and
        folders fsynced all at once, and ``also`` (a descriptor, with its folder's parts for
        errors) on this thread meanwhile; `StorageError` if one could not be made so."""
        names = builtins.list(names)
        with self._lock:  # (a thread syncing one of them meanwhile waits for these)
            unsynced = [(n, self._unsynced.pop(n)) for n in names if n in self._unsynced]
            for name, _ in unsynced:
                self._syncs[name] = Future()
        if unsynced or also is not None:
            self._sync_now(unsynced, also)
        for name in names:
            with self._lock:
                pending = self._syncs.get(name)
            if pending is None:
                continue
            pending.result()  # its StorageError, if it failed (it then stays: it fails again)
            with self._lock:
                if self._syncs.get(name) is pending:
                    del self._syncs[name]

    def sync_folder_later(self, name: str, folder_fd: int, folder: builtins.list[str]) -> None:
        """fsync the folder ``folder_fd`` (a duplicate of it) on a fsync thread, after the link
        of ``name`` in it; `sync` of ``name`` waits for it."""
        try:
            kept = os.dup(folder_fd)
        except OSError as exc:
            raise self._failed(folder, exc) from exc

        def run() -> None:
            try:
                os.fsync(kept)
            except OSError as exc:
                raise self._failed(folder, exc) from exc
            finally:
                os.close(kept)

        pending = _submit(run)
        with self._lock:
            self._syncs[name] = pending

    def _sync_now(
        self,
        unsynced: builtins.list[tuple[str, tuple[int, int]]],
        also: tuple[int, builtins.list[str]] | None,
    ) -> None:
        """fsync these files and their folders on the fsync threads, and ``also`` on this
        one, all at once; close their descriptors and settle each file's future in `_syncs`.
        `StorageError` if ``also`` failed."""
        running = [(name, [_submit(os.fsync, fd) for fd in fds]) for name, fds in unsynced]
        failed: StorageError | None = None
        try:
            if also is not None:
                try:
                    os.fsync(also[0])
                except OSError as exc:
                    failed = self._failed(also[1], exc)
        finally:
            for name, futures in running:
                errors = [e for e in (f.exception() for f in futures) if e is not None]
                with self._lock:
                    mine = self._syncs.get(name)
                if mine is not None and not mine.done():
                    if errors:
                        mine.set_exception(self._failed(split_name(name)[:-1], errors[0]))
                    else:
                        mine.set_result(None)
            _close_all(dict(unsynced))
        if failed is not None:
            raise failed

    def _close_unsynced(self, name: str) -> None:
        """Close a kept file's descriptors and forget it (hold the lock)."""
        fds = self._unsynced.pop(name, None)
        if fds is not None:
            _close_all({name: fds})


def _sync_pool() -> ThreadPoolExecutor:
    """The threads that run deferred fsyncs, shared by every storage of the process (made
    again in a forked child, where the parent's threads do not exist)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(os.getpid())
        if pool is None:
            _POOLS.clear()
            pool = _POOLS[os.getpid()] = ThreadPoolExecutor(_SYNC_THREADS, "vectordb-fsync")
        return pool


def _submit(call: Callable[..., None], *args: Any) -> Future[None]:
    """``call(*args)`` on a fsync thread; run now, as a finished future, where the
    interpreter is shutting down (no new threads)."""
    try:
        return _sync_pool().submit(call, *args)
    except RuntimeError:
        future: Future[None] = Future()
        try:
            call(*args)
        except BaseException as exc:  # (kept in the future, as a pool's would be)
            future.set_exception(exc)
        else:
            future.set_result(None)
        return future


def _close_all(unsynced: dict[str, tuple[int, int]]) -> None:
    """Close the descriptors of unsynced files (their names are then forgotten)."""
    for fds in unsynced.values():
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    unsynced.clear()


@functools.cache
def _write_out_call() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range``, looked up once; ``None`` elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def _start_write_out(fd: int) -> None:
    """Ask the system to start writing a file's pages out, not waiting (``sync_file_range``
    with ``SYNC_FILE_RANGE_WRITE``), so that the fsync that makes it durable later finds them
    written; elsewhere, or where it fails, nothing (a hint only)."""
    call = _write_out_call()
    if call is not None:
        call(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


__all__ = ["PendingSyncs"]
