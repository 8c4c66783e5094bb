"""Records decoded one by one (search results, a filter's candidates) are kept only up to a
bound (`state.DECODED_KEPT`): past it they go back to their raw lines and are decoded again
when needed, so a long-running process's memory stays bounded on a large store. The records
read stay exact, tombstones stay tombstones, concurrent readers see the right records, and
`materialize` still decodes and keeps them all."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine import state as state_module
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.format import encode_record
from vectordb_manager.engine.state import LAZY, StoreState

KEPT = 50


def _decoded(st: StoreState) -> int:
    return sum(r is not LAZY and r is not None for r in st.recs)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalVectorStore:
    monkeypatch.setattr(state_module, "DECODED_KEPT", KEPT)
    emb = HashingEmbeddings(16)
    first = LocalVectorStore(emb, tmp_path / "s", compaction=CompactionPolicy(enabled=False))
    for batch in range(3):  # three segments: three raw blocks
        ids = [f"d{batch}-{i}" for i in range(100)]
        first.add_texts([f"text {x}" for x in ids], [{"n": x} for x in ids], ids=ids)
    first.delete([f"d1-{i}" for i in range(0, 100, 10)])
    return LocalVectorStore(emb, tmp_path / "s", compaction=CompactionPolicy(enabled=False))


def test_records_decoded_one_by_one_stay_within_the_bound_and_exact(
    store: LocalVectorStore,
) -> None:
    st = store._engine.state
    live = sorted(st.slot.items())
    assert _decoded(st) == 0 and st.recs.count(None) == 10
    rng = random.Random(3)
    for _ in range(4):
        for doc_id, slot in rng.sample(live, len(live)):
            record = st.record(slot)
            assert (record.text, record.metadata) == (f"text {doc_id}", {"n": doc_id})
            assert _decoded(st) <= KEPT
    assert st.recs.count(None) == 10  # the tombstones stayed
    docs = store.similarity_search("text d2-7", k=5)
    assert all(d.page_content == f"text {d.id}" and d.metadata == {"n": d.id} for d in docs)
    st.materialize()  # (asked for every record: all decoded and kept)
    assert _decoded(st) == len(live)
    assert all(st.record(slot).text == f"text {doc_id}" for doc_id, slot in live)


def test_concurrent_readers_read_the_right_records_while_some_are_dropped(
    store: LocalVectorStore,
) -> None:
    st = store._engine.state
    live = sorted(st.slot.items())
    wrong: list[str] = []

    def read(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(3000):
            doc_id, slot = rng.choice(live)
            if st.record(slot).text != f"text {doc_id}":
                wrong.append(doc_id)

    threads = [threading.Thread(target=read, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not wrong
    assert _decoded(st) <= KEPT


def test_record_pieces_give_each_slots_line_in_order(
    store: LocalVectorStore, tmp_path: Path
) -> None:
    """A merge copies the stored lines of its slots: runs of neighbours (crossing blocks,
    with some records decoded in between) and scattered slots give each slot's line, in
    order, whichever way they are cut."""
    st = store._engine.state
    other = LocalVectorStore(  # the same store, read on its own: the oracle's records
        HashingEmbeddings(16), tmp_path / "s", compaction=CompactionPolicy(enabled=False)
    )
    oracle = other._engine.state
    live = sorted(st.slot.values())
    expected = {s: json.loads(encode_record(oracle.ids[s], oracle.record(s))) for s in live}
    for slot in (*range(95, 100), 155, 156):  # decoded: at a block's end and inside one
        st.record(slot)
    rng = random.Random(5)
    cases = [live, list(range(191, 260)), [s for s in live if 60 <= s < 130]]
    cases += [live[120:125], rng.sample(live, 30)]
    cases += [sorted(rng.sample(live, 100)) for _ in range(5)]
    for materialized in (False, True):
        if materialized:
            st.materialize()  # every record decoded, the raw blocks let go
        for slots in cases:
            blob = b"".join(st._record_pieces(slots))
            lines = [json.loads(line) for line in blob.splitlines()]
            assert lines == [expected[s] for s in slots]
    assert st._record_pieces([]) == []
