"""LocalStorage on hostile directories: links, FIFOs, devices, sockets, wrong sizes, unreadable
folders. A store may come from someone else's archive: nothing it holds may make the package
touch a file outside it, block, read without bound, or fail with a bare OSError."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vectordb_manager import IntegrityError, LocalVectorStore, StorageError
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.limits import MAX_MANIFEST_BYTES
from vectordb_manager.storage.base import ObjectNotFound
from vectordb_manager.storage.local import LocalStorage

ROOT = Path(__file__).resolve().parents[2]
EMB = HashingEmbeddings(8)
OLD = time.time() - 86400  # a day ago: old enough for any vacuum


def make_store(path: Path) -> LocalVectorStore:
    store = LocalVectorStore(EMB, path)
    store.add_texts(["alpha", "beta"], ids=["a", "b"])
    store.add_texts(["gamma"], ids=["c"])
    return store


def files_of(folder: Path) -> dict[str, tuple[bytes, float]]:
    """Every file below ``folder`` with its bytes and modification time."""
    found = {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime)
        for p in folder.rglob("*")
        if p.is_file()
    }
    assert found  # a test that compares empty listings could not fail
    return found


def newest_manifest(store_dir: Path) -> Path:
    return max((store_dir / "manifests").iterdir())


def first_segment(store_dir: Path) -> Path:
    return min((store_dir / "segments").iterdir())


def link_out(folder: Path, outside: Path) -> None:
    """Replace ``folder`` with a link to ``outside``, which gets the folder's files plus files
    of someone else's, all last modified a day ago (a vacuum would remove them if it could)."""
    outside.mkdir()
    if folder.exists():
        for p in folder.iterdir():
            shutil.copy2(p, outside / p.name)
        shutil.rmtree(folder)
    (outside / ("0" * 32 + ".seg")).write_bytes(b"someone else's file")
    (outside / ".tmp-someone").write_bytes(b"someone else's temporary file")
    for p in outside.iterdir():
        os.utime(p, (OLD, OLD))
    folder.symlink_to(outside, target_is_directory=True)


# -- links -----------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["segments", "indexes", "manifests", "segments/old"])
def test_vacuum_never_follows_a_linked_folder(tmp_path: Path, folder: str) -> None:
    store_dir, outside = tmp_path / "store", tmp_path / "outside"
    store = make_store(store_dir)
    link_out(store_dir / folder, outside)
    before = files_of(outside)
    link = rf"{store_dir / folder} is a symbolic link; a store never follows links out of its "
    with pytest.raises(IntegrityError, match=link + "directory; replace it with the real folder"):
        store.vacuum(older_than=0)
    if folder in ("indexes", "segments/old"):  # not read when opening: reopening works...
        reopened = LocalVectorStore(EMB, store_dir)
        assert sorted(d.id or "" for d in reopened.get_by_ids(["a", "b", "c"])) == ["a", "b", "c"]
        with pytest.raises(IntegrityError, match=link):  # ...and its vacuum refuses too
            reopened.vacuum(older_than=0)
    else:
        with pytest.raises(IntegrityError, match=link):
            LocalVectorStore(EMB, store_dir)
    assert files_of(outside) == before


def test_a_link_anywhere_in_the_store_stops_vacuum(tmp_path: Path) -> None:
    store_dir, outside = tmp_path / "store", tmp_path / "outside"
    store = make_store(store_dir)
    link_out(store_dir / "notes", outside)
    before = files_of(outside)
    with pytest.raises(IntegrityError, match=r"notes is a symbolic link"):
        store.vacuum(older_than=0)
    assert files_of(outside) == before


