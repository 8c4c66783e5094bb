"""When to merge segments: a size-tiered policy with a periodic full compaction.

Each commit appends one segment, so without merging a store would open by reading one file
per commit ever made. The policy keeps the segment count logarithmic in the store's size while
each row is rewritten only a few times:

* Tail segments (all but the first, the *base*) fall into size classes by powers of
  ``fan_in``. When the last ``fan_in`` segments share a class they merge into one of the
  next class (like a binary counter in base ``fan_in``). Merging only a trailing run keeps
  commit order, so later writes still win.
* When tombstones exceed ``dead_ratio`` of the slots, or (for HNSW and IVF, whose index is
  saved) the tail outweighs ``full_ratio`` of the base, everything merges into a new base (a
  *full compaction*), which also drops tombstones, rebuilds the index and saves an index
  snapshot for HNSW/IVF, so that opening a store rarely has to rebuild much of a graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from vectordb_manager.engine.format import SegmentRef


@dataclass(frozen=True)
class CompactionPolicy:
    """Thresholds for merging segments; see the module docstring."""

    fan_in: int = 4
    min_weight: int = 64
    full_ratio: float = 0.5
    dead_ratio: float = 0.3
    max_tail: int = 24
    enabled: bool = True

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
        if len(tail) > self.max_tail:
            return 1
        if len(tail) >= self.fan_in:
            last = [self.size_class(s.weight) for s in tail[-self.fan_in :]]
            if len(set(last)) == 1:
                return len(segments) - self.fan_in
        return None
