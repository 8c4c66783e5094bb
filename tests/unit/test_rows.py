"""`Rows`, the flat storage of flat and IVF indexes: FAISS's brute-force search over it gives
``IndexFlat``'s results exactly (both metrics, one query or many, with and without a selector);
large allocations sit on 2 MiB boundaries advised for huge pages; growing keeps the rows and
leaves earlier views readable."""

from __future__ import annotations

import mmap
import sys

import faiss
import numpy as np
import pytest

from vectordb_manager.engine import rows as rows_module
from vectordb_manager.engine.index import IndexParams, VectorIndex
from vectordb_manager.engine.rows import HUGE_LIMIT, HUGE_PAGE, Rows, allocate


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("l2", [False, True])
@pytest.mark.parametrize("nq", [1, 3, 40])  # (40: FAISS's BLAS path, from 20 queries)
@pytest.mark.parametrize("selected", [False, True])
def test_search_equals_faiss_index_flat(l2: bool, nq: int, selected: bool) -> None:
    x, q = unit_rows(3000, 24), unit_rows(nq, 24, seed=1)
    x[10:20] = x[0]  # equal vectors: FAISS's order among them must be the same too
    flat = faiss.IndexFlatL2(24) if l2 else faiss.IndexFlatIP(24)
    flat.add(x)
    rows = Rows(24)
    rows.append(x[:1000])
    rows.append(x[1000:])  # (grows past the first allocation)
    sel, params = None, None
    if selected:
        bits = np.packbits(np.arange(3000) % 3 == 0, bitorder="little")
        sel = faiss.IDSelectorBitmap(3000, faiss.swig_ptr(bits))
        params = faiss.SearchParameters(sel=sel)
    want_d, want_i = flat.search(q, 15, params=params)
    got_d, got_i = rows.search(q, 15, l2=l2, selector=sel)
    assert np.array_equal(got_i, want_i)
    assert np.array_equal(got_d, want_d)
    if selected:
        assert set(got_i.ravel().tolist()) <= set(range(0, 3000, 3))


