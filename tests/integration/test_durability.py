"""Durability and concurrency: SIGKILL at random moments, writers in threads and processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import check_keywords, write_concurrently
from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings

ROOT = Path(__file__).resolve().parents[2]
EMB = HashingEmbeddings(64)


def spawn(path: Path, prefix: str, count: int, deletes: bool = False) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.integration.writer_child", str(path), prefix, str(count)]
    if deletes:
        args.append("--deletes")
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1)


def acknowledged(lines: list[str]) -> tuple[set[str], set[str]]:
    """Ids whose add (and no started delete) was acknowledged, and acknowledged deletes.

    A delete that started but was not acknowledged may or may not have happened, so its id
    is in neither set.
    """
    present: set[str] = set()
    deleted: set[str] = set()
    for line in lines:
        op, _, doc_id = line.strip().partition(" ")
        if op == "ADD":
            present |= {doc_id, doc_id + "-x"}
        elif op == "DELETING":
            present.discard(doc_id)
        elif op == "DEL":
            deleted.add(doc_id)
    return present, deleted


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(1234)
    path = tmp_path / "store"
    present: set[str] = set()
    deleted: set[str] = set()
    # each round's writer is forked by a server that imported the package once, so a round
    # costs its writing, not an interpreter's start-up (see writer_child)
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.writer_child", "--fork-server"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},  # one thread: safe to fork
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        for round_ in range(25):
            lines: list[str] = []
            writing = threading.Event()

            def read(out: list[str] = lines, ack: threading.Event = writing) -> None:
                for line in iter(server.stdout.readline, ""):  # type: ignore[union-attr]
                    out.append(line)
                    if "EXIT " in line:  # (not at its start: half a line came before, a failure)
                        break
                    ack.set()
                ack.set()  # the writer or the server ended (the assertions below fail)

            reader = threading.Thread(target=read)
            reader.start()
            server.stdin.write(f"fork {path} r{round_} 100000 --deletes\n")
            # kill at a random moment once the writer writes
            writing.wait()
            time.sleep(rng.uniform(0.0, 1.0))
            server.stdin.write("kill\n")
            reader.join()
            assert lines and lines[-1].startswith("EXIT "), f"round {round_}: {lines[-3:]}"
            status = int(lines.pop().split()[1])
            assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL, (
                f"round {round_}: the writer ended on its own (wait status {status})"
            )
            p, d = acknowledged(lines)
            assert p, f"round {round_}: no write was acknowledged"
            present |= p
            deleted |= d
            store = LocalVectorStore(EMB, path)
            ids = set(store.engine.ids())
            assert present <= ids, f"round {round_}: lost {sorted(present - ids)[:5]}"
            assert not (deleted & ids), f"round {round_}: resurrected {sorted(deleted & ids)[:5]}"
            check_keywords(store.engine, present, deleted)
            store.verify()
    finally:
        server.stdin.close()
        server.wait()
    assert server.returncode == 0
    assert len(present) > 200, "the children should have acknowledged many writes"
    # clean what the crashes left behind: the store must not change
    LocalVectorStore(EMB, path).vacuum(older_than=0)
    after = LocalVectorStore(EMB, path)
    assert set(after.engine.ids()) == ids
    assert not list(path.rglob(".tmp-*"))
    after.verify()


def test_two_processes_write_one_directory(tmp_path: Path) -> None:
    path = tmp_path / "store"
    LocalVectorStore(EMB, path)  # create it first so both open the same store
    children = [spawn(path, name, 60, deletes=True) for name in ("p", "q")]
    outputs = [c.communicate(timeout=300)[0] for c in children]
    assert all(c.returncode == 0 for c in children)
    present, deleted = acknowledged([line for out in outputs for line in out.splitlines()])
    store = LocalVectorStore(EMB, path)
    assert set(store.engine.ids()) == present
    check_keywords(store.engine, present, deleted)
    assert len(present) == 2 * (60 * 2 - 20)
    store.verify()


def test_store_objects_in_threads_share_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "store"
    stores = [LocalVectorStore(EMB, path, commit_attempts=1000) for _ in range(4)]
    expected = write_concurrently(stores, 40)
    for s in [*stores, LocalVectorStore(EMB, path)]:
        s.refresh()
        assert set(s.engine.ids()) == expected
        check_keywords(s.engine, expected, {f"{n}-{i}" for n in range(4) for i in range(40)} - expected)
    LocalVectorStore(EMB, path).verify()


@pytest.mark.slow
@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_searches_run_while_another_thread_writes(tmp_path: Path, index: str) -> None:
    store = LocalVectorStore(EMB, tmp_path / "store", index=index)
    store.add_texts([f"seed text {i}" for i in range(50)], [{"n": i} for i in range(50)],
                    ids=[f"seed-{i}" for i in range(50)])
    stop = threading.Event()
    errors: list[BaseException] = []
    searches = [0]
    commits = [0]  # writes the writer has finished
    seen: set[int] = set()  # the values of ``commits`` when searches finished

    def search() -> None:
        try:
            while not stop.is_set():
                docs = store.similarity_search("seed text", k=10, filter={"n": {"$gte": 0}})
                assert len(docs) == 10
                for doc in docs:
                    assert doc.page_content.endswith(str(doc.metadata["n"]))
                assert len(store.similarity_search("text", k=10)) == 10
                hits = store.engine.keyword_search("seed", 10, filter={"n": {"$lt": 25}})
                assert len(hits) == 10
                assert all(h.document.page_content.startswith("seed") for h in hits)
                assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
                searches[0] += 1
                seen.add(commits[0])
                # let the writer have the GIL: otherwise, after each of its system calls, it
                # waits behind three spinning readers, and writing took most of the test
                time.sleep(0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=search) for _ in range(3)]
    for r in readers:
        r.start()
    for i in range(150):
        store.add_texts([f"new text {i}"], [{"n": 1000 + i}], ids=[f"new-{i}"])
        if i % 5 == 0:
            store.delete([f"new-{i // 2}"])
        commits[0] += 1
    stop.set()
    for r in readers:
        r.join()
    assert not errors, errors[0]
    assert searches[0] > 10
    # the searches ran between the writes, not only before or after them (each of the 150
    # gaps between writes saw searches when this was written)
    assert len(seen) > 50, sorted(seen)
    store.verify()


def test_refresh_sees_other_writers(tmp_path: Path) -> None:
    a = LocalVectorStore(EMB, tmp_path)
    b = LocalVectorStore(EMB, tmp_path)
    a.add_texts(["from a"], ids=["a"])
    assert b.get_by_ids(["a"]) == []
    assert b.refresh() is True
    assert [d.id for d in b.get_by_ids(["a"])] == ["a"]
    b.add_texts(["from b"], ids=["b"])  # b commits on top of a's version
    a.refresh()
    assert sorted(a.engine.ids()) == ["a", "b"]
    assert os.listdir(tmp_path / "manifests")


def test_a_stalled_writer_never_reuses_a_removed_version(tmp_path: Path) -> None:
    """B stalls between reading the newest version and committing; meanwhile A commits many
    times and removes old manifests. B must not recreate a removed version number (it would be
    invisible, so B's acknowledged write would be lost)."""
    a = LocalVectorStore(EMB, tmp_path)
    b = LocalVectorStore(EMB, tmp_path)
    storage = b.engine.storage
    real_write = storage.write  # type: ignore[union-attr]
    stalled = [False]

    def slow_write(name: str, data: bytes, **kwargs: Any) -> None:
        real_write(name, data, **kwargs)
        if not stalled[0]:
            stalled[0] = True
            for i in range(40):
                a.add_texts([f"a text {i}"], ids=[f"a{i}"])
            a.engine.log.clock = lambda: time.time() + 3600  # every old manifest has expired
            a.compact()
            b.engine.log.monotonic = lambda: time.monotonic() + 3600  # B stalled for an hour

    storage.write = slow_write  # type: ignore[union-attr,method-assign]
    b.add_texts(["b text"], ids=["b"])
    assert stalled[0]
    fresh = LocalVectorStore(EMB, tmp_path)
    assert "b" in fresh.engine.ids() and len(fresh) == 41
