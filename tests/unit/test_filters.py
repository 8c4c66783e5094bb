"""The filter language: semantics of each operator and clear errors for malformed filters."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any
from unittest import mock

import numpy as np
import pytest

from vectordb_manager import InvalidInputError
from vectordb_manager.engine.filters import (
    NEVER,
    Equals,
    compile_filter,
    compile_where,
    plan_filter,
    value_key,
)

DOCS: list[dict[str, Any]] = [
    {"name": "a", "year": 1999, "score": 0.5, "tag": "x", "flag": True},
    {"name": "b", "year": 2005, "score": 1.5, "tag": "y", "flag": False},
    {"name": "c", "year": 2010, "tag": "x", "flag": 1},
    {"name": "d", "year": "2010", "nested": {"k": 1}, "tags": ["p", "q"]},
    {"name": "e"},
]


def names(spec: dict[str, Any] | None) -> list[str]:
    pred = compile_filter(spec)
    return [d["name"] for d in DOCS if pred is None or pred(d)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ["a", "b", "c", "d", "e"]),
        ({}, ["a", "b", "c", "d", "e"]),
        ({"tag": "x"}, ["a", "c"]),
        ({"tag": "x", "year": 2010}, ["c"]),
        ({"year": {"$eq": 2010}}, ["c"]),
        ({"year": {"$ne": 2010}}, ["a", "b", "d", "e"]),
        ({"year": {"$gt": 2000}}, ["b", "c"]),
        ({"year": {"$gte": 2005, "$lt": 2010}}, ["b"]),
        ({"year": {"$lte": 2005}}, ["a", "b"]),
        ({"year": {"$gte": "2000"}}, ["d"]),
        ({"score": {"$gt": 1}}, ["b"]),
        ({"score": {"$gte": 0.5}}, ["a", "b"]),
        ({"tag": {"$in": ["y", "z"]}}, ["b"]),
        ({"tag": {"$nin": ["x"]}}, ["b", "d", "e"]),
        ({"flag": True}, ["a"]),
        ({"flag": 1}, ["c"]),
        ({"flag": {"$in": [1]}}, ["c"]),
        ({"nested": {"k": 1}}, ["d"]),
        # a list value means any of (LangChain FAISS): ["p", "q"] is neither "p" nor "q"
        ({"tags": ["p", "q"]}, []),
        ({"tags": [["p", "q"]]}, ["d"]),
        ({"tags": {"$eq": ["p", "q"]}}, ["d"]),
        ({"tag": ["y", "z"]}, ["b"]),
        ({"$or": [{"tag": "y"}, {"year": {"$gte": 2010}}]}, ["b", "c"]),
        ({"$and": [{"tag": "x"}, {"year": {"$lt": 2005}}]}, ["a"]),
        (
            {"$or": [{"$and": [{"tag": "x"}, {"flag": True}]}, {"name": {"$in": ["e"]}}]},
            ["a", "e"],
        ),
        ({"missing": {"$ne": 1}}, ["a", "b", "c", "d", "e"]),
        ({"missing": {"$nin": [1]}}, ["a", "b", "c", "d", "e"]),
        # a missing key equals None (LangChain FAISS, MongoDB)
        ({"missing": None}, ["a", "b", "c", "d", "e"]),
        ({"missing": {"$ne": None}}, []),
        ({"$and": []}, ["a", "b", "c", "d", "e"]),
        ({"$or": []}, []),
        ({"$or": [{}]}, ["a", "b", "c", "d", "e"]),
        ({"year": 2010.0}, ["c"]),
    ],
)
def test_semantics(spec: dict[str, Any] | None, expected: list[str]) -> None:
    assert names(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"year": {"$regex": "x"}}, "unknown operator '\\$regex'"),
        ({"$not": [{"a": 1}]}, "\\$not in filter takes one filter dict"),
        ({"$or": {"a": 1}}, "takes a list of filters"),
        ({"a": {"$in": "x"}}, "takes a list"),
        ({"a": {"$gt": [1]}}, "needs a number or a string"),
        ({"a": {"$gt": None}}, "needs a number or a string"),
        ({"a": {"$eq": 1, "b": 2}}, "mixes operators"),
        ({"a": {"$or": [{"b": 1}]}}, "must be used at the top"),
        ({"a": {1, 2}}, "not a JSON value"),
        ({1: "a"}, "non-string key"),
        ({"$or": [1]}, "must be a filter dict"),
    ],
)
def test_malformed(spec: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        compile_filter(spec)


def test_not_a_dict() -> None:
    with pytest.raises(InvalidInputError, match="filter must be a dict"):
        compile_filter([("a", 1)])  # type: ignore[arg-type]
    assert isinstance(InvalidInputError("x"), ValueError)


# -- the value-index plan agrees with testing every record ------------------------------------

def _random_value(rng: random.Random) -> Any:
    return rng.choice([True, False, 0, 1, 1.0, 2, 2.5, "1", "a", "b", None, [1], {"k": 1}])


def _random_filter(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    key = rng.choice(["x", "y", "z"])
    roll = rng.random()
    if depth < 2 and roll < 0.15:
        return {"$or": [_random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth < 2 and roll < 0.3:
        return {"$and": [_random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if roll < 0.5:
        return {key: rng.choice([True, 0, 1, 1.0, 2.5, "a", "1", None])}
    if roll < 0.65:
        return {key: {"$in": [rng.choice([True, 1, 2, "a", None, 2.5]) for _ in range(2)]}}
    if roll < 0.75:
        return {key: {"$eq": rng.choice([False, 2, "b"])}, "y": rng.choice([1, "a"])}
    if roll < 0.85:
        return {key: {"$gte": rng.choice([1, "a"])}}
    return {key: {"$nin": [rng.choice([1, "a"])]}}


def test_value_index_plan_equals_full_scan() -> None:
    from vectordb_manager.engine.filters import CompiledFilter
    from vectordb_manager.engine.format import SegmentData
    from vectordb_manager.engine.index import IndexParams
    from vectordb_manager.engine.search import passing
    from vectordb_manager.engine.state import StoreState

    rng = random.Random(7)
    metas = []
    for _ in range(400):
        m = {k: _random_value(rng) for k in ("x", "y", "z") if rng.random() < 0.8}
        metas.append(m)
    st = StoreState("flat", 4, "cosine", IndexParams())

    def add(ids: list[str], ms: list[dict[str, Any]], deletes: list[str] = []) -> None:  # noqa: B006
        vec = np.ones((len(ids), 4), dtype=np.float32)
        st.apply(SegmentData(ids, ["t"] * len(ids), ms, ["h"] * len(ids), ["c"] * len(ids),
                             ["u"] * len(ids), vec, deletes), None)

    add([str(i) for i in range(200)], metas[:200])
    for round_ in range(3):
        for _ in range(60):
            spec = _random_filter(rng)
            pred = compile_filter(spec)
            assert pred is not None
            plan, complete = plan_filter(spec)
            got = passing(st, CompiledFilter(pred, plan, complete)).tolist()
            want = [s for s, m in st.metas() if pred(m)]
            assert got == want, spec
        # change the store between rounds: indexes built so far must follow
        start = 200 + round_ * 60
        add([str(i) for i in range(start, start + 60)], metas[start : start + 60],
            deletes=[str(rng.randrange(0, start)) for _ in range(20)])
        add([str(rng.randrange(0, start)) for _ in range(1)], [metas[0]])


def test_ids_by_value_groups_live_documents_by_a_metadata_value(tmp_path: Any) -> None:
    from vectordb_manager import LocalVectorStore
    from vectordb_manager.embeddings import HashingEmbeddings

    store = LocalVectorStore(HashingEmbeddings(16), tmp_path)
    store.add_texts(
        [d["name"] for d in DOCS], [dict(d) for d in DOCS], ids=[d["name"] for d in DOCS]
    )
    store.delete(["b"])
    reopened = LocalVectorStore(HashingEmbeddings(16), tmp_path)
    for engine in (store.engine, reopened.engine):
        groups = engine.ids_by_value("flag")
        # True and 1 are different values to a filter; False's only document is deleted
        assert sorted(groups, key=repr) == [(1, ["c"]), (True, ["a"])]
        assert all(type(v) is bool for v, ids in groups if ids == ["a"])
        assert sorted(engine.ids_by_value("year"), key=repr) == sorted(
            [(1999, ["a"]), (2010, ["c"]), ("2010", ["d"])], key=repr
        )
        assert engine.ids_by_value("tags") == []  # lists are not grouped
        assert engine.ids_by_value("missing") == []


# -- LangChain FAISS's additions: callables, lists, $neq, $not -------------------------------

PAGES: list[dict[str, Any]] = [{"page": i, "name": str(i)} for i in range(4)] + [{"name": "x"}]


def pages(spec: Any) -> list[str]:
    pred = compile_filter(spec)
    return [d["name"] for d in PAGES if pred is None or pred(d)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"page": [0, 1]}, ["0", "1"]),
        ({"page": {"$in": [0, 1]}}, ["0", "1"]),
        ({"page": []}, []),
        ({"page": [None, 3]}, ["3", "x"]),  # the missing key equals None
        ({"page": {"$neq": 1}}, ["0", "2", "3", "x"]),
        ({"page": {"$ne": 1}}, ["0", "2", "3", "x"]),
        ({"$not": {"page": 1}}, ["0", "2", "3", "x"]),
        ({"$not": {"page": {"$lt": 1}}}, ["1", "2", "3", "x"]),
        ({"$not": {}}, []),
        ({"page": {}}, ["0", "1", "2", "3", "x"]),  # no operators, no condition (FAISS)
        ({"page": {"$eq": {}}}, []),  # an empty dict value
        ({"$not": {"$not": {"page": 2}}}, ["2"]),
        ({"page": {"$not": {"$gt": 1}}}, ["0", "1", "x"]),  # MongoDB: missing passes $not
        ({"page": {"$not": {"$gt": 0, "$lt": 3}}}, ["0", "3", "x"]),
        ({"page": {"$gte": 1, "$not": {"$eq": 2}}}, ["1", "3"]),
        ({"$and": [{"$or": [{"page": 1}, {"page": 2}]}, {"$not": {"page": 1}}]}, ["2"]),
        ({"$and": [], "page": 3}, ["3"]),
        ({"$or": [], "page": 3}, []),
        ({"$or": [{"page": 3}, {}]}, ["0", "1", "2", "3", "x"]),
        ({"$and": ({"page": {"$gt": 0}}, {"page": {"$lt": 2}})}, ["1"]),
    ],
)
def test_faiss_operators(spec: Any, expected: list[str]) -> None:
    assert pages(spec) == expected


def test_list_values_and_in_are_planned_from_the_value_index() -> None:
    assert plan_filter({"page": [0, 1]}) == (Equals("page", (0, 1)), True)
    assert plan_filter({"page": {"$in": [2]}}) == (Equals("page", (2,)), True)
    # None is also what a missing key equals, which the value indexes do not hold
    assert plan_filter({"page": [0, None]}) == (None, False)
    assert plan_filter({"page": None}) == (None, False)
    # a list inside $eq is compared whole: no index holds lists
    assert plan_filter({"page": {"$eq": [0, 1]}}) == (None, False)
    # one planned operator among others: the plan narrows, the predicate decides
    assert plan_filter({"page": {"$in": [1, 2], "$ne": 2}}) == (Equals("page", (1, 2)), False)
    assert plan_filter({"$not": {"page": 1}}) == (None, False)
    assert plan_filter({"$and": [{"page": 1}, {"$not": {"name": "1"}}]}) == (
        Equals("page", (1,)),
        False,
    )
    assert plan_filter({"$or": [{"page": 1}, {"$not": {"name": "1"}}]}) == (None, False)
    assert plan_filter({"$and": []}) == (None, True)  # everything: no filter at all
    assert compile_where({"$and": []}) is None and compile_where({}) is None
    assert compile_where({"$or": []}) is NEVER
    assert compile_where({"page": {"$in": []}}) is NEVER


def test_callable_compiles_to_a_predicate_without_plan() -> None:
    compiled = compile_where(lambda md: md.get("page", -1) > 1)
    assert compiled is not None and compiled.plan is None and not compiled.complete
    assert [d["name"] for d in PAGES if compiled.predicate(d)] == ["2", "3"]
    truthy = compile_where(lambda md: md.get("page"))  # any truthy result passes, as in FAISS
    assert truthy is not None and [d["name"] for d in PAGES if truthy.predicate(d)] == [
        "1", "2", "3"
    ]  # fmt: skip
    with pytest.raises(InvalidInputError, match="or a function of the metadata"):
        compile_where(42)  # type: ignore[arg-type]


def test_callable_that_raises_names_itself_and_chains_the_error() -> None:
    def by_page(md: dict[str, Any]) -> bool:
        return bool(md["page"] > 1)

    pred = compile_filter(by_page)
    assert pred is not None
    with pytest.raises(InvalidInputError, match=r"by_page raised KeyError.*md.get\('page'\)") as e:
        [pred(d) for d in PAGES]
    assert isinstance(e.value.__cause__, KeyError)
    assert "'name': 'x'" in str(e.value)  # the metadata it failed on


def test_callable_gets_a_copy_it_may_change() -> None:
    meta = {"page": 1, "tags": ["a"], "when": dt.date(2024, 1, 1)}
    seen: list[dict[str, Any]] = []

    def vandal(md: dict[str, Any]) -> bool:
        seen.append(md)
        md.setdefault("tags", []).append("b")
        md["page"] = 99
        return True

    pred = compile_filter(vandal)
    assert pred is not None and pred(meta) and pred({"flat": 1})
    assert meta == {"page": 1, "tags": ["a"], "when": dt.date(2024, 1, 1)}
    assert seen[0] is not meta and type(seen[0]) is dict


# -- new operators ---------------------------------------------------------------------------

ITEMS: list[dict[str, Any]] = [
    {"name": "a", "title": "Annual Report 2023", "tags": ["finance", "q4"], "n": 5},
    {"name": "b", "title": "annual report_draft", "tags": ["draft"], "n": 10},
    {"name": "c", "title": "100% done\nsecond line", "tags": [], "n": 2.5, "z": None},
    {"name": "d", "title": ["Annual"], "tags": "finance, q4", "n": "7"},
    {"name": "e"},
]


def items(spec: dict[str, Any]) -> list[str]:
    pred = compile_filter(spec)
    assert pred is not None
    return [d["name"] for d in ITEMS if pred(d)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"z": {"$exists": True}}, ["c"]),  # present, even holding None
        ({"z": {"$exists": False}}, ["a", "b", "d", "e"]),
        ({"title": {"$exists": True}, "n": {"$exists": False}}, []),
        ({"title": {"$contains": "Report"}}, ["a"]),  # a substring, case-sensitive
        ({"title": {"$contains": "Annual"}}, ["a", "d"]),  # or an item of a list
        ({"tags": {"$contains": "finance"}}, ["a", "d"]),
        ({"tags": {"$contains": "fin"}}, ["d"]),  # items are compared whole
        ({"tags": {"$contains": ""}}, ["d"]),
        ({"n": {"$contains": 5}}, []),
        ({"title": {"$like": "Annual%"}}, ["a"]),
        ({"title": {"$ilike": "annual%"}}, ["a", "b"]),
        ({"title": {"$like": "%report\\_draft"}}, ["b"]),  # \_ is a literal underscore
        ({"title": {"$like": "%report_draft"}}, ["b"]),
        ({"title": {"$like": "annual report_d%"}}, ["b"]),
        ({"title": {"$like": "100\\% done%"}}, ["c"]),  # newlines are characters too
        ({"title": {"$like": "100% done"}}, []),
        ({"title": {"$like": "%"}}, ["a", "b", "c"]),  # strings only
        ({"title": {"$like": "_nnual%"}}, ["a", "b"]),
        ({"title": {"$ilike": "%R%P%T%"}}, ["a", "b"]),
        ({"title": {"$like": "%2023"}}, ["a"]),
        ({"title": {"$like": "%202"}}, []),
        ({"title": {"$like": "Annual Report 2023_"}}, []),
        ({"title": {"$like": "a.n%"}}, []),  # regular-expression characters are literal
        ({"n": {"$between": [2.5, 5]}}, ["a", "c"]),  # both ends included
        ({"n": {"$between": [5, 2.5]}}, []),
        ({"n": {"$between": ["0", "9"]}}, ["d"]),
        ({"name": {"$between": ["b", "d"]}}, ["b", "c", "d"]),
    ],
)
def test_new_operators(spec: dict[str, Any], expected: list[str]) -> None:
    assert items(spec) == expected


def test_like_needs_no_backtracking() -> None:
    # a classic regular-expression trap: nested wildcards over a long value that fails
    pred = compile_filter({"t": {"$like": "%a%a%a%a%a%a%b"}})
    assert pred is not None
    assert not pred({"t": "a" * 200_000})
    assert pred({"t": "a" * 200_000 + "b"})


# -- dates and datetimes ---------------------------------------------------------------------

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))
WHEN: list[dict[str, Any]] = [
    {"name": "date", "w": dt.date(2024, 5, 1)},
    {"name": "naive", "w": dt.datetime(2024, 5, 1, 12, 0)},
    {"name": "utc", "w": dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)},
    {"name": "plus2", "w": dt.datetime(2024, 5, 1, 14, 0, tzinfo=PLUS2)},  # the same instant
    {"name": "string", "w": "2024-05-01"},
    {"name": "later", "w": dt.date(2024, 6, 1)},
    {"name": "none"},
]


def when(spec: dict[str, Any]) -> list[str]:
    pred = compile_filter(spec)
    assert pred is not None
    return [d["name"] for d in WHEN if pred(d)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"w": dt.date(2024, 5, 1)}, ["date"]),  # never a datetime, never a string
        ({"w": {"$date": "2024-05-01"}}, ["date"]),
        ({"w": {"$eq": {"$date": "2024-05-01"}}}, ["date"]),
        ({"w": {"$datetime": "2024-05-01T12:00:00"}}, ["naive"]),
        ({"w": {"$datetime": "2024-05-01T12:00:00Z"}}, ["utc", "plus2"]),  # by instant
        ({"w": dt.datetime(2024, 5, 1, 13, tzinfo=dt.timezone(dt.timedelta(hours=1)))},
         ["utc", "plus2"]),
        ({"w": {"$ne": {"$date": "2024-05-01"}}}, ["naive", "utc", "plus2", "string", "later",
                                                   "none"]),
        ({"w": {"$gt": {"$date": "2024-04-30"}}}, ["date", "later"]),
        ({"w": {"$gte": {"$datetime": "2024-05-01T12:00:00+00:00"}}}, ["utc", "plus2"]),
        ({"w": {"$lt": {"$datetime": "2024-05-01T12:00:01"}}}, ["naive"]),
        ({"w": {"$lte": "2024-05-01"}}, ["string"]),
        ({"w": {"$in": [{"$date": "2024-06-01"}, {"$datetime": "2024-05-01T12:00"}]}},
         ["naive", "later"]),
        ({"w": [{"$date": "2024-06-01"}, dt.date(2024, 5, 1)]}, ["date", "later"]),
        ({"w": {"$nin": [{"$date": "2024-06-01"}]}}, ["date", "naive", "utc", "plus2", "string",
                                                     "none"]),
        ({"w": {"$between": [{"$date": "2024-05-01"}, {"$date": "2024-05-31"}]}}, ["date"]),
        ({"w": {"$between": [dt.datetime(2024, 5, 1, 11, tzinfo=UTC),
                             dt.datetime(2024, 5, 1, 12, tzinfo=UTC)]}}, ["utc", "plus2"]),
        ({"$not": {"w": {"$gt": {"$date": "2024-01-01"}}}}, ["naive", "utc", "plus2", "string",
                                                             "none"]),
    ],
)
def test_dates_and_datetimes(spec: dict[str, Any], expected: list[str]) -> None:
    assert when(spec) == expected


def test_date_value_keys_agree_with_equality() -> None:
    utc, plus2 = WHEN[2]["w"], WHEN[3]["w"]
    assert value_key(utc) == value_key(plus2) and hash(value_key(utc)) == hash(value_key(plus2))
    assert value_key(dt.date(2024, 5, 1)) != value_key(dt.datetime(2024, 5, 1))
    assert value_key(dt.datetime(2024, 5, 1, 12)) != value_key(
        dt.datetime(2024, 5, 1, 12, tzinfo=UTC)
    )
    assert plan_filter({"w": {"$date": "2024-05-01"}}) == (
        Equals("w", (dt.date(2024, 5, 1),)),
        True,
    )


def test_date_and_title_filter_is_compiled_once() -> None:
    """The worked example of docs/filters.md: nothing is parsed or compiled per record."""
    spec = {
        "$and": [
            {"created": {"$gt": {"$datetime": "2024-03-01T00:00:00+00:00"}}},
            {"title": {"$contains": "budget"}},
        ]
    }
    compiled = compile_where(spec)
    assert compiled is not None
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    metas = [
        {"created": start + dt.timedelta(days=i), "title": f"budget {i}" if i % 3 else f"{i}"}
        for i in range(200)
    ]
    with (
        mock.patch("re.compile", side_effect=AssertionError("compiled per record")),
        mock.patch(
            "vectordb_manager.engine.filter_ops.typed_literal",
            side_effect=AssertionError("parsed per record"),
        ),
    ):
        got = [i for i, m in enumerate(metas) if compiled.predicate(m)]
    assert got == [i for i in range(61, 200) if i % 3]


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"a": {"$between": [1]}}, r"\$between in filter\['a'\] takes \[low, high\]"),
        ({"a": {"$between": 5}}, "takes \\[low, high\\]"),
        ({"a": {"$between": [1, "9"]}}, "has a number and a string as its ends"),
        ({"a": {"$between": [dt.date(2024, 1, 1), dt.datetime(2024, 1, 2)]}},
         "has a date and a naive datetime"),
        ({"a": {"$between": [None, 1]}}, "needs a number or a string"),
        ({"a": {"$like": 5}}, r"\$like in filter\['a'\] takes a pattern string"),
        ({"a": {"$ilike": None}}, "takes a pattern string"),
        ({"a": {"$like": "50\\"}}, "ends with a lone backslash"),
        ({"a": {"$exists": 1}}, "takes true or false"),
        ({"a": {"$contains": ["x"]}}, "takes one value"),
        ({"a": {"$not": 3}}, "takes operators such as"),
        ({"a": {"$not": {"b": 1}}}, "takes operators such as"),
        ({"a": {"$regex": "x"}}, r"field operators: \$eq, \$ne, \$neq, .*\$like, \$ilike, \$not"),
        ({"$regex": "x"}, r"use \$and, \$or, \$not to combine filters"),
        ({"a": {"$date": "2024-13-01"}}, "not an ISO 8601 date; write it like"),
        ({"a": {"$date": "2024-05-01T10:00"}}, "not an ISO 8601 date"),
        ({"a": {"$date": "20240501"}}, "not an ISO 8601 date"),
        ({"a": {"$datetime": "yesterday"}}, "not an ISO 8601 datetime"),
        ({"a": {"$in": [{"$datetime": 5}]}}, "not an ISO 8601 datetime"),
        ({"a": {"$date": "2024-05-01", "$eq": 1}}, "date literal only as a dict with that one"),
        ({"a": (1, 2)}, "not a JSON value.*use a list"),
        ({"a": {"$in": "abc"}}, "takes a list of values"),
        ({"a": float("nan")}, "which no metadata holds"),
    ],
)
def test_malformed_new_operators(spec: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        compile_filter(spec)


def _nest(depth: int, inner: Any, wrap: Any) -> Any:
    for _ in range(depth):
        inner = wrap(inner)
    return inner


@pytest.mark.parametrize(
    "wrap",
    [
        lambda f: {"$not": f},
        lambda f: {"$and": [f]},
        lambda f: {"$or": [{"x": 1}, f]},
    ],
)
def test_nesting_depth_is_limited(wrap: Any) -> None:
    from vectordb_manager.engine.limits import MAX_FILTER_DEPTH

    assert compile_where(_nest(MAX_FILTER_DEPTH - 2, {"a": 1}, wrap)) is not None
    with pytest.raises(InvalidInputError, match="levels deep"):
        compile_where(_nest(MAX_FILTER_DEPTH + 5, {"a": 1}, wrap))


def test_nesting_depth_of_not_inside_a_field_is_limited() -> None:
    from vectordb_manager.engine.limits import MAX_FILTER_DEPTH

    ok = {"a": _nest(MAX_FILTER_DEPTH - 3, {"$gt": 1}, lambda f: {"$not": f})}
    pred = compile_filter(ok)
    assert pred is not None
    assert pred({"a": 2}) == ((MAX_FILTER_DEPTH - 3) % 2 == 0)  # an even number of $not
    with pytest.raises(InvalidInputError, match="levels deep"):
        compile_where({"a": _nest(MAX_FILTER_DEPTH + 5, {"$gt": 1}, lambda f: {"$not": f})})


# -- callables through a store: exact, harmless, clear when they fail ------------------------


def _near_and_far_store(path: Any = None) -> Any:
    """300 documents about apples (page 0, near the query) and 40 about boats (page 1, far
    from it): FAISS's fetch-then-filter would find no page-1 document among the nearest 20."""
    from vectordb_manager import LocalVectorStore
    from vectordb_manager.embeddings import HashingEmbeddings

    rng = random.Random(3)
    words = ["apple", "pear", "fig", "plum"]
    texts = [" ".join(rng.choices(words, k=4)) for _ in range(300)]
    texts += [f"boat sail {rng.choice(['harbour', 'wind', 'mast', 'keel'])} {i}" for i in range(40)]
    metas = [{"page": 0, "tags": ["fruit"]}] * 300 + [{"page": 1, "tags": ["sea"]}] * 40
    store = LocalVectorStore(HashingEmbeddings(64), path)
    store.add_texts(texts, [dict(m) for m in metas], ids=[str(i) for i in range(340)])
    return store


