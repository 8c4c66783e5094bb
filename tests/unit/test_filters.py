"""The filter language: semantics of each operator and clear errors for malformed filters."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from vectordb_manager import InvalidInputError
from vectordb_manager.engine.filters import compile_filter, plan_filter

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
        ({"tags": ["p", "q"]}, ["d"]),
        ({"$or": [{"tag": "y"}, {"year": {"$gte": 2010}}]}, ["b", "c"]),
        ({"$and": [{"tag": "x"}, {"year": {"$lt": 2005}}]}, ["a"]),
        (
            {"$or": [{"$and": [{"tag": "x"}, {"flag": True}]}, {"name": {"$in": ["e"]}}]},
            ["a", "e"],
        ),
        ({"missing": {"$ne": 1}}, ["a", "b", "c", "d", "e"]),
        ({"missing": {"$nin": [1]}}, ["a", "b", "c", "d", "e"]),
        ({"missing": None}, []),
        ({"year": 2010.0}, ["c"]),
    ],
)
def test_semantics(spec: dict[str, Any] | None, expected: list[str]) -> None:
    assert names(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"year": {"$regex": "x"}}, "unknown operator '\\$regex'"),
        ({"$not": [{"a": 1}]}, "unknown operator '\\$not'"),
        ({"$or": {"a": 1}}, "takes a non-empty list"),
        ({"$and": []}, "takes a non-empty list"),
        ({"a": {"$in": "x"}}, "takes a list"),
        ({"a": {"$gt": [1]}}, "needs a number or a string"),
        ({"a": {"$gt": None}}, "needs a number or a string"),
        ({"a": {"$eq": 1, "b": 2}}, "mixes operators"),
        ({"a": {"$or": [{"b": 1}]}}, "must be used at the top"),
        ({"a": {1, 2}}, "not a JSON value"),
        ({1: "a"}, "non-string key"),
        ({"$or": [{}]}, "non-empty dict"),
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
