"""Merges on the upkeep thread (engine/maintenance.py): writes go on while a merge is encoded
and written, and the merge then commits in place of its run, or is dropped if the run is gone.

The tests hold a merge between its preparation and its commit (the encoding step waits for an
event), write meanwhile, then let it go: what the store reads, in memory and reopened, must be
what the writes say, and `verify` must pass."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import named_by_manifests
from vectordb_manager import HashingEmbeddings, LocalVectorStore
from vectordb_manager.engine import maintenance
from vectordb_manager.engine.compaction import CompactionPolicy

POLICY = CompactionPolicy(fan_in=2, min_weight=1, full_ratio=1000.0)  # tail merges, often


def open_store(path: Path, policy: CompactionPolicy = POLICY) -> LocalVectorStore:
    return LocalVectorStore(HashingEmbeddings(256), path / "store", compaction=policy)


class Gate:
    """Holds the upkeep thread's next merge after it was prepared, until `release`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()
        self.merges = 0
        real = maintenance.lay_out_segment

        def held(name: str, seg: Any) -> Any:
            self.merges += 1
            if self.merges == 1:
                self.reached.set()
                assert self.go.wait(60), "the test never released the merge"
            return real(name, seg)

        monkeypatch.setattr(maintenance, "lay_out_segment", held)

    def wait_reached(self) -> None:
        assert self.reached.wait(60), "no merge was started"

    def release(self) -> None:
        self.go.set()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    g = Gate(monkeypatch)
    yield g
    g.release()  # never leave the thread waiting


