"""Metadata filters: a small MongoDB-style language compiled to a Python predicate.

A filter is a dict. ``{"key": value}`` means equality; several keys must all hold. A key may
instead map to operators: ``{"year": {"$gte": 2000, "$lt": 2010}}``. Supported operators:
``$eq $ne $gt $gte $lt $lte $in $nin`` on fields and ``$and $or`` (lists of filters) at any
level. Comparisons never cross types: ``True`` does not equal ``1``, numbers compare with
numbers and strings with strings; a missing key fails every test except ``$ne`` and ``$nin``.
Malformed filters raise :class:`InvalidInputError` when compiled, before any search runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vectordb_manager.engine.limits import MAX_FILTER_DEPTH, MAX_METADATA_DEPTH, deeper_than
from vectordb_manager.errors import InvalidInputError

Predicate = Callable[[Mapping[str, Any]], bool]
FIELD_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
LOGICAL_OPERATORS = ("$and", "$or")
_MISSING = object()


@dataclass(frozen=True)
class CompiledFilter:
    """A filter compiled in one walk: its predicate, a plan of its equality terms for the
    value indexes (``None``: none), and whether the plan is the whole filter (then no record
    needs testing with the predicate)."""

    predicate: Predicate
    plan: Plan | None
    complete: bool


def compile_where(spec: Mapping[str, Any] | None) -> CompiledFilter | None:
    """Compile a filter dict (checked, in one walk); ``None`` or ``{}`` match everything."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise InvalidInputError(
            f"filter must be a dict such as {{'source': 'a.txt'}}, got {type(spec).__name__}"
        )
    if not spec:
        return None
    return _compile_mapping(spec, path="filter", depth=1)


def compile_filter(spec: Mapping[str, Any] | None) -> Predicate | None:
    """A filter dict's predicate over metadata; ``None`` or ``{}`` match everything."""
    compiled = compile_where(spec)
    return compiled.predicate if compiled is not None else None


def plan_filter(spec: Mapping[str, Any] | None) -> tuple[Plan | None, bool]:
    """A plan for the indexable parts of a (valid) filter, and whether it covers the whole
    filter (then no record needs testing with the predicate)."""
    compiled = compile_where(spec)
    return (compiled.plan, compiled.complete) if compiled is not None else (None, True)


def _compile_mapping(spec: Mapping[str, Any], path: str, depth: int) -> CompiledFilter:
    if not isinstance(spec, Mapping) or not spec:
        raise InvalidInputError(f"{path} must be a non-empty dict, got {spec!r:.200}")
    if depth > MAX_FILTER_DEPTH:
        raise InvalidInputError(
            f"the filter nests $and/$or more than {MAX_FILTER_DEPTH} levels deep (at "
            f"{path[:120]}...); flatten it"
        )
    parts: list[Predicate] = []
    terms: list[Plan] = []
    complete = True
    for key, value in spec.items():
        if not isinstance(key, str):
            raise InvalidInputError(f"{path} has a non-string key {key!r}")
        if key.startswith("$"):
            sub = _compile_logical(key, value, path, depth)
            parts.append(sub.predicate)
            if isinstance(sub.plan, AllOf):  # an $and: its terms join ours
                terms.extend(sub.plan.parts)
            elif sub.plan is not None:
                terms.append(sub.plan)
            complete = complete and sub.complete
        else:
            parts.append(_compile_field(key, value, f"{path}[{key!r}]"))
            values = _equality_values(value)
            if values is None:
                complete = False
            else:
                terms.append(Equals(key, tuple(values)))
    predicate = parts[0] if len(parts) == 1 else (lambda meta: all(p(meta) for p in parts))
    if not terms:
        return CompiledFilter(predicate, None, False)
    return CompiledFilter(predicate, terms[0] if len(terms) == 1 else AllOf(tuple(terms)), complete)


def _compile_logical(op: str, value: Any, path: str, depth: int) -> CompiledFilter:
    if op not in LOGICAL_OPERATORS:
        raise InvalidInputError(
            f"unknown operator {op!r} in {path}; use {', '.join(LOGICAL_OPERATORS)} to combine "
            f"filters, or one of {', '.join(FIELD_OPERATORS)} inside a field"
        )
    if not isinstance(value, list) or not value:
        raise InvalidInputError(f"{op} in {path} takes a non-empty list of filters, got {value!r}")
    subs = [_compile_mapping(v, f"{path}.{op}[{i}]", depth + 1) for i, v in enumerate(value)]
    predicates = [s.predicate for s in subs]
    if op == "$and":
        plans = [s.plan for s in subs if s.plan is not None]
        flat = [t for p in plans for t in (p.parts if isinstance(p, AllOf) else (p,))]
        return CompiledFilter(
            lambda meta: all(p(meta) for p in predicates),
            AllOf(tuple(flat)) if flat else None,
            all(s.plan is not None and s.complete for s in subs),
        )
    anyof = [s.plan for s in subs if s.plan is not None]
    return CompiledFilter(
        lambda meta: any(p(meta) for p in predicates),
        AnyOf(tuple(anyof)) if len(anyof) == len(subs) else None,
        len(anyof) == len(subs) and all(s.complete for s in subs),
    )


