"""Refreshing onto a version another writer compacted (engine/carry_over.py): the state built
from memory plus the segments it lacks is the state a fresh open of that version gives, and
the segments both versions name are not read again."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest

from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine import loading
from vectordb_manager.engine.compaction import CompactionPolicy

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda", "theta", "zeta"]


def contents(store: LocalVectorStore) -> dict[str, Any]:
    """Everything a reader can tell about a store: each document with its vector, the
    keyword and filtered search results, the counts."""
    engine = store._engine
    docs = {
        i: (t, m, v.tobytes())
        for seg in engine.iter_rows()
        for i, t, m, v in zip(seg.ids, seg.texts, seg.metadatas, seg.vectors, strict=True)
    }
    query = HashingEmbeddings().embed_query("alpha gamma")
    return {
        "docs": docs,
        "count": len(store),
        "order": store.get_ids(),
        "keyword": [(h.document.id, round(h.score, 9)) for h in engine.keyword_search("beta", 50)],
        "filtered": [d.id for d in store.similarity_search_by_vector(query, 50, {"w": 1})],
        "ranged": sorted(store.get_ids({"n": {"$gte": 10}})),
    }


def text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(6))


@pytest.mark.parametrize("background", [False, True])
def test_refresh_after_another_writers_merges_equals_a_fresh_open(
    tmp_path: Path, background: bool, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    rng = random.Random(7)
    policy = CompactionPolicy(fan_in=2, min_weight=1, background=background)
    emb = HashingEmbeddings()
    writers = [LocalVectorStore(emb, tmp_path, compaction=policy) for _ in range(2)]
    read: list[str] = []  # the segments read from storage
    real = loading.Loader.read_segment

    def reading(self: Any, ref: Any, *args: Any) -> Any:
        read.append(ref.name)
        return real(self, ref, *args)

    monkeypatch.setattr(loading.Loader, "read_segment", reading)
    caplog.set_level(logging.DEBUG, logger="vectordb_manager.engine.core")
    caplog.set_level(logging.DEBUG, logger="vectordb_manager.engine.carry_over")
    live: list[str] = []
    n = carried_refreshes = 0
    for step in range(120):
        me, other = writers[step % 3 == 0], writers[step % 3 != 0]
        op = rng.random()
        if op < 0.55 or not live:
            ids = [f"d{n + j}" for j in range(rng.randint(1, 4))]
            n += len(ids)
            metas = [{"w": rng.randint(0, 2), "n": rng.randint(0, 20)} for _ in ids]
            me.add_texts([text(rng) for _ in ids], metas, ids=ids)
            live += ids
        elif op < 0.75:
            doc_id = rng.choice(live)
            me.add_texts([text(rng)], [{"w": 1, "n": step}], ids=[doc_id])  # an upsert
        elif op < 0.95:
            gone = rng.sample(live, min(len(live), rng.randint(1, 3)))
            me.delete(gone)
            live = [i for i in live if i not in gone]
        else:
            me.wait_for_compaction()
            me.compact()
        me.wait_for_compaction()
        caplog.clear()
        read.clear()
        other._engine.refresh()
        assert not [r for r in caplog.records if "reading it afresh" in r.getMessage()]
        if any("carried over" in r.getMessage() for r in caplog.records):
            # only what the other writer's version added or merged was read
            names = [s.name for s in other._engine._manifest.segments]  # type: ignore[union-attr]
            assert len(set(read)) == len(read) and set(read) < set(names), (read, names)
            carried_refreshes += 1
        fresh = LocalVectorStore(emb, tmp_path, compaction=CompactionPolicy(enabled=False))
        assert contents(other) == contents(fresh), f"step {step}"
        assert sorted(other.get_ids()) == sorted(live)
    assert carried_refreshes >= 10
    for store in writers:
        store.wait_for_compaction()
    assert writers[0]._engine.verify()["documents"] == len(live)


def test_vectors_and_records_come_from_memory_not_storage(tmp_path: Path, monkeypatch: Any) -> None:
    """After another writer merged the tail, a refresh reads the merged segment only."""
    emb = HashingEmbeddings()
    a = LocalVectorStore(emb, tmp_path, compaction=CompactionPolicy(enabled=False))
    for i in range(6):
        a.add_texts([f"alpha {i}", f"beta {i}"], ids=[f"a{i}", f"b{i}"])
    inline = CompactionPolicy(fan_in=4, min_weight=1, background=False)
    b = LocalVectorStore(emb, tmp_path, compaction=inline)
    before = set(b._engine._manifest.segments)  # type: ignore[union-attr]
    b.add_texts(["gamma"], ids=["g"])  # b merges the tail
    merged = [s.name for s in b._engine._manifest.segments if s not in before]  # type: ignore[union-attr]
    assert len(b._engine._manifest.segments) < 8  # type: ignore[union-attr]
    read: list[str] = []
    real = loading.Loader.read_segment

    def reading(self: Any, ref: Any, *args: Any) -> Any:
        read.append(ref.name)
        return real(self, ref, *args)

    monkeypatch.setattr(loading.Loader, "read_segment", reading)
    a.delete(["a1"])  # refreshes onto b's merge first
    assert read and set(read) <= set(merged)
    assert "g" in a.get_ids() and "a1" not in a.get_ids()
    b._engine.refresh()
    assert sorted(a.get_ids()) == sorted(b.get_ids())
    assert a._engine.search(emb.embed_query("beta 3"), 1)[0].document.id == "b3"


def test_a_kept_segments_deletes_apply_over_a_merge_placed_before_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer merged a run on a state that had not seen another writer's delete of one of
    the run's rows (a merge on the upkeep thread, prepared before the delete committed): the
    merged segment holds the row, and the delete, kept after it, must still remove it."""
    from vectordb_manager.engine.compaction import TailMerge

    emb = HashingEmbeddings()
    still = CompactionPolicy(enabled=False)
    a = LocalVectorStore(emb, tmp_path, compaction=still)
    for i in range(4):
        a.add_texts([f"alpha {i}"], ids=[f"a{i}"])
    b = LocalVectorStore(emb, tmp_path, compaction=still)
    engine = b._engine
    with engine._write_lock:
        assert engine._manifest is not None
        job = TailMerge.prepare(engine._manifest, engine._state, 1, keywords=True, values=True)
    assert job is not None and "a2" in job.segment.ids
    a.delete(["a2"])  # committed after the merge was prepared
    assert engine._commit_tail(job)  # placed where the run is, before a's delete
    caplog.set_level(logging.DEBUG, logger="vectordb_manager.engine")
    a._engine.refresh()
    said = [r.getMessage() for r in caplog.records]
    assert any("carried over" in m for m in said) and not any("afresh" in m for m in said)
    assert sorted(a.get_ids()) == ["a0", "a1", "a3"]
    fresh = LocalVectorStore(emb, tmp_path, compaction=still)
    assert contents(a) == contents(fresh)


