"""Metadata filters: a MongoDB-style language (LangChain FAISS's, and more), compiled once.

A filter is a dict on metadata, or a callable (``filter=lambda md: md["page"] > 1``, as
LangChain's FAISS store takes) that gets a copy of each document's metadata and returns
whether the document passes. ``None`` and ``{}`` match everything. In a dict:

``{"key": value}``
    equality; several keys must all hold. A list means any of: ``{"page": [0, 1]}`` is
    ``{"page": {"$in": [0, 1]}}`` (FAISS's meaning); ``{"$eq": [0, 1]}`` compares a list.
``{"key": {"$op": operand, ...}}``
    field operators, all of which must hold (``{"key": {}}`` has none: it passes all, as in FAISS):
    ``$eq``, ``$ne`` (also ``$neq``), ``$gt $gte $lt $lte``, ``$in $nin`` (a list),
    ``$between`` (``[low, high]``, both ends included), ``$exists`` (true or false),
    ``$contains`` (a substring of a string, or an item of a list), ``$like`` / ``$ilike``
    (SQL patterns: ``%`` any run, ``_`` one character, ``\\`` escapes; ilike ignores case),
    ``$not`` (operators, negated: ``{"page": {"$not": {"$gt": 3}}}``).
``{"$and": [f, ...]}``, ``{"$or": [f, ...]}``, ``{"$not": f}``
    combine filters, at any level; ``$and: []`` matches everything, ``$or: []`` nothing.

Values compare only within one kind (`filter_ops`): ``True`` is not ``1``; numbers with
numbers, strings with strings, dates with dates, naive datetimes with naive ones and aware
with aware (by instant); a mismatch fails the test and never raises. Metadata may hold
``datetime.date``/``datetime.datetime`` values; JSON callers write them as
``{"$date": "2024-05-01"}`` or ``{"$datetime": "2024-05-01T12:00:00+00:00"}``. A missing key
equals ``None`` (as in FAISS and MongoDB) and fails every other test but ``$ne``, ``$nin``,
``$not`` and ``$exists: false``. Malformed filters raise :class:`InvalidInputError` when
compiled, before any search runs; so does a callable that raises (its error chained).
docs/filters.md is the full reference.

Compiling gives a predicate and a plan of the terms the value indexes answer without testing
records (`Equals` for equality and ``$in``, `Range` for ``$gt $gte $lt $lte $between``,
combined by `AllOf` and `AnyOf`; `value_index`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vectordb_manager.engine.filter_ops import (
    FIELD_OPERATORS,
    MISSING,
    collection,
    equals_test,
    field_tests,
    in_test,
    keyable,
    kind,
    literal,
    typed_literal,
    value_key,
)
from vectordb_manager.engine.limits import MAX_FILTER_DEPTH
from vectordb_manager.errors import InvalidInputError

Predicate = Callable[[Mapping[str, Any]], bool]
Filter = Mapping[str, Any] | Callable[[dict[str, Any]], Any]
LOGICAL_OPERATORS = ("$and", "$or", "$not")


@dataclass(frozen=True)
class CompiledFilter:
    """A filter compiled in one walk: its predicate, a plan of its equality and range terms
    for the value indexes (``None``: none), and whether the plan is the whole filter (then no record
    needs testing with the predicate)."""

    predicate: Predicate
    plan: Plan | None
    complete: bool


def compile_where(spec: Filter | CompiledFilter | None) -> CompiledFilter | None:
    """Compile a filter dict (checked, in one walk) or a callable; ``None`` when it matches
    everything (``None``, ``{}``, ``{"$and": []}``)."""
    if spec is None or isinstance(spec, CompiledFilter):
        return spec
    if isinstance(spec, Mapping):
        compiled = _compile_mapping(spec, path="filter", depth=1)
        return None if compiled is ALWAYS else compiled
    if callable(spec):
        return CompiledFilter(_user_predicate(spec), None, False)
    raise InvalidInputError(
        f"filter must be a dict such as {{'source': 'a.txt'}} or a function of the metadata "
        f"such as lambda md: md.get('page', 0) > 1, got {type(spec).__name__}"
    )


def compile_filter(spec: Filter | None) -> Predicate | None:
    """A filter's predicate over metadata; ``None`` when it matches everything."""
    compiled = compile_where(spec)
    return compiled.predicate if compiled is not None else None


def plan_filter(spec: Filter | None) -> tuple[Plan | None, bool]:
    """A plan for the indexable parts of a (valid) filter, and whether it covers the whole
    filter (then no record needs testing with the predicate)."""
    compiled = compile_where(spec)
    return (compiled.plan, compiled.complete) if compiled is not None else (None, True)


