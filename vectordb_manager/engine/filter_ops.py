"""Values and field operators of the filter language (the language itself: `filters`).

Every value has a *kind*: bool, number, string, null, date, naive datetime, aware datetime,
list, dict. Two values compare only within one kind, so no test ever raises on mixed types:
``True`` is not ``1``, a date is not a datetime (although `datetime` subclasses `date`), a
naive datetime never meets an aware one. Lists and dicts are equal when their items are, by
the same rule. `value_key` gives the scalars a hashable key that agrees with that equality
(numbers by value, aware datetimes by instant), for the value indexes and for ``$in``.

Field operators compile to a test of one value (`MISSING` where the metadata has no such
key) once per filter: literals are converted, ``$like`` patterns cut into pieces and ``$in``
lists hashed when the filter is compiled, never per record. A missing key equals ``None``
(as in LangChain's FAISS store and MongoDB) and fails every other test except ``$ne``,
``$nin``, ``$not`` and ``$exists: false``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from vectordb_manager.engine.limits import MAX_FILTER_DEPTH, MAX_METADATA_DEPTH, deeper_than
from vectordb_manager.errors import InvalidInputError

Test = Callable[[Any], bool]
MISSING: Any = object()
"""The value a test sees for a key the metadata does not have."""

FIELD_OPERATORS = (
    "$eq", "$ne", "$neq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
    "$between", "$exists", "$contains", "$like", "$ilike", "$not",
)  # fmt: skip
LITERALS = ("$date", "$datetime")
_YMD = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# -- kinds and equality ---------------------------------------------------------------------
_KINDS: dict[type, str] = {
    bool: "b", int: "n", float: "n", str: "s", type(None): "z", date: "d", list: "l", dict: "m",
}
_KEYED = frozenset("bnszdtT")  # kinds with a value key: the scalars
_ORDERED = frozenset("nsdtT")  # kinds that $gt, $lt and $between order
_KIND_NAMES = {"n": "number", "s": "string", "d": "date", "t": "naive datetime",
               "T": "aware datetime"}  # fmt: skip


def kind(value: Any) -> str:
    """The kind of a value: b(ool) n(umber) s(tring) z (null) d(ate) t (naive datetime)
    T (aware datetime) l(ist) m(apping), or o(ther)."""
    k = _KINDS.get(type(value))
    if k is not None:
        return k
    if isinstance(value, datetime):
        return "t" if value.utcoffset() is None else "T"
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int | float):
        return "n"
    if isinstance(value, str):
        return "s"
    if isinstance(value, date):
        return "d"
    if isinstance(value, list):
        return "l"
    if isinstance(value, Mapping):
        return "m"
    return "o"


def equal(a: Any, b: Any) -> bool:
    """Equality within one kind; lists and dicts item by item."""
    ka = kind(a)
    if ka != kind(b):
        return False
    if ka == "l":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "m":
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


def value_key(value: Any) -> tuple[str, Any] | None:
    """The index key of a metadata value: equal keys exactly when `equal` holds. Lists and
    dicts have none (``None``)."""
    k = kind(value)
    return (k, value) if k in _KEYED else None


def keyable(value: Any) -> bool:
    """Whether a filter literal can be looked up in a value index: a scalar other than
    ``None`` (which a missing key also equals, and the indexes do not hold those)."""
    return value is not None and value_key(value) is not None


# -- literals -------------------------------------------------------------------------------
def literal(value: Any, path: str) -> Any:
    """A filter's value, checked and converted: JSON values, dates and datetimes, with
    ``{"$date": "YYYY-MM-DD"}`` and ``{"$datetime": "<ISO 8601>"}`` read as typed literals
    anywhere inside."""
    if deeper_than(value, MAX_METADATA_DEPTH):
        raise InvalidInputError(
            f"{path} compares with a value nested more than {MAX_METADATA_DEPTH} levels deep, "
            "which no stored metadata can hold"
        )
    return _convert(value, path)


def _convert(value: Any, path: str) -> Any:
    k = kind(value)
    if k in "bszdtT":
        return value
    if k == "n":
        if not math.isfinite(value):
            raise InvalidInputError(f"{path} compares with {value!r}, which no metadata holds")
        return value
    if k == "l":
        return [_convert(v, path) for v in value]
    if k == "m":
        typed = typed_literal(value, path)
        if typed is not None:
            return typed
        if not all(isinstance(key, str) for key in value):
            raise InvalidInputError(f"{path} compares with a dict whose keys are not all strings")
        return {key: _convert(v, path) for key, v in value.items()}
    hint = "; use a list" if isinstance(value, tuple | set | frozenset) else ""
    raise InvalidInputError(
        f"{path} compares with {value!r:.100}, which is not a JSON value, a date or a "
        f"datetime{hint}"
    )


def typed_literal(value: Mapping[str, Any], path: str) -> date | None:
    """The date or datetime a ``{"$date": ...}`` / ``{"$datetime": ...}`` dict stands for;
    ``None`` if the dict is not one."""
    if len(value) != 1:
        return None
    ((tag, text),) = value.items()
    if tag not in LITERALS:
        return None
    parse = date.fromisoformat if tag == "$date" else datetime.fromisoformat
    example = "2024-05-01" if tag == "$date" else "2024-05-01T12:30:00+00:00"
    if isinstance(text, str):
        try:
            parsed: date = parse(text)
        except ValueError:
            pass
        else:
            if tag == "$datetime" or _YMD.fullmatch(text):
                return parsed
    raise InvalidInputError(
        f"{path} has {{{tag!r}: {text!r:.80}}}, which is not an ISO 8601 "
        f"{tag[1:]}; write it like {{{tag!r}: {example!r}}}"
    )


# -- field operators ------------------------------------------------------------------------
def field_tests(cond: Mapping[str, Any], path: str, depth: int) -> Test:
    """The test of an operator dict such as ``{"$gte": 1, "$lt": 5}``: every operator holds."""
    if depth > MAX_FILTER_DEPTH:
        raise InvalidInputError(
            f"the filter nests more than {MAX_FILTER_DEPTH} levels deep (at {path[:120]}...); "
            "flatten it"
        )
    tests = [_field_test(op, arg, path, depth) for op, arg in cond.items()]
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda v: first(v) and second(v)
    return lambda v: all(t(v) for t in tests)


def equals_test(x: Any) -> Test:
    """The test of equality with literal ``x`` (``None`` also matches a missing key)."""
    if x is None:
        return lambda v: v is None or v is MISSING
    kx = kind(x)
    if kx in _KEYED:
        return lambda v: kind(v) == kx and bool(v == x)
    return lambda v: equal(v, x)


def in_test(items: list[Any]) -> Test:
    """The test of membership in ``items`` (converted literals), hashed where possible."""
    keys = frozenset(k for k in map(value_key, items) if k is not None)
    others = [x for x in items if value_key(x) is None]
    if not others:
        return lambda v: value_key(None if v is MISSING else v) in keys

    def test(v: Any) -> bool:
        key = value_key(None if v is MISSING else v)
        return key in keys if key is not None else any(equal(v, x) for x in others)

    return test


def collection(arg: Any, op: str, path: str) -> list[Any]:
    """The items of ``$in``/``$nin``'s operand (a list, tuple or set), converted."""
    if not isinstance(arg, list | tuple | set | frozenset):
        raise InvalidInputError(
            f"{op} in {path} takes a list of values, got {arg!r:.100}; e.g. "
            f"{{{op!r}: ['a', 'b']}}"
        )
    return [literal(x, f"{path}.{op}") for x in arg]


