"""LocalStorage's writes are atomic (vectordb_manager/storage/local.py): a reader never sees a
partial file; a process killed between writing its temporary file and renaming (or linking)
it into place leaves only that temporary file, which no listing shows and vacuum removes; and
``write_if_absent`` creates a name once, however many threads race for it.

Crashes are real: a child process that is SIGKILLed at the moment it would rename or link."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.storage.base import ObjectNotFound
from vectordb_manager.storage.local import LocalStorage

ROOT = Path(__file__).resolve().parents[2]
EMB = HashingEmbeddings(8)


def temporaries(root: Path) -> list[Path]:
    return sorted(root.rglob(".tmp-*"))


# -- a reader never sees a partial file --------------------------------------------------------


def test_a_reader_sees_a_whole_old_or_whole_new_file_never_a_part(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    versions = [bytes([v]) * (4 << 20) for v in (1, 2)]  # 4 MiB: many pages to write
    storage.write("segments/x.seg", versions[0])
    stop = threading.Event()
    overlapped = threading.Semaphore(0)  # released for each read made while a write ran
    writing = threading.Event()
    seen: dict[int, int] = {1: 0, 2: 0}
    wrong: list[str] = []

    def read() -> None:
        while not stop.is_set():
            during = writing.is_set()
            try:
                data = storage.read("segments/x.seg")
            except ObjectNotFound:
                wrong.append("the name was missing while it was replaced")
                return
            if data not in versions:
                kinds = sorted(set(data[:: 1 << 16]))
                wrong.append(f"{len(data)} bytes holding {kinds}")
                return
            seen[data[0]] += 1
            if during and writing.is_set():
                overlapped.release()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        # replace the file until the reader has read, 20 times, while a write was running
        # (and seen both versions); the bound only stops a broken reader from hanging us
        needed = 20
        for i in range(10_000):
            writing.set()
            storage.write("segments/x.seg", versions[i % 2])
            writing.clear()
            while needed and overlapped.acquire(blocking=False):
                needed -= 1
            if (not needed and all(seen.values())) or wrong or not reader.is_alive():
                break
    finally:
        stop.set()
        reader.join()
    assert not wrong, wrong[0]
    assert needed == 0 and all(seen.values()), (needed, seen)
    assert temporaries(tmp_path) == []


# -- a crash between the temporary write and the rename -----------------------------------------

CRASH = """
import os, signal, sys
from vectordb_manager.storage.local import LocalStorage

root, call, name, payload = sys.argv[1:]
storage = LocalStorage(root)


def crash(*args, **kwargs):  # the process dies exactly where the rename or link would be
    os.kill(os.getpid(), signal.SIGKILL)


setattr(os, "rename" if call == "write" else "link", crash)
getattr(storage, call)(name, payload.encode())
raise SystemExit("not killed")
"""


def crash_during(root: Path, call: str, name: str, payload: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(root), call, name, payload],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


@pytest.mark.parametrize(
    ("call", "existing"),
    [("write", False), ("write", True), ("write_if_absent", False)],
    ids=["write-new", "write-replacing", "write_if_absent"],
)
def test_a_crash_before_the_rename_leaves_only_a_temporary_file(
    tmp_path: Path, call: str, existing: bool
) -> None:
    storage = LocalStorage(tmp_path)
    folder = "manifests/" if call == "write_if_absent" else "segments/"
    name = folder + ("00000000000000000001.json" if call == "write_if_absent" else "x.seg")
    if existing:
        storage.write(name, b"the old contents")
    crash_during(tmp_path, call, name, "the new contents, fsynced before the crash")
    (leftover,) = temporaries(tmp_path)
    assert leftover.parent == (tmp_path / name).parent  # beside its target, never elsewhere
    assert leftover.read_bytes() == b"the new contents, fsynced before the crash"
    # the name is as it was: absent, or whole with its old contents
    if existing:
        assert storage.read(name) == b"the old contents"
        assert [o.name for o in storage.list(folder)] == [name]
    else:
        with pytest.raises(ObjectNotFound):
            storage.read(name)
        assert storage.list(folder) == []  # temporaries are never listed
    # a temporary file may belong to a write still running: only an old one is removed
    written = leftover.stat().st_mtime
    assert storage.remove_temporary(older_than=written) == []
    assert leftover.exists()
    assert storage.remove_temporary(older_than=written + 1) == [
        leftover.relative_to(tmp_path).as_posix()
    ]
    assert temporaries(tmp_path) == []


def test_a_commit_killed_before_its_segment_is_renamed_changes_nothing(tmp_path: Path) -> None:
    """The same crash inside a store's add: the store keeps what it had; vacuum removes the
    temporary file the crash left and nothing else."""
    store = LocalVectorStore(EMB, tmp_path)
    store.add_texts(["alpha", "beta"], ids=["a", "b"])
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    child = (
        "import os, signal, sys\n"
        "from vectordb_manager import LocalVectorStore\n"
        "from vectordb_manager.embeddings import HashingEmbeddings\n"
        "store = LocalVectorStore(HashingEmbeddings(8), sys.argv[1])\n"
        "os.rename = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        "store.add_texts(['gamma'], ids=['c'])\n"
        "raise SystemExit('not killed')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(tmp_path)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    (leftover,) = temporaries(tmp_path)
    assert leftover.parent == tmp_path / "segments"
    reopened = LocalVectorStore(EMB, tmp_path)
    assert sorted(reopened.get_ids()) == ["a", "b"]
    reopened.verify()
    assert reopened.vacuum(older_than=0) == [leftover.relative_to(tmp_path).as_posix()]
    after = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert after == files
    assert sorted(LocalVectorStore(EMB, tmp_path).get_ids()) == ["a", "b"]


# -- write_if_absent is create-only across threads ---------------------------------------------


def test_write_if_absent_lets_exactly_one_of_racing_threads_create_a_name(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    threads, names = 8, 25
    start = threading.Barrier(threads)
    won: dict[str, list[int]] = {f"manifests/{v:020d}.json": [] for v in range(names)}
    order = list(won)
    errors: list[BaseException] = []

    def payload(n: int, name: str) -> bytes:
        return json.dumps({"writer": n, "name": name, "pad": "x" * 50_000}).encode()

    def race(n: int) -> None:
        try:
            for name in order:
                start.wait()  # every thread tries the same name at the same moment
                if storage.write_if_absent(name, payload(n, name)):
                    won[name].append(n)
        except BaseException as exc:  # reported below
            errors.append(exc)
            start.abort()

    workers = [threading.Thread(target=race, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors[0]
    for name, winners in won.items():
        assert len(winners) == 1, (name, winners)
        assert storage.read(name) == payload(winners[0], name)  # the winner's bytes, whole
    assert len(storage.list("manifests/")) == names
    assert temporaries(tmp_path) == []
