"""`Rows`: the flat float32 storage of a flat or IVF index's vectors, searched exactly by FAISS.

FAISS's ``IndexFlat`` keeps its vectors in a ``std::vector`` of 4 KiB pages. A search reads
them all, and with cold caches (the usual case: a search follows the query's embedding, or
other work) it paid for a TLB miss per page. Here the vectors live in memory this module
allocates: from `HUGE_PAGE` to `HUGE_LIMIT` bytes, an anonymous private mapping aligned to
2 MiB and advised for transparent huge pages (``MADV_HUGEPAGE``, Linux, where free memory is
ample: see `free_bytes`); past `HUGE_LIMIT`, a mapping advised to keep small pages; below,
or elsewhere, an ordinary NumPy array. FAISS's own brute-force functions,
``knn_inner_product`` and ``knn_L2sqr``, which ``IndexFlat.search`` calls, search it with
the same results. On 1,854 vectors of 384 dimensions a search with cold caches took 144 us
here against 190 us in ``IndexFlat``.

Huge pages pay only while the vectors are about as small as the CPU's caches: with cold
caches, 5,000 x 384 took 280 against 312 us on them, 10,000 830 against 840 us, and from
20,000 on the scan waits on memory either way (40,000: 3.5-3.8 ms both). Past that they
cost: a huge page is a fresh 2 MiB block, and where the machine is a VM that hands freed
memory back to its host (a balloon's free page reporting, as on the machines this was
measured on), its first write waited ~10 ms for the host, 1.4-2.4 s over the 100 appends of
1,000 rows that build 100k x 384, against 0.16-0.32 s on small pages.

Rows are appended within a capacity (room for a sixteenth more, at least 1,024 rows, when
reserved; twice as many when appends outgrow it); growing past it copies them into a new
allocation. Past `HUGE_LIMIT` an allocation is a mapping with address space for `ROOM` times
its rows (`reserve`: memory is only taken where written), and growing within that takes the
next rows in place, copying nothing: building 100k x 384 by 100 appends wrote ~300 MB of
fresh pages (each copy, then the rows after it) where it now writes the 150 MB of the rows.
Readers take `snapshot` once: an old allocation stays alive as long as a view or a snapshot
of it does, never freed under a search, and rows in use never change.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import sys
from typing import Any, NamedTuple

import faiss
import numpy as np

from vectordb_manager.engine.pages import NORESERVE, PRIVATE, SMALL, small_mapping

Vectors = np.ndarray[Any, np.dtype[np.float32]]

HUGE_PAGE = 2 << 20  # bytes: below this, an allocation is an ordinary NumPy array
HUGE_LIMIT = 16 << 20  # bytes: past this, small pages (see the module's docstring)
_ADVISE = getattr(mmap, "MADV_HUGEPAGE", None)  # (Linux only)
ROOM = 8  # past HUGE_LIMIT, a mapping has address space for this many times its rows

_RAW: Any = getattr(sys.modules.get(faiss.IndexFlat.__module__), "_swigfaiss", faiss)


def raw_function(name: str) -> Any:
    """FAISS's function ``name`` itself, under the SWIG module's Python wrapper (a function
    that only calls it): one Python call fewer on a search's path; the wrapper where the
    module is laid out otherwise."""
    return getattr(_RAW, name, None) or getattr(faiss, name)


KNN_IP: Any = raw_function("knn_inner_product")
KNN_L2: Any = raw_function("knn_L2sqr")
SWIG_PTR: Any = raw_function("swig_ptr")


def allocate(rows: int, dim: int) -> Vectors:
    """A zero-filled, writable ``(rows, dim)`` float32 array, on huge pages where it is of a
    size they help and the system allows it, on small pages past `HUGE_LIMIT` (the pages are
    only taken when first written)."""
    nbytes = rows * dim * 4
    if nbytes < HUGE_PAGE or _ADVISE is None or SMALL is None or not PRIVATE:
        return np.zeros((rows, dim), dtype=np.float32)
    if nbytes > HUGE_LIMIT:
        got = _small_pages(rows, dim, rows)
        return got[0] if got is not None else np.zeros((rows, dim), dtype=np.float32)
    span = -(-nbytes // HUGE_PAGE) * HUGE_PAGE  # whole huge pages
    try:
        area = mmap.mmap(-1, span + HUGE_PAGE, flags=PRIVATE)
    except (OSError, ValueError):  # (no address space for it: an ordinary allocation)
        return np.zeros((rows, dim), dtype=np.float32)
    start = -np.frombuffer(area, dtype=np.uint8, count=1).ctypes.data % HUGE_PAGE
    advice = _ADVISE if free_bytes() >= 2 * span else SMALL
    with contextlib.suppress(OSError):  # (huge pages disabled: small ones serve)
        area.madvise(advice, start, span)
    # the array holds the mapping: it is unmapped when the last view of it goes
    return np.frombuffer(area, dtype=np.float32, count=rows * dim, offset=start).reshape(rows, dim)


def reserve(rows: int, dim: int, room: int) -> tuple[Vectors, mmap.mmap] | None:
    """Zero ``(rows, dim)`` float32 rows at the start of a private mapping with address space
    for ``room`` rows, and the mapping: ``MAP_NORESERVE`` and small pages, so memory is
    taken only where rows are written, and `Rows` grows into it in place (nothing copied,
    no page written twice). ``None`` where such mappings are not to be had (or where the
    system counts all of it, as with strict overcommit, and refuses)."""
    if SMALL is None or not PRIVATE or not NORESERVE or strict_overcommit():
        return None
    return _small_pages(rows, dim, room)


def _small_pages(rows: int, dim: int, room: int) -> tuple[Vectors, mmap.mmap] | None:
    """The first ``rows`` of a private mapping of ``room`` rows (``MAP_NORESERVE`` where it
    has room to spare) advised for small pages. ``None`` where the mapping fails."""
    area = small_mapping(room * dim * 4, reserve=room > rows)
    return None if area is None else (rows_of(area, rows, dim), area)


@functools.cache
def strict_overcommit() -> bool:
    """Whether the system counts all of a mapping as committed, ``MAP_NORESERVE`` or not
    (Linux's ``vm.overcommit_memory`` 2): address space reserved there would be memory
    taken from everyone else."""
    try:
        with open("/proc/sys/vm/overcommit_memory", "rb") as f:
            return f.read().strip() == b"2"
    except (OSError, ValueError):
        return False


def rows_of(area: mmap.mmap, rows: int, dim: int) -> Vectors:
    """The first ``rows`` rows of a mapping from `reserve` (the array holds the mapping: it
    is unmapped when the last view of it goes)."""
    return np.frombuffer(area, dtype=np.float32, count=rows * dim).reshape(rows, dim)


def free_bytes() -> int:
    """The system's free memory (``MemFree``, Linux; 0 where unknown). Huge pages are only
    asked for where it is ample: otherwise each fault of a huge page waits for the kernel
    to reclaim and compact memory (with the usual ``defrag=madvise``), as on a machine
    whose page cache has filled its memory; there small pages serve, as in FAISS."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemFree:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Snapshot(NamedTuple):
    """The storage as a search sees it: the allocation, its address and the rows in use."""

    buffer: Vectors
    address: Any  # SWIG_PTR(buffer)
    rows: int


class Rows:
    """Appendable float32 rows of one dimension; searched exactly by `search`."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        empty = np.zeros((0, dim), dtype=np.float32)
        self.snapshot = Snapshot(empty, SWIG_PTR(empty), 0)
        self._area: mmap.mmap | None = None  # (a mapping from `reserve`, grown into in place)
        self._room = 0  # rows it has address space for

    @property
    def count(self) -> int:
        return self.snapshot.rows

    @property
    def capacity(self) -> int:
        return len(self.snapshot.buffer)

    def view(self) -> Vectors:
        """The rows in use, read-only (valid for as long as it is held)."""
        snap = self.snapshot
        view = snap.buffer[: snap.rows]
        view.flags.writeable = False
        return view

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` more, plus a sixteenth of all (at least 1,024 rows) for later
        adds, so that neither adding them piece by piece nor the next few commits copy the
        whole storage (at 1M x 384 that took seconds and doubled the memory for a moment)."""
        self._grow(self.snapshot.rows + rows, double=False)

    def extend(self, rows: int) -> Vectors:
        """Take ``rows`` more (zeros) and return them as a writable view, to be filled in
        place (reading a file straight into the storage). Past the capacity, it at least
        doubles, so that many small adds copy each row a few times at most (growing by a
        sixteenth copied 100k rows added 1,000 at a time 16 times over: 1.8x the time of
        those adds); a mapping's pages beyond the rows are not taken until written."""
        self._grow(self.count + rows, double=True)
        snap = self.snapshot
        self.snapshot = snap._replace(rows=snap.rows + rows)
        return snap.buffer[snap.rows : snap.rows + rows]

    def _grow(self, total: int, *, double: bool) -> None:
        snap = self.snapshot
        held = len(snap.buffer)
        if total <= held:
            return
        capacity = total + max(1024, total // 16)
        if double:
            capacity = max(capacity, 2 * held)
        if capacity <= self._room and self._area is not None:  # in place: the same memory
            buffer = rows_of(self._area, capacity, self.dim)
            self.snapshot = Snapshot(buffer, snap.address, snap.rows)
            return
        got = None
        if capacity * self.dim * 4 > HUGE_LIMIT:
            got = reserve(capacity, self.dim, ROOM * capacity)
        if got is None:
            buffer, self._area, self._room = allocate(capacity, self.dim), None, 0
        else:
            (buffer, self._area), self._room = got, ROOM * capacity
        buffer[: snap.rows] = snap.buffer[: snap.rows]
        self.snapshot = Snapshot(buffer, SWIG_PTR(buffer), snap.rows)

    def append(self, vectors: Vectors) -> None:
        """Append C-contiguous float32 rows."""
        self.extend(len(vectors))[:] = vectors

    def search(
        self, queries: Vectors, k: int, *, l2: bool, selector: Any = None
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """FAISS's exact k best of each query (C-contiguous float32, ``k`` at least 1): raw
        scores (inner product, or squared L2 with ``l2``) and row numbers, -1 past the rows
        that pass ``selector``; as ``IndexFlat.search`` returns them."""
        n = len(queries)
        scores = np.empty((n, k), dtype=np.float32)
        labels = np.empty((n, k), dtype=np.int64)
        self.search_into(queries, n, k, SWIG_PTR(scores), SWIG_PTR(labels), l2=l2, sel=selector)
        return scores, labels

    def search_into(
        self, queries: Vectors, n: int, k: int, scores_at: Any, labels_at: Any, *, l2: bool,
        sel: Any = None,
    ) -> None:
        """`search` of the first ``n`` queries into buffers the caller holds (their addresses,
        ``SWIG_PTR``; room for n x k each)."""
        snap = self.snapshot
        if l2:
            KNN_L2(SWIG_PTR(queries), snap.address, self.dim, n, snap.rows, k, scores_at,
                   labels_at, None, sel)  # fmt: skip
        else:
            KNN_IP(SWIG_PTR(queries), snap.address, self.dim, n, snap.rows, k, scores_at,
                   labels_at, sel)  # fmt: skip
