"""`ValueIndex`: a store state's value columns over its slots; filter plans answered from them.

Each applied segment adds a block of slots and where its columns come from:

* its ``values`` section (`columns`), kept encoded (for a local file, in the read-only map of
  the verified file) and decoded one key at a time, the first time a filter names the key:
  its directory, then that key's block, as views into the section; nothing is rebuilt;
* for a segment without one (written before the section existed, or with
  ``value_index=False``), its records: the first filter on a key decodes the metadata of
  those rows a chunk at a time and builds that key's column, kept for later filters. A
  compaction writes the section for every row it merges.

A key holding an integer beyond 64 bits in a segment is not indexed there (`columns`): the
first filter on it keeps that segment's values of the key and tests them one by one.

Plans (`filters`): an `Equals` term is a binary search per value in the runs of its kinds, a
`Range` term one contiguous slice of a run (numbers look in both the integer and the float
run, exactly as Python compares them); `AllOf` and `AnyOf` combine boolean masks over the
slots. Deleted and replaced slots stay in the columns until compaction and are masked out
with ``alive``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vectordb_manager.engine.columns import (
    Column,
    EncodedValues,
    Run,
    Strings,
    column_of,
    encode_values,
    make_run,
    read_column,
    read_directory,
    strings,
)
from vectordb_manager.engine.filter_ops import MISSING, in_test, kind, value_key
from vectordb_manager.engine.filters import AllOf, AnyOf, Equals, Plan, Range
from vectordb_manager.engine.records import RawRecords

I64 = np.ndarray[Any, np.dtype[np.int64]]
Mask = np.ndarray[Any, np.dtype[np.bool_]]
Records = RawRecords | Sequence[dict[str, Any]]

_CHUNK = 20_000  # records decoded at a time to build a column from them
_RUNS = {"b": "b", "n": "if", "s": "s", "d": "d", "t": "t", "T": "T"}  # filter kind -> runs
_NOT_YET: Any = object()
_EMPTY = np.zeros(0, dtype=np.uint32)


@dataclass(frozen=True)
class Unindexed:
    """A key not indexed in a block: its value in each row (`MISSING` where absent)."""

    values: list[Any]


Found = Column | Unindexed | None  # None: no row of the block holds the key


class _Block:
    """The slots ``first`` .. ``first + rows`` and where their columns come from."""

    def __init__(self, first: int, rows: int, section: EncodedValues | None, records: Records):
        self.first, self.rows = first, rows
        self.section, self.records = section, records
        self.directory: dict[str, tuple[int, int]] | None = None
        self.columns: dict[str, Found] = {}

    def keys(self) -> dict[str, tuple[int, int]]:
        if self.directory is None:
            assert self.section is not None
            self.directory = read_directory(self.section.data, self.rows, self.section.path)
        return self.directory

    def metadatas(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(row, metadata) of every row, decoded a chunk at a time, nothing kept."""
        records = self.records
        if isinstance(records, RawRecords):
            for start in range(0, len(records), _CHUNK):
                yield from enumerate(records.metadatas(start, start + _CHUNK), start)
        else:
            yield from enumerate(records)

    def scan(self, key: str) -> tuple[list[int], list[Any]]:
        """The rows holding ``key`` and their values, from the records."""
        rows: list[int] = []
        values: list[Any] = []
        for row, meta in self.metadatas():
            value = meta.get(key, MISSING)
            if value is not MISSING:
                rows.append(row)
                values.append(value)
        return rows, values


