"""`VectorIndex`: a FAISS index whose labels are the engine's slot numbers.

Slots are appended in order and never reused, so every index type labels a vector by its
position: ``flat`` (exact), ``hnsw`` (graph, approximate) and ``ivf`` (inverted lists,
approximate, trained once enough vectors exist; exact until then). Deleted slots stay in the
index as tombstones that the engine excludes; compaction rebuilds the index without them, which
is how HNSW, which cannot remove vectors, supports delete. Vectors are held once: a flat or IVF
index's in `Rows` (this package's storage on huge pages, searched by FAISS's brute-force
functions), an HNSW index's in its FAISS storage; either is read back as a NumPy view for exact
re-scoring and MMR.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from typing import IO, Any

import faiss
import numpy as np

from vectordb_manager.engine.rows import SWIG_PTR, Rows
from vectordb_manager.errors import IntegrityError

_OUT = threading.local()  # each thread's result buffers for `VectorIndex.search_one`, by k
_OUT_KS = 16  # how many sizes of them a thread keeps (searches of other sizes allocate)

Vectors = np.ndarray[Any, np.dtype[np.float32]]
IndexKind = str  # "flat" | "hnsw" | "ivf"


@dataclass(frozen=True)
class IndexParams:
    """Tuning for the index types; the defaults reach recall@10 >= 0.95 on sentence embeddings."""

    hnsw_m: int = 32
    ef_construction: int = 100
    ef_search: int = 128
    ivf_nlist: int | None = None  # None: about 4 * sqrt(n) when trained
    ivf_nprobe: int = 16
    ivf_min_train: int = 20_000
    # "auto" switches from flat to HNSW at this many documents: where exact search costs
    # about as much as embedding the query with all-MiniLM-L6-v2 (below it, exact search is
    # nearly free next to the query's own embedding; above it, HNSW's sub-millisecond answers
    # pay for its approximation and its ~0.1 ms per vector to build). `make bench` measured
    # that crossover at ~67k, ~77k, ~163k and ~221k documents on runs of these 2-core
    # machines (384 dimensions; exact search got faster over time, 0.43x raw faiss's time at
    # 100k since the last two): 150k is within 1.5x of those two.
    auto_threshold: int = 150_000

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Raise `ValueError` naming a field that is not a positive integer within its bound
        (``ivf_nlist`` may be ``None``): a damaged manifest's tuning must not make FAISS
        allocate without limit."""
        for name, value in self.to_json().items():
            if value is None and name == "ivf_nlist":
                continue
            most = _MOST.get(name, 2**31 - 1)
            if type(value) is not int or not 0 < value <= most:
                raise ValueError(f"{name}={value!r} must be a whole number from 1 to {most}")

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> IndexParams:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


_MOST = {"hnsw_m": 1024, "ef_construction": 1 << 20, "ef_search": 1 << 20}


def faiss_metric(distance: str) -> int:
    return int(faiss.METRIC_L2 if distance == "l2" else faiss.METRIC_INNER_PRODUCT)


