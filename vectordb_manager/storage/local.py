"""`LocalStorage`: the storage protocol over a local directory, never following a link in it.

A store may come from someone else's archive, so nothing here trusts the directory's contents.
The root is resolved once, when the storage is made (a user may name their store through a
link). Everything beneath it is reached one component at a time from an open directory file
descriptor, with ``O_NOFOLLOW`` (and ``O_DIRECTORY`` for folders), and every other call
(``stat``, ``unlink``, ``link``, ``rename``, ``mkdir``, ``scandir``) is made relative to such a
descriptor. A check and its use are then one system call, so no race between them can
redirect it: a link met anywhere beneath the root is an `IntegrityError`, never followed.

Files are opened with ``O_NONBLOCK`` (a FIFO cannot block the open) and checked with ``fstat``:
only regular files are read, and their length is checked against the size the caller expects
before any byte is read (see `vectordb_manager.storage.base`).

Writes go to a temporary file in the target's directory, are fsynced, then renamed into place,
and the directory is fsynced so the rename itself survives a crash. ``write_if_absent`` links the
finished temporary file to its final name: ``link(2)`` fails if the name exists, which makes
the create-only commit atomic across threads and processes without any lock file.

A commit's files need not be durable one by one, only before the manifest that names them:
``write(name, data, durable=False)`` renames the written file into place at once and leaves
it to `PendingSyncs` (storage/pending.py). ``write_if_absent(name, data, after=[...])``
writes its own temporary file, fsyncs it together with those files and their folders, all
at once, and only then makes the ``link(2)`` that commits (the folder's fsync then makes the
link durable). So a commit waits for two rounds of the file system's journal, not three:
fsyncing a written segment at once, then the manifest's temporary file once its hash was
known, then the link, made the writer wait for each in turn (100 durable batches with each
fsync made 2 ms slower took 2.32 s that way, 2.19 s this way). A failed fsync fails that
``write_if_absent`` with `StorageError`, before anything is linked.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import functools
import logging
import os
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from vectordb_manager.errors import IntegrityError, StorageError
from vectordb_manager.storage.base import ObjectInfo, ObjectNotFound, check_length, split_name
from vectordb_manager.storage.pending import PendingSyncs

logger = logging.getLogger(__name__)
TMP_PREFIX = ".tmp-"

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
WRITE_CHUNK = 64 << 10
"""Bytes per ``write``: Linux (6.x) gives a buffered write page-cache folios as large as the
write (up to 2 MiB), and a fresh large block is what waits for the host on a VM that hands
freed memory back (see `engine.pages`). Measured here, a new 75 MB file 2 s after the last
write, 6 times each: medians 432 ms in writes of 1 MiB (358-597), 48 ms of 256 KiB
(18-350), 21 ms of 64 KiB (19-33); one write of 150 MB took 0.2-1.4 s."""
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


class LocalStorage:
    """A store directory on a local file system."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        # (its errors name the root only: it holds no reference back to the storage, and
        # its descriptors are closed as soon as the storage is dropped)
        self._pending = PendingSyncs(functools.partial(_failed, self.root, "write in"))

    def describe(self) -> str:
        return str(self.root)

    # -- the protocol ------------------------------------------------------------------------
    def read(self, name: str, size: int | None = None) -> bytes:
        fd, length = self._open_file(name, size)
        with os.fdopen(fd, "rb") as stream:
            data = stream.read(length)
        if len(data) != length:  # shrunk after it was checked
            raise IntegrityError(
                f"{self.root / name} ended after {len(data)} of its {length} bytes; the file "
                "is truncated. Restore it from a backup."
            )
        return data

    def open(self, name: str, size: int | None = None) -> IO[bytes]:
        fd, _ = self._open_file(name, size)
        try:
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def write(
        self, name: str, data: bytes | bytearray | memoryview, *, durable: bool = True
    ) -> None:
        """Create or replace the object atomically: durable when this returns, or with
        ``durable=False`` once a `write_if_absent` naming it in ``after`` (or `sync`) has
        returned: its fsyncs wait for that (see the module docstring)."""
        *folder, file = split_name(name)
        with self._folder(folder, create=True) as fd:
            tmp, out = self._write_temp(fd, folder, data, sync=durable)
            try:
                os.rename(tmp, file, src_dir_fd=fd, dst_dir_fd=fd)
            except OSError as exc:
                if out is not None:
                    os.close(out)
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
                raise self._failed("write", [*folder, file], exc) from exc
            if out is None:
                self._sync(fd, folder)
            else:
                self._pending.keep(name, out, fd, folder)
        logger.debug("wrote %s (%d bytes)", name, len(data))

    def write_if_absent(
        self, name: str, data: bytes, *, after: Iterable[str] = (), durable: bool = True
    ) -> bool:
        """Create the object only if absent, durably; first make the objects in ``after``
        (written with ``durable=False``) durable, fsynced together with its own temporary
        file (`StorageError`, and nothing created, if they could not be made so). With
        ``durable=False`` the fsync of the folder that makes the new name durable may still
        run when this returns: `sync` waits for it."""
        *folder, file = split_name(name)
        with self._folder(folder, create=True) as fd:
            tmp, out = self._write_temp(fd, folder, data, sync=False)
            assert out is not None  # (not synced: still open)
            try:
                try:
                    self._pending.sync(after, also=(out, folder))
                finally:
                    os.close(out)
                os.link(tmp, file, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
            except FileExistsError:
                return False
            except OSError as exc:
                raise self._failed("write", [*folder, file], exc) from exc
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
            if durable:
                self._sync(fd, folder)
            else:
                self._pending.sync_folder_later(name, fd, folder)
        logger.debug("created %s (%d bytes)", name, len(data))
        return True

    def sync(self, names: Iterable[str]) -> None:
        """Make these objects, written with ``durable=False``, durable (the others already
        are), all at once; `StorageError` if one could not be made so."""
        self._pending.sync(names)

    def list(self, prefix: str, start_after: str | None = None) -> builtins.list[ObjectInfo]:
        # walk only the folder the prefix points into
        head, _, _ = prefix.rpartition("/")
        folder = split_name(head) if head else []
        found: builtins.list[ObjectInfo] = []
        try:
            with self._folder(folder) as fd:

                def wanted(rel: str) -> bool:
                    return (
                        rel.startswith(prefix)
                        and (start_after is None or rel > start_after)
                        and not rel.rpartition("/")[2].startswith(TMP_PREFIX)
                    )

                # after a name of this folder (new manifests), only the entries sorting
                # after it, or holding names that do, are looked at
                after_head, _, after = (start_after or "").rpartition("/")
                past = after if start_after is not None and after_head == head else None
                for _, rel, info in self._walk(fd, folder, wanted, past):
                    found.append(ObjectInfo(rel, info.st_size, info.st_mtime))
        except FileNotFoundError:
            return []
        return sorted(found, key=lambda o: o.name)

    def delete(self, name: str) -> None:
        self._pending.forget(name)
        *folder, file = split_name(name)
        try:
            with self._folder(folder) as fd:
                os.unlink(file, dir_fd=fd)  # a link is removed itself, never its target
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise self._not_regular([*folder, file], stat.S_IFDIR) from None
        except OSError as exc:
            raise self._failed("delete", [*folder, file], exc) from exc

    def has(self, name: str) -> bool:
        """Whether anything is at ``name`` (a link too: reading it is refused), in one system
        call beneath its folder, where a listing reads the whole folder (see
        `CommitLog.versions`)."""
        *folder, file = split_name(name)
        try:
            with self._folder(folder) as fd:
                os.stat(file, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._failed("look for", [*folder, file], exc) from exc
        return True

    def evict(self, name: str) -> bool:
        """A directory is not a cache: there is never a copy to forget."""
        return False

    def remove_temporary(self, older_than: float) -> builtins.list[str]:
        """Remove temporary files of interrupted writes last modified before ``older_than``."""
        removed: builtins.list[str] = []
        try:
            with self._folder([]) as root:
                for fd, rel, info in self._walk(root, [], _is_temporary):
                    file = rel.rpartition("/")[2]
                    if info.st_mtime < older_than:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(file, dir_fd=fd)
                            removed.append(rel)
        except FileNotFoundError:
            return []
        return removed

    def entries(self) -> set[str]:
        """The names in the store directory (empty if it does not exist yet), links included."""
        try:
            with self._folder([]) as fd:
                return set(os.listdir(fd))
        except FileNotFoundError:
            return set()
        except OSError as exc:
            raise self._failed("read the folder", [], exc) from exc

    # -- reaching files without following links ------------------------------------------------
    def _where(self, parts: builtins.list[str]) -> Path:
        return self.root.joinpath(*parts)

    @contextlib.contextmanager
    def _folder(self, parts: builtins.list[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the folder ``parts`` beneath the root, reached component by component
        without following links; raises `FileNotFoundError` if it is absent and not ``create``.
        """
        fd = self._open_root(create)
        try:
            for i, part in enumerate(parts):
                child = self._open_folder(fd, part, parts[: i + 1], create)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def _open_root(self, create: bool) -> int:
        try:
            return os.open(self.root, _FOLDER)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            raise self._bad_folder(None, [], exc) from exc
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise self._failed("create the folder", [], exc) from exc
        try:
            return os.open(self.root, _FOLDER)
        except OSError as exc:
            raise self._bad_folder(None, [], exc) from exc

    def _open_folder(self, parent: int, name: str, parts: builtins.list[str], create: bool) -> int:
        try:
            return os.open(name, _FOLDER, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            raise self._bad_folder(parent, parts, exc) from exc
        try:
            os.mkdir(name, 0o777, dir_fd=parent)
            os.fsync(parent)  # the new folder survives a crash like the file put in it
        except FileExistsError:
            pass  # made meanwhile by another writer: open it (still never through a link)
        except OSError as exc:
            raise self._failed("create the folder", parts, exc) from exc
        try:
            return os.open(name, _FOLDER, dir_fd=parent)
        except OSError as exc:
            raise self._bad_folder(parent, parts, exc) from exc

    def _open_file(self, name: str, size: int | None) -> tuple[int, int]:
        """A descriptor and the length of a regular file, checked against ``size`` (see
        `check_length`) before any byte of it is read."""
        *folder, file = split_name(name)
        parts = [*folder, file]
        try:
            with self._folder(folder) as dir_fd:
                fd = os.open(file, _FILE, dir_fd=dir_fd)
        except FileNotFoundError:
            raise ObjectNotFound(name) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link
                raise self._link(parts, "file") from None
            if exc.errno == errno.ENXIO:  # a socket cannot be opened
                raise self._not_regular(parts, stat.S_IFSOCK) from None
            raise self._failed("read", parts, exc) from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise self._not_regular(parts, stat.S_IFMT(info.st_mode))
            check_length(str(self._where(parts)), info.st_size, size)
        except BaseException:
            os.close(fd)
            raise
        return fd, info.st_size

    def _walk(
        self,
        fd: int,
        parts: builtins.list[str],
        wanted: Callable[[str], bool] = bool,
        past: str | None = None,
    ) -> Iterator[tuple[int, str, os.stat_result]]:
        """(folder descriptor, name, stat) of every regular file below the folder ``fd`` whose
        name is ``wanted``; `IntegrityError` on a link or on anything that is neither a file
        nor a folder. Kinds come from the directory entries (no system call on Linux); only
        wanted files are stat-ed. ``past``: only the entries of this folder named after it,
        or whose names begin it (a folder's files may sort after it), are looked at: listing
        the few manifests after one among 6,000 takes 4.2 ms instead of 7.6 (most of the rest
        is the system reading the folder, which `CommitLog.versions` avoids when it can)."""
        try:
            entries = builtins.list(os.scandir(fd))
        except OSError as exc:
            raise self._failed("read the folder", parts, exc) from exc
        if past is not None:
            entries = [e for e in entries if e.name > past or past.startswith(e.name)]
        for entry in entries:
            here = [*parts, entry.name]
            try:
                if entry.is_symlink():
                    raise self._link(here, "folder or file")
                if entry.is_dir(follow_symlinks=False):
                    try:
                        child = self._open_folder(fd, entry.name, here, create=False)
                    except FileNotFoundError:
                        continue
                    try:
                        yield from self._walk(child, here, wanted)
                    finally:
                        os.close(child)
                    continue
                rel = "/".join(here)
                if entry.is_file(follow_symlinks=False):
                    if wanted(rel):
                        yield fd, rel, entry.stat(follow_symlinks=False)
                    continue
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while listing
            raise self._not_regular(here, stat.S_IFMT(info.st_mode))

    def _write_temp(
        self,
        fd: int,
        folder: builtins.list[str],
        data: bytes | bytearray | memoryview,
        *,
        sync: bool = True,
    ) -> tuple[str, int | None]:
        """A new temporary file holding ``data`` in the folder ``fd``: its name, and (with
        ``sync=False``) its descriptor, still open and not fsynced (else fsynced, closed)."""
        tmp = f"{TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            out = os.open(tmp, _NEW_FILE, 0o644, dir_fd=fd)
        except OSError as exc:
            raise self._failed("write in", folder, exc) from exc
        done = False
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(out, view[:WRITE_CHUNK]) :]
            if sync:
                os.fsync(out)
            done = True
        except OSError as exc:
            raise self._failed("write in", folder, exc) from exc
        finally:
            if sync or not done:
                os.close(out)
            if not done:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
        return tmp, None if sync else out

    def _sync(self, fd: int, folder: builtins.list[str]) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            raise self._failed("write in", folder, exc) from exc

    # -- errors ----------------------------------------------------------------------------
    def _link(self, parts: builtins.list[str], real: str) -> IntegrityError:
        return IntegrityError(
            f"{self._where(parts)} is a symbolic link; a store never follows links out of its "
            f"directory; replace it with the real {real}"
        )

    def _not_regular(self, parts: builtins.list[str], kind: int) -> IntegrityError:
        what = _KINDS.get(kind, "not a file")
        return IntegrityError(
            f"{self._where(parts)} is {what}, not a regular file; a store holds only files "
            "and folders: remove it, and restore the real file from a backup"
        )

    def _bad_folder(
        self, parent: int | None, parts: builtins.list[str], exc: OSError
    ) -> StorageError:
        """The error for a folder that could not be opened: a link, a file, or unreadable."""
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            try:
                if parent is None:
                    mode = os.stat(self.root, follow_symlinks=False).st_mode
                else:
                    mode = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode
            except OSError:
                mode = 0
            if stat.S_ISLNK(mode):
                return self._link(parts, "folder")
            if parent is None:
                return StorageError(f"{self.root} is a file; give a directory for the store")
            return IntegrityError(
                f"{self._where(parts)} is {_KINDS.get(stat.S_IFMT(mode), 'a file')} where the "
                "store has a folder; move it away, and restore the folder from a backup"
            )
        return self._failed("read the folder", parts, exc)

    def _failed(self, action: str, parts: builtins.list[str], exc: OSError) -> StorageError:
        return _failed(self.root, action, parts, exc)


def _failed(root: Path, action: str, parts: builtins.list[str], exc: BaseException) -> StorageError:
    """The error of a failed ``action`` on ``parts`` beneath ``root``."""
    where = root.joinpath(*parts)
    if isinstance(exc, PermissionError):
        return StorageError(
            f"cannot {action} {where}: permission denied; fix its permissions (the user "
            "running this needs read, write and search rights: chmod u+rwX) or run as the "
            "user that owns it"
        )
    if isinstance(exc, OSError):
        return StorageError(f"cannot {action} {where}: {exc.strerror or exc}")
    return StorageError(f"cannot {action} {where}: {exc}")


def _is_temporary(name: str) -> bool:
    """Whether a file is the temporary file of a write (possibly an interrupted one)."""
    return name.rpartition("/")[2].startswith(TMP_PREFIX)