# -- callables ------------------------------------------------------------------------------
_CONTAINERS = frozenset((list, dict))


def _user_predicate(fn: Callable[[dict[str, Any]], Any]) -> Predicate:
    """``fn`` on a private copy of each metadata dict (the store's own are shared with its
    records: a function that changes its argument must not change the store), its result
    taken as true or false, its errors raised as `InvalidInputError` naming it."""
    name = getattr(fn, "__qualname__", None) or repr(fn)

    def predicate(meta: Mapping[str, Any]) -> bool:
        # stored metadata holds JSON values and dates: only lists and dicts can change
        mine = (
            dict(meta)
            if _CONTAINERS.isdisjoint(map(type, meta.values()))
            else copy.deepcopy(dict(meta))
        )
        try:
            return bool(fn(mine))
        except Exception as exc:
            hint = (
                f"; use md.get({exc.args[0]!r}) for documents without that key"
                if isinstance(exc, KeyError) and exc.args
                else ""
            )
            raise InvalidInputError(
                f"the filter function {name} raised {type(exc).__name__}: {exc} on the "
                f"metadata {dict(meta)!r:.200}{hint}"
            ) from exc

    return predicate


# -- dicts ----------------------------------------------------------------------------------
def _always(meta: Mapping[str, Any]) -> bool:
    return True


def _never(meta: Mapping[str, Any]) -> bool:
    return False


def _compile_mapping(spec: Any, path: str, depth: int) -> CompiledFilter:
    if not isinstance(spec, Mapping):
        raise InvalidInputError(f"{path} must be a filter dict, got {spec!r:.200}")
    if depth > MAX_FILTER_DEPTH:
        raise InvalidInputError(
            f"the filter nests $and/$or/$not more than {MAX_FILTER_DEPTH} levels deep (at "
            f"{path[:120]}...); flatten it"
        )
    parts: list[CompiledFilter] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise InvalidInputError(f"{path} has a non-string key {key!r}")
        if key.startswith("$"):
            parts.append(_compile_logical(key, value, path, depth))
        else:
            parts.append(_compile_field(key, value, f"{path}[{key!r}]", depth))
    return _all_of(parts)


def _compile_logical(op: str, value: Any, path: str, depth: int) -> CompiledFilter:
    if op == "$not":
        if not isinstance(value, Mapping):
            raise InvalidInputError(
                f"$not in {path} takes one filter dict, such as {{'$not': {{'page': 1}}}}, "
                f"got {value!r:.200}"
            )
        return _negation(_compile_mapping(value, f"{path}.$not", depth + 1))
    if op not in LOGICAL_OPERATORS:
        raise InvalidInputError(
            f"unknown operator {op!r} in {path}; use {', '.join(LOGICAL_OPERATORS)} to combine "
            f"filters, or one of {', '.join(FIELD_OPERATORS)} inside a field"
        )
    if not isinstance(value, list | tuple):
        raise InvalidInputError(
            f"{op} in {path} takes a list of filters, such as {{{op!r}: [{{'a': 1}}, "
            f"{{'b': 2}}]}}, got {value!r:.200}"
        )
    subs = [_compile_mapping(v, f"{path}.{op}[{i}]", depth + 1) for i, v in enumerate(value)]
    return _all_of(subs) if op == "$and" else _any_of(subs)


def _compile_field(key: str, cond: Any, path: str, depth: int) -> CompiledFilter:
    if isinstance(cond, Mapping) and not cond:  # no operators: no condition (FAISS)
        return ALWAYS
    terms: list[Plan] = []  # what the value indexes may select by
    complete = False
    if isinstance(cond, Mapping) and typed_literal(cond, path) is None:
        ops = [isinstance(k, str) and k.startswith("$") for k in cond]
        if all(ops):
            test = field_tests(cond, path, depth + 1)  # (checks every operand first)
            terms, complete = _field_terms(key, cond, path)
        elif any(ops):
            raise InvalidInputError(
                f"{path} mixes operators and plain keys: {cond!r:.200}; put the plain keys "
                "in an operator such as $eq"
            )
        else:
            test = equals_test(literal(cond, path))
    elif isinstance(cond, list):  # any of (FAISS)
        items = collection(cond, "$in", path)
        test = in_test(items)
        if all(map(keyable, items)):
            terms, complete = [Equals(key, tuple(items))], True
    else:
        x = literal(cond, path)
        test = equals_test(x)
        if keyable(x):
            terms, complete = [Equals(key, (x,))], True
    if any(isinstance(t, Equals) and not t.values for t in terms):
        return NEVER  # $in: [] or []: nothing passes

    def predicate(meta: Mapping[str, Any]) -> bool:
        return test(meta.get(key, MISSING))

    plan = None if not terms else terms[0] if len(terms) == 1 else AllOf(tuple(terms))
    return CompiledFilter(predicate, plan, complete and plan is not None)