def test_rows_grow_keeping_what_they_hold_and_earlier_views() -> None:
    x = unit_rows(5000, 16)
    rows = Rows(16)
    rows.append(x[:10])
    before = rows.view()
    first = rows.snapshot.buffer
    assert rows.capacity == 10 + 1024  # (room for later adds: at least 1,024 rows)
    rows.append(x[10:2000])  # past the capacity: a new allocation
    assert rows.snapshot.buffer is not first
    assert np.array_equal(before, x[:10])  # (the old allocation lives while viewed)
    assert np.array_equal(rows.view(), x[:2000])
    assert not rows.view().flags.writeable
    filled = rows.extend(3000)
    assert filled.flags.writeable and not filled.any()  # zeros, to be filled in place
    filled[:] = x[2000:]
    assert rows.count == 5000
    assert np.array_equal(rows.view(), x)
    rows.reserve(100_000)
    assert rows.capacity >= 105_000
    assert np.array_equal(rows.view(), x)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_HUGEPAGE"),
    reason="huge pages are advised on Linux",
)
def test_large_allocations_are_aligned_for_huge_pages() -> None:
    big = allocate(HUGE_PAGE // (4 * 384) + 1, 384)
    assert big.ctypes.data % HUGE_PAGE == 0
    assert big.flags.writeable and big.flags.c_contiguous and not big.any()
    small = allocate(10, 384)  # (below a huge page: an ordinary array)
    assert small.shape == (10, 384) and not small.any()


def test_allocation_falls_back_where_mappings_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("no address space")

    monkeypatch.setattr(rows_module.mmap, "mmap", refuse)
    got = allocate(4096, 384)
    assert got.shape == (4096, 384) and got.flags.writeable and not got.any()


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_flat_index_searches_one_query_as_many(distance: str) -> None:
    x, q = unit_rows(2500, 32), unit_rows(1, 32, seed=2)
    index = VectorIndex("flat", 32, distance, IndexParams())
    index.reserve(100)
    index.add(x)
    scores, labels = index.search(q, 7)
    one = index.search_one(q, 7)
    assert one == (scores[0].tolist(), labels[0].tolist())
    with pytest.raises(ValueError, match="shape"):
        index.search(unit_rows(1, 31), 7)
    with pytest.raises(ValueError, match="shape"):
        index.add(unit_rows(3, 31))
    assert index.ntotal == 2500


def test_many_small_appends_copy_the_rows_a_few_times_only() -> None:
    """Appends past the capacity at least double it: 100 appends of 1,000 rows reallocate
    a handful of times, not at every sixteenth (which copied each row ~16 times)."""
    x = unit_rows(1000, 8)
    rows = Rows(8)
    moves, held = 0, rows.snapshot.buffer
    for _ in range(100):
        rows.append(x)
        moves += rows.snapshot.buffer is not held
        held = rows.snapshot.buffer
    assert rows.count == 100_000
    assert 1 <= moves <= 8
    assert np.array_equal(rows.view()[-1000:], x)


@pytest.mark.skipif(rows_module.reserve(1, 8, 2) is None, reason="needs MAP_NORESERVE mappings")
def test_rows_past_the_limit_grow_in_place() -> None:
    """Past `HUGE_LIMIT` the storage has address space to grow into: appends take the next
    rows where they are, copying nothing (views taken before still read the same rows)."""
    x = unit_rows(1000, 384)
    rows = Rows(384)
    moves, held, early = 0, rows.snapshot.buffer, None
    for i in range(100):
        rows.append(x * (i % 7 + 1))
        moves += rows.snapshot.buffer.ctypes.data != held.ctypes.data
        held = rows.snapshot.buffer
        if i == 20:
            early = rows.view()
    assert rows.count == 100_000 and moves == 4  # 2,024, 4,048 and 8,096 rows, then in place
    assert early is not None and early.ctypes.data == held.ctypes.data
    assert np.array_equal(early[-1000:], x * 7) and np.array_equal(rows.view()[-1000:], x * (99 % 7 + 1))


def test_rows_grow_by_copies_where_address_space_is_not_to_be_had(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under strict overcommit reserved address space would be memory taken from all: the
    storage then grows by copies, as ever."""
    monkeypatch.setattr(rows_module, "strict_overcommit", lambda: True)
    x = unit_rows(1000, 384)
    rows = Rows(384)
    for _ in range(40):
        rows.append(x)
    assert rows._area is None and rows.capacity == 64_768
    assert np.array_equal(rows.view()[-1000:], x)


@pytest.mark.skipif(not hasattr(mmap, "MADV_HUGEPAGE"), reason="huge pages are advised on Linux")
@pytest.mark.parametrize("free", [0, 1 << 40])
def test_huge_pages_are_asked_for_only_where_memory_is_free(
    monkeypatch: pytest.MonkeyPatch, free: int
) -> None:
    """Short of free memory each huge page's fault would wait for reclaim and compaction:
    the mapping is then left to small pages."""
    advised: list[tuple[int, ...]] = []

    class Spy(mmap.mmap):
        def madvise(self, *args: int) -> None:
            advised.append(args)
            super().madvise(*args)

    monkeypatch.setattr(rows_module, "free_bytes", lambda: free)
    monkeypatch.setattr(rows_module.mmap, "mmap", Spy)
    got = allocate(4096, 384)  # 6 MiB
    assert got.shape == (4096, 384) and got.flags.writeable and not got.any()
    got[:] = 1.0
    want = mmap.MADV_HUGEPAGE if free else mmap.MADV_NOHUGEPAGE
    assert [(a[0], a[2]) for a in advised] == [(want, 6 << 20)]


@pytest.mark.skipif(not hasattr(mmap, "MADV_HUGEPAGE"), reason="huge pages are advised on Linux")
def test_allocations_past_the_limit_keep_small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past `HUGE_LIMIT` huge pages no longer speed a scan up, and each one's first write
    can wait on the host of a VM: the mapping asks for small pages (NumPy would otherwise
    advise huge ones for an array this large), whatever the free memory."""
    advised: list[tuple[int, ...]] = []

    class Spy(mmap.mmap):
        def madvise(self, *args: int) -> None:
            advised.append(args)
            super().madvise(*args)

    monkeypatch.setattr(rows_module, "free_bytes", lambda: 1 << 40)
    monkeypatch.setattr(rows_module.mmap, "mmap", Spy)
    rows = HUGE_LIMIT // (4 * 384) + 1
    got = allocate(rows, 384)
    assert got.shape == (rows, 384) and got.flags.writeable and not got.any()
    got[-1] = 1.0
    assert advised == [(mmap.MADV_NOHUGEPAGE, 0, rows * 384 * 4)]
    at_limit = allocate(HUGE_LIMIT // (4 * 384), 384)
    assert advised[-1][0] == mmap.MADV_HUGEPAGE and at_limit.ctypes.data % HUGE_PAGE == 0


def test_free_memory_is_read_from_the_system() -> None:
    free = rows_module.free_bytes()
    assert free > 0 if sys.platform.startswith("linux") else free >= 0
