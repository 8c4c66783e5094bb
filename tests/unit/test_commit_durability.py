"""The order of a local commit's writes and fsyncs survives power loss (docs/format.md, "How a
commit works"): whatever the disk keeps after a crash at any moment, a manifest it keeps names
only files it also keeps whole, and an acknowledged write's manifest is kept.

SIGKILL tests (tests/integration/test_durability.py) cannot show this: a killed process
leaves the page cache to the kernel, which writes everything out. Here every system call the
local storage makes is recorded (the real calls still run, on real files), and a model of
what a disk promises replays them: a file's bytes are kept only once an fsync of it followed
their write, and a name in a folder only once an fsync of the folder followed its creation.
Anything else may be lost. The check runs at the moment each manifest is linked into place
(from then on a crash may keep it), and after each acknowledged write.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.commit_log import CommitLog
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.errors import StorageError
from vectordb_manager.storage.local import LocalStorage
from vectordb_manager.storage.pending import PendingSyncs

EMB = HashingEmbeddings(16)


@dataclass
class Inode:
    data: bytearray = field(default_factory=bytearray)
    dirty: bool = False  # written since its last fsync


@dataclass
class Folder:
    names: dict[str, Inode] = field(default_factory=dict)
    synced: dict[str, Inode] = field(default_factory=dict)  # the names an fsync made durable


class DiskModel:
    """Records the storage's system calls (monkeypatched `os` functions that call the real
    ones) and checks, whenever a manifest appears, that a crash could not keep it without the
    files it names."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self.root = str(root)
        self.lock = threading.RLock()
        self.folders: dict[str, Folder] = {}
        self.fds: dict[int, tuple[str, str | None]] = {}  # fd -> (folder, name or None)
        self.open_inodes: dict[int, Inode] = {}
        self.violations: list[str] = []
        self.links = 0
        self.linked_by: dict[int, str] = {}  # thread -> the last manifest it linked
        real = {n: getattr(os, n) for n in ("open", "write", "fsync", "rename", "link",
                                             "unlink", "close", "dup", "mkdir")}

        def folder_of(dir_fd: int | None) -> str | None:
            return self.fds[dir_fd][0] if dir_fd in self.fds else None

        def fake_open(
            path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None
        ) -> int:
            fd = int(real["open"](path, flags, mode, dir_fd=dir_fd))
            with self.lock:
                parent = folder_of(dir_fd)
                full = str(path) if parent is None else f"{parent}/{path}"
                if flags & os.O_DIRECTORY:
                    self.fds[fd] = (full, None)
                    self.folders.setdefault(full, Folder())
                elif parent is not None:
                    folder = self.folders.setdefault(parent, Folder())
                    if flags & os.O_CREAT:
                        folder.names[str(path)] = Inode()
                    node = folder.names.get(str(path))
                    if node is not None:
                        self.fds[fd] = (parent, str(path))
                        self.open_inodes[fd] = node
            return fd

        def fake_write(fd: int, data: Any) -> int:
            n = int(real["write"](fd, data))
            with self.lock:
                node = self.open_inodes.get(fd)
                if node is not None:
                    node.data += bytes(memoryview(data)[:n])
                    node.dirty = True
            return n

        def fake_fsync(fd: int) -> None:
            with self.lock:  # what the fsync will cover: the state when it starts
                node = self.open_inodes.get(fd)
                where = self.fds.get(fd)
                names = dict(self.folders[where[0]].names) if where and where[1] is None else None
            real["fsync"](fd)
            with self.lock:
                if node is not None:
                    node.dirty = False
                if names is not None and where is not None:
                    self.folders[where[0]].synced.update(names)
                    gone = set(self.folders[where[0]].synced) - set(names)
                    for name in gone:
                        del self.folders[where[0]].synced[name]

        def fake_rename(src: str, dst: str, *, src_dir_fd: int, dst_dir_fd: int) -> None:
            real["rename"](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
            with self.lock:
                folder = self.folders[self.fds[src_dir_fd][0]]
                folder.names[dst] = folder.names.pop(src)

        def fake_link(src: str, dst: str, *, src_dir_fd: int, dst_dir_fd: int,
                      follow_symlinks: bool = True) -> None:
            real["link"](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd,
                         follow_symlinks=follow_symlinks)
            with self.lock:
                where = self.fds[src_dir_fd][0]
                folder = self.folders[where]
                folder.names[dst] = folder.names[src]
                if where.endswith("/manifests"):
                    self.links += 1
                    self.linked_by[threading.get_ident()] = dst
                    self._check_manifest(folder.names[dst], f"{where}/{dst}")

        def fake_unlink(name: str, *, dir_fd: int) -> None:
            real["unlink"](name, dir_fd=dir_fd)
            with self.lock:
                self.folders[self.fds[dir_fd][0]].names.pop(name, None)

        def fake_close(fd: int) -> None:
            with self.lock:  # (first: once closed, another thread may get the same number)
                self.fds.pop(fd, None)
                self.open_inodes.pop(fd, None)
            real["close"](fd)

        def fake_dup(fd: int) -> int:
            new = int(real["dup"](fd))
            with self.lock:
                if fd in self.fds:
                    self.fds[new] = self.fds[fd]
                if fd in self.open_inodes:
                    self.open_inodes[new] = self.open_inodes[fd]
            return new

        for name, fake in (("open", fake_open), ("write", fake_write), ("fsync", fake_fsync),
                           ("rename", fake_rename), ("link", fake_link),
                           ("unlink", fake_unlink), ("close", fake_close), ("dup", fake_dup)):
            monkeypatch.setattr(os, name, fake)

    def _kept(self, folder: str, name: str) -> Inode | None:
        """The file a crash now could keep under this name whole, else None."""
        node = self.folders.get(folder, Folder()).synced.get(name)
        return node if node is not None and not node.dirty else None

    def _check_manifest(self, node: Inode, path: str) -> None:
        if node.dirty:
            self.violations.append(f"{path} was linked before its bytes were synced")
            return
        manifest = json.loads(bytes(node.data))
        files = [s["file"]["path"] for s in manifest["segments"]]
        if manifest.get("index_snapshot"):
            files.append(manifest["index_snapshot"]["file"]["path"])
        for rel in files:
            folder, _, name = f"{self.root}/{rel}".rpartition("/")
            kept = self._kept(folder, name)
            if kept is None:
                self.violations.append(f"{path} was linked while {rel} could still be lost")

    def check_acknowledged(self) -> None:
        """A write that returned: the manifest this thread committed last survives any crash
        from now on. (Not the engine's current version: a background merge may have linked
        a newer manifest that it has not yet synced, and has not acknowledged.)"""
        with self.lock:
            name = self.linked_by.get(threading.get_ident())
            if name is None or self._kept(f"{self.root}/manifests", name) is None:
                self.violations.append(f"{name} was acknowledged but may be lost")

    def check_all_kept(self) -> None:
        """Every manifest in the folder survives any crash (once no commit is in flight)."""
        with self.lock:
            folder = f"{self.root}/manifests"
            for name in sorted(self.folders.get(folder, Folder()).names):
                if name.endswith(".json") and self._kept(folder, name) is None:
                    self.violations.append(f"{name} is in place but may be lost")


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DiskModel:
    return DiskModel(monkeypatch, tmp_path.resolve() / "store")


def test_every_commit_keeps_its_files_before_its_manifest(disk: DiskModel, tmp_path: Path) -> None:
    policy = CompactionPolicy(fan_in=2, min_weight=1)  # merges (their own commits) too
    store = LocalVectorStore(EMB, tmp_path / "store", compaction=policy)
    for i in range(12):
        store.add_texts([f"text {i} {j}" for j in range(20)], ids=[f"{i}-{j}" for j in range(20)])
        disk.check_acknowledged()
        if i % 4 == 3:
            store.delete([f"{i}-0"])
            disk.check_acknowledged()
    store.wait_for_compaction()
    store.compact()
    disk.check_acknowledged()
    disk.check_all_kept()
    assert disk.links >= 17 and not disk.violations, disk.violations
    assert store.verify()["documents"] == 12 * 20 - 3


def test_the_model_catches_a_manifest_linked_before_its_segment_is_synced(
    disk: DiskModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check can fail: skip the segment's fsync (only the manifest's own temporary file
    is fsynced before the link), and it says so."""

    def manifest_only(self: PendingSyncs, names: Any, also: Any = None) -> None:
        if also is not None:
            os.fsync(also[0])

    monkeypatch.setattr(PendingSyncs, "sync", manifest_only)
    gate = threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:  # the background fsyncs wait until the commit is done
        if threading.current_thread().name.startswith("vectordb-fsync"):
            gate.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    store = LocalVectorStore(EMB, tmp_path / "store")
    try:
        store.add_texts(["a", "b"], ids=["a", "b"])
    finally:
        gate.set()
    assert any("could still be lost" in v for v in disk.violations), disk.violations


def test_a_failed_background_fsync_fails_the_commit_and_leaves_the_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalVectorStore(EMB, tmp_path / "store")
    store.add_texts(["kept"], ids=["k"])
    version = store.engine.version
    real_fsync = os.fsync

    def failing(fd: int) -> None:
        if threading.current_thread().name.startswith("vectordb-fsync"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(StorageError, match="Input/output error"):
        store.add_texts(["lost"], ids=["l"])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert store.engine.version == version and store.engine.ids() == ["k"]
    assert not list((tmp_path / "store" / "segments").glob(".tmp-*"))
    fresh = LocalVectorStore(EMB, tmp_path / "store")
    assert fresh.engine.ids() == ["k"] and fresh.verify()["documents"] == 1
    store.add_texts(["later"], ids=["x"])  # the store goes on
    assert sorted(LocalVectorStore(EMB, tmp_path / "store").engine.ids()) == ["k", "x"]


def test_a_failed_fsync_after_the_link_is_logged_and_the_write_stays_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The link is the commit: a failure of the folder's fsync after it (run while the change
    is applied in memory) cannot undo it, so it is reported as `propose` reports a manifest
    found in place after an error, and the write returns."""
    store = LocalVectorStore(EMB, tmp_path / "store")
    real_fsync = os.fsync

    def failing(fd: int) -> None:
        manifests = os.readlink(f"/proc/self/fd/{fd}").endswith("/manifests")
        if manifests and threading.current_thread().name.startswith("vectordb-fsync"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing)
    assert store.add_texts(["landed"], ids=["x"]) == ["x"]
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert "committed version 2 despite an error" in caplog.text
    assert LocalVectorStore(EMB, tmp_path / "store").get_by_ids(["x"])[0].page_content == "landed"


def test_a_deferred_write_is_durable_once_synced_and_read_back_whole(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write("segments/a.seg", b"a" * 100_000, durable=False)
    assert storage.read("segments/a.seg") == b"a" * 100_000  # in place at once
    storage.sync(["segments/a.seg", "segments/never-written.seg"])  # (unknown: durable)
    assert storage.write_if_absent("manifests/m.json", b"{}", after=["segments/a.seg"])
    assert not storage.write_if_absent("manifests/m.json", b"{}", after=["segments/a.seg"])
    storage.write("segments/b.seg", b"b", durable=False)
    storage.delete("segments/b.seg")  # its pending fsyncs are forgotten with it
    storage.sync(["segments/b.seg"])
    assert sorted(p.name for p in (tmp_path / "segments").iterdir()) == ["a.seg"]
    assert storage.write_if_absent("manifests/n.json", b"{}", durable=False)
    storage.sync(["manifests/n.json"])  # its folder's fsync, deferred
    assert (tmp_path / "manifests" / "n.json").read_bytes() == b"{}"


def test_a_commit_fsyncs_its_files_their_folder_and_its_manifest_all_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One round of fsyncs before the link, not one after another: the segment, its folder
    and the manifest's temporary file are fsynced at the same time (each fsync here waits at
    a barrier until all three have begun; one at a time, the barrier would break)."""
    storage = LocalStorage(tmp_path)
    storage.write("segments/a.seg", b"a" * 10_000, durable=False)
    (tmp_path / "manifests").mkdir()  # (made here, its parent's fsync is not one of them)
    barrier = threading.Barrier(3, timeout=60)
    real_fsync = os.fsync
    seen: list[str] = []

    def together(fd: int) -> None:
        where = os.readlink(f"/proc/self/fd/{fd}").rpartition("/")[2]
        seen.append(".tmp" if where.startswith(".tmp-") else where)
        if len(seen) <= 3:
            barrier.wait()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", together)
    assert storage.write_if_absent("manifests/m.json", b"{}", after=["segments/a.seg"])
    assert sorted(seen[:3]) == [".tmp", "a.seg", "segments"] and seen[3:] == ["manifests"]


def test_a_failed_fsync_of_a_deferred_write_fails_each_sync_and_links_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path)
    storage.write("segments/a.seg", b"a", durable=False)
    real_fsync = os.fsync

    def failing(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/a.seg"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(StorageError, match="Input/output error"):
        storage.write_if_absent("manifests/m.json", b"{}", after=["segments/a.seg"])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert not storage.has("manifests/m.json")
    assert not [p for p in (tmp_path / "manifests").iterdir()]  # (no temporary file left)
    with pytest.raises(StorageError, match="Input/output error"):
        storage.sync(["segments/a.seg"])  # still not known durable: it fails again


def test_deferred_writes_hold_no_descriptor_once_synced_deleted_or_dropped(
    tmp_path: Path,
) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    storage = LocalStorage(tmp_path)
    storage.write("segments/a.seg", b"a", durable=False)
    storage.write("segments/b.seg", b"b", durable=False)
    storage.write("segments/c.seg", b"c", durable=False)
    assert open_fds() == before + 6  # each file's and a duplicate of its folder's
    storage.sync(["segments/a.seg"])
    storage.delete("segments/b.seg")
    assert open_fds() == before + 2
    del storage  # (c.seg never synced nor deleted: closed with the storage)
    assert open_fds() == before


def test_deferred_writes_work_in_a_forked_child(tmp_path: Path) -> None:
    """The fsync threads are the process's own: a child forked after the parent used them
    makes its own (the parent's do not exist in the child)."""
    storage = LocalStorage(tmp_path)
    storage.write("segments/parent.seg", b"p", durable=False)
    storage.sync(["segments/parent.seg"])
    pid = os.fork()
    if pid == 0:  # the child: exit with 0 only if its own deferred write commits
        code = 1
        try:
            storage.write("segments/child.seg", b"c", durable=False)
            created = storage.write_if_absent("manifests/c.json", b"{}", after=["segments/child.seg"])
            code = 0 if created else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert (tmp_path / "segments" / "child.seg").read_bytes() == b"c"


def test_the_model_catches_an_acknowledged_write_whose_manifest_is_not_synced(
    disk: DiskModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check after a write can fail: skip the wait for the manifest's folder (and hold
    that folder's fsync until the check is done), and it says so."""
    store = LocalVectorStore(EMB, tmp_path / "store")
    store.add_texts(["a"], ids=["a"])
    disk.check_acknowledged()
    assert not disk.violations
    gate = threading.Event()
    model_fsync = os.fsync

    def held_fsync(fd: int) -> None:
        manifests = os.readlink(f"/proc/self/fd/{fd}").endswith("/manifests")
        if manifests and threading.current_thread().name.startswith("vectordb-fsync"):
            gate.wait(30)
        model_fsync(fd)

    monkeypatch.setattr(os, "fsync", held_fsync)
    monkeypatch.setattr(CommitLog, "settle", lambda self, committed: None)
    try:
        store.add_texts(["b"], ids=["b"])
        disk.check_acknowledged()
    finally:
        gate.set()
    assert f"{store.engine.version:020d}.json was acknowledged but may be lost" in disk.violations