def _ordered(arg: Any, op: str, path: str) -> tuple[str, Any]:
    x = literal(arg, f"{path}.{op}")
    kx = kind(x)
    if kx not in _ORDERED:
        raise InvalidInputError(
            f"{op} in {path} needs a number or a string (or a date or a datetime), got "
            f"{arg!r:.100}"
        )
    return kx, x


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: bool(a > b),
    "$gte": lambda a, b: bool(a >= b),
    "$lt": lambda a, b: bool(a < b),
    "$lte": lambda a, b: bool(a <= b),
}


def _field_test(op: str, arg: Any, path: str, depth: int) -> Test:
    if op == "$eq":
        return equals_test(literal(arg, f"{path}.{op}"))
    if op in ("$ne", "$neq"):
        eq = equals_test(literal(arg, f"{path}.{op}"))
        return lambda v: not eq(v)
    if op in _COMPARE:
        kx, x = _ordered(arg, op, path)
        compare = _COMPARE[op]
        return lambda v: kind(v) == kx and compare(v, x)
    if op in ("$in", "$nin"):
        member = in_test(collection(arg, op, path))
        return member if op == "$in" else (lambda v: not member(v))
    if op == "$between":
        return _between(arg, path)
    if op == "$exists":
        if not isinstance(arg, bool):
            raise InvalidInputError(f"$exists in {path} takes true or false, got {arg!r:.100}")
        return (lambda v: v is not MISSING) if arg else (lambda v: v is MISSING)
    if op == "$contains":
        return _contains(arg, path)
    if op in ("$like", "$ilike"):
        if not isinstance(arg, str):
            raise InvalidInputError(
                f"{op} in {path} takes a pattern string such as 'report%', got {arg!r:.100}"
            )
        pattern = LikePattern(arg, ignore_case=op == "$ilike", where=f"{op} in {path}")
        return lambda v: isinstance(v, str) and pattern.matches(v)
    if op == "$not":
        if not (isinstance(arg, Mapping) and arg and all(_is_op(k) for k in arg)) or (
            typed_literal(arg, path) is not None
        ):
            raise InvalidInputError(
                f"$not in {path} takes operators such as {{'$gt': 3}}, got {arg!r:.100}; "
                "use $ne to exclude one value"
            )
        inner = field_tests(arg, f"{path}.$not", depth + 1)
        return lambda v: not inner(v)
    if op in ("$and", "$or"):
        raise InvalidInputError(
            f"{op} in {path} must be used at the top of a filter, not inside a field"
        )
    hint = ""
    if op in LITERALS:
        hint = f" ({{{op!r}: ...}} is a date literal only as a dict with that one key)"
    raise InvalidInputError(
        f"unknown operator {op!r} in {path}{hint}; field operators: "
        f"{', '.join(FIELD_OPERATORS)}"
    )


