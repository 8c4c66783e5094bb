"""Compaction: when to merge segments (a size-tiered policy), and the merge itself.

Each commit appends one segment, so without merging a store would open by reading one file
per commit ever made. The policy keeps the segment count logarithmic in the store's size while
each row is rewritten only a few times:

* Tail segments (all but the first, the *base*) fall into size classes by powers of
  ``fan_in``. When the last ``fan_in`` segments share a class they merge into one of the
  next class (like a binary counter in base ``fan_in``); where more of them wait (merges
  hold off while writes come in a burst, see engine/maintenance.py), the whole trailing run
  of that class merges at once. Merging only a trailing run keeps commit order, so later
  writes still win.
* When tombstones exceed ``dead_ratio`` of the slots, or (for HNSW and IVF, whose index is
  saved) the tail outweighs ``full_ratio`` of the base, everything merges into a new base (a
  *full compaction*), which also drops tombstones, rebuilds the index and saves an index
  snapshot for HNSW/IVF, so that opening a store rarely has to rebuild much of a graph.
* A tail merge writes at most ``max_segment_bytes`` (Lucene's maximum merged segment size):
  a merge lays its file out in memory beside a copy of its rows' vectors, so without a cap
  a store of millions of rows would merge gigabytes at once. A tail segment of over
  ``1/fan_in`` of the cap (a merge's result, or one large write) is *sealed*: ``fan_in`` of
  its class would exceed the cap, so it merges no more, and the class rule and the
  ``max_tail`` bound look only at the segments after the last sealed one.

`prepare_merge` builds the merged segment (records copied as stored, never re-encoded; the
keyword postings of its rows, remapped, dropping deleted rows) and the manifest that lists it
in place of the run; the engine commits that manifest like any other
and then installs the merged state. Replaced files are removed later (see `retention`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import chain, filterfalse, repeat

import numpy as np

from vectordb_manager.engine.columns import EncodedValues
from vectordb_manager.engine.format import (
    INDEX_DIR,
    Blob,
    FileRef,
    Manifest,
    SegmentData,
    SegmentRef,
    SnapshotRef,
    encode_segment,
    new_segment_name,
)
from vectordb_manager.engine.manifest import KEYWORD_INDEX, VALUE_INDEX
from vectordb_manager.engine.state import StoreState


@dataclass(frozen=True)
class CompactionPolicy:
    """Thresholds for merging segments; see the module docstring. ``background``: merges of
    the tail run on a thread of their own after a commit, off the writer's path (full
    compactions, which rebuild the state, still hold the writers off while they run).

    ``fan_in`` 8 (Lucene merges 10 at a time): a row is rewritten about ``log_8`` of the
    store's size over the commits' size times, 2 for 100k added 1,000 at a time where 4
    rewrote it 3 times (measured: 29% fewer bytes written, ~20% less CPU for the adds), and
    about once where the merges wait for a burst of writes to pause. At most 7 segments of
    each class wait to merge between bursts (in a burst, up to ``max_tail`` of them);
    opening reads them in parallel, and ``max_tail`` (the tail's cap: past it, the segments
    after the last sealed one merge, as many of the newest as fit in ``max_segment_bytes``,
    burst or not) leaves room for 6 classes of them.
    ``max_segment_bytes`` (``None``: no cap) bounds what a tail merge writes, and so its
    memory: 256 MiB, ~150,000 rows of 384 dimensions; Lucene's default is 5 GB, for
    segments it reads from disk rather than loads."""

    fan_in: int = 8
    min_weight: int = 64
    full_ratio: float = 0.5
    dead_ratio: float = 0.3
    max_tail: int = 48
    max_segment_bytes: int | None = 256 << 20
    enabled: bool = True
    background: bool = True

    def __post_init__(self) -> None:
        whole = {"fan_in": 2, "min_weight": 1, "max_tail": 1}
        for name, least in whole.items():
            value = getattr(self, name)
            if type(value) is not int or value < least:
                raise ValueError(
                    f"compaction {name} must be an integer of at least {least}, got {value!r}"
                )
        for name in ("full_ratio", "dead_ratio"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"compaction {name} must be a number above 0, got {value!r}")
        cap = self.max_segment_bytes
        if cap is not None and (type(cap) is not int or cap < 1):
            raise ValueError(
                f"compaction max_segment_bytes must be None (no cap) or a number of bytes above "
                f"0, got {cap!r}"
            )

    def size_class(self, weight: int) -> int:
        if weight < self.min_weight:
            return 0
        return 1 + int(math.log(weight / self.min_weight, self.fan_in))

    def needs_cleanup(self, slots: int, dead: int) -> bool:
        """Whether tombstones take enough room to rebuild without them."""
        return dead >= self.min_weight and dead > self.dead_ratio * max(slots, 1)

    def plan(
        self, segments: Sequence[SegmentRef], slots: int, dead: int, *, snapshots: bool = True
    ) -> int | None:
        """The index of the first segment of the trailing run to merge (0: full), or None.

        ``snapshots``: the index is saved with a full compaction (HNSW, IVF), so a tail that
        outgrows the base triggers one; a flat index is rebuilt from the vectors anyway.
        """
        if not self.enabled or not segments:
            return None
        if self.needs_cleanup(slots, dead):
            return 0
        if len(segments) < 2:
            return None
        base, tail = segments[0], segments[1:]
        if snapshots and sum(s.weight for s in tail) > self.full_ratio * max(
            base.weight, self.min_weight
        ):
            return 0
        first = self._first_open(segments)
        if len(segments) - first > self.max_tail:
            return self._newest_within_cap(segments, first)
        if len(segments) - first >= self.fan_in:
            # the trailing run of one class: fan_in of them as a rule, more where merges
            # waited for a burst of writes to pause (see engine/maintenance.py)
            cls, start = self.size_class(segments[-1].weight), len(segments)
            while start > first and self.size_class(segments[start - 1].weight) == cls:
                start -= 1
            if len(segments) - start >= self.fan_in:
                return self._newest_within_cap(segments, start)
        return None

    def crowded(self, segments: Sequence[SegmentRef]) -> bool:
        """Whether the tail is past ``max_tail``: its merge is due even during a burst of
        writes."""
        return len(segments) - self._first_open(segments) > self.max_tail

    def _first_open(self, segments: Sequence[SegmentRef]) -> int:
        """The first segment that may still merge: after the last sealed one (1 if none)."""
        cap = self.max_segment_bytes
        if cap is not None:
            sealed = cap // self.fan_in
            for i in range(len(segments) - 1, 0, -1):
                if segments[i].file.bytes > sealed:
                    return i + 1
        return 1

    def _newest_within_cap(self, segments: Sequence[SegmentRef], first: int) -> int | None:
        """Where the longest run of the newest segments from ``first`` on starts whose sizes
        add up to at most the cap (all of them without one); ``None`` if under two."""
        start, total, cap = len(segments), 0, self.max_segment_bytes
        while start > first and (cap is None or total + segments[start - 1].file.bytes <= cap):
            start -= 1
            total += segments[start].file.bytes
        return start if len(segments) - start >= 2 else None


@dataclass
class Merge:
    """A merge ready to commit: the files to write and the manifest that names them."""

    start: int  # the first merged segment (0: a full compaction)
    name: str
    segment: SegmentData
    blobs: dict[str, Blob]
    proposed: Manifest
    state: StoreState  # the state after the merge (a new one for a full compaction)

    def install(self, replaced: Sequence[SegmentRef]) -> StoreState:
        """Update the state for the committed merge of ``replaced``; returns it."""
        if self.segment.postings is not None and self.start == 0:
            self.state.text.from_texts = False  # every row's postings are in the files now
        if self.segment.values is not None and self.start == 0:
            self.state.values.missing = False  # and every row's value columns
        if self.start == 0:
            self.state.segment_ids = {self.name: (self.segment.ids, [])}
        else:
            for ref in replaced:
                del self.state.segment_ids[ref.name]
            self.state.segment_ids[self.name] = (self.segment.ids, self.segment.deletes)
        return self.state


def prepare_merge(
    current: Manifest,
    st: StoreState,
    start: int,
    kind: str,
    *,
    keywords: bool = True,
    values: bool = True,
) -> Merge | None:
    """Merge the segments from ``start`` on (0: everything, dropping tombstones, rebuilding the
    index as ``kind`` and saving its snapshot); ``None`` if there is nothing to gain.
    ``keywords``: the merged segment carries the keyword postings of its rows (built from the
    texts of segments that have none), and the manifest the analyzer and the feature;
    ``values``: it carries their value columns (built from the records of segments that have
    none), and the manifest that feature."""
    segments = current.segments
    if not segments:
        return None
    if (
        start == 0
        and len(segments) == 1
        and not st.dead
        and kind == st.kind
        and (current.snapshot is not None or st.index is None or not st.index.snapshotable)
        and not (keywords and st.text.from_texts)
        and not (values and st.values.missing)
    ):
        return None  # already one segment with its indexes saved
    name = new_segment_name()
    snapshot = current.snapshot
    new_state = st
    if start == 0:
        rebuild = bool(st.dead) or kind != st.kind
        live = st.live_slots()
        postings = st.text.select(live) if keywords else None
        columns = EncodedValues(st.values.select(live), f"segments/{name}.seg") if values else None
        if rebuild:
            new_state = st.compacted(kind, postings, columns)
        seg = new_state.encoded_rows(range(new_state.slots))
        seg.postings = postings
        seg.values = columns
    else:
        seg = tail_rows(st, segments[start:], name, keywords=keywords, values=values)
    ref, blobs = encode_segment(name, seg)
    if start == 0:
        snapshot = None
        data = new_state.index.serialize() if new_state.index is not None else None
        if data is not None:
            file = FileRef.of(f"{INDEX_DIR}{name}.faiss", data)
            blobs[file.path] = data
            snapshot = SnapshotRef(file, name, len(seg), new_state.kind)
    features = current.features
    if seg.postings is not None:
        features = current.with_feature(KEYWORD_INDEX)
    if seg.values is not None and VALUE_INDEX not in features:
        features = (*features, VALUE_INDEX)
    proposed = current.next(
        segments=(*segments[:start], ref),
        snapshot=snapshot,
        live_count=st.live,
        features=features,
        analyzer=st.text.analyzer.to_json() if keywords else current.analyzer,
    )
    return Merge(start, name, seg, blobs, proposed, new_state)


def tail_rows(
    st: StoreState, run: Sequence[SegmentRef], name: str, *, keywords: bool, values: bool
) -> SegmentData:
    """The merged segment ``name`` of a trailing ``run`` of segments: the live rows they added
    (taken where they are when the file is laid out, see `StoreState.merged_rows`), their
    keyword postings and value columns, and the deletes they hold of rows older than the
    run."""
    # (maps and sorts in C: this runs under the writers' lock. Each live row's slot, once:
    # an id the run added twice has one slot, and the run is the tail, so every slot its
    # ids hold now lies in it)
    added = chain.from_iterable(st.segment_ids[r.name][0] for r in run)
    held = np.fromiter(map(st.slot.get, added, repeat(-1)), dtype=np.int64)
    at = np.unique(held[held >= 0])
    slots: list[int] = at.tolist()
    seg = st.merged_rows(slots)
    seg.postings = st.text.select(at) if keywords and slots else None
    if values and slots:
        seg.values = EncodedValues(st.values.select(at), f"segments/{name}.seg")
    deletes = dict.fromkeys(chain.from_iterable(st.segment_ids[r.name][1] for r in run))
    seg.deletes = list(filterfalse(st.slot.__contains__, deletes))
    return seg


@dataclass(frozen=True)
class TailMerge:
    """A merge of a run of segments prepared under the writers' lock and encoded and written
    after it (see `engine.maintenance`): its rows are taken (HNSW's vectors copied; flat and
    IVF vectors, which stay put, gathered when the file is laid out), so later commits may
    change the state meanwhile. Committing it replaces the run wherever the run then is: segments
    committed after it stay after it and still win over its rows, which is all a trailing
    merge relies on."""

    run: tuple[SegmentRef, ...]
    name: str
    segment: SegmentData
    state: StoreState  # the state the rows were taken from
    keywords: bool

    @classmethod
    def prepare(
        cls, current: Manifest, st: StoreState, start: int, *, keywords: bool, values: bool
    ) -> TailMerge | None:
        """The merge of ``current``'s segments from ``start`` (> 0) on; ``None`` if there is
        nothing to merge."""
        run = tuple(current.segments[start:])
        if start < 1 or len(run) < 2:
            return None
        name = new_segment_name()
        seg = tail_rows(st, run, name, keywords=keywords, values=values)
        if seg.vector_rows is not None and not (st.index and st.index.views_outlive_adds):
            # a copy now: HNSW's rows may move on the next add (flat and IVF rows do not:
            # they are gathered into the file when it is laid out, after the lock)
            source, rows = seg.vector_rows
            seg = replace(seg, vectors=np.take(source, rows, axis=0), vector_rows=None)
        return cls(run, name, seg, st, keywords)

    def rebase(self, current: Manifest, st: StoreState, ref: SegmentRef) -> Manifest | None:
        """The manifest after ``current`` with the merged segment ``ref`` in place of the run;
        ``None`` if the run is no longer there as it was (merged or rewritten meanwhile) or
        the state was replaced (a full compaction or a reload)."""
        names = [s.name for s in current.segments]
        if st is not self.state or self.run[0].name not in names:
            return None
        at = names.index(self.run[0].name)
        if tuple(current.segments[at : at + len(self.run)]) != self.run:
            return None
        features = current.features
        if self.segment.postings is not None:
            features = current.with_feature(KEYWORD_INDEX)
        if self.segment.values is not None and VALUE_INDEX not in features:
            features = (*features, VALUE_INDEX)
        segments = current.segments
        return current.next(
            segments=(*segments[:at], ref, *segments[at + len(self.run) :]),
            live_count=st.live,
            features=features,
            analyzer=st.text.analyzer.to_json() if self.keywords else current.analyzer,
        )

    def install(self) -> None:
        """Update the state for the committed merge."""
        ids = self.state.segment_ids
        for ref in self.run:
            del ids[ref.name]
        ids[self.name] = (self.segment.ids, self.segment.deletes)
