"""The write path's batch encoders give exactly what the per-record ones give.

A commit encodes its records' lines (`encode_records`), hashes their content
(`content_hashes`) and copies their metadata (`_validate_rows`) a batch at a time, in C, when
every metadata is flat; otherwise record by record. Random batches, hostile strings
included (quotes, backslashes, control characters, the byte sequence that separates two
records, lone surrogates, integers beyond 64 bits, floats, dates), must give byte for byte
the per-record results, or the same error.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import numpy as np
import pytest

from vectordb_manager.engine.format import SegmentData, encode_records, record_lines
from vectordb_manager.engine.hashing import (
    _flat_canonical,
    canonical_json,
    content_hash,
    content_hashes,
)
from vectordb_manager.engine.limits import MAX_METADATA_BYTES, check_record_size
from vectordb_manager.engine.records import (
    encode_flat_records,
    encode_record,
    flat_scalars,
    newlines,
)
from vectordb_manager.errors import InvalidInputError
from vectordb_manager.vectorstores.rows import _clean_metadata, _validate_rows

PIECES = [
    "a", "Z", "0", " ", '"', "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "東京", "😀",
    '},{"id":', '"},{"id":"', "{", "}", "[", "]", ",", ":", "\u2028", "$date",
]  # fmt: skip


def text(rng: random.Random, surrogates: bool = False) -> str:
    out = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
    if surrogates and rng.random() < 0.5:
        out += "\udc80"
    return out


def value(rng: random.Random, hostile: bool) -> Any:
    """A metadata value: flat ones (and floats, one batch in a few), or, ``hostile``, also
    what the batch paths leave to the per-record ones."""
    kinds = ["str", "str", "int", "int", "bool", "none"] + (["float"] if rng.random() < 0.05 else [])
    if hostile:
        kinds += ["big", "nested", "date", "surr"]
    kind = rng.choice(kinds)
    if kind == "str":
        return text(rng)
    if kind == "int":
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "big":
        return rng.choice([2**64, -(2**63) - 1, 2**63, 7])  # beyond 64 bits, or not
    if kind == "float":
        return rng.choice([0.1, 1e-5, 1e16, -0.0, 2.5, 1e300])
    if kind == "nested":
        return {"k": [1, {"x": text(rng)}]}
    if kind == "date":
        return rng.choice([date(2024, 2, 29), datetime(2020, 1, 2, 3, 4, 5)])
    return "\ud800"


Batch = tuple[random.Random, list[str], list[str], list[dict[str, Any]]]


def batch(rng: random.Random, hostile: bool) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    n = rng.randint(0, 30)
    ids = [f"id{i}-{text(rng)}" for i in range(n)]
    texts = [text(rng, surrogates=hostile) for _ in range(n)]
    metas = [
        {text(rng) or "k": value(rng, hostile) for _ in range(rng.randint(0, 5))} for _ in range(n)
    ]
    return ids, texts, metas


def batches(seed: int, hostile: bool, count: int = 400) -> Iterator[Batch]:
    rng = random.Random(seed + hostile)
    for _ in range(count):
        yield rng, *batch(rng, hostile)


@pytest.mark.parametrize("hostile", [False, True], ids=["flat", "hostile"])
def test_encode_records_gives_the_bytes_of_one_record_at_a_time(hostile: bool) -> None:
    batched = 0
    for rng, ids, texts, metas in batches(20260515, hostile):
        hashes = [text(rng) for _ in ids]
        created = [text(rng) for _ in ids]
        updated = [text(rng) for _ in ids]
        seg = SegmentData(
            ids, texts, metas, hashes, created, updated, np.zeros((len(ids), 2), np.float32)
        )
        rows = zip(texts, metas, hashes, created, updated, strict=True)
        expected = b"".join(encode_record(i, r) + b"\n" for i, r in zip(ids, rows, strict=True))
        assert encode_records(seg) == expected
        lines = record_lines(seg, "segments/x.seg")  # (as a commit keeps them)
        assert lines.blob == expected and np.array_equal(lines.ends, newlines(expected))
        again = zip(texts, metas, hashes, created, updated, strict=True)
        batched += flat_scalars(metas) and encode_flat_records(ids, again) is not None
    assert batched > (300 if not hostile else 10)  # both paths were taken


@pytest.mark.parametrize("hostile", [False, True], ids=["flat", "hostile"])
def test_content_hashes_are_those_of_each_record(hostile: bool) -> None:
    batched = 0
    for _, _, texts, metas in batches(7, hostile):
        expected = [content_hash(t, canonical_json(m)) for t, m in zip(texts, metas, strict=True)]
        assert content_hashes(texts, metas) == expected
        batched += _flat_canonical(metas) is not None
    assert batched > (300 if not hostile else 10)  # both paths were taken


def test_content_hashes_refuse_the_first_record_too_large_as_one_at_a_time_does() -> None:
    big = "x" * (MAX_METADATA_BYTES // 2)
    texts = ["a", "b", "c"]
    cases: list[list[dict[str, Any]]] = [
        [{"k": 1}, {"k": big, "l": big, "m": "é"}, {"k": big * 3}],  # the second is too large
        [{"k": 1}, {"k": 2}, {"k": big * 3}],
    ]
    for metas in cases:
        with pytest.raises(InvalidInputError) as one:
            for i, (t, m) in enumerate(zip(texts, metas, strict=True)):
                check_record_size(i, t, canonical_json(m))
        with pytest.raises(InvalidInputError) as batched:
            content_hashes(texts, metas)
        assert str(batched.value) == str(one.value)


@pytest.mark.parametrize("hostile", [False, True], ids=["flat", "hostile"])
def test_validated_metadata_are_the_per_record_copies(hostile: bool) -> None:
    for rng, ids, texts, metas in batches(11, hostile, 300):
        if hostile and rng.random() < 0.2 and metas:
            metas[rng.randrange(len(metas))] = None  # type: ignore[call-overload]
        expected = [_clean_metadata(m, i) for i, m in enumerate(metas)]
        _, got, _ = _validate_rows(texts, metas, [f"{i}" for i in range(len(ids))])
        assert got == expected
        for given, copy in zip(metas, got, strict=True):
            assert copy is not given  # a copy: the caller may change its dict afterwards


def test_validation_in_bulk_refuses_what_one_at_a_time_refuses() -> None:
    long_key = "k" * 2000
    bads: list[Any] = [{long_key: 1}, {1: "x"}, {"x": float("nan")}, {"x": (1, 2)}]
    for bad in bads:
        metas: list[Any] = [{"a": 1}, bad]
        with pytest.raises(InvalidInputError) as one:
            _clean_metadata(bad, 1)
        with pytest.raises(InvalidInputError) as batched:
            _validate_rows(["a", "b"], metas, ["1", "2"])
        assert str(batched.value) == str(one.value)