def _compile_field(key: str, cond: Any, path: str) -> Predicate:
    if (
        isinstance(cond, Mapping)
        and cond
        and all(isinstance(k, str) and k.startswith("$") for k in cond)
    ):
        tests = [_field_test(op, arg, path) for op, arg in cond.items()]
        if len(tests) == 1:
            (test,) = tests
            return lambda meta: test(meta.get(key, _MISSING))
        return lambda meta: all(t(meta.get(key, _MISSING)) for t in tests)
    if isinstance(cond, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in cond):
        raise InvalidInputError(f"{path} mixes operators and plain keys: {cond!r}")
    _require_json(cond, path)
    return lambda meta: _equal(meta.get(key, _MISSING), cond)


def _field_test(op: str, arg: Any, path: str) -> Callable[[Any], bool]:
    if op in ("$eq", "$ne"):
        _require_json(arg, f"{path}.{op}")
        if op == "$eq":
            return lambda v: _equal(v, arg)
        return lambda v: not _equal(v, arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if not _is_comparable(arg):
            raise InvalidInputError(f"{op} in {path} needs a number or a string, got {arg!r}")
        compare = _COMPARE[op]
        return lambda v: _same_kind(v, arg) and compare(v, arg)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise InvalidInputError(f"{op} in {path} takes a list of values, got {arg!r}")
        for item in arg:
            _require_json(item, f"{path}.{op}")
        if op == "$in":
            return lambda v: any(_equal(v, a) for a in arg)
        return lambda v: not any(_equal(v, a) for a in arg)
    if op in LOGICAL_OPERATORS:
        raise InvalidInputError(
            f"{op} in {path} must be used at the top of a filter, not inside a field"
        )
    raise InvalidInputError(
        f"unknown operator {op!r} in {path}; supported: {', '.join(FIELD_OPERATORS)}"
    )


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: bool(a > b),
    "$gte": lambda a, b: bool(a >= b),
    "$lt": lambda a, b: bool(a < b),
    "$lte": lambda a, b: bool(a <= b),
}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_comparable(v: Any) -> bool:
    return _is_number(v) or isinstance(v, str)


def _same_kind(a: Any, b: Any) -> bool:
    return (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))


def _equal(a: Any, b: Any) -> bool:
    if a is _MISSING:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    return bool(a == b)


def _require_json(value: Any, path: str) -> None:
    if deeper_than(value, MAX_METADATA_DEPTH):
        raise InvalidInputError(
            f"{path} compares with a value nested more than {MAX_METADATA_DEPTH} levels deep, "
            "which no stored metadata can hold"
        )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"{path} compares with {value!r}, which is not a JSON value"
        ) from None


# -- index plans --------------------------------------------------------------------------
# A plan answers the equality parts of a filter from per-key value indexes instead of testing
# every record.


@dataclass(frozen=True)
class Equals:
    """The records whose ``key`` equals one of ``values``."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class AllOf:
    """The records every part selects."""

    parts: tuple[Plan, ...]


@dataclass(frozen=True)
class AnyOf:
    """The records some part selects."""

    parts: tuple[Plan, ...]


Plan = Equals | AllOf | AnyOf
_SCALARS = (str, int, float, bool, type(None))


def value_key(value: Any) -> tuple[str, Any] | None:
    """The index key of a metadata value; equal keys exactly when `_equal` holds. Lists and
    dicts are not indexed (``None``)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)  # 1 and 1.0 compare (and hash) equal, as in `_equal`
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z", None)
    return None


def _equality_values(cond: Any) -> list[Any] | None:
    if isinstance(cond, Mapping):
        if len(cond) != 1:
            return None
        ((op, arg),) = cond.items()
        if op == "$eq" and isinstance(arg, _SCALARS):
            return [arg]
        if op == "$in" and isinstance(arg, list) and all(isinstance(a, _SCALARS) for a in arg):
            return list(arg)
        return None
    return [cond] if isinstance(cond, _SCALARS) else None
