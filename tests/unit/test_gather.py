"""A merged segment's vectors are copied straight from the index into the file
(`format._gather`): runs of consecutive rows as slices, scattered rows by one take. Both
give exactly the rows asked for, in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.format import _gather

RNG = np.random.default_rng(7)
VECTORS = RNG.random((1000, 8)).astype(np.float32)


@pytest.mark.parametrize(
    "rows",
    [
        np.arange(10, 900),  # one run
        np.r_[np.arange(0, 400), np.arange(500, 1000)],  # two runs
        np.sort(RNG.choice(1000, 300, replace=False)),  # scattered
        np.array([5]),
        np.array([], dtype=np.int64),
        np.array([3, 2, 1]),  # not ascending
        np.arange(1000),
    ],
)
def test_gather_copies_exactly_the_rows(rows: np.ndarray) -> None:
    rows = rows.astype(np.int64)
    fill = _gather(VECTORS, rows)
    target = bytearray(fill.size)
    fill.write(memoryview(target))
    got = np.frombuffer(target, dtype=np.float32).reshape(len(rows), 8)
    assert np.array_equal(got, VECTORS[rows])


def test_merged_segments_keep_each_documents_vector(tmp_path: Path) -> None:
    emb = HashingEmbeddings(16)
    store = LocalVectorStore(emb, tmp_path / "s", compaction={"fan_in": 2, "min_weight": 1})
    for b in range(6):
        store.add_texts([f"text {b} {i}" for i in range(50)], ids=[f"{b}-{i}" for i in range(50)])
        store.delete([f"{b}-{i}" for i in range(0, 50, 7)])  # holes: runs between them
    store.wait_for_compaction()
    store.compact()
    fresh = LocalVectorStore(emb, tmp_path / "s")
    assert fresh.verify()["documents"] == 6 * (50 - 8)
    for doc_id in ("0-1", "3-13", "5-48"):
        b, i = doc_id.split("-")
        slot = fresh.engine._state.slot[doc_id]
        want = np.asarray(emb.embed_query(f"text {b} {i}"), dtype=np.float32)
        assert np.allclose(fresh.engine._state.index.vectors()[slot], want / np.linalg.norm(want))