class VectorIndex:
    """One FAISS index plus the flat storage of every slot's vector (`Rows`, or an HNSW
    index's own)."""

    def __init__(self, kind: IndexKind, dim: int, distance: str, params: IndexParams) -> None:
        self.kind = kind
        self.dim = dim
        self.distance = distance
        self.params = params
        metric = faiss_metric(distance)
        self._ivf: Any = None
        self._view: Vectors | None = None  # `vectors()`, until the storage changes
        self._rows: Rows | None = None  # flat and IVF: the vectors
        self._index: Any = None  # HNSW: the graph, and its storage (`_store`)
        self._store: Any = None
        if kind == "hnsw":
            self._index = faiss.IndexHNSWFlat(dim, params.hnsw_m, metric)
            self._index.hnsw.efConstruction = params.ef_construction
            self._store = faiss.downcast_index(self._index.storage)
        else:
            self._rows = Rows(dim)

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_snapshot(
        cls,
        stream: IO[bytes],
        *,
        kind: IndexKind,
        dim: int,
        distance: str,
        params: IndexParams,
        rows: int,
    ) -> VectorIndex:
        """Load a serialized FAISS index (FAISS's own binary format; nothing is executed) from
        a stream, without holding its bytes whole."""
        try:
            reader = faiss.PyCallbackIOReader(stream.read)  # type: ignore[attr-defined]
            loaded = faiss.read_index(reader)
        except Exception as exc:
            raise IntegrityError(f"the index snapshot cannot be read: {exc}") from exc
        if loaded.d != dim or loaded.ntotal != rows or loaded.metric_type != faiss_metric(distance):
            raise IntegrityError(
                f"the index snapshot holds {loaded.ntotal} vectors of dimension {loaded.d}; "
                f"expected {rows} of dimension {dim}"
            )
        index = cls.__new__(cls)
        index.kind, index.dim, index.distance, index.params = kind, dim, distance, params
        index._ivf = None
        index._view = None
        index._rows, index._index, index._store = None, None, None
        if kind == "hnsw":
            if not isinstance(loaded, faiss.IndexHNSWFlat):
                raise IntegrityError("the index snapshot is not an HNSW index")
            index._index = loaded
            index._store = faiss.downcast_index(loaded.storage)
        elif kind == "ivf":
            if not isinstance(loaded, faiss.IndexIVFFlat):
                raise IntegrityError("the index snapshot is not an IVF index")
            index._ivf = loaded
            index._rows = Rows(dim)
        else:
            raise IntegrityError(f"no snapshot is used for {kind!r} indexes")
        return index

    def check_snapshot(self, vectors: Vectors) -> None:
        """`IntegrityError` unless this index, loaded from a snapshot, holds exactly
        ``vectors`` (its segment's, in row order) as its first rows."""
        n = len(vectors)
        if self.kind == "ivf" and self._ivf is not None:
            self._ivf.make_direct_map()
            held = self._ivf.reconstruct_n(0, n)
        else:
            held = self.vectors()[:n]
        if held.shape != vectors.shape or not np.array_equal(held, vectors):
            raise IntegrityError(
                "the index snapshot's vectors differ from its segment's; the snapshot is "
                "damaged. Run compact() to rebuild it from the segments, or restore a backup."
            )

    def snapshot_needs_vectors(self) -> bool:
        """Whether the base segment's vectors must be added after loading a snapshot."""
        return self.kind == "ivf"

    # -- use -----------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        if self._rows is not None:
            return self._rows.count
        return int(self._store.ntotal)

    def add(self, vectors: Vectors, *, store_only: bool = False) -> None:
        """Append vectors as the next slots (``store_only``: the IVF part already has them)."""
        if len(vectors) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._view = None
        if self._rows is None:
            self._index.add(vectors)
            return
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors of shape {vectors.shape} for an index of {self.dim}")
        self._rows.append(vectors)
        if self.kind == "ivf":
            if self._ivf is not None:
                if not store_only:
                    self._ivf.add(vectors)
            elif self.ntotal >= self._train_size():
                self._train()

    def extend(self, rows: int) -> Vectors:
        """Append ``rows`` zero vectors as the next slots of a flat index and return them as a
        writable view, to be filled in place (reading a file straight into the index)."""
        if self.kind != "flat" or self._rows is None:
            raise ValueError(f"extend() is for flat indexes, not {self.kind!r}")
        self._view = None
        return self._rows.extend(rows)

    def reserve(self, rows: int) -> None:
        """Allocate room for ``rows`` more vectors at once (`Rows.reserve`). HNSW: no
        effect."""
        if self._rows is None or rows <= 0:
            return
        self._view = None  # the storage may move
        self._rows.reserve(rows)

    def _train_size(self) -> int:
        nlist = self.params.ivf_nlist
        return max(self.params.ivf_min_train, 39 * nlist) if nlist else self.params.ivf_min_train

    def _train(self) -> None:
        n = self.ntotal
        nlist = min(n, self.params.ivf_nlist or max(16, int(4 * math.sqrt(n))))
        quantizer = faiss.IndexFlat(self.dim, faiss_metric(self.distance))
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss_metric(self.distance))
        ivf.own_fields = True
        quantizer.this.disown()  # type: ignore[attr-defined]
        data = self.vectors()
        ivf.train(data)
        ivf.add(data)
        self._ivf = ivf

    @property
    def trained(self) -> bool:
        return self.kind != "ivf" or self._ivf is not None

    @property
    def views_outlive_adds(self) -> bool:
        """Whether a view from `vectors` stays valid after later adds: flat and IVF keep
        their vectors in `Rows`, which never move or free rows under a view; HNSW's are in
        FAISS's storage, which an add may reallocate."""
        return self._rows is not None

    def vectors(self) -> Vectors:
        """A read-only view of every slot's vector, valid until the next `add` (and after it,
        where `views_outlive_adds`)."""
        view = self._view
        if view is not None:
            return view
        if self._rows is not None:
            view = self._rows.view()
        else:
            n = self.ntotal
            if n == 0:
                return np.zeros((0, self.dim), dtype=np.float32)
            view = faiss.rev_swig_ptr(self._store.get_xb(), n * self.dim).reshape(n, self.dim)
        self._view = view
        return view

    def search(
        self, queries: Vectors, k: int, selector: Any = None
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """FAISS's raw scores (similarity for inner product, squared L2) and slot labels."""
        k = min(k, self.ntotal)
        if self.kind == "hnsw":
            params: Any = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
                efSearch=max(self.params.ef_search, k)
            )
            index = self._index
        elif self.kind == "ivf" and self._ivf is not None:
            params = faiss.SearchParametersIVF(nprobe=self.params.ivf_nprobe)  # type: ignore[call-arg]
            index = self._ivf
        else:
            assert self._rows is not None
            queries = np.ascontiguousarray(queries, dtype=np.float32)
            if queries.ndim != 2 or queries.shape[1] != self.dim:
                raise ValueError(f"queries of shape {queries.shape} for an index of {self.dim}")
            return self._rows.search(queries, k, l2=self.distance == "l2", selector=selector)
        if selector is not None:
            params.sel = selector
        return index.search(queries, k, params=params)  # type: ignore[no-any-return]

    def search_one(self, query: Vectors, k: int) -> tuple[list[float], list[int]]:
        """A flat index's k best raw scores and slot labels for one query, as lists: FAISS's
        brute-force search without its wrapper's checks and conversions (``query``: a
        C-contiguous float32 array of shape (1, d), as `prepare_query` makes it; ``k`` from 1
        to the number of vectors held), into its thread's buffers (`_OUT`: on a small store,
        allocating them and taking their addresses for each search was 6-14% of it with cold
        caches). Other indexes: `search`'s."""
        rows = self._rows
        if rows is None or self._ivf is not None:
            scores_2d, labels_2d = self.search(query, k)
            return scores_2d[0].tolist(), labels_2d[0].tolist()
        try:
            scores, labels, scores_at, labels_at = _OUT.buffers[k]
        except (AttributeError, KeyError):  # (this thread's first search of k results)
            scores, labels, scores_at, labels_at = _new_buffers(k)
        rows.search_into(query, 1, k, scores_at, labels_at, l2=self.distance == "l2")
        return scores.tolist(), labels.tolist()

    @property
    def snapshotable(self) -> bool:
        """Whether this index is worth saving (rebuilding it on open would be slow)."""
        return self.kind == "hnsw" or (self.kind == "ivf" and self._ivf is not None)

    def serialize(self) -> bytes | None:
        """The FAISS bytes worth saving (HNSW graph, trained IVF), or ``None`` for flat."""
        if self.kind == "hnsw":
            return bytes(faiss.serialize_index(self._index))
        if self.kind == "ivf" and self._ivf is not None:
            return bytes(faiss.serialize_index(self._ivf))
        return None


def _new_buffers(k: int) -> tuple[Any, Any, Any, Any]:
    """Room for k scores and k labels, and their addresses for FAISS; kept for this thread's
    next searches of k results (of up to `_OUT_KS` sizes)."""
    scores, labels = np.empty(k, dtype=np.float32), np.empty(k, dtype=np.int64)
    out = scores, labels, SWIG_PTR(scores), SWIG_PTR(labels)
    kept: dict[int, Any] | None = getattr(_OUT, "buffers", None)
    if kept is None:
        kept = _OUT.buffers = {}
    if len(kept) < _OUT_KS:
        kept[k] = out
    return out