def test_a_merged_run_holds_each_live_row_once_in_slot_order(tmp_path: Path) -> None:
    """Ids the run added twice (the later one lives) or deleted within it: the merge takes
    each live row of the run once, in the order of its slots, and opening after it gives
    the same documents."""
    from vectordb_manager.engine.compaction import TailMerge

    emb = HashingEmbeddings()
    still = CompactionPolicy(enabled=False)
    store = LocalVectorStore(emb, tmp_path, compaction=still)
    store.add_texts(["zero"], ids=["base"])  # (the run starts after the first segment)
    store.add_texts(["one a", "one b", "one c"], ids=["a", "b", "c"])
    store.add_texts(["two a", "two d"], ids=["a", "d"])  # a again: this row lives
    store.delete(["c"])
    store.add_texts(["three e", "three b"], ids=["e", "b"])
    engine = store._engine
    with engine._write_lock:
        assert engine._manifest is not None
        st = engine._state
        job = TailMerge.prepare(engine._manifest, st, 1, keywords=True, values=True)
    assert job is not None
    live = sorted(st.slot[i] for i in ("a", "b", "d", "e"))
    assert job.segment.ids == [st.ids[s] for s in live] == ["a", "d", "e", "b"]
    assert engine._commit_tail(job)
    fresh = LocalVectorStore(emb, tmp_path, compaction=still)
    assert contents(fresh) == contents(store)
    assert {d.id: d.page_content for d in fresh.get_by_ids(["a", "b", "d", "e"])} == {
        "a": "two a", "b": "three b", "d": "two d", "e": "three e"
    }
