"""Refreshing onto a version another writer compacted, without reading the whole store again.

When another writer merges segments, the newest manifest no longer extends the one in memory:
some segments are gone (merged) and new ones take their place. Reading every file of the new
version again costs as much as opening the store (on S3, downloading all of it), and writers
wait meanwhile. Yet most of its segments are ones the state in memory already holds, and a
merged segment holds exactly the live rows and the deletes of the run it replaced (see
`compaction`). So the new state is built by replaying the new version's segments in order:
the segments both versions name (*kept*) from memory, each contributing the rows it owns in
the current state (the live rows whose last writer it was) and its deletes; the others
(*fresh*: merged or newly committed) read from storage and verified as usual. Consecutive kept
segments go in as one block. The result must hold exactly the live count the new manifest
states, else the store is read afresh (`Engine._load`).

Only flat indexes are carried over: an approximate index is rebuilt faster from its saved
snapshot than by adding every vector again, and a new snapshot means a full compaction, whose
segments are all fresh anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from vectordb_manager.engine.columns import EncodedValues
from vectordb_manager.engine.format import Manifest, SegmentData, SegmentRef
from vectordb_manager.engine.state import StoreState

logger = logging.getLogger(__name__)

ReadSegments = Callable[[Sequence[SegmentRef]], list[SegmentData]]


def carry_over(
    st: StoreState,
    current: Manifest,
    latest: Manifest,
    read: ReadSegments,
    *,
    keywords: bool,
    values: bool,
) -> StoreState | None:
    """The state of ``latest``, from ``st`` (the state of ``current``) and the segments of
    ``latest`` that ``current`` does not name, read with ``read``; ``None`` when that would not
    save reading the store afresh (nothing kept, not a flat index, a new snapshot, or a
    segment of ``current`` whose rows ``st`` does not track)."""
    have = set(current.segments)
    kept = [ref in have for ref in latest.segments]
    if (
        st.kind != "flat"
        or st.index is None
        or latest.snapshot is not None
        or not any(kept)
        or any(ref.name not in st.segment_ids for ref in current.segments)
    ):
        return None
    owner: dict[str, str] = {}  # each id -> the last segment of `current` that added it
    for ref in current.segments:
        owner.update(dict.fromkeys(st.segment_ids[ref.name][0], ref.name))
    lacking = [ref for ref, k in zip(latest.segments, kept, strict=True) if not k]
    fresh = iter(read(lacking))
    new = StoreState(
        st.kind, latest.dimension or st.dim, st.distance, st.params, analyzer=st.text.analyzer
    )
    if new.index is not None:  # room for every row at once: no copy of the vectors per block
        new.index.reserve(len(st.slot) + sum(ref.rows for ref in lacking))
    block: list[str] = []
    for ref, is_kept in zip(latest.segments, kept, strict=True):
        if is_kept:
            block.append(ref.name)
            continue
        _apply_kept(new, st, block, owner, keywords=keywords, values=values)
        block = []
        new.apply(next(fresh), ref.name)
    _apply_kept(new, st, block, owner, keywords=keywords, values=values)
    if new.live != latest.live_count:
        logger.debug(
            "carrying the state over to version %d gave %d documents, not %d; reading it afresh",
            latest.version,
            new.live,
            latest.live_count,
        )
        return None
    return new


def _apply_kept(
    new: StoreState,
    st: StoreState,
    names: list[str],
    owner: dict[str, str],
    *,
    keywords: bool,
    values: bool,
) -> None:
    """Apply consecutive kept segments ``names`` to ``new`` as one block: their deletes,
    then the live rows they own in ``st`` (copied as stored, in slot order)."""
    if not names:
        return
    live = st.slot
    owned = {
        n: [i for i in st.segment_ids[n][0] if owner[i] == n and i in live] for n in names
    }
    slots = sorted(live[i] for n in names for i in owned[n])
    seg = st.encoded_rows(slots, vectors=False)
    indexed = 0
    if slots and st.index is not None and new.index is not None:
        source, rows = st.index.vectors(), np.asarray(slots, dtype=np.int64)
        seg.vectors = new.index.extend(len(rows))  # gathered straight into the new index
        if rows[-1] - rows[0] + 1 == len(rows):  # one run of slots (a block of the base)
            seg.vectors[:] = source[rows[0] : rows[-1] + 1]
        else:  # ("clip": unbuffered; the rows are the state's own)
            np.take(source, rows, axis=0, out=seg.vectors, mode="clip")
        indexed = len(rows)
    seg.deletes = list(dict.fromkeys(d for n in names for d in st.segment_ids[n][1]))
    if slots and keywords and st.text.ready:
        seg.postings = st.text.select(slots)
    if slots and values:
        seg.values = EncodedValues(st.values.select(np.asarray(slots, dtype=np.int64)), "memory")
    new.apply(seg, None, indexed_rows=indexed)
    for n in names:
        new.segment_ids[n] = (owned[n], list(st.segment_ids[n][1]))


__all__ = ["carry_over"]