def test_callable_filter_search_is_exact() -> None:
    store = _near_and_far_store()
    for k in (1, 5, 40, 100):
        by_callable = store.similarity_search_with_score("apple", k=k, filter=lambda md: md["page"])
        by_dict = store.similarity_search_with_score("apple", k=k, filter={"page": 1})
        assert len(by_callable) == min(k, 40)
        assert [(d.id, s) for d, s in by_callable] == [(d.id, s) for d, s in by_dict]
    mmr = store.max_marginal_relevance_search("apple", k=3, filter=lambda md: md["page"] == 1)
    assert len(mmr) == 3 and all(d.metadata["page"] == 1 for d in mmr)
    assert store.engine.ids(lambda md: md["page"] == 1) == [str(i) for i in range(300, 340)]


@pytest.mark.parametrize("persisted", [False, True])
def test_callable_that_changes_metadata_leaves_the_store_alone(
    persisted: bool, tmp_path: Any
) -> None:
    store = _near_and_far_store(tmp_path if persisted else None)
    seen: list[Any] = []

    def vandal(md: dict[str, Any]) -> bool:
        seen.append(md["page"])
        md["page"] = 7
        md["tags"].append("x")
        md.pop("tags")
        return True

    for _ in range(2):  # the second search sees the values the first one "changed"
        seen.clear()
        assert len(store.similarity_search("apple", k=400, filter=vandal)) == 340
        assert sorted(set(seen)) == [0, 1]
    (doc,) = store.get_by_ids(["300"])
    assert doc.metadata == {"page": 1, "tags": ["sea"]}
    assert len(store.similarity_search("apple", k=400, filter={"page": 1})) == 40
    assert len(store.similarity_search("apple", k=400, filter={"tags": {"$eq": ["sea"]}})) == 40


def test_callable_that_raises_surfaces_as_invalid_input() -> None:
    store = _near_and_far_store()
    store.add_texts(["boat without a page"], [{"tags": []}], ids=["odd"])

    def by_page(md: dict[str, Any]) -> bool:
        return bool(md["page"] > 0)

    with pytest.raises(InvalidInputError, match="by_page raised KeyError") as caught:
        store.similarity_search("boat", k=3, filter=by_page)
    assert isinstance(caught.value.__cause__, KeyError)
    # the store is unharmed and its lock released: it still writes and searches
    store.add_texts(["another boat"], [{"page": 2}], ids=["new"])
    docs = store.similarity_search("boat", k=3, filter=lambda md: md.get("page", 0) > 1)
    assert [d.id for d in docs] == ["new"]