class ValueIndex:
    """The value columns of one `StoreState` (see the module docstring)."""

    def __init__(self) -> None:
        self._blocks: list[_Block] = []
        self._alive = np.zeros(0, dtype=bool)
        self._slots = 0
        self._lock = threading.RLock()
        self.missing = False  # whether some slots came without a values section
        self.decoded: set[str] = set()  # the keys whose columns were decoded or built

    # -- changes (under the state's write lock) ----------------------------------------------
    def add(self, first: int, rows: int, section: EncodedValues | None, records: Records) -> None:
        """Slots ``first`` .. ``first + rows`` (live): their section, and their records."""
        end = first + rows
        if end > len(self._alive):
            size = max(end, 2 * len(self._alive), 1024)
            self._alive = np.concatenate([self._alive, np.zeros(size - len(self._alive), bool)])
        self._alive[first:end] = True
        self._slots = end
        self.missing |= section is None
        self._blocks.append(_Block(first, rows, section, records))

    def kill(self, slot: int) -> None:
        """A deleted or replaced slot: no plan selects it any more."""
        self._alive[slot] = False

    @property
    def alive(self) -> Mask:
        return self._alive[: self._slots]

    # -- plans (under the state's read lock) -------------------------------------------------
    def slots(self, plan: Plan) -> I64:
        """The live slots the plan selects, ascending."""
        mask = self._mask(plan)
        mask &= self.alive
        return np.flatnonzero(mask)

    def _mask(self, plan: Plan) -> Mask:
        if isinstance(plan, AllOf | AnyOf):
            if not plan.parts:
                return np.zeros(self._slots, dtype=bool)
            mask = self._mask(plan.parts[0])
            for part in plan.parts[1:]:
                if isinstance(plan, AllOf):
                    if not mask.any():
                        break
                    mask &= self._mask(part)
                else:
                    mask |= self._mask(part)
            return mask
        mask = np.zeros(self._slots, dtype=bool)
        for block in self._blocks:
            rows = self._term_rows(block, plan)
            if len(rows):
                mask[block.first : block.first + block.rows][rows] = True
        return mask

    def _term_rows(self, block: _Block, term: Equals | Range) -> np.ndarray[Any, Any]:
        column = self._column(block, term.key)
        if column is None:
            return _EMPTY
        if isinstance(column, Unindexed):
            test = _test(term)
            hits = (i for i, v in enumerate(column.values) if v is not MISSING and test(v))
            return np.fromiter(hits, dtype=np.int64)
        parts: list[np.ndarray[Any, Any]] = []
        if isinstance(term, Equals):
            for x in term.values:
                for run in filter(None, map(column.get, _RUNS[kind(x)])):
                    j0, j1 = run.position(x, False), run.position(x, True)
                    if j1 > j0:
                        parts.append(run.between(j0, j1))
        else:
            for run in filter(None, map(column.get, _RUNS[term.kind])):
                j0 = 0 if term.low is None else run.position(term.low, term.low_open)
                j1 = run.distinct
                if term.high is not None:
                    j1 = run.position(term.high, not term.high_open)
                if j1 > j0:
                    parts.append(run.between(j0, j1))
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else _EMPTY

    def _column(self, block: _Block, key: str) -> Found:
        """A block's column of ``key``, decoded or built on first use (thread-safe)."""
        found = block.columns.get(key, _NOT_YET)
        if found is _NOT_YET:
            with self._lock:
                found = block.columns.get(key, _NOT_YET)
                if found is _NOT_YET:
                    found = block.columns[key] = self._load(block, key)
                    self.decoded.add(key)
        return found  # type: ignore[no-any-return]

    @staticmethod
    def _load(block: _Block, key: str) -> Found:
        section = block.section
        if section is not None:
            entry = block.keys().get(key)
            if entry is None:
                return None
            if entry[1]:
                return read_column(section.data, *entry, block.rows, section.path)
        rows, values = block.scan(key)  # no section, or the key is not indexed in it
        if not rows:
            return None
        column = column_of(rows, values) if section is None else None
        if column is not None:
            return column
        every = [MISSING] * block.rows
        for row, value in zip(rows, values, strict=True):
            every[row] = value
        return Unindexed(every)

    # -- reading out -------------------------------------------------------------------------
    def groups(self, key: str) -> list[tuple[Any, I64]]:
        """The live slots (ascending) of each scalar value of ``key`` (lists and dicts left
        out; numbers equal by value, aware datetimes by instant, given in UTC)."""
        found: dict[tuple[str, Any], tuple[Any, list[I64]]] = {}

        def put(value: Any, slots: I64) -> None:
            vk = value_key(value)
            if vk is not None:
                found.setdefault(vk, (value, []))[1].append(slots)

        for block in self._blocks:
            column = self._column(block, key)
            if isinstance(column, Unindexed):
                for row, value in enumerate(column.values):
                    if value is not MISSING:
                        put(value, np.array([block.first + row]))
                continue
            for run in (column or {}).values():
                if run.kind == "x":
                    continue
                for j in range(run.distinct):
                    rows = run.between(j, j + 1).astype(np.int64)
                    try:
                        value = run.python_value(j)
                    except OverflowError:  # an instant before year 1 in UTC: as stored
                        value = _record_value(block, int(rows[0]), key)
                    put(value, rows + block.first)
        alive = self.alive
        out = []
        for value, pieces in found.values():
            slots = np.sort(np.concatenate(pieces))
            slots = slots[alive[slots]]
            if len(slots):
                out.append((value, slots))
        return out

    def select(self, slots: I64) -> bytes:
        """The ``values`` section of a segment of these slots (ascending; slot ``slots[i]``
        becomes row ``i``), from the columns (blocks without a section: from their records),
        byte for byte what `columns.build_values` makes of their metadata."""
        wanted = np.asarray(slots, dtype=np.int64)
        where = np.full(self._slots, -1, dtype=np.int64)
        where[wanted] = np.arange(len(wanted))
        low, high = (int(wanted[0]), int(wanted[-1])) if len(wanted) else (0, -1)
        pieces: dict[str, list[tuple[Run, I64]]] = {}  # key -> (run, each row's new row)
        scanned: set[str] = set()  # keys not indexed somewhere: built from the records
        blocks = [b for b in self._blocks if b.first <= high and b.first + b.rows > low]
        with self._lock:  # (a merge runs beside filters that decode columns: not meanwhile)
            for block in blocks:
                new = where[block.first : block.first + block.rows]
                for key, column in self._all_columns(block):
                    if isinstance(column, Unindexed):
                        scanned.add(key)
                        continue
                    for run in column.values():
                        pieces.setdefault(key, []).append((run, new[run.rows]))
        columns: dict[str, Column | None] = {}
        for key in scanned:
            rows: list[int] = []
            values: list[Any] = []
            for block in blocks:
                found, got = block.scan(key)
                new = where[block.first + np.asarray(found, dtype=np.int64)].tolist()
                pairs = [(r, v) for r, v in zip(new, got, strict=True) if r >= 0]
                rows += [r for r, _ in pairs]
                values += [v for _, v in pairs]
            if rows:
                order = sorted(range(len(rows)), key=rows.__getitem__)
                columns[key] = column_of([rows[i] for i in order], [values[i] for i in order])
        for key, runs in pieces.items():
            if key not in scanned:
                column = _merge(runs)
                if column:
                    columns[key] = column
        return encode_values(len(wanted), columns)

    def _all_columns(self, block: _Block) -> list[tuple[str, Column | Unindexed]]:
        """Every key's column in a block (a block without a section: built from its records
        at once, except those already built)."""
        if block.section is not None:
            got = [(key, self._column(block, key)) for key in list(block.keys())]
            return [(k, c) for k, c in got if c is not None]
        per_key: dict[str, tuple[list[int], list[Any]]] = {}
        for row, meta in block.metadatas():
            for key, value in meta.items():
                if key not in block.columns:
                    entry = per_key.setdefault(key, ([], []))
                    entry[0].append(row)
                    entry[1].append(value)
        out: list[tuple[str, Column | Unindexed]] = []
        for key, found in block.columns.items():
            if found is not None:
                out.append((key, found))
        for key, (rows, values) in per_key.items():
            out.append((key, column_of(rows, values) or Unindexed([])))
        return out


