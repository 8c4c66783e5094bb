"""`TextIndex`: a store's keyword index in memory, and BM25 ranking over its live slots.

Each applied segment adds a block of slots and its postings, in one of three forms: decoded
(`Postings`, a fresh commit), encoded (a ``postings`` section read from a file, decoded on
first use) or none at all (a segment written before the index existed, or with
``keyword_index=False``: its postings are built from its records' texts on first use). The
first keyword search turns every pending block into postings over global slots: each term
gets one id for the whole store, and a block keeps its terms sorted by id, each with its
rows and frequencies. Trailing blocks are merged as they come (a block at least half the
size of the one before joins it), so a store answers a term from a few blocks whatever the
number of commits.

Corpus statistics are those of the live documents: a deleted or replaced slot is cleared in
``alive`` at once and counts in nothing (document count, lengths, document frequencies).

Scoring is BM25 as Lucene and ``bm25s`` (method ``lucene``) compute it, with ``k1 = 1.5``
and ``b = 0.75``::

    score(d, q) = sum over the distinct terms t of q found in d of
                  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * len(d) / avglen))
    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

with ``N`` the live documents, ``df(t)`` the live documents holding ``t`` and ``avglen`` their
mean length in terms. Every matching document scores above 0.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.postings import (
    I64,
    U32,
    EncodedPostings,
    Postings,
    index_terms,
    ranges,
)
from vectordb_manager.engine.records import RawRecords, damaged
from vectordb_manager.engine.term_table import IdMap

K1 = 1.5
"""BM25's term-frequency saturation (Lucene's and bm25s's default)."""
B = 0.75
"""BM25's length normalisation."""

_TEXT_CHUNK = 20_000  # records decoded at a time to build an old segment's postings
F64 = np.ndarray[Any, np.dtype[np.float64]]
_NO_POSTINGS = (np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint32))


Source = Postings | EncodedPostings | RawRecords | Sequence[str]


@dataclass(frozen=True)
class _Block:
    """Postings of the slots from ``first`` on: term ``keys[i]`` (global ids, ascending) has
    rows ``rows[starts[i]:ends[i]]`` (relative to ``first``, ascending) and their frequencies."""

    first: int
    stop: int  # the slot after its last
    keys: I64
    starts: I64
    ends: I64
    rows: U32
    tfs: U32

    @property
    def size(self) -> int:
        return len(self.rows)

    def flat(self) -> tuple[I64, I64, U32]:
        """(term id, slot, frequency) of every posting, by term id then slot."""
        lens = self.ends - self.starts
        at = ranges(self.starts, lens)
        return np.repeat(self.keys, lens), self.rows[at].astype(np.int64) + self.first, self.tfs[at]