def test_a_linked_segment_is_refused_even_with_the_right_bytes(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store = make_store(store_dir)
    segment, outside = first_segment(store_dir), tmp_path / "outside.seg"
    shutil.copy2(segment, outside)
    segment.unlink()
    segment.symlink_to(outside)
    os.utime(outside, (OLD, OLD))
    with pytest.raises(IntegrityError, match=rf"{segment} is a symbolic link"):
        LocalVectorStore(EMB, store_dir)
    with pytest.raises(IntegrityError, match=rf"{segment} is a symbolic link"):
        store.vacuum(older_than=0)
    assert outside.exists() and segment.is_symlink()


def test_a_manifest_linked_to_dev_zero_is_refused(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    make_store(store_dir)
    manifest = newest_manifest(store_dir)
    manifest.unlink()
    manifest.symlink_to("/dev/zero")
    with pytest.raises(IntegrityError, match=rf"{manifest} is a symbolic link"):
        LocalVectorStore(EMB, store_dir)


def test_a_store_reached_through_a_link_to_its_directory_works(tmp_path: Path) -> None:
    make_store(tmp_path / "store")
    (tmp_path / "alias").symlink_to(tmp_path / "store", target_is_directory=True)
    store = LocalVectorStore(EMB, tmp_path / "alias")
    store.add_texts(["delta"], ids=["d"])
    assert len(LocalVectorStore(EMB, tmp_path / "store")) == 4


STORAGE_CALLS: dict[str, Callable[[LocalStorage], object]] = {
    "read": lambda s: s.read("segments/x.seg"),
    "open": lambda s: s.open("segments/x.seg", 19).close(),
    "write": lambda s: s.write("segments/x.seg", b"new bytes"),
    "write_if_absent": lambda s: s.write_if_absent("segments/new.seg", b"new bytes"),
    "write in a new folder": lambda s: s.write("segments/sub/new.seg", b"new bytes"),
    "list": lambda s: s.list("segments/"),
    "delete": lambda s: s.delete("segments/x.seg"),
    "remove_temporary": lambda s: s.remove_temporary(time.time() + 3600),
}


@pytest.mark.parametrize("call", STORAGE_CALLS)
def test_no_operation_goes_through_a_linked_folder(tmp_path: Path, call: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.seg").write_bytes(b"someone else's file")
    (outside / ".tmp-old").write_bytes(b"someone else's temporary file")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "segments").symlink_to(outside, target_is_directory=True)
    before = files_of(outside)
    with pytest.raises(IntegrityError, match=r"store/segments is a symbolic link"):
        STORAGE_CALLS[call](LocalStorage(tmp_path / "store"))
    assert files_of(outside) == before


@pytest.mark.parametrize("call", STORAGE_CALLS)
def test_no_operation_follows_a_linked_file(tmp_path: Path, call: str) -> None:
    outside = tmp_path / "outside.seg"
    outside.write_bytes(b"someone else's file")
    (tmp_path / "store" / "segments").mkdir(parents=True)
    link = tmp_path / "store" / "segments" / "x.seg"
    link.symlink_to(outside)
    storage = LocalStorage(tmp_path / "store")
    if call in ("write", "write_if_absent", "write in a new folder", "delete"):
        STORAGE_CALLS[call](storage)  # replaces or removes the link itself, never its target
    else:
        with pytest.raises(IntegrityError, match=rf"{link} is a symbolic link"):
            STORAGE_CALLS[call](storage)
    assert outside.read_bytes() == b"someone else's file"
    assert not list((tmp_path / "store").rglob(".tmp-*"))


def test_the_store_directory_replaced_by_a_link_is_refused(tmp_path: Path) -> None:
    """The root is resolved once, when the storage is made: swapping it later is hostile."""
    storage = LocalStorage(tmp_path / "store")
    storage.write("manifests/m.json", b"{}")
    (tmp_path / "store").rename(tmp_path / "elsewhere")
    (tmp_path / "store").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(IntegrityError, match=r"store is a symbolic link"):
        storage.read("manifests/m.json")


# -- regular files only, sizes checked before reading -------------------------------------------


@contextlib.contextmanager
def special_file(path: Path, kind: str) -> Iterator[None]:
    """Something at ``path`` that is not a regular file, for the duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "device":
        try:  # /dev/zero's numbers: reading it never ends
            os.mknod(path, stat.S_IFCHR | 0o644, os.makedev(1, 5))
        except PermissionError:
            pytest.skip("making a device node needs root")
    with contextlib.ExitStack() as stack:
        if kind == "socket":
            sock = stack.enter_context(socket.socket(socket.AF_UNIX))
            sock.bind(str(path))
        yield


KIND_WORDS = {
    "fifo": "a FIFO",
    "folder": "a folder",
    "device": "a character device",
    "socket": "a socket",
}


@pytest.mark.timeout(60)  # reading a FIFO or /dev/zero used to hang
@pytest.mark.parametrize("kind", KIND_WORDS)
def test_only_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    storage = LocalStorage(tmp_path)
    special = tmp_path / "segments" / "s.seg"
    with special_file(special, kind):
        message = rf"{special} is {KIND_WORDS[kind]}, not a regular file"
        for call in (
            lambda: storage.read("segments/s.seg"),
            lambda: storage.read("segments/s.seg", 10),
            lambda: storage.open("segments/s.seg", 10),
            lambda: storage.open("segments/s.seg"),
        ):
            with pytest.raises(IntegrityError, match=message):
                call()
        if kind != "folder":  # a folder is listed as the files it holds
            with pytest.raises(IntegrityError, match=message):
                storage.list("segments/")


@pytest.mark.timeout(60)  # opening a FIFO used to block forever
@pytest.mark.parametrize("which", ["manifest", "segment"])
def test_a_fifo_in_a_store_is_refused_without_blocking(tmp_path: Path, which: str) -> None:
    store_dir = tmp_path / "store"
    make_store(store_dir)
    target = newest_manifest(store_dir) if which == "manifest" else first_segment(store_dir)
    target.unlink()
    os.mkfifo(target)
    with pytest.raises(IntegrityError, match=rf"{target} is a FIFO, not a regular file"):
        LocalVectorStore(EMB, store_dir)


@pytest.mark.parametrize("change", [1, -1, 1 << 40, "manifest"])
def test_a_file_of_the_wrong_size_is_refused_before_reading(tmp_path: Path, change: Any) -> None:
    store_dir = tmp_path / "store"
    make_store(store_dir)
    if change == "manifest":
        target, size = newest_manifest(store_dir), MAX_MANIFEST_BYTES + 1
        expected = rf"{target} is {size} bytes, more than the {MAX_MANIFEST_BYTES} a manifest"
    else:
        target = first_segment(store_dir)
        size = target.stat().st_size + change
        expected = (
            rf"{target} is {size} bytes but the manifest says {size - change}; the file is "
            r"truncated or replaced\. Restore it from a backup\."
        )
    os.truncate(target, size)  # sparse: a terabyte costs nothing
    with pytest.raises(IntegrityError, match=expected):
        LocalVectorStore(EMB, store_dir)


def test_sized_and_unsized_reads_at_their_bounds(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write("segments/x.seg", b"0123456789")
    assert storage.read("segments/x.seg", 10) == b"0123456789"
    with storage.open("segments/x.seg", 10) as stream:
        assert stream.read() == b"0123456789"
    with pytest.raises(IntegrityError, match=r"x\.seg is 10 bytes but the manifest says 9"):
        storage.open("segments/x.seg", 9)
    storage.write("manifests/m.json", b"{}")
    os.truncate(tmp_path / "manifests" / "m.json", MAX_MANIFEST_BYTES)  # sparse
    assert len(storage.read("manifests/m.json")) == MAX_MANIFEST_BYTES
    with pytest.raises(ObjectNotFound):
        storage.read("manifests/absent.json")
    with pytest.raises(ObjectNotFound):
        storage.open("absent/x.seg", 3)
    assert storage.list("absent/") == []


def test_entries_lists_the_store_directory_without_following_links(tmp_path: Path) -> None:
    make_store(tmp_path / "store")
    (tmp_path / "store" / "index.pkl").symlink_to("/dev/zero")
    assert LocalStorage(tmp_path / "store").entries() == {"manifests", "segments", "index.pkl"}
    assert LocalStorage(tmp_path / "absent").entries() == set()
    (tmp_path / "file").write_bytes(b"not a directory")
    with pytest.raises(StorageError, match=r"file is a file; give a directory for the store"):
        LocalStorage(tmp_path / "file").entries()


def test_forged_names_are_refused(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    for name in ("../x", "segments/../../x", "/etc/passwd", "segments//x", "./x", ""):
        with pytest.raises(IntegrityError, match="invalid file name"):
            storage.read(name)
    assert not (tmp_path / "store").exists()


# -- unreadable folders ------------------------------------------------------------------------

CHILD = """
import json, os, sys
from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.storage.local import LocalStorage
if os.geteuid() == 0:  # root reads everything: become nobody
    os.setgid(65534)
    os.setuid(65534)
found = []
for path, how in json.loads(sys.argv[1]):
    try:
        if how == "storage":
            LocalStorage(path).list("manifests/")
        elif how == "entries":
            LocalStorage(path).entries()
        else:
            LocalVectorStore(HashingEmbeddings(8), path)
    except Exception as exc:
        found.append([[c.__name__ for c in type(exc).__mro__], str(exc)])
    else:
        found.append(None)
print(json.dumps(found))
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's own tmp_path is private to root)."""
    where = Path(tempfile.mkdtemp(prefix="vdbm-perm-"))
    where.chmod(0o755)
    yield where
    shutil.rmtree(where)


def test_unreadable_folders_and_files_are_storage_errors_naming_them(shared_dir: Path) -> None:
    """Run as another user (root reads everything), in one child for all cases."""
    cases = [  # (what is locked, how it is opened, the path the message names)
        ("", "storage"),
        ("", "entries"),
        ("manifests", "storage"),
        ("manifests", "store"),
        ("manifest", "store"),
    ]
    calls, names = [], []
    for n, (locked, how) in enumerate(cases):
        store_dir = shared_dir / f"store{n}"
        make_store(store_dir)
        target = newest_manifest(store_dir) if locked == "manifest" else store_dir / locked
        target.chmod(0o700 if os.geteuid() == 0 else 0)
        calls.append((str(store_dir), how))
        names.append(target)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(calls)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    for name in names:
        name.chmod(0o755)
    for (locked, how), name, found in zip(cases, names, json.loads(out.stdout), strict=True):
        assert found is not None, f"{how} read {locked or 'the store'} without the right to"
        classes, message = found
        assert "StorageError" in classes, message
        assert "PermissionError" not in classes and "IntegrityError" not in classes, message
        folder = "the folder " if locked != "manifest" else ""
        assert message.startswith(f"cannot read {folder}{name}: permission denied; "), message
        assert "fix its permissions" in message and "run as the user that owns it" in message
