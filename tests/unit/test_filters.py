"""The filter language: semantics of each operator and clear errors for malformed filters."""

from __future__ import annotations

from typing import Any

import pytest

from vectordb_manager import InvalidInputError
from vectordb_manager.engine.filters import compile_filter

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
