"""Group commit (vectordb_manager/engine/group_commit.py): writes queued while another write
holds the writers' lock share one commit, and leave the store, and each write's answer, as
applying them one after the other would.

The tests hold the engine's writer lock themselves, start writer threads one at a time
(each queued before the next starts, so their order is known), and then let go: the first
thread to get the lock commits the whole queue."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.commit_log import CommitUnknown
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.core import Engine
from vectordb_manager.errors import DimensionMismatchError, StorageError
from vectordb_manager.storage.local import LocalStorage

DIM = 8
STILL = CompactionPolicy(enabled=False)
Op = tuple[list[str], list[str], list[dict[str, Any]], np.ndarray, list[str]]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class Queued:
    """Writer threads started one at a time while the test holds the engine's writer lock;
    each call's answer (or exception) kept in the order the calls were queued."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.threads: list[threading.Thread] = []
        self.outcomes: list[Any] = []

    def start(self, call: Callable[[], Any]) -> None:
        at = len(self.outcomes)
        self.outcomes.append(None)

        def run() -> None:
            try:
                self.outcomes[at] = call()
            except BaseException as exc:  # (an interrupt too: the test looks at it)
                self.outcomes[at] = exc

        queued = len(self.engine._queue)
        thread = threading.Thread(target=run)
        self.threads.append(thread)
        thread.start()
        _wait_for(lambda: len(self.engine._queue) > queued, "the write to be queued")

    def join(self) -> list[Any]:
        for thread in self.threads:
            thread.join(60)
            assert not thread.is_alive()
        return self.outcomes


def _random_ops(rng: random.Random, count: int) -> list[Op]:
    """Writes over a small pool of ids: new records, changed ones, the same record again,
    deletes of present and absent ids, and ids deleted and given a record in one write."""
    pool = [f"id{i}" for i in range(6)]
    texts = [f"text {i}" for i in range(3)]
    vecs = np.random.default_rng(rng.randint(0, 1 << 30)).standard_normal((3, DIM))
    ops: list[Op] = []
    for _ in range(count):
        ids = rng.sample(pool, rng.randint(0, 4))
        picks = [rng.randrange(3) for _ in ids]
        deletes = rng.sample(pool, rng.randint(0, 3)) if rng.random() < 0.5 else []
        ops.append(
            (
                ids,
                [texts[p] for p in picks],
                [{"p": p} for p in picks],
                vecs[picks].astype(np.float32).reshape(len(ids), DIM),
                deletes,
            )
        )
    return ops


def _content(engine: Engine) -> dict[str, tuple[str, Any, list[float]]]:
    """Each live id's text, metadata and stored vector."""
    st = engine.state
    stored = st.index.vectors() if st.index is not None else np.zeros((0, DIM))
    out = {}
    for doc_id in engine.ids():
        slot = st.slot[doc_id]
        record = st.record(slot)
        out[doc_id] = (record.text, record.metadata, stored[slot].tolist())
    return out


def _by_hand() -> tuple[list[Op], list[Op]]:
    """A stored record deleted and written back as it was; written, then written back as
    stored; written twice the same; deleted twice; written and then deleted."""
    v = np.eye(DIM, dtype=np.float32)
    start: list[Op] = [(["a", "b", "c"], ["a", "b", "c"], [{}, {}, {}], v[:3], [])]
    ops: list[Op] = [
        ([], [], [], v[:0], ["a"]),
        (["a"], ["a"], [{}], v[:1], []),
        (["b"], ["b2"], [{}], v[1:2], []),
        (["b"], ["b"], [{}], v[1:2], []),
        (["d"], ["d"], [{}], v[3:4], []),
        (["d"], ["d"], [{}], v[3:4], ["c"]),
        ([], [], [], v[:0], ["c", "zz"]),
        (["e"], ["e"], [{}], v[4:5], []),
        ([], [], [], v[:0], ["e"]),
    ]
    return start, ops


@pytest.mark.parametrize("seed", [*range(10), "by hand"])
def test_a_group_leaves_what_the_writes_one_after_the_other_leave(seed: int | str) -> None:
    """Random writes (and some chosen by hand) applied one by one to one engine, and queued
    as one group on another (both starting from the same records): the same records,
    vectors and metadata at the end, and each write answers the same (records written,
    deleted ids that existed)."""
    if isinstance(seed, str):
        start, ops = _by_hand()
    else:
        rng = random.Random(seed)
        start, ops = _random_ops(rng, 3), _random_ops(rng, 12)
    alone, grouped = Engine(None), Engine(None)
    for engine in (alone, grouped):
        for ids, texts, metas, vecs, deletes in start:
            engine.apply(ids, texts, metas, vecs, deletes)
    expected = [alone.apply(*op) for op in ops]
    queue = Queued(grouped)
    with grouped._write_lock:
        for op in ops:
            queue.start(lambda op=op: grouped.apply(*op))  # type: ignore[misc]
    assert queue.join() == expected
    assert _content(grouped) == _content(alone)
    assert grouped.count() == alone.count()