def _merge(runs: list[tuple[Run, I64]]) -> Column:
    """One column from runs of several blocks, each with the new row of each of its rows
    (-1: not kept)."""
    column: Column = {}
    for k in "bifsdtTzx":
        mine = [(run, new) for run, new in runs if run.kind == k]
        codes: list[I64] = []
        rows: list[I64] = []
        values: list[Any] = []
        for run, new in mine:
            keep = new >= 0
            codes.append(run.value_of_rows()[keep])
            rows.append(new[keep])
            values.append(run.values)
        if not mine or not sum(map(len, rows)):
            continue
        every = np.concatenate(rows)
        if k in "zx":
            column[k] = make_run(k, None, np.zeros(len(every), dtype=np.int64), every)
        elif k == "s":
            lists = [v.items() for v in values if isinstance(v, Strings)]
            items = sorted(set().union(*lists))
            index = dict(zip(items, range(len(items)), strict=True))
            codes = [
                np.fromiter(map(index.__getitem__, lst), np.int64, len(lst))[c]
                for lst, c in zip(lists, codes, strict=True)
            ]
            used, inverse = np.unique(np.concatenate(codes), return_inverse=True)
            kept = strings([items[i] for i in used.tolist()])
            column[k] = make_run(k, kept, inverse.reshape(-1).astype(np.int64), every)
        else:
            numbers = np.concatenate([v[c] for v, c in zip(values, codes, strict=True)])
            uniq, inverse = np.unique(numbers, return_inverse=True)
            column[k] = make_run(k, uniq, inverse.reshape(-1).astype(np.int64), every)
    return column


def _test(term: Equals | Range) -> Any:
    """The term as a test of one value (for keys a block does not index)."""
    if isinstance(term, Equals):
        return in_test(list(term.values))
    low, high, k = term.low, term.high, term.kind

    def test(v: Any) -> bool:
        if kind(v) != k:
            return False
        if low is not None and (v <= low if term.low_open else v < low):
            return False
        return high is None or bool(v < high if term.high_open else v <= high)

    return test


def _record_value(block: _Block, row: int, key: str) -> Any:
    records = block.records
    meta = records.metadatas(row, row + 1)[0] if isinstance(records, RawRecords) else records[row]
    return meta[key]


__all__ = ["Unindexed", "ValueIndex"]