def _field_terms(key: str, cond: Mapping[str, Any], path: str) -> tuple[list[Plan], bool]:
    """The index terms of a (checked) operator dict: an `Equals` for each ``$eq`` and ``$in``
    of keyable values, a `Range` for each ``$gt $gte $lt $lte $between``; and whether they
    are the whole dict."""
    terms: list[Plan] = []
    for op, arg in cond.items():
        if op in ("$eq", "$in"):
            items = [literal(arg, path)] if op == "$eq" else collection(arg, op, path)
            if all(map(keyable, items)):
                terms.append(Equals(key, tuple(items)))
        elif op in ("$gt", "$gte"):
            x = literal(arg, path)
            terms.append(Range(key, kind(x), low=x, low_open=op == "$gt"))
        elif op in ("$lt", "$lte"):
            x = literal(arg, path)
            terms.append(Range(key, kind(x), high=x, high_open=op == "$lt"))
        elif op == "$between":
            low, high = (literal(x, path) for x in arg)
            terms.append(Range(key, kind(low), low=low, high=high))
    return terms, len(terms) == len(cond)


def _all_of(subs: list[CompiledFilter]) -> CompiledFilter:
    subs = [s for s in subs if s is not ALWAYS]
    if not subs:
        return ALWAYS
    if any(s is NEVER for s in subs):
        return NEVER
    if len(subs) == 1:
        return subs[0]
    terms = tuple(
        t for s in subs if s.plan is not None
        for t in (s.plan.parts if isinstance(s.plan, AllOf) else (s.plan,))
    )  # fmt: skip
    plan = None if not terms else terms[0] if len(terms) == 1 else AllOf(terms)
    preds = [s.predicate for s in subs]
    if len(preds) == 2:
        first, second = preds
        predicate: Predicate = lambda meta: first(meta) and second(meta)  # noqa: E731
    else:
        predicate = lambda meta: all(p(meta) for p in preds)  # noqa: E731
    return CompiledFilter(predicate, plan, plan is not None and all(s.complete for s in subs))


def _any_of(subs: list[CompiledFilter]) -> CompiledFilter:
    if any(s is ALWAYS for s in subs):
        return ALWAYS
    subs = [s for s in subs if s is not NEVER]
    if not subs:
        return NEVER
    if len(subs) == 1:
        return subs[0]
    plans = [s.plan for s in subs if s.plan is not None]
    plan = AnyOf(tuple(plans)) if len(plans) == len(subs) else None
    preds = [s.predicate for s in subs]
    return CompiledFilter(
        lambda meta: any(p(meta) for p in preds),
        plan,
        plan is not None and all(s.complete for s in subs),
    )


def _negation(sub: CompiledFilter) -> CompiledFilter:
    if sub is ALWAYS:
        return NEVER
    if sub is NEVER:
        return ALWAYS
    inner = sub.predicate
    return CompiledFilter(lambda meta: not inner(meta), None, False)


# -- index plans ----------------------------------------------------------------------------
# A plan answers the equality and range parts of a filter from per-key value indexes instead
# of testing every record.


@dataclass(frozen=True)
class Equals:
    """The records whose ``key`` equals one of ``values``."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """The records whose ``key`` holds a value of ``kind`` (`filter_ops.kind`: a number, a
    string, a date, a naive or an aware datetime) from ``low`` to ``high`` (``None``: no
    bound), each end included unless it is open."""

    key: str
    kind: str
    low: Any = None
    high: Any = None
    low_open: bool = False
    high_open: bool = False


@dataclass(frozen=True)
class AllOf:
    """The records every part selects."""

    parts: tuple[Plan, ...]


@dataclass(frozen=True)
class AnyOf:
    """The records some part selects (none when there are no parts)."""

    parts: tuple[Plan, ...]


Plan = Equals | Range | AllOf | AnyOf

ALWAYS = CompiledFilter(_always, None, True)
"""A filter that passes everything (``{}``, ``{"$and": []}``)."""
NEVER = CompiledFilter(_never, AnyOf(()), True)
"""A filter that passes nothing (``{"$or": []}``, ``{"k": {"$in": []}}``)."""

__all__ = [
    "ALWAYS",
    "NEVER",
    "AllOf",
    "AnyOf",
    "CompiledFilter",
    "Equals",
    "Plan",
    "Predicate",
    "Range",
    "compile_filter",
    "compile_where",
    "plan_filter",
    "value_key",
]
