"""`StoreState`: the in-memory records, id map and index of one store version.

Slots are append-only; a deleted or replaced record leaves a tombstone (``ids[slot] is None``)
until compaction builds a new state without them. Records read from files stay undecoded
(raw JSON lines) until something needs them: a search result, a filter, a merge. Opening a
store therefore decodes only ids and vectors; and of the records decoded one by one, only
about `DECODED_KEPT` stay decoded.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.columns import EncodedValues
from vectordb_manager.engine.filters import Plan
from vectordb_manager.engine.format import RawRecords, SegmentData, Vectors, encode_record
from vectordb_manager.engine.index import IndexParams, VectorIndex
from vectordb_manager.engine.postings import Postings
from vectordb_manager.engine.records import SCALARS, PlainRecord, Record
from vectordb_manager.engine.text_index import Source, TextIndex
from vectordb_manager.engine.value_index import ValueIndex

LAZY: Any = object()  # the slot's record is still undecoded, in its segment's raw lines
DECODED_KEPT = 200_000
"""At most about this many records decoded one by one (a search's results, a filter's
candidates) are kept decoded; past it they are dropped back to their raw lines (decoded
again when needed), so that a long-running process's memory does not grow towards every
record decoded (~0.85 KB each for ~100-character texts) as queries touch more of a large
store. `materialize` (a filter that tests every record) keeps them all, as asked."""


class StoreState:
    """Records by slot, the id -> slot map and the index over the slots."""

    def __init__(
        self,
        kind: str,
        dim: int | None,
        distance: str,
        params: IndexParams,
        index: VectorIndex | None = None,
        *,
        analyzer: Analyzer | None = None,
    ) -> None:
        self.kind = kind
        self.distance = distance
        self.params = params
        self.ids: list[str | None] = []
        # per slot: a Record, LAZY (undecoded: in the raw lines of the block holding the slot;
        # one shared object, so a million undecoded records cost one pointer each) or None
        # (tombstone)
        self.recs: list[Any] = []
        self._raw: list[tuple[RawRecords, int] | None] = []  # (lines, first slot)
        self._raw_starts: list[int] = []  # first slot of each raw block, ascending
        self._lazy = 0  # how many raw blocks are still undecoded
        self._decoded: list[int] = []  # slots `record` decoded (see `DECODED_KEPT`)
        self.slot: dict[str, int] = {}
        self.dead = 0
        self.index: VectorIndex | None = index
        if index is None and dim is not None:
            self.index = VectorIndex(kind, dim, distance, params)
        # per segment: ids it added and ids it deleted (to merge segments without re-reading)
        self.segment_ids: dict[str, tuple[list[str], list[str]]] = {}
        # the metadata value columns over the slots (a key decoded or built on first use)
        self.values = ValueIndex()
        # the keyword index over the slots (postings decoded or built on first use)
        self.text = TextIndex(analyzer or Analyzer())
        self._lock = threading.Lock()

    @property
    def dim(self) -> int | None:
        return self.index.dim if self.index is not None else None

    @property
    def live(self) -> int:
        return len(self.slot)

    @property
    def slots(self) -> int:
        return len(self.ids)

    # -- records ---------------------------------------------------------------------------
    def record(self, slot: int) -> Record:
        """The record at a live slot, decoding it on first use."""
        r = self.recs[slot]
        if r is LAZY:
            entry = self._raw[bisect.bisect_right(self._raw_starts, slot) - 1]
            if entry is None:  # decoded meanwhile by materialize()
                r = self.recs[slot]
            else:
                r = entry[0].row(slot - entry[1])
                if SCALARS.issuperset(map(type, r.metadata.values())):  # (once, not per search)
                    r = PlainRecord._make(r)
                with self._lock:  # (no materialize() or merge reading the raw blocks meanwhile)
                    self.recs[slot] = r
                    self._decoded.append(slot)
                    if len(self._decoded) > DECODED_KEPT:
                        self._forget_decoded_locked()
        assert r is not None, "record() of a tombstone"
        return r  # type: ignore[no-any-return]

    def unchanged(self, slot: int, digest: str, vector: Vectors) -> bool:
        """Whether the live record at ``slot`` has this content hash and this vector (a write
        of it again changes nothing)."""
        assert self.index is not None
        return self.record(slot).hash == digest and np.array_equal(
            self.index.vectors()[slot], vector
        )

    def _forget_decoded_locked(self) -> None:
        """Drop the records `record` decoded back to their raw lines (those whose block is
        still undecoded; tombstones stay tombstones)."""
        recs, raw, starts = self.recs, self._raw, self._raw_starts
        for slot in self._decoded:
            if recs[slot] is not None and raw[bisect.bisect_right(starts, slot) - 1]:
                recs[slot] = LAZY
        self._decoded = []

    def materialize(self) -> None:
        """Decode every undecoded record (in bulk, which is much faster than one by one)."""
        if not self._lazy:
            return
        with self._lock:
            for block, entry in enumerate(self._raw):
                if entry is None:
                    continue
                raw, first = entry
                recs = self.recs
                for i, row in enumerate(raw.rows()):
                    if recs[first + i] is LAZY:
                        recs[first + i] = row
                self._raw[block] = None
                self._lazy -= 1

    def metas(self) -> Iterable[tuple[int, dict[str, Any]]]:
        """(slot, metadata) of every live record, decoding them all (and keeping them: for
        filters that test every record on every search)."""
        self.materialize()
        return ((s, r[1]) for s, r in enumerate(self.recs) if r is not None)

    def scan_metas(self, chunk: int = 20_000) -> Iterator[tuple[int, dict[str, Any]]]:
        """(slot, metadata) of every live record, in slot order, parsing undecoded records a
        chunk at a time without keeping them (in bounded memory)."""
        recs = self.recs
        blocks = sorted((e[1], e[0]) for e in self._raw if e is not None)
        slot = 0
        for first, raw in [*blocks, (len(recs), None)]:
            for s in range(slot, first):  # decoded records and tombstones
                r = recs[s]
                if r is not None:
                    yield s, r[1]
            if raw is None:
                break
            for start in range(0, len(raw), chunk):
                for s, meta in enumerate(raw.metadatas(start, start + chunk), first + start):
                    if recs[s] is not None:
                        yield s, meta
            slot = first + len(raw)

    # -- changes ---------------------------------------------------------------------------
    def apply(self, seg: SegmentData, name: str | None, *, indexed_rows: int = 0) -> None:
        """Apply a segment: its deletes, then its rows (the first ``indexed_rows`` are
        already in the index, loaded from a snapshot)."""
        for doc_id in seg.deletes:
            self._tombstone(doc_id)
        if len(seg):
            if self.index is None:
                self.index = VectorIndex(
                    self.kind, int(seg.vectors.shape[1]), self.distance, self.params
                )
            start = len(self.ids)
            source: Source = seg.texts
            if seg.postings is not None:
                source = seg.postings
            elif seg.raw is not None:
                source = seg.raw
            self.text.add(start, len(seg), source)
            records = seg.raw if seg.raw is not None else seg.metadatas
            self.values.add(start, len(seg), seg.values, records)
            superseded = self._place(seg.ids, start)
            self.ids.extend(seg.ids)
            if seg.raw is not None:
                self._raw.append((seg.raw, start))
                self._raw_starts.append(start)
                self._lazy += 1
                self.recs.extend(itertools.repeat(LAZY, len(seg)))
            else:
                columns = (seg.texts, seg.metadatas, seg.hashes, seg.created, seg.updated)
                self.recs.extend(map(Record._make, zip(*columns, strict=True)))
            self._bury(superseded)
            if indexed_rows and self.index.snapshot_needs_vectors():
                self.index.add(seg.vectors[:indexed_rows], store_only=True)
            self.index.add(seg.vectors[indexed_rows:])
        if name is not None:
            self.segment_ids[name] = (list(seg.ids), list(seg.deletes))

    def _place(self, ids: list[str], start: int) -> list[int]:
        """Point ``ids`` at the slots from ``start`` on, replacing (tombstoning) the rows
        they held, in C: the few replaced ones are found by one intersection instead of a
        lookup per row. Returns the slots of rows whose id comes again later in ``ids``
        (never in a segment written here), for the caller to tombstone once they exist."""
        before = len(self.slot)
        replaced = self.slot.keys() & ids if before else set()
        for doc_id in replaced:
            self._tombstone(doc_id)
        self.slot.update(zip(ids, range(start, start + len(ids)), strict=True))
        if len(self.slot) == before - len(replaced) + len(ids):
            return []
        slot = self.slot
        return [start + i for i, doc_id in enumerate(ids) if slot[doc_id] != start + i]

    def _bury(self, slots: list[int]) -> None:
        """Tombstone rows that no id points at any more."""
        for s in slots:
            self._kill(s)

    def _tombstone(self, doc_id: str) -> None:
        old = self.slot.pop(doc_id, None)
        if old is not None:
            self._kill(old)

    def _kill(self, slot: int) -> None:
        self.ids[slot] = None
        self.recs[slot] = None
        self.text.kill(slot)
        self.values.kill(slot)
        self.dead += 1

    # -- filters ---------------------------------------------------------------------------
    def plan_slots(self, plan: Plan) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The live slots a filter plan selects, ascending (from the value columns)."""
        return self.values.slots(plan)

    # -- reading out -------------------------------------------------------------------------
    def live_slots(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        if not self.dead:
            return np.arange(len(self.ids), dtype=np.int64)
        return self.text.live_slots()  # it marks each slot live or killed, as `slot` does

    def rows(self, slots: Iterable[int]) -> SegmentData:
        """The records and vectors at the given (live) slots, as segment data."""
        slot_list = list(slots)
        if len(slot_list) > 1000:
            self.materialize()
        records = [self.record(s) for s in slot_list]
        return SegmentData(
            [self.ids[s] for s in slot_list],  # type: ignore[misc]
            [r[0] for r in records],
            [r[1] for r in records],
            [r[2] for r in records],
            [r[3] for r in records],
            [r[4] for r in records],
            self._vectors(slot_list),
        )

    def merged_rows(self, slots: Sequence[int]) -> SegmentData:
        """Rows to write into a merged segment, copying nothing now: the records' stored
        lines as pieces, and the vectors as the index's own rows to gather, both copied once
        when the file is laid out (valid until the next change of this state)."""
        pieces = self._record_pieces(slots)
        rows = np.asarray(slots, dtype=np.int64)
        empty = np.zeros((0, self.dim or 0), dtype=np.float32)
        vectors = self.index.vectors() if self.index is not None else empty
        return SegmentData(
            list(map(self.ids.__getitem__, slots)),  # type: ignore[arg-type]
            [],
            [],
            [],
            [],
            [],
            empty,
            record_pieces=pieces,
            vector_rows=(vectors, rows),
        )

    def encoded_rows(self, slots: Iterable[int], *, vectors: bool = True) -> SegmentData:
        """The same rows with their records left encoded (``SegmentData.raw``): undecoded
        records are copied as stored, a run of neighbours at a time, so merging segments
        neither decodes records nor keeps them decoded. Every slot, in order (``range`` of
        all), is not copied at all: the vectors are the index's own, and one block's records
        its own bytes (valid until the next change). ``vectors=False``: no vectors (the
        caller copies them where they go)."""
        every = (
            isinstance(slots, range)
            and slots.step == 1
            and slots.start == 0
            and self.index is not None
            and slots.stop == self.index.ntotal
        )
        slot_list = list(slots)
        pieces = self._record_pieces(slot_list)
        blob = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if not vectors:
            rows = self._vectors([])
        elif every and self.index is not None:
            rows = self.index.vectors()
        else:
            rows = self._vectors(slot_list)
        return SegmentData(
            [self.ids[s] for s in slot_list],  # type: ignore[misc]
            [],
            [],
            [],
            [],
            [],
            rows,
            raw=RawRecords.split(blob, "merged records") if slot_list else None,
        )

    def _record_pieces(self, slots: Sequence[int]) -> list[bytes | memoryview]:
        """The stored lines of these records, in the order given: undecoded ones as views of
        their blocks, a run of neighbours at a time; decoded ones encoded again.

        A merge's slots are a few long runs of neighbours, nearly all undecoded: such a run is
        checked in C (``list.count``) and cut only where a block ends, with no Python step
        per slot (the 160,000 slots of a 100k ingest's merges, on the upkeep thread, beside
        the writer: 69 ms slot by slot, 23 ms so, under cProfile here)."""
        pieces: list[bytes | memoryview] = []
        if not len(slots):
            return pieces
        rows = np.asarray(slots, dtype=np.int64)
        cuts = np.flatnonzero(np.diff(rows) != 1) + 1
        recs, raw_blocks, starts = self.recs, self._raw, self._raw_starts
        with self._lock:  # no materialize() while reading the raw blocks
            if len(cuts) * 16 > len(rows):  # scattered slots: one at a time
                self._pieces_of(rows.tolist(), pieces)
                return pieces
            for i, j in itertools.pairwise([0, *cuts.tolist(), len(rows)]):
                a = int(rows[i])
                b = a + j - i
                if recs[a:b].count(LAZY) != b - a:  # some decoded: one at a time
                    self._pieces_of(range(a, b), pieces)
                    continue
                while a < b:  # undecoded: one view per block the run crosses
                    raw, first = raw_blocks[bisect.bisect_right(starts, a) - 1]  # type: ignore[misc]
                    end = min(b, first + len(raw))
                    pieces.append(raw.span(a - first, end - first))
                    a = end
        return pieces

    def _pieces_of(self, slots: Iterable[int], pieces: list[bytes | memoryview]) -> None:
        """`_record_pieces` of ``slots``, a slot at a time (hold ``_lock``)."""
        run: list[Any] = []  # [raw block, first line, end line] of consecutive undecoded rows
        bounds = (0, 0)  # the slots of the block in ``run``
        for s in slots:
            r = self.recs[s]
            if r is not LAZY:
                if run:
                    pieces.append(run[0].span(run[1], run[2]))
                    run = []
                pieces.append(encode_record(self.ids[s], r) + b"\n")  # type: ignore[arg-type]
                continue
            if run and bounds[0] <= s < bounds[1] and s - bounds[0] == run[2]:
                run[2] += 1
                continue
            if run:
                pieces.append(run[0].span(run[1], run[2]))
            raw, first = self._raw[bisect.bisect_right(self._raw_starts, s) - 1]  # type: ignore[misc]
            run, bounds = [raw, s - first, s - first + 1], (first, first + len(raw))
        if run:
            pieces.append(run[0].span(run[1], run[2]))

    def _vectors(self, slots: list[int]) -> Vectors:
        if self.index is None or not slots:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return self.index.vectors()[np.asarray(slots, dtype=np.int64)]

    def compacted(
        self, kind: str, postings: Postings | None = None, values: EncodedValues | None = None
    ) -> StoreState:
        """A new state holding only the live records, in slot order, with a fresh index (and
        ``postings`` and ``values``, those of the live slots, if given; else built from the
        records on first use)."""
        seg = self.encoded_rows(self.live_slots())
        seg.postings = postings
        seg.values = values
        new = StoreState(kind, self.dim, self.distance, self.params, analyzer=self.text.analyzer)
        new.apply(seg, None)
        return new


__all__ = ["Record", "StoreState"]
