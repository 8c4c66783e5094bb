"""Writers racing on one store's manifest: a writer that loses to another committing steadily
does not starve (it catches up before proposing again), and a refresh that must not wait
(a server's, with a refresh interval) does not queue behind a write under way."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vectordb_manager.engine import loading
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.core import Engine
from vectordb_manager.storage.local import LocalStorage

DIM = 8
STILL = CompactionPolicy(enabled=False)  # no merges: every commit is one of the test's
WAIT = 60.0  # seconds: generous, for a busy machine; an event normally comes at once


def engine(path: Path, **kwargs: Any) -> Engine:
    return Engine(LocalStorage(path), dimension=DIM, compaction=STILL, **kwargs)


def write(target: Engine, *ids: str) -> None:
    rows = np.random.default_rng(len(ids)).random((len(ids), DIM), dtype=np.float32)
    target.upsert(list(ids), [f"text of {i}" for i in ids], [{}] * len(ids), rows)


def test_a_writer_losing_to_a_steady_one_catches_up_and_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``steady`` commits during each backoff of ``loser``, and once more while the loser
    then reads the segments it missed (as a server committing a stream of writes does while
    the other's refresh downloads them). A proposal made from a refresh before the backoff,
    or right after that slow read, names a version taken meanwhile, every time; the loser
    must list again, and read the newer segment, before proposing."""
    backoffs: list[float] = []
    armed = threading.Event()
    armed.set()  # the loser's first read (in `apply`'s refresh) already races a commit
    loser = engine(tmp_path, commit_attempts=5)
    steady = engine(tmp_path)
    write(steady, "s-0")
    real = loading.Loader.read_segment
    steady_writes = iter(range(1, 100))

    def reading(self: Any, ref: Any, *args: Any) -> Any:
        if self is loser._loader and armed.is_set():
            armed.clear()
            write(steady, f"s-{next(steady_writes)}")
        return real(self, ref, *args)

    def backoff(seconds: float) -> None:
        backoffs.append(seconds)
        write(steady, f"s-{next(steady_writes)}")
        armed.set()  # and again during the loser's next read

    monkeypatch.setattr(loading.Loader, "read_segment", reading)
    loser._commit_policy = loser._commit_policy.__class__(
        max_attempts=5, sleep=backoff, rng=loser._commit_policy.rng
    )
    write(loser, "l-0")  # without catching up: ConcurrentModificationError after 5 attempts
    assert len(backoffs) == 1  # lost once (to the commit during apply's refresh), then won
    loser.refresh()
    steady.refresh()
    expected = {"l-0", "s-0", "s-1", "s-2", "s-3"}
    assert set(loser.state.slot) == set(steady.state.slot) == expected
    assert loser.version == steady.version == 6  # 1 (created), s-0 to s-3, l-0


def test_a_refresh_that_must_not_wait_skips_a_write_under_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``refresh(wait=False)`` (a server's, with a refresh interval) returns ``None`` at once
    while a write holds the writers' lock in the middle of its commit, and searches go on;
    ``refresh()`` waits for it."""
    store = engine(tmp_path)
    write(store, "a")
    assert store.log is not None
    proposing, release = threading.Event(), threading.Event()
    real = store.log.propose

    def slow_propose(*args: Any, **kwargs: Any) -> bool:
        proposing.set()
        assert release.wait(WAIT)
        return real(*args, **kwargs)

    monkeypatch.setattr(store.log, "propose", slow_propose)
    writer = threading.Thread(target=write, args=(store, "b"))
    writer.start()
    try:
        assert proposing.wait(WAIT)
        assert store.refresh(wait=False) is None
        assert [h.document.id for h in store.search(np.ones(DIM, np.float32), 5)] == ["a"]
        waiting: list[bool | None] = []
        blocked = threading.Thread(target=lambda: waiting.append(store.refresh()))
        blocked.start()
        assert not waiting  # (it waits for the write: nothing to assert on time)
    finally:
        release.set()
        writer.join(WAIT)
    blocked.join(WAIT)
    assert waiting == [False]  # it ran after the write, which had nothing to pick up
    assert sorted(store.state.slot) == ["a", "b"]
