"""A segment's records: JSON lines, encoded, kept undecoded and decoded on demand.

Each record is one JSON object on one line (JSON escapes newlines inside strings). Opening a
store keeps a segment's lines undecoded (`RawRecords`: bytes or a read-only map of the
verified file, plus where each line ends) and decodes a line when a search returns it, or a
run of lines in bulk for a filter. Every line is decoded on its own, so a line never spills
into its neighbour whatever its bytes are.

Dates and datetimes, which JSON cannot carry, are written in a tagged form, and only in the
records whose metadata holds one (flagged ``"typed": 1`` on their line, so an ordinary record
costs its decoder one dictionary lookup): in the metadata of such a record, a dict with one key
that starts with ``$`` is a tag: ``{"$datetime": "<ISO 8601>"}`` (with the UTC offset when the
datetime has one), ``{"$date": "YYYY-MM-DD"}``, or ``{"$dict": {...}}`` for a user's own dict
of one ``$`` key, which would otherwise read as a tag (`tag_metadata`, `untag_metadata`).
Stores holding such records carry the manifest feature ``typed-values``.

Decoding never trusts the bytes: a record that is not an object with a string text, a dict
metadata and string hash and timestamps, whose metadata nests deeper than
`MAX_METADATA_DEPTH`, whose tags are malformed (an unknown tag, or a date or datetime not
written exactly as a writer writes it), or whose line is longer than `MAX_RECORD_LINE_BYTES`
raises `IntegrityError` (never `RecursionError`: deeply nested values once broke every later
search that returned them).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple, cast

import numpy as np
import orjson

from vectordb_manager.engine.limits import MAX_ID_BYTES, MAX_METADATA_DEPTH, MAX_RECORD_BYTES
from vectordb_manager.errors import IntegrityError


class Record(NamedTuple):
    """One document as stored: its text, metadata, content hash and times (ISO 8601)."""

    text: str
    metadata: dict[str, Any]
    hash: str
    created_at: str
    updated_at: str


class PlainRecord(Record):
    """A `Record` whose metadata values were found to be JSON scalars (`SCALARS`) when it was
    decoded: a copy of its metadata dict is a deep one, with nothing to check per search."""

    __slots__ = ()


Ends = np.ndarray[Any, np.dtype[np.int64]]

# the id (JSON-escaped, up to 6 bytes a UTF-8 byte), hash, timestamps and keys of a line
_FIXED_FIELDS_ROOM = 6 * MAX_ID_BYTES + 4096
MAX_RECORD_LINE_BYTES = MAX_RECORD_BYTES + _FIXED_FIELDS_ROOM
"""The longest record line a reader accepts (text and metadata plus the fixed fields)."""

_CONTAINERS = frozenset((dict, list))  # the JSON values that nest
SCALARS: frozenset[type] = frozenset((str, int, float, bool, type(None)))  # JSON's other values
EXACT_SCALARS: frozenset[type] = frozenset((str, int, bool, type(None)))
"""The scalars every JSON encoder here writes alike (floats differ: ``1e-05`` from `json`,
``1e-5`` from orjson), which are immutable and need no check (a float must be finite)."""

TYPED_FIELD = "typed"
"""The field (value ``1``) of a record line whose metadata is in the tagged form."""
DATETIME_TAG, DATE_TAG, DICT_TAG = "$datetime", "$date", "$dict"
# a typed record's metadata, tagged, nests one level deeper for a date and for each escaped
# dict: at most twice as deep (checked before it is untagged, then the untagged one as usual)
_TAGGED_DEPTH = 2 * MAX_METADATA_DEPTH


@dataclass(frozen=True)
class RawRecords:
    """A records section kept undecoded (bytes, or a read-only map of the verified file), with
    where each line ends, for decoding rows on demand."""

    blob: bytes | memoryview
    ends: Ends  # the position of each line's newline
    path: str
    ids: list[str] | None = None  # the id each line must carry, when known

    @classmethod
    def split(cls, blob: bytes | memoryview, path: str) -> RawRecords:
        return cls(blob, newlines(blob), path)

    def _start(self, i: int) -> int:
        return int(self.ends[i - 1]) + 1 if i else 0

    def row(self, i: int) -> Record:
        """Decode line ``i`` into (text, metadata, hash, created_at, updated_at)."""
        line = loads(self.blob[self._start(i) : int(self.ends[i])], self.path)
        record = record_tuple(line, self.path)
        if self.ids is not None and line.get("id") != self.ids[i]:
            raise damaged(
                self.path, f"holds records and an id list that disagree on the ids (row {i})"
            )
        return record

    def __len__(self) -> int:
        return len(self.ends)

    def span(self, start: int, stop: int) -> memoryview:
        """Lines ``start``..``stop``, newlines included, as they are stored."""
        return memoryview(self.blob)[self._start(start) : int(self.ends[stop - 1]) + 1]

    def decode(self, start: int = 0, stop: int | None = None) -> list[Any]:
        """The JSON values of lines ``start``..``stop``, one a line (not checked as records)."""
        stop = len(self.ends) if stop is None else min(stop, len(self.ends))
        if start >= stop:
            return []
        view = memoryview(self.blob)
        first = self._start(start)
        ends = self.ends[start:stop]
        careful = frozenset(  # lines that may hold integers beyond 64 bits
            np.searchsorted(ends, big_int_starts(view[first : int(ends[-1])]) + first).tolist()
        )
        fast = orjson.loads
        out: list[Any] = []
        at = first
        for i, end in enumerate(ends.tolist()):
            line = view[at:end]
            if i in careful:
                out.append(loads(line, self.path))
            else:
                try:
                    out.append(fast(line))
                except orjson.JSONDecodeError:  # lone surrogates or too deep: json decides
                    out.append(_slow_loads(line, self.path))
            at = end + 1
        return out

    def metadatas(self, start: int, stop: int) -> list[dict[str, Any]]:
        """The metadata of lines ``start``..``stop`` (decoded in bulk, nothing kept; dates
        and datetimes as themselves)."""
        path, typed = self.path, TYPED_FIELD
        found = [
            (r.get("metadata") if typed not in r else _typed_metadata(r, path))
            if type(r) is dict
            else None
            for r in self.decode(start, stop)
        ]
        if not all(type(m) is dict for m in found):
            raise damaged(self.path, "holds a record with bad metadata")
        metas = cast(list[dict[str, Any]], found)
        check_depths(metas, self.path)
        return metas

    def rows(self) -> list[Record]:
        """Every line decoded into (text, metadata, hash, created_at, updated_at)."""
        return records(self.decode(), self.path, self.ids)


def damaged(path: str, problem: str) -> IntegrityError:
    """The error for a file that breaks the format: what is wrong, and what to do."""
    return IntegrityError(
        f"{path} {problem}. The file is damaged or was not written by vectordb-manager; "
        "restore it from a backup."
    )


def newlines(data: bytes | memoryview, offset: int = 0) -> Ends:
    """The positions (plus ``offset``) of the newline bytes in ``data``."""
    found = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    return found + offset if offset else found


def check_lines(ends: Ends, size: int, path: str) -> None:
    """Raise `IntegrityError` unless ``size`` bytes of records end with a newline and no line
    is longer than `MAX_RECORD_LINE_BYTES` (checked without decoding anything)."""
    if not size:
        return
    if not len(ends) or int(ends[-1]) != size - 1:
        raise damaged(path, "has a records section that does not end with a newline")
    longest = longest_line(ends)
    if longest > MAX_RECORD_LINE_BYTES:
        raise IntegrityError(
            f"{path} holds a record line of {longest} bytes; the most a record may take is "
            f"{MAX_RECORD_LINE_BYTES}. The file is damaged or was not written by "
            "vectordb-manager; restore it from a backup."
        )


def longest_line(ends: Ends) -> int:
    """The length of the longest line (without its newline) of lines ending at ``ends``."""
    if not len(ends):
        return 0
    return max(int(ends[0]), int(np.diff(ends).max(initial=0)) - 1)


def record_tuple(r: Any, path: str) -> Record:
    """A decoded line as a record, or `IntegrityError` if it is not a well-formed one."""
    record = _record(r, path)
    if not _CONTAINERS.isdisjoint(map(type, record.metadata.values())):  # flat: no walk
        check_depths([record.metadata], path)
    return record


def records(decoded: list[Any], path: str, ids: list[str] | None = None) -> list[Record]:
    """Decoded lines as records (`record_tuple` of each, the depths checked in one pass),
    carrying the given ids if any."""
    rows = [_record(r, path) for r in decoded]
    check_depths([r.metadata for r in rows], path)
    if ids is not None and [r.get("id") for r in decoded] != ids:
        raise damaged(path, "holds records and an id list that disagree on the ids")
    return rows


def _record(r: Any, path: str) -> Record:
    if type(r) is not dict:
        raise damaged(path, "holds a record that is not a JSON object")
    try:
        record = Record(r["text"], r["metadata"], r["hash"], r["created_at"], r["updated_at"])
    except KeyError as exc:
        raise damaged(path, f"holds a record without {exc}") from None
    text, meta, digest, created, updated = record
    if type(meta) is not dict:
        raise damaged(path, "holds a record whose metadata is not an object")
    if not (type(text) is str and type(digest) is str and type(created) is type(updated) is str):
        raise damaged(path, "holds a record with a text, hash or time that is no string")
    if TYPED_FIELD in r:
        return record._replace(metadata=_typed_metadata(r, path))
    return record


def _typed_metadata(r: dict[str, Any], path: str) -> Any:
    """The metadata of a decoded line flagged typed, untagged (a line that is no record, or
    whose metadata is no object, is left for the caller to refuse)."""
    flag, meta = r[TYPED_FIELD], r.get("metadata")
    if type(flag) is not int or flag != 1:
        raise damaged(path, f'holds a record whose "{TYPED_FIELD}" is not 1')
    if type(meta) is not dict:
        return meta
    check_depths([meta], path, _TAGGED_DEPTH)  # bounds the walk below
    return untag_metadata(meta, path)


def is_typed(meta: dict[str, Any]) -> bool:
    """Whether metadata holds a date or a datetime at any depth (only then is its record
    written in the tagged form). Flat metadata of JSON scalars, the common case, is one pass
    over the types of its values, in C."""
    if SCALARS.issuperset(map(type, meta.values())):
        return False
    stack = list(meta.values())
    while stack:
        value = stack.pop()
        if isinstance(value, date):  # a datetime is a date
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def tag_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata in the tagged form, as JSON can carry it (see the module docstring)."""
    return {k: _tag(v) for k, v in meta.items()}


