"""`LocalStorage`: the storage protocol over a local directory.

Writes go to a temporary file in the target's directory, are fsynced, then renamed into place,
and the directory is fsynced so the rename itself survives a crash. ``write_if_absent`` links the
finished temporary file to its final name: ``link(2)`` fails if the name exists, which makes
the create-only commit atomic across threads and processes without any lock file.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import uuid
from pathlib import Path
from typing import IO

from vectordb_manager.errors import StorageError
from vectordb_manager.storage.base import ObjectInfo, ObjectNotFound

logger = logging.getLogger(__name__)
TMP_PREFIX = ".tmp-"


class LocalStorage:
    """A store directory on a local file system."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()

    def describe(self) -> str:
        return str(self.root)

    def _path(self, name: str) -> Path:
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid object name {name!r}")
        return self.root.joinpath(*parts)

    def read(self, name: str, size: int | None = None) -> bytes:
        path = self._path(name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(name) from None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def open(self, name: str, size: int | None = None) -> IO[bytes]:
        path = self._path(name)
        try:
            return builtins.open(path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(name) from None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def _write_temp(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.close(fd)
        return tmp

    def write(self, name: str, data: bytes) -> None:
        path = self._path(name)
        try:
            tmp = self._write_temp(path, data)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        logger.debug("wrote %s (%d bytes)", path, len(data))

    def write_if_absent(self, name: str, data: bytes) -> bool:
        path = self._path(name)
        try:
            tmp = self._write_temp(path, data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                tmp.unlink()
            _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        logger.debug("created %s (%d bytes)", path, len(data))
        return True

    def list(self, prefix: str, start_after: str | None = None) -> builtins.list[ObjectInfo]:
        names: builtins.list[ObjectInfo] = []
        if not self.root.is_dir():
            return names
        # walk only the directory the prefix points into
        head, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*head.split("/")) if head else self.root
        if not start.is_dir():
            return names
        try:
            for dirpath, _dirs, files in os.walk(start):
                rel_dir = Path(dirpath).relative_to(self.root).as_posix()
                for f in files:
                    if f.startswith(TMP_PREFIX):
                        continue
                    rel = f if rel_dir == "." else f"{rel_dir}/{f}"
                    if rel.startswith(prefix) and (start_after is None or rel > start_after):
                        try:
                            st = os.stat(os.path.join(dirpath, f))
                        except FileNotFoundError:
                            continue  # removed while listing
                        names.append(ObjectInfo(rel, st.st_size, st.st_mtime))
        except OSError as exc:
            raise StorageError(f"cannot list {start}: {exc.strerror or exc}") from exc
        return sorted(names, key=lambda o: o.name)

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc.strerror or exc}") from exc

    def remove_temporary(self, older_than: float) -> builtins.list[str]:
        """Remove temporary files of interrupted writes last modified before ``older_than``."""
        removed: builtins.list[str] = []
        if not self.root.is_dir():
            return removed
        for p in self.root.rglob(f"{TMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if p.is_file() and p.stat().st_mtime < older_than:
                    p.unlink()
                    removed.append(p.relative_to(self.root).as_posix())
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
