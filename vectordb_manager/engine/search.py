"""Search over one `StoreState`: nearest neighbours, exact under filters.

A filter is compiled once (`filters`); the slots that pass it are found from the value columns
(`value_index`) where the filter allows (equality, ``$in`` and ranges), else by testing each
record. Then the k nearest among exactly
those slots are found, so a filtered search returns the true top k of the passing documents:

* past an eighth of the slots, FAISS searches with a bitmap of the passing slots
  (``IDSelectorBitmap``: a bit test per slot is cheaper than copying the vectors);
* otherwise, or when an approximate index comes back short, the passing vectors are compared
  with the query exactly in NumPy.

An unfiltered search asks FAISS for k (plus the tombstones, when there are few) and falls back
to the same exact search when an approximate index returns fewer than k live results.
Scores are returned as distances: lower is closer, for every metric.

Keyword search ranks the records holding a query's terms by BM25 (`text_index`), among the
same passing slots when filtered, so it too returns the true top k of the passing documents.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import faiss
import numpy as np
from langchain_core.documents import Document
from pydantic import BaseModel

from vectordb_manager.engine.filters import CompiledFilter
from vectordb_manager.engine.format import Vectors
from vectordb_manager.engine.records import SCALARS, PlainRecord
from vectordb_manager.engine.state import StoreState
from vectordb_manager.errors import InvalidInputError

Scores = np.ndarray[Any, Any]
Slots = np.ndarray[Any, Any]
Scored = tuple[Document, float]  # a document and its distance
_FEW_TOMBSTONES = 4096  # up to this many, an unfiltered search asks FAISS for k + tombstones
_GATHER_BYTES = 1 << 20  # vectors compared at a time in an exact search (682 of 384 floats)


class Hit(NamedTuple):
    """A search result: the document, its distance (lower is closer) and, when asked for,
    its stored vector (normalised for cosine)."""

    document: Document
    distance: float
    vector: Vectors | None = None


class KeywordHit(NamedTuple):
    """A keyword search result: the document and its BM25 score (higher is better; see
    `text_index` for the formula)."""

    document: Document
    score: float


def require_k(k: object, name: str = "k") -> int:
    """``k`` as an int (NumPy integers included); `InvalidInputError` unless it is a positive
    integer."""
    if type(k) is int and k > 0:  # (the usual k, told apart in one step)
        return k
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise InvalidInputError(f"{name}={k!r} must be a positive integer")
    return int(k)


def search(
    st: StoreState,
    q: Vectors,
    k: int,
    where: CompiledFilter | None,
    *,
    with_vectors: bool = False,
) -> list[Hit]:
    """The k nearest live records of ``st`` passing ``where``, closest first."""
    if st.index is None or not st.live:
        return []
    if where is None:
        if not with_vectors:
            pairs = _flat_pairs(st, q, k)
            if pairs is not None:
                return [Hit(doc, d) for doc, d in pairs]
        scores, slots = _search_all(st, q, k)
    else:
        allowed = passing(st, where)
        if not allowed.size:
            return []
        scores, slots = _search_subset(st, q, k, allowed)
    found = zip(slots.tolist(), distances(st.distance, scores).tolist(), strict=True)
    if not with_vectors:
        return [Hit(document(st, s), d) for s, d in found]
    stored = st.index.vectors()
    return [Hit(document(st, s), d, np.array(stored[s])) for s, d in found]


def scored(st: StoreState, q: Vectors, k: int, where: CompiledFilter | None) -> list[Scored]:
    """`search`'s hits as (document, distance) pairs, as a LangChain store returns them. The
    usual search, unfiltered on a small flat store without tombstones, is made without `Hit`s
    and the general path's steps in between: there its overhead is a good part of its time,
    the more so with cold caches (after the query's embedding, say)."""
    if where is None and st.slot:  # (any live record)
        pairs = _flat_pairs(st, q, k)
        if pairs is not None:
            return pairs
    return [(h.document, h.distance) for h in search(st, q, k, where)]


def keyword_search(
    st: StoreState, query: str, k: int, where: CompiledFilter | None
) -> list[KeywordHit]:
    """The k best BM25 matches of ``query`` among the live records of ``st`` passing
    ``where`` (scores over the whole store's statistics; the filter only chooses among
    them), best first."""
    if not st.live:
        return []
    allowed = None
    if where is not None:
        allowed = passing(st, where)
        if not allowed.size:
            return []
    scores, slots = st.text.search(query, k, allowed)
    return [
        KeywordHit(document(st, s), sc)
        for sc, s in zip(scores.tolist(), slots.tolist(), strict=True)
    ]


def passing(st: StoreState, where: CompiledFilter) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The live slots whose metadata passes the filter, ascending."""
    predicate = where.predicate
    if where.plan is None:
        return np.fromiter((s for s, m in st.metas() if predicate(m)), dtype=np.int64)
    candidates = st.plan_slots(where.plan)  # live ones
    if where.complete:
        return candidates
    return np.fromiter(
        (s for s in candidates.tolist() if predicate(st.record(s).metadata)), dtype=np.int64
    )


def _flat_pairs(st: StoreState, q: Vectors, k: int) -> list[Scored] | None:
    """An unfiltered search of one query on a live flat inner-product store with few
    tombstones as (document, distance) pairs: FAISS's on a small store without tombstones
    (`_search_small`), else `_flat_one`'s; ``None`` where neither applies."""
    if not _flat_one_applies(st, q):
        return None
    if not st.dead and len(st.ids) * q.shape[1] <= ONE_THREAD_PRODUCT:  # (ids: per slot)
        pairs = _search_small(st, q, k)
        if pairs is not None:
            return pairs
    scores, slots = _flat_one(st, q, k)
    return _pairs(st, zip(scores.tolist(), slots.tolist(), strict=True))


def _pairs(st: StoreState, found: Iterable[tuple[float, int]]) -> list[Scored]:
    """(document, distance) of (raw inner product, slot) pairs, made in Python: the same
    float64 distances as `distances`. Most stores are small, and there a search's overhead
    is a good part of its time, the more so with cold caches: a decoded flat record's
    document is made here, without a `document` call per hit (measured at 1,854 vectors:
    2-12% of the whole search)."""
    recs, ids, cosine = st.recs, st.ids, st.distance == "cosine"
    pairs: list[Scored] = []
    for score, s in found:
        # (a PlainRecord's metadata holds scalars only, which a shallow copy protects;
        # `document` decodes the record, or copies its metadata deeply)
        r = recs[s]
        doc = make_document(ids[s], r[0], dict(r[1])) if type(r) is PlainRecord else document(st, s)
        pairs.append((doc, 1.0 - score if cosine else -score))
    return pairs


def _search_small(st: StoreState, q: Vectors, k: int) -> list[Scored] | None:
    """An unfiltered search of a small flat inner-product store without tombstones by FAISS
    (on this thread, and cheaper than `_flat_one` there) as (document, distance) pairs, or
    ``None`` where equal scores straddle the k-th place: FAISS does not keep the lower slots
    among those, `_flat_one` does. Asking for one more than k tells: the k best scores are
    FAISS's exactly, and unless the next one equals the k-th, so is the set of their slots
    (put in slot order among equal scores)."""
    assert st.index is not None
    raw, labels = st.index.search_one(q, min(k + 1, len(st.ids)))  # (ids: one per slot)
    # `_settled`'s steps, inline: with cold caches its call and list were 5% of the search
    if len(raw) > k:
        if raw[k] == raw[k - 1]:
            return None
        del raw[k:], labels[k:]
    if len(set(raw)) < len(raw):  # (equal scores: in slot order, as the exact paths rank them)
        return _pairs(st, sorted(zip(raw, labels, strict=True), key=_best_then_slot))
    return _pairs(st, zip(raw, labels, strict=True))


def _settled(
    scores: list[float], slots: list[int], k: int, *, l2: bool, cut: bool
) -> list[tuple[float, int]] | None:
    """FAISS's k best (asked for one more) as (raw score, slot), best first, ranked as the
    exact paths rank them: equal scores in slot order (FAISS's heap leaves them in any
    order). ``cut``: ``None`` where equal scores straddle the k-th place, for the exact path
    to answer (FAISS need not have kept the lower slots among them, the exact paths do)."""
    if len(scores) > k:
        if cut and scores[k] == scores[k - 1]:
            return None
        del scores[k:], slots[k:]
    found = list(zip(scores, slots, strict=True))
    if len(set(scores)) < len(scores):  # (equal scores: in C, cheaper than a pairwise look)
        found.sort(key=None if l2 else _best_then_slot)  # (l2: the smallest first)
    return found


def _best_then_slot(found: tuple[float, int]) -> tuple[float, int]:
    return -found[0], found[1]


def _flat_one_applies(st: StoreState, q: Vectors) -> bool:
    """Whether `_flat_one` answers an unfiltered search of ``q`` on ``st``."""
    return st.kind == "flat" and st.distance != "l2" and len(q) == 1 and st.dead <= _FEW_TOMBSTONES


def _search_all(st: StoreState, q: Vectors, k: int) -> tuple[Scores, Slots]:
    assert st.index is not None
    if _flat_one_applies(st, q):
        return _flat_one(st, q, k)
    if not st.dead:
        scores, slots = st.index.search(q, k)
        valid = slots[0] >= 0
        if int(valid.sum()) >= min(k, st.live):
            return scores[0][valid], slots[0][valid]
        # an approximate index can come back short (HNSW among many equal vectors, IVF
        # probing too few lists): fewer than k only when fewer exist, so search exactly
        return _exact(st, q, min(k, st.live), st.live_slots())
    if st.dead <= _FEW_TOMBSTONES:
        scores, slots = st.index.search(q, k + st.dead)
        ids = st.ids
        keep = [j for j, s in enumerate(slots[0]) if s >= 0 and ids[s] is not None][:k]
        if len(keep) >= min(k, st.live):
            return scores[0][keep], slots[0][keep]
    return _search_subset(st, q, k, st.live_slots())


def _flat_one(st: StoreState, q: Vectors, k: int) -> tuple[Scores, Slots]:
    """One query against a flat inner-product index, in NumPy: one matrix-vector product over
    the stored vectors in place (BLAS) and a partial sort. FAISS's own search of one query
    keeps a heap row by row: 2.5-4x as long at 100k x 384 here, and 4x at 2,000."""
    assert st.index is not None
    scores = product(st.index.vectors(), q[0])
    if not st.dead:
        order = _top(-scores, min(k, len(scores)))
        return scores[order], order
    order = _top(-scores, min(k + st.dead, len(scores)))
    ids = st.ids
    keep = order[[ids[s] is not None for s in order.tolist()]][:k]
    return scores[keep], keep


_vecdot = getattr(np, "vecdot", None)  # NumPy 2; with 1.26, BLAS's product
ONE_THREAD_PRODUCT = 1 << 22
"""Up to this many stored values (16 MB of float32: 10,922 vectors of 384), `product` runs on
the calling thread alone, and an unfiltered search is FAISS's (`_search_small`)."""


def product(stored: np.ndarray[Any, Any], q: np.ndarray[Any, Any]) -> Scores:
    """``stored @ q`` for one query vector. A small store's product runs on this thread alone,
    a dot product per row: BLAS splits a matrix product across its threads, and waking them
    costs more than the product at a few thousand vectors; on a busy machine the split
    product waits for a core (measured on 2 busy cores, 1,854 x 384: p50 6.7 ms split,
    0.27 ms on one thread). Equal rows get equal scores either way."""
    if stored.size > ONE_THREAD_PRODUCT or _vecdot is None:
        return stored @ q  # type: ignore[no-any-return]
    return _vecdot(stored, q)  # type: ignore[no-any-return]


def _search_subset(st: StoreState, q: Vectors, k: int, allowed: Slots) -> tuple[Scores, Slots]:
    assert st.index is not None
    want = min(k, int(allowed.size))
    if bitmap_cheaper(st, allowed):
        bits = np.zeros(st.slots, dtype=bool)
        bits[allowed] = True
        packed = np.packbits(bits, bitorder="little")
        selector = faiss.IDSelectorBitmap(st.slots, faiss.swig_ptr(packed))
        scores, slots = st.index.search(q, want + 1, selector)
        valid = slots[0] >= 0
        if int(valid.sum()) >= want:  # (an approximate index's ties at the cut: as found)
            l2, flat = st.distance == "l2", st.index.kind == "flat"
            found = _settled(scores[0][valid].tolist(), slots[0][valid].tolist(), want,
                             l2=l2, cut=flat)  # fmt: skip
            if found is not None:
                raw, at = zip(*found, strict=True)
                return np.asarray(raw, np.float32), np.asarray(at, np.int64)
    return _exact(st, q, want, allowed)


def bitmap_cheaper(st: StoreState, allowed: Slots) -> bool:
    """Whether a filtered search over ``allowed`` asks FAISS with a bitmap (else it compares
    the allowed vectors exactly in NumPy)."""
    # a bitmap search costs a bit test per slot; gathering the allowed vectors costs a copy
    # of each: past an eighth of the slots, the bitmap is cheaper (measured). A flat index's
    # inner products over most of the slots of their span: cheaper still as one product
    # over the span's stored vectors, in place (see `exact_raw`)
    assert st.index is not None
    if st.index.kind == "flat" and _product_cheaper(st, allowed):
        return False
    return bool(allowed.size > st.slots // 8 and st.index.trained)


_PRODUCT_SHARE = 0.35
"""Past this share of the slots from the first allowed one to the last (its span), a flat
inner-product search over some of them computes the product with every stored vector of the
span and keeps the allowed ones' scores: one pass over the vectors in place, where FAISS's
bitmap search tests each slot and compares the allowed ones one at a time (measured, one
query, k=10, 100k and 1M x 384: equal at 35%; at 50% 8.0 ms against 10.3 ms and 81 against
100 ms; at 75% 8.1 against 13.6 ms). Ranges over a key that grows as documents are added (a
date, a sequence number) pass runs of neighbouring slots, whose span is what they pass."""


def _product_cheaper(st: StoreState, allowed: Slots) -> bool:
    return st.distance != "l2" and allowed.size > _PRODUCT_SHARE * _span(allowed)


def _span(allowed: Slots) -> int:
    """How many slots lie from the first of ``allowed`` (ascending) to the last."""
    return int(allowed[-1]) - int(allowed[0]) + 1 if allowed.size else 0


def exact_raw(st: StoreState, q: Vectors, allowed: Slots) -> Scores:
    """The raw score of each ``allowed`` slot's vector (ascending slots) against ``q``
    (FAISS's: squared L2, or the inner product), computed exactly in NumPy."""
    assert st.index is not None
    stored = st.index.vectors()
    if _product_cheaper(st, allowed):
        # most of their span: one product over its stored vectors in place, not copying them
        first, end = int(allowed[0]), int(allowed[-1]) + 1
        scores = product(stored[first:end], q[0])
        if end - first == allowed.size:  # (every slot of the span)
            return scores
        return scores[allowed - first if first else allowed]
    # the allowed vectors a block at a time: a copy of them all would cost as much memory
    # again (188 MB for 12% of 1M x 384), and its first touch of fresh pages more than the
    # products; a block of 1 MB stays in the cache and is reused by the allocator (measured:
    # 12% of 100k, 4 ms the first time, where one copy took 18 ms and blocks of 16 MB 8 ms)
    scores = np.empty(len(allowed), dtype=np.float32)
    rows = max(1, _GATHER_BYTES // (4 * stored.shape[1]))
    for at in range(0, len(allowed), rows):
        vecs = stored[allowed[at : at + rows]]
        if st.distance == "l2":
            vecs -= q
            scores[at : at + len(vecs)] = np.einsum("ij,ij->i", vecs, vecs)
        else:
            scores[at : at + len(vecs)] = vecs @ q[0]
    return scores


def _exact(st: StoreState, q: Vectors, k: int, allowed: Slots) -> tuple[Scores, Slots]:
    scores = exact_raw(st, q, allowed)
    order = _top(scores if st.distance == "l2" else -scores, k)
    return scores[order], allowed[order]


def _top(keys: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    """The positions of the ``k`` smallest keys, smallest first; among equal keys the lower
    position first, at the cut too (as FAISS keeps the lower ids among equal scores)."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(keys):
        part = np.argpartition(keys, k - 1)[:k]
        held = keys[part]
        cut = held.max()
        if np.count_nonzero(keys == cut) > np.count_nonzero(held == cut):
            below = np.flatnonzero(keys < cut)  # ties across the cut: the lowest positions
            part = np.concatenate([below, np.flatnonzero(keys == cut)[: k - len(below)]])
            held = keys[part]
        return part[np.lexsort((part, held))]
    return np.argsort(keys, kind="stable")


def distances(distance: str, raw: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """`to_distance` of each raw score (the same float64 values)."""
    values = raw.astype(np.float64)
    if distance == "l2":
        return np.sqrt(np.maximum(values, 0.0))  # type: ignore[no-any-return]
    if distance == "cosine":
        return 1.0 - values
    return -values


def to_distance(distance: str, raw: float) -> float:
    """FAISS's raw score as a distance: lower is closer, for every metric."""
    if distance == "l2":
        return float(np.sqrt(max(raw, 0.0)))
    if distance == "cosine":
        return 1.0 - raw
    return -raw


_PYDANTIC_SLOTS = {
    "__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"
}  # fmt: skip


def _document_maker() -> Callable[[str | None, str, dict[str, Any]], Document]:
    """A function making ``Document(id=, page_content=, metadata=)`` from values the store
    checked when they were written, without pydantic validating them again (a third of the
    time of the validated constructor, which a search pays per result). It fills in what the
    validated constructor makes of a reference document; if this version of langchain-core
    builds documents any differently, the validated constructor is used instead."""

    def validated(doc_id: str | None, text: str, meta: dict[str, Any]) -> Document:
        return Document(id=doc_id, page_content=text, metadata=meta)

    ref = validated("i", "t", {"k": 1})
    template = dict(ref.__dict__)
    fields_set = ref.__pydantic_fields_set__
    extra, private = ref.__pydantic_extra__, ref.__pydantic_private__
    if extra is not None or private is not None or set(BaseModel.__slots__) != _PYDANTIC_SLOTS:
        return validated
    new, set_attr = object.__new__, object.__setattr__
    members = vars(BaseModel)  # (the slots' descriptors: setting through them skips a lookup)
    set_fields = members["__pydantic_fields_set__"].__set__
    set_extra = members["__pydantic_extra__"].__set__
    set_private = members["__pydantic_private__"].__set__

    def unchecked(doc_id: str | None, text: str, meta: dict[str, Any]) -> Document:
        doc = new(Document)
        values = template.copy()
        values["id"], values["page_content"], values["metadata"] = doc_id, text, meta
        set_attr(doc, "__dict__", values)
        set_fields(doc, fields_set.copy())  # (pydantic adds to it when a field is set)
        set_extra(doc, None)
        set_private(doc, None)
        return doc

    probe = unchecked("i", "t", {"k": 1})
    same = probe == ref and repr(probe) == repr(ref) and probe.model_dump() == ref.model_dump()
    return unchecked if same else validated


make_document = _document_maker()


def document(st: StoreState, slot: int) -> Document:
    """The live record at ``slot`` as a new `Document` (callers cannot change the store
    through it; flat metadata needs no deep copy)."""
    record = st.record(slot)
    meta = record[1]
    if type(record) is PlainRecord or SCALARS.issuperset(map(type, meta.values())):
        return make_document(st.ids[slot], record[0], dict(meta))
    return make_document(st.ids[slot], record[0], copy.deepcopy(meta))


def ids_by_value(st: StoreState, key: str) -> list[tuple[Any, list[str]]]:
    """The live ids grouped by their value of metadata ``key`` (see `Engine.ids_by_value`)."""
    ids = st.ids
    groups = st.values.groups(key)
    return [(value, [ids[s] for s in slots.tolist()]) for value, slots in groups]