def _tag(value: Any) -> Any:
    if isinstance(value, datetime):  # the base class's isoformat: a subclass's may differ
        return {DATETIME_TAG: datetime.isoformat(value)}
    if isinstance(value, date):
        return {DATE_TAG: date.isoformat(value)}
    if isinstance(value, dict):
        out = {k: _tag(v) for k, v in value.items()}
        return {DICT_TAG: out} if len(out) == 1 and next(iter(out)).startswith("$") else out
    if isinstance(value, list):
        return [_tag(v) for v in value]
    return value


class _BadTag(Exception):
    pass


def untag_metadata(meta: dict[str, Any], path: str) -> dict[str, Any]:
    """Tagged metadata (decoded JSON, nesting bounded) with its dates and datetimes as
    themselves; `IntegrityError` for a tag that no writer writes."""
    try:
        return {k: _untag(v) for k, v in meta.items()}
    except _BadTag as exc:
        raise damaged(path, f"holds a typed record with {exc}") from None


def _untag(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key.startswith("$"):
                return _from_tag(key, inner)
        return {k: _untag(v) for k, v in value.items()}
    if kind is list:
        return [_untag(v) for v in value]
    return value


def _from_tag(key: str, inner: Any) -> Any:
    if key == DICT_TAG:
        if type(inner) is dict and len(inner) == 1 and next(iter(inner)).startswith("$"):
            return {k: _untag(v) for k, v in inner.items()}
        raise _BadTag(f"a {DICT_TAG} tag that holds no dict of one $ key")
    if key == DATETIME_TAG:
        parse: Callable[[str], date] = datetime.fromisoformat
    elif key == DATE_TAG:
        parse = date.fromisoformat
    else:
        raise _BadTag(f"the unknown tag {key[:40]!r}")
    if type(inner) is str:
        try:
            value = parse(inner)
        except (ValueError, OverflowError):
            pass
        else:
            if value.isoformat() == inner:  # exactly as a writer writes it
                return value
    raise _BadTag(f"a {key} tag holding {inner!r:.40}, not an ISO 8601 {key[1:]} as written")


def nests(meta: dict[str, Any]) -> bool:
    """Whether metadata holds an object or a list (only then can it be too deep)."""
    return not _CONTAINERS.isdisjoint(map(type, meta.values()))


def check_depths(
    metas: list[dict[str, Any]], path: str, limit: int = MAX_METADATA_DEPTH
) -> None:
    """Raise `IntegrityError` if any metadata nests deeper than ``limit`` levels (the dict
    itself is level 1). When all are flat, the common case, this is one pass over the types
    of their values, in C; only a dict or list value makes it walk that metadata."""
    values = itertools.chain.from_iterable(map(dict.values, metas))
    if _CONTAINERS.isdisjoint(map(type, values)):
        return
    for meta in metas:
        level = [v for v in meta.values() if type(v) in _CONTAINERS]
        depth = 2
        while level:
            if depth > limit:
                raise IntegrityError(
                    f"{path} holds a record whose metadata nests deeper than "
                    f"{MAX_METADATA_DEPTH} levels, which no vectordb-manager writer accepts; "
                    "the file is damaged or crafted. Restore it from a backup."
                )
            level = [
                x
                for v in level
                for x in (v.values() if type(v) is dict else v)
                if type(x) in _CONTAINERS
            ]
            depth += 1


def loads(data: bytes | memoryview, path: str) -> Any:
    """One JSON value (integers beyond 64 bits exact, lone surrogates kept), or
    `IntegrityError`."""
    if not may_hold_big_int(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # what orjson does not read (lone surrogates, too deep), json decides
    return _slow_loads(data, path)


def _slow_loads(data: bytes | memoryview, path: str) -> Any:
    try:
        return json.loads(
            bytes(data).decode("utf-8"), parse_constant=_no_constant, parse_float=_finite
        )
    except RecursionError:
        raise damaged(path, "holds JSON nested too deeply to read") from None
    except (UnicodeDecodeError, ValueError) as exc:  # also integers of over 4300 digits
        raise damaged(path, f"holds data that is not valid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    """``json`` reads ``NaN`` and ``Infinity``, which are not JSON: refuse them."""
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    """A JSON number as a float, refusing one beyond float range (``1e999``), as orjson
    does: no writer stores an infinity."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:20]} is beyond the range of a float")
    return value


_LONG = 19  # digits: an integer this long may not fit in 64 bits
_LONG_RUN = re.compile(rb"\d{%d}" % _LONG)
_DIGITS = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))  # digits as 0, the rest blank
_DIGIT_RUN = b"0" * _LONG
_BEFORE_NUMBER = frozenset(b":[, \t\r\n-")


