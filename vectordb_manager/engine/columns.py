"""A segment's value columns: each metadata key's rows, sorted by value (the ``values`` section).

For every metadata key that rows of a segment hold, and for each kind of value held there
(`KINDS`), the column keeps the distinct values in ascending order and, for each, the rows
holding it (ascending). An equality or ``$in`` term is then a binary search per value and a
range one contiguous run of rows; no record is decoded. Kinds follow the filter language
(`filter_ops`): ``b`` bools, ``i`` integers and ``f`` floats (both numbers: a term on a number
looks in both, exactly: ``1`` equals ``1.0``, ``2**53 + 1`` does not), ``s`` strings (by code
point), ``d`` dates (day numbers), ``t`` naive datetimes (microseconds), ``T`` aware datetimes
(by instant: microseconds in UTC), ``z`` nulls and ``x`` lists and dicts (only that the key is
there). An integer beyond 64 bits leaves its key unindexed in that segment (length 0 in the
directory): readers test those rows' metadata instead.

The section (docs/format.md), little-endian::

    2 x uint64   R rows (the segment's), J directory bytes
    J bytes      ASCII JSON: [[key, length], ...], the keys sorted by code point, unique
    zero bytes   to a multiple of 8
    blocks       each key's, in directory order, ``length`` bytes each (a multiple of 8)

A key's block is uint64 N, then N runs (kinds in `KINDS` order, each at most once): uint64
kind (its ASCII code), D distinct values, C rows; the D values (``f``: float64; ``b i d t T``:
int64; ``s``: D uint64 cumulative ends, then the strings' UTF-8, lone surrogates as
``surrogatepass`` writes them, zero-padded to 8; ``z`` and ``x``: none, D = 1); D uint32
counts (each >= 1, summing to C), zero-padded to 8; C uint32 rows, zero-padded to 8.

`read_column` believes nothing it has not bounded: each count is checked against the bytes
left before any array is taken (views into the section, nothing copied), rows must lie in the
segment, numbers ascend strictly and dates and times stay in their ranges. The order of the
strings is not checked there (that would cost a pass over every distinct string); a section
out of order can only select wrong rows of its own segment, and `verify()` rebuilds every
section from the records and compares them byte for byte (`build_values` is canonical).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np

from vectordb_manager.errors import IntegrityError

KINDS = "bifsdtTzx"
"""The kinds of a column's runs, in the order a block holds them."""
_KIND_OF_CODE = {ord(k): k for k in KINDS}
_TYPE_KINDS: dict[type, str] = {
    bool: "b", int: "i", float: "f", str: "s", type(None): "z", date: "d", list: "x", dict: "x",
}  # fmt: skip
_US_DAY = 86_400_000_000
_ONE_US = timedelta(microseconds=1)
_END_US = date.max.toordinal() * _US_DAY  # past the last microsecond of 9999-12-31
_I64 = (-(2**63), 2**63 - 1)
_HEAD = 16
_RANGES = {  # the values a kind's column may hold
    "b": (0, 1),
    "d": (1, date.max.toordinal()),
    "t": (0, _END_US - 1),
    "T": (-_US_DAY, _END_US + _US_DAY),
}

Array = np.ndarray[Any, Any]
Column = dict[str, "Run"]  # kind -> run