def test_writes_queued_during_a_commit_share_the_next_one_and_last(tmp_path: Path) -> None:
    """Six writers queued behind a held lock: one commit (one new version) holds all their
    records, each writer gets its ids back, and a reopened store has them all."""
    store = LocalVectorStore(HashingEmbeddings(DIM), tmp_path / "s", compaction=STILL)
    store.add_texts(["first"], ids=["first"])
    engine = store._engine
    before = engine.version
    queue = Queued(engine)
    with engine._write_lock:
        for w in range(6):
            ids = [f"w{w}-{i}" for i in range(5)]
            queue.start(lambda ids=ids: store.add_texts([f"t {x}" for x in ids], ids=ids))  # type: ignore[misc]
    outcomes = queue.join()
    assert outcomes == [[f"w{w}-{i}" for i in range(5)] for w in range(6)]
    assert engine.version == before + 1
    reopened = LocalVectorStore(HashingEmbeddings(DIM), tmp_path / "s", compaction=STILL)
    assert reopened._engine.count() == 31
    assert reopened.verify()["documents"] == 31


def test_a_write_refused_in_a_group_fails_alone(tmp_path: Path) -> None:
    """In a group on an empty store, the write whose vectors have another dimension than
    the first one's gets `DimensionMismatchError`; the writes before and after it commit
    together."""
    engine = Engine(LocalStorage(tmp_path / "s"), compaction=STILL)
    before = engine.version
    ones = np.ones((2, DIM), np.float32)
    queue = Queued(engine)
    with engine._write_lock:
        queue.start(lambda: engine.apply(["a", "b"], ["a", "b"], [{}, {}], ones))
        queue.start(lambda: engine.apply(["c"], ["c"], [{}], np.ones((1, DIM + 1), np.float32)))
        queue.start(lambda: engine.apply(["d", "e"], ["d", "e"], [{}, {}], ones * 2))
    first, refused, last = queue.join()
    assert (first, last) == ((2, 0), (2, 0))
    assert isinstance(refused, DimensionMismatchError)
    assert sorted(engine.ids()) == ["a", "b", "d", "e"]
    assert engine.version == before + 1


def test_a_failed_group_commit_fails_every_write_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The storage fails while a group commits: every writer of the group gets the error (an
    exception of its own, with the same message), nothing of theirs shows or stays on disk,
    and the next write commits."""
    storage = LocalStorage(tmp_path / "s")
    engine = Engine(storage, compaction=STILL)
    engine.apply(["x"], ["x"], [{}], np.ones((1, DIM), np.float32))
    before = engine.version
    files = sorted(p.name for p in (tmp_path / "s").rglob("*") if p.is_file())
    real = storage.write_if_absent

    def full(*args: Any, **kwargs: Any) -> bool:
        raise StorageError("the disk is full")

    monkeypatch.setattr(storage, "write_if_absent", full)
    queue = Queued(engine)
    with engine._write_lock:
        for w in range(3):
            vec = np.full((1, DIM), w + 1.0, np.float32)
            queue.start(lambda w=w, vec=vec: engine.apply([f"n{w}"], ["n"], [{}], vec, ["x"]))  # type: ignore[misc]
    errors = queue.join()
    assert all(isinstance(e, StorageError) and "disk is full" in str(e) for e in errors)
    assert len({id(e) for e in errors}) == 3
    assert engine.ids() == ["x"] and engine.version == before
    assert sorted(p.name for p in (tmp_path / "s").rglob("*") if p.is_file()) == files
    monkeypatch.setattr(storage, "write_if_absent", real)
    assert engine.apply(["n9"], ["n"], [{}], np.ones((1, DIM), np.float32)) == (1, 0)


class _Interrupt(BaseException):
    """Stands for a KeyboardInterrupt in the committing thread."""


def test_an_interrupted_group_commit_leaves_the_others_a_commit_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread committing a group is interrupted: it gets its interrupt, and every other
    writer of the group gets `CommitUnknown` (not the interrupt, which is not theirs)."""
    storage = LocalStorage(tmp_path / "s")
    engine = Engine(storage, compaction=STILL)

    def interrupted(*args: Any, **kwargs: Any) -> bool:
        raise _Interrupt

    monkeypatch.setattr(storage, "write_if_absent", interrupted)
    queue = Queued(engine)
    with engine._write_lock:
        for w in range(3):
            vec = np.full((1, DIM), w + 1.0, np.float32)
            queue.start(lambda w=w, vec=vec: engine.apply([f"n{w}"], ["n"], [{}], vec))  # type: ignore[misc]
    outcomes = queue.join()
    assert sum(isinstance(o, _Interrupt) for o in outcomes) == 1
    assert sum(isinstance(o, CommitUnknown) for o in outcomes) == 2
    assert engine.ids() == []