def big_int_starts(data: bytes | memoryview) -> Ends:
    """Where JSON text may hold an integer beyond 64 bits, which orjson would silently read
    as a float (``json`` keeps it exact): runs of 19 digits after one of ``:[,``, a blank or
    ``-``. A false alarm (such digits inside a string) only costs the slower parser."""
    view = memoryview(data).cast("B")
    if len(view) < 4096:
        starts = [m.start() for m in _LONG_RUN.finditer(view)]
    else:  # runs of 19 digits, found in a few vectorised passes over cache-sized pieces
        starts = []
        for begin in range(0, len(view), 1 << 20):
            piece = np.frombuffer(view[begin : begin + (1 << 20) + _LONG - 1], dtype=np.uint8)
            run = (piece >= 48) & (piece <= 57)
            for shift in (1, 2, 4, 8, _LONG - 16):  # runs of 2, 4, 8, 16, then 19
                run = run[:-shift] & run[shift:]
            starts += (np.flatnonzero(run) + begin).tolist()
    found = [at for at in starts if at == 0 or view[at - 1] in _BEFORE_NUMBER]
    return np.asarray(found, dtype=np.int64)


def may_hold_big_int(data: bytes | memoryview) -> bool:
    """Whether `big_int_starts` would find anything in ``data`` (cheaply, for one line)."""
    if len(data) >= 4096:
        return bool(len(big_int_starts(data)))
    if _DIGIT_RUN not in bytes(data).translate(_DIGITS):  # (the usual line: in C, no regex)
        return False
    view = memoryview(data).cast("B")
    return any(
        m.start() == 0 or view[m.start() - 1] in _BEFORE_NUMBER for m in _LONG_RUN.finditer(view)
    )