@dataclass(frozen=True)
class Strings:
    """Distinct strings as UTF-8, ascending: string j is ``blob[ends[j - 1]:ends[j]]``. UTF-8
    keeps code-point order byte for byte, so they are searched as bytes, undecoded."""

    ends: Array
    blob: bytes | memoryview

    def __len__(self) -> int:
        return len(self.ends)

    def item(self, j: int) -> bytes:
        return bytes(self.blob[int(self.ends[j - 1]) if j else 0 : int(self.ends[j])])

    def items(self) -> list[bytes]:
        ends = self.ends.tolist()
        blob = bytes(self.blob)
        return [blob[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    def position(self, x: bytes, right: bool) -> int:
        """How many strings are below ``x`` (``right``: at most ``x``)."""
        lo, hi = 0, len(self.ends)
        while lo < hi:
            mid = (lo + hi) // 2
            s = self.item(mid)
            if s < x or (right and s == x):
                lo = mid + 1
            else:
                hi = mid
        return lo


@dataclass(frozen=True)
class Run:
    """One kind's values of a key in a segment: value j's rows are
    ``rows[starts[j]:starts[j + 1]]``, ascending."""

    kind: str
    values: Array | Strings | None  # None for z and x
    starts: Array  # int64, D + 1
    rows: Array  # uint32, C

    @property
    def distinct(self) -> int:
        return len(self.starts) - 1

    def between(self, j0: int, j1: int) -> Array:
        """The rows of values ``j0`` .. ``j1``."""
        return self.rows[int(self.starts[j0]) : int(self.starts[j1])]

    def value_of_rows(self) -> Array:
        """For each row (in ``rows`` order), the index of its value."""
        return np.repeat(np.arange(self.distinct, dtype=np.int64), np.diff(self.starts))

    def position(self, x: Any, right: bool) -> int:
        """How many values are below ``x`` (``right``: at most ``x``); ``x`` of the run's kind
        (for ``i`` and ``f``, any number), compared exactly as Python compares them."""
        values = self.values
        if isinstance(values, Strings):
            return values.position(x.encode("utf-8", "surrogatepass"), right)
        assert values is not None, "z and x runs hold no values"
        side: Literal["left", "right"] = "right" if right else "left"
        if self.kind == "f":
            f = _as_float(x)
            if f != x:  # x between two floats: no value equals it
                side = "right" if f < x else "left"
            return int(np.searchsorted(values, np.float64(f), side=side))
        if self.kind == "i":  # v <= x iff v <= floor(x); v < x iff v < ceil(x)
            bound = math.floor(x) if right else math.ceil(x)
            if bound > _I64[1]:
                return len(values)
            if bound < _I64[0]:
                return 0
            return int(np.searchsorted(values, np.int64(bound), side=side))
        return int(np.searchsorted(values, np.int64(number_of(self.kind, x)), side=side))

    def python_value(self, j: int) -> Any:
        """Value ``j`` as a metadata value (an aware datetime in UTC; `OverflowError` if its
        instant falls outside the years a datetime holds)."""
        values = self.values
        if isinstance(values, Strings):
            return values.item(j).decode("utf-8", "surrogatepass")
        if values is None:
            return None
        v = values[j].item()
        if self.kind == "b":
            return bool(v)
        if self.kind == "d":
            return date.fromordinal(v)
        if self.kind == "t":
            return datetime.min + v * _ONE_US
        if self.kind == "T":
            return datetime(1, 1, 1, tzinfo=UTC) + v * _ONE_US
        return v


def _as_float(x: Any) -> float:
    try:
        return float(x)
    except OverflowError:  # an integer beyond a float's range
        return math.copysign(math.inf, x)


def kind_of(value: Any) -> str:
    """The run a metadata value goes to (see `KINDS`)."""
    k = _TYPE_KINDS.get(type(value))
    if k is not None:
        return k
    if isinstance(value, datetime):
        return "t" if value.utcoffset() is None else "T"
    for cls, k in _TYPE_KINDS.items():
        if isinstance(value, cls):
            return k
    return "x"


def number_of(kind: str, value: Any) -> int:
    """A date's, a datetime's or a bool's value as its column holds it."""
    if kind == "d":
        return int(value.toordinal())
    if kind in "tT":
        us = (value.toordinal() - 1) * _US_DAY + value.microsecond
        us += ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
        return int(us - value.utcoffset() // _ONE_US) if kind == "T" else int(us)
    return int(value)


@dataclass(frozen=True)
class EncodedValues:
    """A verified ``values`` section (bytes, or a view of the mapped file), decoded a key at
    a time (`read_directory`, `read_column`)."""

    data: bytes | memoryview
    path: str


# -- building ------------------------------------------------------------------------------
def build_values(metas: Sequence[Mapping[str, Any]]) -> bytes:
    """The ``values`` section of rows with these metadata (canonical: the same metadata always
    give the same bytes)."""
    first = metas[0].keys() if metas else {}.keys()
    if all(m.keys() == first for m in metas):  # the same keys in every row, the common case
        rows = list(range(len(metas)))
        columns = {k: column_of(rows, [m[k] for m in metas]) for k in first}
        return encode_values(len(metas), columns)
    per_key: dict[str, tuple[list[int], list[Any]]] = {}
    for row, meta in enumerate(metas):
        for key, value in meta.items():
            entry = per_key.get(key)
            if entry is None:
                entry = per_key[key] = ([], [])
            entry[0].append(row)
            entry[1].append(value)
    return encode_values(len(metas), {k: column_of(r, v) for k, (r, v) in per_key.items()})


def column_of(rows: Sequence[int] | Array, values: Sequence[Any]) -> Column | None:
    """The column of one key whose ``values[i]`` row ``rows[i]`` holds (rows ascending);
    ``None`` if it holds an integer beyond 64 bits (not indexed)."""
    groups: dict[str, tuple[list[int], list[Any]]] = {}
    types = set(map(type, values))
    only = _TYPE_KINDS.get(next(iter(types))) if len(types) == 1 else None
    if only is not None:
        groups[only] = (list(rows), list(values))
    else:
        for row, value in zip(rows, values, strict=True):
            k = kind_of(value)
            group = groups.get(k)
            if group is None:
                group = groups[k] = ([], [])
            group[0].append(row)
            group[1].append(value)
    column: Column = {}
    for k in KINDS:
        if k in groups:
            group_rows, group_values = groups[k]
            try:
                codes, uniq = _codes(k, group_values)
            except OverflowError:
                return None
            column[k] = make_run(k, uniq, codes, np.asarray(group_rows, dtype=np.int64))
    return column


def _codes(kind: str, values: list[Any]) -> tuple[Array, Array | Strings | None]:
    """Each value's index among the distinct values, and those (ascending)."""
    if kind in "zx":
        return np.zeros(len(values), dtype=np.int64), None
    if kind == "s":
        uniq = sorted(set(values))
        index = dict(zip(uniq, range(len(uniq)), strict=True))
        codes = np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))
        return codes, strings([s.encode("utf-8", "surrogatepass") for s in uniq])
    if kind == "f":
        numbers = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 is 0.0
        if not np.isfinite(numbers).all():
            raise OverflowError("not a finite number")  # (writers refuse them before)
    elif kind in "bi":
        numbers = np.asarray(values, dtype=np.int64)  # OverflowError beyond 64 bits
    else:
        numbers = np.fromiter((number_of(kind, v) for v in values), np.int64, len(values))
    uniq_numbers, codes = np.unique(numbers, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), uniq_numbers


def strings(items: list[bytes]) -> Strings:
    """Sorted, distinct UTF-8 strings as a `Strings`."""
    lengths = np.fromiter(map(len, items), dtype=np.uint64, count=len(items))
    return Strings(np.cumsum(lengths, dtype=np.uint64), b"".join(items))


def make_run(kind: str, values: Array | Strings | None, codes: Array, rows: Array) -> Run:
    """The run of (value index, row) pairs in any order (a pair at most once)."""
    order = np.lexsort((rows, codes))
    distinct = 1 if values is None else len(values)
    counts = np.bincount(codes, minlength=distinct)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Run(kind, values, starts, rows[order].astype(np.uint32))


# -- the section ---------------------------------------------------------------------------
def encode_values(rows: int, columns: Mapping[str, Column | None]) -> bytes:
    """The section of these columns (``None``: a key not indexed) of a segment of ``rows``."""
    keys = sorted(columns)
    blocks = [_encode_column(c) if (c := columns[k]) is not None else b"" for k in keys]
    directory = json.dumps(
        [[k, len(b)] for k, b in zip(keys, blocks, strict=True)],
        ensure_ascii=True,
        separators=(",", ":"),
    ).encode("ascii")
    head = np.array([rows, len(directory)], dtype="<u8").tobytes()
    return b"".join([head, directory, _pad(len(directory)), *blocks])


def _encode_column(column: Column) -> bytes:
    parts: list[bytes] = [np.array([len(column)], dtype="<u8").tobytes()]
    for kind in KINDS:
        run = column.get(kind)
        if run is None:
            continue
        counts = np.diff(run.starts)
        parts.append(np.array([ord(kind), len(counts), len(run.rows)], dtype="<u8").tobytes())
        if isinstance(run.values, Strings):
            blob = bytes(run.values.blob)
            parts += [run.values.ends.astype("<u8").tobytes(), blob, _pad(len(blob))]
        elif run.values is not None:
            parts.append(run.values.astype("<f8" if kind == "f" else "<i8").tobytes())
        parts += [counts.astype("<u4").tobytes(), _pad(4 * len(counts))]
        parts += [run.rows.astype("<u4").tobytes(), _pad(4 * len(run.rows))]
    return b"".join(parts)


def _pad(n: int) -> bytes:
    return bytes(-n % 8)


def check_header(data: bytes | memoryview, rows: int, path: str) -> None:
    """The cheap checks of a verified section kept undecoded: its size and row count."""
    view = memoryview(data).cast("B")
    if len(view) < _HEAD:
        raise _damaged(path, "is shorter than its header")
    n_rows, size = np.frombuffer(view[:_HEAD], dtype="<u8").tolist()
    if n_rows != rows:
        raise _damaged(path, f"covers {n_rows} rows; the segment has {rows}")
    if size > len(view) - _HEAD:
        raise _damaged(path, "has a directory longer than the section")


def read_directory(data: bytes | memoryview, rows: int, path: str) -> dict[str, tuple[int, int]]:
    """Each key's block in a verified section: (offset, length); length 0: not indexed."""
    check_header(data, rows, path)
    view = memoryview(data).cast("B")
    size = int.from_bytes(view[8:16], "little")
    try:
        entries = json.loads(bytes(view[_HEAD : _HEAD + size]).decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _damaged(path, "has a directory that is not ASCII JSON") from None
    if type(entries) is not list or not all(
        type(e) is list and len(e) == 2 and type(e[0]) is str and type(e[1]) is int
        for e in entries
    ):
        raise _damaged(path, "has a directory that is not a list of [key, length]")
    at = _HEAD + size + -size % 8
    out: dict[str, tuple[int, int]] = {}
    previous: str | None = None
    for key, length in entries:
        if previous is not None and key <= previous:
            raise _damaged(path, "has a directory whose keys are not sorted and unique")
        if length < 0 or length % 8 or length > len(view) - at:
            raise _damaged(path, f"has a bad length for the key {key[:40]!r}")
        out[key] = (at, length)
        at += length
        previous = key
    if at != len(view):
        raise _damaged(path, "has blocks that do not fill it")
    return out


def read_column(data: bytes | memoryview, at: int, length: int, rows: int, path: str) -> Column:
    """One key's column from its block (``at``, ``length``) of a verified section of a segment
    of ``rows`` rows; the arrays are views into ``data``."""
    view = memoryview(data).cast("B")[at : at + length]
    reader = _Reader(view, path)
    n = reader.u64()
    if not 1 <= n <= len(KINDS):
        raise _damaged(path, f"has a column of {n} runs")
    column: Column = {}
    last, total = -1, 0
    for _ in range(n):
        code, distinct, count = reader.u64(), reader.u64(), reader.u64()
        kind = _KIND_OF_CODE.get(code)
        if kind is None or KINDS.index(kind) <= last:
            raise _damaged(path, "has runs of unknown or repeated kinds, or out of order")
        last = KINDS.index(kind)
        total += count
        if not 1 <= distinct <= count or total > rows or (kind in "zx" and distinct != 1):
            raise _damaged(path, "has a run of more values or rows than it can hold")
        values: Array | Strings | None = None
        if kind == "s":
            ends = reader.array("<u8", distinct)
            blob = reader.take(int(ends[-1]))
            if distinct > 1 and not bool(np.all(ends[1:] >= ends[:-1])):
                raise _damaged(path, "has strings that end before they start")
            values = Strings(ends, blob)
        elif kind not in "zx":
            values = reader.array("<f8" if kind == "f" else "<i8", distinct)
            _check_values(kind, values, path)
        counts = reader.array("<u4", distinct)
        found = reader.array("<u4", count)
        starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        if int(counts.min()) < 1 or int(starts[-1]) != count or int(found.max()) >= rows:
            raise _damaged(path, "has a run whose counts or rows do not fit its segment")
        ascending = found[1:] > found[:-1]
        ascending[starts[1:-1] - 1] = True  # where one value's rows end and the next begin
        if not bool(ascending.all()):
            raise _damaged(path, "has rows that are not ascending within a value")
        column[kind] = Run(kind, values, starts, found)
    if reader.at != len(view):
        raise _damaged(path, "has a column that does not fill its block")
    return column


def _check_values(kind: str, values: Array, path: str) -> None:
    if len(values) > 1 and not bool(np.all(values[1:] > values[:-1])):
        raise _damaged(path, "has values that do not ascend")
    if kind == "f" and not bool(np.isfinite(values).all()):
        raise _damaged(path, "holds a number that is not finite")
    bounds = _RANGES.get(kind)
    if bounds is not None and (int(values[0]) < bounds[0] or int(values[-1]) > bounds[1]):
        raise _damaged(path, f"holds a value out of range for its kind {kind!r}")


class _Reader:
    """Fields read in order from a block, each bounded by what is left before it is taken."""

    def __init__(self, view: memoryview, path: str) -> None:
        self.view, self.path, self.at = view, path, 0

    def take(self, n: int) -> memoryview:
        if n > len(self.view) - self.at:
            raise _damaged(self.path, "has a column longer than its block")
        out = self.view[self.at : self.at + n]
        self.at += n + -n % 8
        if self.at > len(self.view):
            raise _damaged(self.path, "has a column longer than its block")
        return out

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def array(self, dtype: str, count: int) -> Array:
        size = np.dtype(dtype).itemsize
        if count > (len(self.view) - self.at) // size:
            raise _damaged(self.path, "has a column longer than its block")
        return np.frombuffer(self.take(count * size), dtype=dtype)


def _damaged(path: str, problem: str) -> IntegrityError:
    return IntegrityError(
        f"{path} has a damaged values section: it {problem}. The file is damaged or was not "
        "written by vectordb-manager; restore it from a backup (or compact the store from a "
        "good copy)."
    )


__all__ = [
    "KINDS",
    "Column",
    "EncodedValues",
    "Run",
    "Strings",
    "build_values",
    "check_header",
    "column_of",
    "encode_values",
    "kind_of",
    "make_run",
    "number_of",
    "read_column",
    "read_directory",
    "strings",
]
