"""`StoreState`: the in-memory records, id map and index of one store version.

Slots are append-only; a deleted or replaced record leaves a tombstone (``ids[slot] is None``)
until compaction builds a new state without them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from vectordb_manager.engine.filters import Plan, value_key
from vectordb_manager.engine.format import SegmentData, Vectors
from vectordb_manager.engine.index import IndexParams, VectorIndex


class StoreState:
    """Records by slot, the id -> slot map and the index over the slots."""

    def __init__(
        self,
        kind: str,
        dim: int | None,
        distance: str,
        params: IndexParams,
        index: VectorIndex | None = None,
    ) -> None:
        self.kind = kind
        self.distance = distance
        self.params = params
        self.ids: list[str | None] = []
        self.texts: list[str] = []
        self.metas: list[dict[str, Any]] = []
        self.hashes: list[str] = []
        self.created: list[str] = []
        self.updated: list[str] = []
        self.slot: dict[str, int] = {}
        self.dead = 0
        self.index: VectorIndex | None = index
        if index is None and dim is not None:
            self.index = VectorIndex(kind, dim, distance, params)
        # per segment: ids it added and ids it deleted (to merge segments without re-reading)
        self.segment_ids: dict[str, tuple[list[str], list[str]]] = {}
        # per metadata key, built on first use by a filter: value key -> slots (may include
        # tombstones, which searches skip)
        self.key_indexes: dict[str, dict[tuple[str, Any], list[int]]] = {}
        self._key_lock = threading.Lock()

    @property
    def dim(self) -> int | None:
        return self.index.dim if self.index is not None else None

    @property
    def live(self) -> int:
        return len(self.slot)

    @property
    def slots(self) -> int:
        return len(self.ids)

    def apply(self, seg: SegmentData, name: str | None, *, add_vectors: bool = True) -> None:
        """Apply a segment: its deletes, then its rows. With ``add_vectors=False`` the caller
        adds the vectors later with `add_vectors` (one index insertion for many segments)."""
        for doc_id in seg.deletes:
            self._tombstone(doc_id)
        if len(seg):
            if self.index is None:
                self.index = VectorIndex(
                    self.kind, int(seg.vectors.shape[1]), self.distance, self.params
                )
            start = len(self.ids)
            for offset, doc_id in enumerate(seg.ids):
                self._tombstone(doc_id)
                self.slot[doc_id] = start + offset
            self.ids.extend(seg.ids)
            self.texts.extend(seg.texts)
            self.metas.extend(seg.metadatas)
            for key, table in self.key_indexes.items():
                _index_values(table, key, seg.metadatas, start)
            self.hashes.extend(seg.hashes)
            self.created.extend(seg.created)
            self.updated.extend(seg.updated)
            if add_vectors:
                self.index.add(seg.vectors)
        if name is not None:
            self.segment_ids[name] = (list(seg.ids), list(seg.deletes))

    def add_vectors(self, parts: Sequence[tuple[Vectors, int]]) -> None:
        """Add segments' vectors in one insertion; the first ``n`` rows of a part are already
        in the index (loaded from a snapshot over the first segment)."""
        if self.index is None:
            return
        fresh = []
        for vectors, indexed in parts:
            if indexed and self.index.snapshot_needs_vectors():
                self.index.add(vectors[:indexed], store_only=True)
            if len(vectors) > indexed:
                fresh.append(vectors[indexed:])
        if fresh:
            self.index.add(fresh[0] if len(fresh) == 1 else np.concatenate(fresh))

    def _tombstone(self, doc_id: str) -> None:
        old = self.slot.pop(doc_id, None)
        if old is not None:
            self.ids[old] = None
            self.texts[old] = ""
            self.metas[old] = {}
            self.dead += 1

    def key_index(self, key: str) -> dict[tuple[str, Any], list[int]]:
        """The value index of one metadata key, built on first use."""
        table = self.key_indexes.get(key)
        if table is None:
            with self._key_lock:
                table = self.key_indexes.get(key)
                if table is None:
                    table = {}
                    _index_values(table, key, self.metas, 0)
                    self.key_indexes[key] = table
        return table

    def plan_slots(self, plan: Plan) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Sorted slots that can pass the equality terms of a filter plan."""
        op = plan[0]
        if op == "eq":
            table = self.key_index(plan[1])
            found: list[int] = []
            for value in plan[2]:
                vk = value_key(value)
                if vk is not None:
                    found.extend(table.get(vk, ()))
            return np.unique(np.asarray(found, dtype=np.int64))
        parts = [self.plan_slots(p) for p in plan[1]]
        combine = np.intersect1d if op == "and" else np.union1d
        result = parts[0]
        for part in parts[1:]:
            result = combine(result, part)
        return result

    def live_slots(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        if not self.dead:
            return np.arange(len(self.ids), dtype=np.int64)
        return np.fromiter(sorted(self.slot.values()), dtype=np.int64, count=len(self.slot))

    def rows(self, slots: Iterable[int]) -> SegmentData:
        """The records and vectors at the given slots, as segment data."""
        slot_list = list(slots)
        vectors: Vectors
        if self.index is None or not slot_list:
            vectors = np.zeros((0, self.dim or 0), dtype=np.float32)
        else:
            vectors = self.index.vectors()[np.asarray(slot_list, dtype=np.int64)]
        return SegmentData(
            [self.ids[s] for s in slot_list],  # type: ignore[misc]
            [self.texts[s] for s in slot_list],
            [self.metas[s] for s in slot_list],
            [self.hashes[s] for s in slot_list],
            [self.created[s] for s in slot_list],
            [self.updated[s] for s in slot_list],
            vectors,
        )

    def compacted(self, kind: str) -> StoreState:
        """A new state holding only the live records, in slot order, with a fresh index."""
        seg = self.rows(self.live_slots())
        new = StoreState(kind, self.dim, self.distance, self.params)
        new.apply(seg, None)
        return new


def _index_values(
    table: dict[tuple[str, Any], list[int]], key: str, metas: Sequence[dict[str, Any]], start: int
) -> None:
    for offset, meta in enumerate(metas):
        if key in meta:
            vk = value_key(meta[key])
            if vk is not None:
                table.setdefault(vk, []).append(start + offset)