def encode_record(doc_id: str, record: tuple[str, dict[str, Any], str, str, str]) -> bytes:
    """A record's line (without its newline): text, metadata, hash, created and updated; the
    metadata tagged and the line flagged typed when it holds dates or datetimes."""
    text, meta, digest, created, updated = record
    typed = is_typed(meta)
    row: dict[str, Any] = {
        "id": doc_id,
        "text": text,
        "metadata": tag_metadata(meta) if typed else meta,
        "hash": digest,
        "created_at": created,
        "updated_at": updated,
    }
    if typed:
        row[TYPED_FIELD] = 1
    try:  # (never orjson's own text for a datetime: that would come back as a string)
        return orjson.dumps(row, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except (TypeError, orjson.JSONEncodeError):
        pass  # integers beyond 64 bits or lone surrogates: the standard library copes
    return json.dumps(row, ensure_ascii=True, allow_nan=False).encode("ascii")


def flat_scalars(metas: Sequence[Any], scalars: frozenset[type] = SCALARS) -> bool:
    """Whether every metadata is a plain dict whose values are all of the ``scalars`` types
    (by default JSON's: then none is typed and none nests): one pass over the types of all
    their values, in C."""
    if not _DICTS.issuperset(map(type, metas)):
        return False
    return scalars.issuperset(map(type, itertools.chain.from_iterable(map(dict.values, metas))))


_DICTS = frozenset((dict,))
# between two records' lines orjson writes this, and nowhere else when their metadata are flat
# (`flat_scalars`): inside a string every quote is escaped, and flat metadata hold no object
_BETWEEN = b'},{"id":'


def encode_flat_records(
    ids: Sequence[str],
    records: Iterable[tuple[str, dict[str, Any], str, str, str]],
) -> bytes | None:
    """The lines of records whose metadata are flat (`flat_scalars`), each ending with a
    newline, exactly as `encode_record` writes them one by one, in one orjson call for all of
    them; ``None`` when orjson cannot write them (integers beyond 64 bits, lone surrogates)."""
    rows = [
        {"id": i, "text": t, "metadata": m, "hash": h, "created_at": c, "updated_at": u}
        for i, (t, m, h, c, u) in zip(ids, records, strict=True)
    ]
    if not rows:
        return b""
    try:
        blob = orjson.dumps(rows)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return blob[1:-1].replace(_BETWEEN, b'}\n{"id":') + b"\n"


def dump_ids(ids: list[str]) -> bytes:
    """A JSON list of strings."""
    try:
        return orjson.dumps(ids)
    except TypeError:
        pass  # lone surrogates
    return json.dumps(ids).encode("ascii")


def id_list(data: bytes | memoryview, path: str) -> list[str]:
    """A JSON list of strings (the ``ids`` and ``deletes`` sections), or `IntegrityError`."""
    ids = loads(data, path)
    if type(ids) is not list or not all(type(i) is str for i in ids):
        raise damaged(path, "does not hold a JSON list of ids")
    return ids


__all__ = [
    "DATETIME_TAG",
    "DATE_TAG",
    "DICT_TAG",
    "EXACT_SCALARS",
    "MAX_RECORD_LINE_BYTES",
    "SCALARS",
    "TYPED_FIELD",
    "PlainRecord",
    "RawRecords",
    "Record",
    "check_depths",
    "check_lines",
    "dump_ids",
    "encode_flat_records",
    "encode_record",
    "flat_scalars",
    "id_list",
    "is_typed",
    "loads",
    "longest_line",
    "nests",
    "newlines",
    "record_tuple",
    "records",
    "tag_metadata",
    "untag_metadata",
]