class TextIndex:
    """The keyword index of one `StoreState` (see the module docstring)."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.vocab = IdMap()  # term -> global id (a new term gets the next)
        self.terms: list[str] = []  # global id -> term
        self._blocks: list[_Block] = []
        self._pending: list[tuple[int, int, Source]] = []  # (first slot, rows, source)
        self._pending_ids: dict[int, I64] = {}  # first slot -> global ids of its block's terms
        self._order = np.zeros(0, dtype=np.int64)  # global ids by term (see `_ranks`)
        self._sorted = np.zeros(0, dtype=object)  # the terms sorted
        self._rank = np.zeros(0, dtype=np.int64)  # global id -> its place in `_sorted`
        self._alive = np.zeros(0, dtype=bool)
        self._lengths = np.zeros(0, dtype=np.uint32)
        self._slots = 0
        self._stats: tuple[int, float] | None = None
        self._norm = np.zeros(0)  # per slot: k1 * (1 - b + b * length / avglen), with _stats
        self._dead = 0  # slots killed
        self._lock = threading.RLock()
        self.from_texts = False  # whether some slots came without postings (built from texts)

    # -- changes (under the state's write lock) ----------------------------------------------
    def add(self, first: int, rows: int, source: Source) -> None:
        """Slots ``first`` .. ``first + rows`` (live), with their postings or where to get them."""
        end = first + rows
        if end > len(self._alive):
            size = max(end, 2 * len(self._alive), 1024)
            self._alive = np.concatenate([self._alive, np.zeros(size - len(self._alive), bool)])
            grown = np.zeros(size - len(self._lengths), np.uint32)
            self._lengths = np.concatenate([self._lengths, grown])
        self._alive[first:end] = True
        self._slots = end
        if not isinstance(source, Postings | EncodedPostings):
            self.from_texts = True
        self._pending.append((first, rows, source))
        self._stats = None

    def kill(self, slot: int) -> None:
        """A deleted or replaced slot: it no longer counts anywhere."""
        if self._alive[slot]:
            self._alive[slot] = False
            self._dead += 1
        self._stats = None

    def live_slots(self) -> I64:
        """The live slots, ascending."""
        return np.flatnonzero(self._alive[: self._slots]).astype(np.int64, copy=False)

    @property
    def ready(self) -> bool:
        """Whether every block has its postings (no text is left to analyze)."""
        return not self._pending

    def ensure(self) -> None:
        """Decode or build the postings of every pending block (once; thread-safe)."""
        if not self._pending:
            return
        with self._lock:
            while self._pending:
                first, rows, source = self._pending[0]
                self._register(first, self._postings(rows, source))
                self._pending.pop(0)
            self._stats = None

    def _postings(self, rows: int, source: Source) -> Postings:
        if isinstance(source, Postings):
            return source
        if isinstance(source, EncodedPostings):
            return source.decode(rows)
        if isinstance(source, RawRecords):
            return Postings.build(_texts(source), self.analyzer)
        return Postings.build(source, self.analyzer)

    def _ids(self, terms: list[str]) -> I64:
        """The global ids of these terms (new ones get the next ids)."""
        vocab = self.vocab
        ids = vocab.ids(terms)
        if vocab.new:
            self.terms.extend(vocab.new)
            vocab.new = []
        return ids

    def _register(self, first: int, p: Postings) -> None:
        local = self._pending_ids.pop(first, None)
        if local is None:
            local = self._ids(p.terms)
        order = np.argsort(local, kind="stable")
        self._blocks.append(
            _Block(
                first,
                first + p.row_count,
                local[order],
                p.offsets[:-1][order],
                p.offsets[1:][order],
                p.rows,
                p.tfs,
            )
        )
        self._lengths[first : first + p.row_count] = p.lengths
        while len(self._blocks) > 1 and 2 * self._blocks[-1].size >= self._blocks[-2].size:
            last = self._blocks.pop()
            self._blocks[-1] = _merge(self._blocks[-1], last)

    # -- reading (under the state's read lock) -----------------------------------------------
    def select(self, slots: Sequence[int] | np.ndarray[Any, Any]) -> Postings:
        """The postings of these slots (ascending), as a segment of them in that order (for
        compaction: slot ``slots[i]`` becomes row ``i``). Pending blocks are decoded or built
        but not merged into the index's blocks: a merge needs only their postings.

        Each block's postings are runs (one term's rows); the runs of all the blocks, in slot
        order, are put in term order by a stable sort of the runs alone, and then copied."""
        wanted = np.asarray(slots, dtype=np.int64)
        low, high = (int(wanted[0]), int(wanted[-1]) + 1) if len(wanted) else (0, 0)
        pieces: list[tuple[int, int, I64, I64, I64, U32, U32]] = []
        with self._lock:  # (readers may register the pending blocks meanwhile)
            for block in self._blocks:
                if block.first < high and block.stop > low:  # some of its slots wanted
                    runs = (block.keys, block.starts, block.ends - block.starts)
                    pieces.append((block.first, block.stop, *runs, block.rows, block.tfs))
            for i, (first, count, source) in enumerate(self._pending):
                if first < high and first + count > low:
                    p = self._postings(count, source)
                    self._pending[i] = (first, count, p)  # decoded or built once
                    self._lengths[first : first + count] = p.lengths
                    ids = self._pending_ids.get(first)
                    if ids is None:  # (once: every merge of this block reuses them)
                        ids = self._pending_ids[first] = self._ids(p.terms)
                    runs = (ids, p.offsets[:-1], np.diff(p.offsets))
                    pieces.append((first, first + count, *runs, p.rows, p.tfs))
            rank, ordered = self._ranks()
        lengths = self._lengths[wanted]
        if not pieces:
            return Postings([], np.zeros(1, dtype=np.int64), *_NO_POSTINGS, lengths)
        at = np.cumsum([0] + [len(piece[5]) for piece in pieces])
        tids = np.concatenate([piece[2] for piece in pieces])
        starts = np.concatenate([piece[3] + at[i] for i, piece in enumerate(pieces)])
        lens = np.concatenate([piece[4] for piece in pieces])
        tfs = np.concatenate([piece[6] for piece in pieces])
        whole = all(low <= piece[0] and piece[1] <= high for piece in pieces)
        if whole and len(wanted) == high - low:  # every slot of the blocks, in order
            rows = np.concatenate([piece[5] + np.uint32(piece[0] - low) for piece in pieces])
        else:  # some slots of the blocks are not wanted
            rows = np.concatenate([piece[5] + np.int64(piece[0] - low) for piece in pieces])
            where = np.full(high - low, -1, dtype=np.int64)
            where[wanted - low] = np.arange(len(wanted))
            inside = (rows >= 0) & (rows < high - low)
            rows = np.where(inside, where[np.where(inside, rows, 0)], -1)
            keep = rows >= 0
            before = np.concatenate([[0], np.cumsum(keep)])
            lens = before[starts + lens] - before[starts]
            starts = before[starts]
            rows, tfs = rows[keep].astype(np.uint32), tfs[keep]
            some = lens > 0
            tids, starts, lens = tids[some], starts[some], lens[some]
        order = np.argsort(rank[tids], kind="stable")  # a term's runs stay in slot order
        ranks, starts, lens = rank[tids][order], starts[order], lens[order]
        at = ranges(starts, lens)
        firsts = np.flatnonzero(np.diff(ranks, prepend=-1))  # each term's first run
        df = np.add.reduceat(lens, firsts) if len(firsts) else lens
        return Postings(
            ordered[ranks[firsts]].tolist(),
            np.concatenate([[0], np.cumsum(df)]).astype(np.int64),
            rows[at],
            tfs[at].astype(np.uint32, copy=False),
            lengths.astype(np.uint32, copy=False),
        )

    def _ranks(self) -> tuple[I64, np.ndarray[Any, np.dtype[np.object_]]]:
        """Each global term id's place among the terms sorted, and the terms sorted (kept up
        to date: the terms new since the last call are sorted and put in their places)."""
        known = len(self._order)
        if known < len(self.terms):
            ids = sorted(range(known, len(self.terms)), key=self.terms.__getitem__)
            new = np.empty(len(ids), dtype=object)
            new[:] = list(map(self.terms.__getitem__, ids))
            at = np.searchsorted(self._sorted, new) if known else np.zeros(len(ids), np.int64)
            self._sorted = np.insert(self._sorted, at, new)
            self._order = np.insert(self._order, at, ids)
            self._rank = np.empty(len(self._order), dtype=np.int64)
            self._rank[self._order] = np.arange(len(self._order))
        return self._rank, self._sorted

    def stats(self) -> tuple[int, float]:
        """(live documents, their mean length in terms)."""
        stats = self._stats
        if stats is None:
            alive = self._alive[: self._slots]
            lengths = self._lengths[: self._slots].astype(np.float64)
            n = int(np.count_nonzero(alive))
            avglen = float(np.dot(lengths, alive)) / n if n else 0.0
            self._norm = K1 * (1.0 - B + (B / avglen) * lengths) if avglen else lengths
            stats = self._stats = (n, avglen)
        return stats

    def search(
        self, query: str, k: int, allowed: np.ndarray[Any, np.dtype[np.int64]] | None = None
    ) -> tuple[F64, I64]:
        """The BM25 scores and slots of the ``k`` best live documents holding a term of
        ``query`` (among the ``allowed`` live slots, when given), best first (ties: the lower
        slot first)."""
        found = self._accumulate(query, allowed)
        if isinstance(found, np.ndarray):
            return _top_dense(found, k)
        return _top(found[0], found[1], k)

    def scores(
        self, query: str, allowed: np.ndarray[Any, np.dtype[np.int64]] | None = None
    ) -> tuple[F64, I64]:
        """The BM25 scores and slots (ascending) of every live document holding a term of
        ``query`` (among the ``allowed`` live slots, when given): `search` without its cut."""
        found = self._accumulate(query, allowed)
        if isinstance(found, np.ndarray):
            slots = np.flatnonzero(found > 0)
            return found[slots], slots.astype(np.int64)
        return found

    def _accumulate(
        self, query: str, allowed: np.ndarray[Any, np.dtype[np.int64]] | None
    ) -> tuple[F64, I64] | F64:
        """Every matching slot's score: (scores, slots ascending), or a score per slot (0: no
        match) when the matches are many."""
        nothing = (np.zeros(0), np.zeros(0, dtype=np.int64))
        terms = dict.fromkeys(index_terms(self.analyzer, query))
        if not terms:
            return nothing
        self.ensure()
        tids = [i for i in map(self.vocab.get, terms) if i is not None]
        n = self.stats()[0]  # (and the norms of the slots, for this mean length)
        if not tids or not n:
            return nothing
        alive, norm = self._alive, self._norm
        mask = None
        if allowed is not None:  # the passing slots are live ones
            mask = np.zeros(len(alive), dtype=bool)
            mask[allowed] = True
        slot_parts: list[I64] = []
        weight_parts: list[F64] = []
        for tid in tids:
            slots, tfs = self._gather(tid)
            keep = None
            if self._dead:  # df counts the live documents only
                keep = alive[slots]
                df = int(np.count_nonzero(keep))
            else:
                df = len(slots)
            if not df:
                continue
            if mask is not None:
                keep = mask[slots]
            if keep is not None:
                slots, tfs = slots[keep], tfs[keep]
            tf = tfs.astype(np.float64)
            weight = norm[slots]
            weight += tf
            np.divide(tf, weight, out=weight)
            weight *= np.log1p((n - df + 0.5) / (df + 0.5))  # idf
            slot_parts.append(slots)
            weight_parts.append(weight)
        if not slot_parts:
            return nothing
        if len(slot_parts) == 1:
            return weight_parts[0], slot_parts[0]
        every = np.concatenate(slot_parts)
        weights = np.concatenate(weight_parts)
        if len(every) * 8 < self._slots:
            slots, inverse = np.unique(every, return_inverse=True)
            scores = np.bincount(inverse, weights=weights, minlength=len(slots))
            return scores.astype(np.float64), slots
        total = np.bincount(every, weights=weights, minlength=self._slots)
        return total.astype(np.float64, copy=False)

    def _gather(self, tid: int) -> tuple[I64, U32]:
        """The slots (ascending) and frequencies of one term, over every block."""
        slots: list[I64] = []
        tfs: list[U32] = []
        for block in self._blocks:
            j = int(np.searchsorted(block.keys, tid))
            if j < len(block.keys) and block.keys[j] == tid:
                s, e = int(block.starts[j]), int(block.ends[j])
                slots.append(block.rows[s:e].astype(np.int64) + block.first)
                tfs.append(block.tfs[s:e])
        if len(slots) == 1:
            return slots[0], tfs[0]
        if not slots:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint32)
        return np.concatenate(slots), np.concatenate(tfs)


def _top(scores: F64, slots: I64, k: int) -> tuple[F64, I64]:
    """The k best (score descending, then slot ascending) of ``slots`` (ascending)."""
    if len(scores) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)[: k - len(above)]
        pick = np.concatenate([above, tied])
        scores, slots = scores[pick], slots[pick]
    order = np.lexsort((slots, -scores))
    return scores[order], slots[order]


def _top_dense(total: F64, k: int) -> tuple[F64, I64]:
    """`_top` of the slots with a score above 0 in ``total`` (a score per slot), without
    listing them all first."""
    if k < len(total):
        kth = float(np.partition(total, len(total) - k)[len(total) - k])
        if kth > 0:
            above = np.flatnonzero(total > kth)
            tied = np.flatnonzero(total == kth)[: k - len(above)]
            slots = np.concatenate([above, tied])
            scores = total[slots]
            order = np.lexsort((slots, -scores))
            return scores[order], slots[order].astype(np.int64)
    slots = np.flatnonzero(total > 0)
    return _top(total[slots], slots.astype(np.int64), k)


def _merge(a: _Block, b: _Block) -> _Block:
    """One block holding the postings of ``a`` and of ``b`` (whose slots all follow a's)."""
    ta, sa, fa = a.flat()
    tb, sb, fb = b.flat()
    tids = np.concatenate([ta, tb])
    order = np.argsort(tids, kind="stable")  # a's rows before b's within a term: ascending
    rows = (np.concatenate([sa, sb]) - a.first)[order].astype(np.uint32)
    tfs = np.concatenate([fa, fb])[order]
    keys, counts = np.unique(tids[order], return_counts=True)
    ends = np.cumsum(counts)
    return _Block(a.first, b.stop, keys, ends - counts, ends, rows, tfs)


def _texts(raw: RawRecords) -> Iterator[str]:
    """The texts of undecoded records, a chunk at a time (nothing kept)."""
    for start in range(0, len(raw), _TEXT_CHUNK):
        for r in raw.decode(start, start + _TEXT_CHUNK):
            text = r.get("text") if type(r) is dict else None
            if type(text) is not str:
                raise damaged(raw.path, "holds a record without a text")
            yield text


__all__ = ["K1", "B", "TextIndex"]