def segment_files(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*.seg")}


def texts_of(store: LocalVectorStore) -> dict[str, str]:
    return {d.id: d.page_content for d in store.get_by_ids(sorted(store.engine.ids()))}  # type: ignore[misc]


def test_writes_go_on_while_a_merge_is_written_and_later_writes_win(
    tmp_path: Path, gate: Gate
) -> None:
    store = open_store(tmp_path)
    store.add_texts(["a0", "b0"], ids=["a", "b"])
    store.add_texts(["c0"], ids=["c"])
    store.add_texts(["d0"], ids=["d"])  # two tail segments of one class: a merge starts
    gate.wait_reached()
    version = store.stats()["version"]
    # meanwhile, on the writer's thread: an upsert and a delete of rows the merge holds, and a
    # new row; none of them waits for the merge
    store.add_texts(["c1"], ids=["c"])
    store.delete(["d"])
    store.add_texts(["e0"], ids=["e"])
    assert store.stats()["version"] == version + 3
    gate.release()
    store.wait_for_compaction()
    expected = {"a": "a0", "b": "b0", "c": "c1", "e": "e0"}
    assert texts_of(store) == expected
    assert gate.merges >= 1 and store.stats()["segments"] < 6
    again = open_store(tmp_path)
    assert texts_of(again) == expected
    assert again.verify()["documents"] == 4
    assert store.similarity_search("c1", k=1)[0].id == "c"
    assert [d.id for d in store.keyword_search("c1")] == ["c"] and not store.keyword_search("d0")
    assert segment_files(tmp_path / "store") <= named_by_manifests(tmp_path / "store")


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_a_merge_writes_the_vectors_it_took_after_the_index_storage_moved(
    tmp_path: Path, gate: Gate, index: str
) -> None:
    """A tail merge of a flat store gathers its rows' vectors from the index's storage only
    when its file is laid out, after the lock: adds meanwhile that outgrow the storage move
    it, and the merge still writes the vectors it took (HNSW's are copied when the merge is
    prepared: its storage is FAISS's, which an add may free)."""
    store = LocalVectorStore(
        HashingEmbeddings(256), tmp_path / "store", compaction=POLICY, index=index
    )
    for i in range(3):  # two tail segments of one class: a merge starts
        store.add_texts([f"row {i}"], ids=[str(i)])
    gate.wait_reached()
    rows = store.engine._state.index._rows  # type: ignore[union-attr]
    held = rows.snapshot.buffer if rows is not None else None
    store.add_texts([f"more {i}" for i in range(3000)], ids=[f"m{i}" for i in range(3000)])
    if index == "flat":
        assert rows is not None and rows.snapshot.buffer is not held  # (it moved)
    gate.release()
    store.wait_for_compaction()
    again = LocalVectorStore(HashingEmbeddings(256), tmp_path / "store", compaction=POLICY)
    assert again.verify()["documents"] == 3003  # the files' vectors are memory's
    assert [d.page_content for d in again.get_by_ids(["1", "m7"])] == ["row 1", "more 7"]


def test_a_merge_whose_run_was_merged_by_another_writer_is_dropped(
    tmp_path: Path, gate: Gate
) -> None:
    store = open_store(tmp_path)
    for i in range(3):
        store.add_texts([f"t{i}"], ids=[str(i)])
    gate.wait_reached()
    other = open_store(tmp_path, CompactionPolicy(background=False))
    assert other.compact()  # merges everything, the held merge's run included
    other.add_texts(["t9"], ids=["9"])
    gate.release()
    store.wait_for_compaction()
    store.refresh()
    expected = {str(i): f"t{i}" for i in (0, 1, 2, 9)}
    assert texts_of(store) == expected
    assert texts_of(open_store(tmp_path)) == expected
    assert store.verify()["documents"] == 4
    store.vacuum(older_than=0)  # replaced files go; the dropped merge left none behind
    assert segment_files(tmp_path / "store") <= named_by_manifests(tmp_path / "store")


def test_inline_compaction_merges_before_the_write_returns(tmp_path: Path) -> None:
    store = open_store(tmp_path, CompactionPolicy(fan_in=2, min_weight=1, background=False))
    for i in range(4):
        store.add_texts([f"t{i}"], ids=[str(i)])
    assert store.engine._upkeep is None  # no thread was ever started
    assert store.stats()["segments"] < 4


@pytest.mark.parametrize("value_index", [True, False], ids=["columns", "from-records"])
def test_merges_prepared_beside_filtered_searches(tmp_path: Path, value_index: bool) -> None:
    """A merge takes its rows under the readers' lock, so filters (which decode and build
    value columns as they go) run meanwhile: every search answers, and exactly."""
    store = LocalVectorStore(HashingEmbeddings(64), tmp_path / "store", compaction=POLICY)
    store.engine.value_index = value_index  # False: no columns written, built from records
    stop = threading.Event()
    failures: list[BaseException] = []
    searches = [0]

    def search() -> None:
        while not stop.is_set():
            try:
                for tag in ("a", "b", "c"):
                    hits = store.similarity_search("text", k=500, filter={"tag": tag})
                    assert all(d.metadata["tag"] == tag for d in hits)
                    searches[0] += 1
            except BaseException as exc:  # reported by the test
                failures.append(exc)
                return

    threads = [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(40):
            ids = [f"{i}-{j}" for j in range(6)]
            metas = [{"tag": "abc"[j % 3], "i": i} for j in range(6)]
            store.add_texts([f"text {i} {j}" for j in range(6)], metas, ids=ids)
        store.wait_for_compaction()
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not failures, failures[0]
    assert searches[0] > 0 and store.stats()["segments"] < 40
    hits = store.similarity_search("text", k=1000, filter={"tag": "b"})
    assert len(hits) == 80 and store.verify()["documents"] == 240


def test_commits_that_follow_each_other_wake_one_upkeep_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance, "_LINGER", 30.0)  # (long enough never to matter here)
    store = open_store(tmp_path)
    store.add_texts(["a"], ids=["a"])
    store.wait_for_compaction()
    worker = store.engine._upkeep
    assert worker is not None
    thread = worker._thread
    assert thread is not None and thread.is_alive()  # idle, waiting for the next commit
    for i in range(6):
        store.add_texts([f"t{i}"], ids=[str(i)])
    store.wait_for_compaction()  # returns once the work is done, while the thread waits on
    assert worker._thread is thread and store.stats()["segments"] < 7
    monkeypatch.setattr(maintenance, "_LINGER", 0.0)
    store.add_texts(["z"], ids=["z"])  # its upkeep done, nothing else comes: the thread ends
    thread.join(60)
    assert not thread.is_alive() and worker._thread is None
    assert sorted(texts_of(open_store(tmp_path)).values()) == ["a", *(f"t{i}" for i in range(6)), "z"]


def test_merges_wait_for_a_pause_in_the_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While commits keep coming, the upkeep thread does not merge (a merge would take the
    interpreter's lock and a core from the writer); `wait_for_compaction` does not wait for
    the pause, and the run that waited merges in one go."""
    monkeypatch.setattr(maintenance, "_PAUSE", 3600.0)  # (a pause that never comes here)
    store = open_store(tmp_path)  # fan_in 2: a merge is due after every other commit
    for i in range(10):
        store.add_texts([f"t{i}"], ids=[str(i)])
    assert store.stats()["segments"] == 10  # none merged meanwhile
    waited = threading.Thread(target=store.wait_for_compaction)
    waited.start()
    waited.join(60)
    assert not waited.is_alive(), "wait_for_compaction waited for the pause"
    assert store.stats()["segments"] == 2  # the base, and the 9 after it in one merge
    assert sorted(texts_of(open_store(tmp_path)).values()) == [f"t{i}" for i in range(10)]


def test_a_crowded_tail_merges_while_the_writes_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gate: Gate
) -> None:
    """Past ``max_tail`` the merge is due at once, pause or not: the tail stays bounded
    under writes that never pause."""
    monkeypatch.setattr(maintenance, "_PAUSE", 3600.0)
    store = open_store(tmp_path, CompactionPolicy(fan_in=2, min_weight=1, full_ratio=1000.0,
                                                  max_tail=4))  # fmt: skip
    for i in range(6):  # the base and 5 after it: past max_tail
        store.add_texts([f"t{i}"], ids=[str(i)])
    gate.wait_reached()  # (the merge started while no pause came)
    gate.release()
    store.wait_for_compaction()
    assert store.stats()["segments"] == 2
    assert store.verify()["documents"] == 6


def test_a_process_that_exits_right_after_a_write_finishes_its_merge(tmp_path: Path) -> None:
    path = tmp_path / "store"
    script = textwrap.dedent(
        f"""
        from vectordb_manager import HashingEmbeddings, LocalVectorStore
        from vectordb_manager.engine.compaction import CompactionPolicy
        store = LocalVectorStore(HashingEmbeddings(256), {str(path)!r},
                                 compaction=CompactionPolicy(fan_in=2, min_weight=1))
        for i in range(8):
            store.add_texts([f"t{{i}}"] * 50, ids=[f"{{i}}-{{j}}" for j in range(50)])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    store = open_store(tmp_path, CompactionPolicy(fan_in=2, min_weight=1))
    # every merge the writes asked for was made before the process ended: none is due now
    assert store.engine._plan_locked()[0] is None
    assert len(store) == 400 and store.verify()["documents"] == 400
    assert segment_files(path) <= named_by_manifests(path)


@pytest.mark.parametrize("background", [False, True])
def test_merges_stay_within_the_segment_cap(tmp_path: Path, background: bool) -> None:
    """With ``max_segment_bytes``, no merge writes a segment past it: segments of over
    1/fan_in of it merge no more. Without the cap the same writes merge past it (inline
    merges: the same layout every time). Either way the store holds every document."""
    cap = 64 << 10  # a write of 10 rows holds ~13 KiB: four merge (~51 KiB), then no more
    expected = {f"{b}-{i}": f"text {b}-{i}" for b in range(64) for i in range(10)}

    def build(limit: int | None) -> list[int]:
        policy = CompactionPolicy(
            fan_in=2, min_weight=1, full_ratio=1000.0, max_segment_bytes=limit,
            background=background,
        )  # fmt: skip
        store = open_store(tmp_path / str(limit), policy)
        for batch in range(64):
            ids = [f"{batch}-{i}" for i in range(10)]
            store.add_texts([f"text {x}" for x in ids], ids=ids)
        store.wait_for_compaction()
        assert texts_of(store) == expected
        assert texts_of(open_store(tmp_path / str(limit), policy)) == expected
        assert store.verify()["documents"] == 640
        assert store._engine._manifest is not None
        return [s.file.bytes for s in store._engine._manifest.segments]

    capped = build(cap)
    assert max(capped) <= cap
    if not background:
        assert sum(s > cap // 2 for s in capped[1:]) >= 12  # merged up to the cap
        assert max(build(None)) > 4 * cap