def _is_op(key: Any) -> bool:
    return isinstance(key, str) and key.startswith("$")


def _between(arg: Any, path: str) -> Test:
    if not isinstance(arg, list | tuple) or len(arg) != 2:
        raise InvalidInputError(
            f"$between in {path} takes [low, high], got {arg!r:.100}; e.g. "
            "{'$between': [2000, 2010]} (both ends included)"
        )
    (k_low, low), (k_high, high) = (_ordered(x, "$between", path) for x in arg)
    if k_low != k_high:
        raise InvalidInputError(
            f"$between in {path} has a {_KIND_NAMES[k_low]} and a {_KIND_NAMES[k_high]} as "
            "its ends; give two values of one kind"
        )
    return lambda v: kind(v) == k_low and bool(low <= v <= high)


def _contains(arg: Any, path: str) -> Test:
    x = literal(arg, f"{path}.$contains")
    if kind(x) in "lm":
        raise InvalidInputError(
            f"$contains in {path} takes one value (a substring, or an item of a list), got "
            f"{arg!r:.100}; combine several with $and or $or"
        )
    member = equals_test(x)
    if isinstance(x, str):
        return lambda v: (x in v) if isinstance(v, str) else (
            isinstance(v, list) and any(member(item) for item in v)
        )
    return lambda v: isinstance(v, list) and any(member(item) for item in v)


# -- SQL LIKE patterns ----------------------------------------------------------------------
class LikePattern:
    """A SQL ``LIKE`` pattern: ``%`` any run of characters, ``_`` one character, ``\\``
    makes the next character literal. Matched without backtracking: the pattern is cut at
    each ``%`` into fixed-length pieces, the first anchored at the start, the last at the
    end and the others found leftmost in between, so a match costs at most a scan of the
    value per piece, whatever the pattern."""

    def __init__(self, pattern: str, *, ignore_case: bool, where: str) -> None:
        pieces: list[list[str]] = [[]]
        chars = iter(pattern)
        for c in chars:
            if c == "\\":
                escaped = next(chars, None)
                if escaped is None:
                    raise InvalidInputError(
                        f"{where}: the pattern {pattern!r:.100} ends with a lone backslash; "
                        "write \\\\ for a literal backslash"
                    )
                pieces[-1].append(re.escape(escaped))
            elif c == "%":
                pieces.append([])
            elif c == "_":
                pieces[-1].append(".")
            else:
                pieces[-1].append(re.escape(c))
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        self.parts = [re.compile("".join(p), flags) for p in pieces]
        self.last_length = len(pieces[-1])

    def matches(self, value: str) -> bool:
        parts = self.parts
        if len(parts) == 1:
            return parts[0].fullmatch(value) is not None
        found = parts[0].match(value)
        if found is None:
            return False
        at = found.end()
        for part in parts[1:-1]:
            found = part.search(value, at)
            if found is None:
                return False
            at = found.end()
        start = len(value) - self.last_length
        return start >= at and parts[-1].fullmatch(value, start) is not None
