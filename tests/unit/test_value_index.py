"""The value columns (issue 13): filters answered from each segment's ``values`` section.

Filtered results must equal brute force (the language reference's interpreter of
test_filter_oracle.py over the model, and the compiled predicate over the decoded records) for
every operator, across several segments, after deletes, upserts and compaction, after
reopening, and for stores written without the section (``value_index=False``, as before the
section existed). A cold open decodes no record for equality, ``$in`` and range filters (the
records' decoder is counted); merged sections are byte for byte those the records give;
damaged sections raise `IntegrityError`.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import rewrite_section
from tests.unit.test_filter_oracle import (
    AWARE,
    DATES,
    KEYS,
    NAIVE,
    NUMBERS,
    STRINGS,
    as_json,
    oracle,
    r_filter,
    r_meta,
)
from vectordb_manager import IntegrityError
from vectordb_manager.engine import manifest as manifest_module
from vectordb_manager.engine.columns import (
    EncodedValues,
    build_values,
    encode_values,
    read_column,
    read_directory,
)
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.core import Engine
from vectordb_manager.engine.filters import compile_filter, compile_where
from vectordb_manager.engine.format import unpack_sections
from vectordb_manager.engine.manifest import KEYWORD_INDEX, TYPED_VALUES, VALUE_INDEX
from vectordb_manager.engine.records import RawRecords
from vectordb_manager.engine.state import LAZY
from vectordb_manager.engine.value_index import Unindexed, ValueIndex
from vectordb_manager.storage.base import Storage
from vectordb_manager.storage.local import LocalStorage

DIM = 8
# numbers where a float column, an integer column and Python's exact comparisons part ways
EXTREMES: list[Any] = [2**53, 2**53 + 1, float(2**53), 2**63 - 1, -(2**63), 2**64, -(2**70),
                       -0.0, 0, 0.5, 1e300, -1e300, 2**63 + 0.0]  # fmt: skip
POOLS: list[list[Any]] = [NUMBERS + EXTREMES, STRINGS, DATES, NAIVE, AWARE]
Model = dict[str, dict[str, Any]]  # id -> metadata


def meta(rng: random.Random) -> dict[str, Any]:
    """test_filter_oracle's random metadata, sometimes with an extreme number (2**64 leaves
    its key unindexed in that segment)."""
    md = r_meta(rng)
    if rng.random() < 0.12:
        md["x"] = rng.choice(EXTREMES)
    return md


def r_indexed(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A random filter of the terms the columns answer: equality, $in, ranges, $between."""
    roll = rng.random()
    if depth < 2 and roll < 0.12:
        return {"$and": [r_indexed(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth < 2 and roll < 0.24:
        return {"$or": [r_indexed(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    key = rng.choice(KEYS)
    pool = rng.choice(POOLS)

    def value() -> Any:
        return as_json(rng, rng.choice(pool))

    op = rng.choice(["=", "$eq", "$in", "list", "$gt", "$gte", "$lt", "$lte", "$between", "2"])
    if op == "=":
        return {key: value() if rng.random() < 0.9 else rng.choice([True, False])}
    if op == "$in":
        return {key: {"$in": [value() for _ in range(rng.randint(1, 4))]}}
    if op == "list":
        return {key: [value() for _ in range(rng.randint(1, 3))]}
    if op == "$between":
        return {key: {"$between": [value(), value()]}}
    if op == "2":
        return {key: {rng.choice(["$gt", "$gte"]): value(), rng.choice(["$lt", "$lte"]): value()}}
    return {key: {op: value()}}


def vectors(rng: random.Random, n: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(rng.randrange(1 << 30)).normal(size=(n, DIM)).astype(np.float32)


def local(path: Path, **kw: Any) -> Engine:
    kw.setdefault("compaction", CompactionPolicy(enabled=False))
    return Engine(LocalStorage(path), **kw)


def write(engine: Engine, model: Model, rng: random.Random, ids: list[str]) -> None:
    metas = [meta(rng) for _ in ids]
    engine.apply(ids, [f"text {i}" for i in ids], metas, vectors(rng, len(ids)))
    model.update(zip(ids, metas, strict=True))


def churn(engine: Engine, model: Model, rng: random.Random, rounds: int) -> Iterator[None]:
    """Adds, upserts and deletes, one commit each (one segment each without compaction)."""
    for r in range(rounds):
        write(engine, model, rng, [f"d{r}-{i}-{rng.random():.4f}" for i in range(rng.randint(5, 30))])
        yield
        if r % 2:
            write(engine, model, rng, rng.sample(sorted(model), min(6, len(model))))
            yield
        if r % 3 == 2:
            gone = rng.sample(sorted(model), min(8, len(model)))
            engine.delete(gone)
            for doc_id in gone:
                del model[doc_id]
            yield


def check(engine: Engine, model: Model, rng: random.Random, n: int = 50) -> int:
    """``n`` random filters select what the oracle and the predicate over the decoded records
    select; returns how many were answered from the columns alone."""
    decoded = {d.id: d.metadata for d in engine.get(sorted(model))}
    assert decoded.keys() == model.keys()
    planned = 0
    for i in range(n):
        spec = r_indexed(rng) if i % 4 else r_filter(rng)
        want = sorted(d for d, md in model.items() if oracle(spec, md))
        pred = compile_filter(spec)
        assert want == sorted(d for d, md in decoded.items() if pred is None or pred(md)), spec
        assert sorted(engine.ids(spec)) == want, spec
        where = compile_where(spec)
        planned += where is not None and where.plan is not None and where.complete
        if i % 10 == 0 and want:
            q = vectors(rng, 1)[0]
            found = engine.search(q, k=len(model) + 1, filter=spec)
            assert sorted(str(h.document.id) for h in found) == want, spec
    return planned


def scenario(storage: Callable[[], Storage], seed: int, **kw: Any) -> None:
    """Several segments through changes, reopened, compacted, reopened, verified."""
    rng = random.Random(seed)
    model: Model = {}
    engine = Engine(storage(), compaction=CompactionPolicy(enabled=False), **kw)
    for _ in churn(engine, model, rng, 6):
        pass
    assert len(engine.state.values._blocks) > 5  # several segments
    assert check(engine, model, rng) > 25  # most through the columns
    blocks = engine.state.values._blocks
    assert any(isinstance(b.columns.get("x"), Unindexed) for b in blocks)  # 2**64 somewhere
    cold = Engine(storage(), compaction=CompactionPolicy(enabled=False), **kw)
    check(cold, model, rng)
    for _ in churn(cold, model, rng, 3):
        check(cold, model, rng, 10)
    cold.compact()
    check(cold, model, rng)
    again = Engine(storage(), **kw)
    check(again, model, rng)
    again.verify()


# -- through a store's life --------------------------------------------------------------------


def test_filters_equal_brute_force_through_changes_compaction_and_reopening(tmp_path: Path) -> None:
    scenario(lambda: LocalStorage(tmp_path), seed=1)
    assert {TYPED_VALUES, KEYWORD_INDEX, VALUE_INDEX} <= set(features(tmp_path))
    assert all("values" in s for s in sections(tmp_path))


def test_filters_equal_brute_force_with_automatic_merges(tmp_path: Path) -> None:
    rng = random.Random(2)
    model: Model = {}
    engine = local(tmp_path, compaction=CompactionPolicy(fan_in=2, min_weight=4, dead_ratio=0.2))
    for _ in churn(engine, model, rng, 12):
        pass
    check(engine, model, rng)
    check(local(tmp_path), model, rng)
    engine.verify()  # the merged sections are those the records give, byte for byte


def test_in_memory_filters_equal_brute_force_through_cleanups() -> None:
    rng = random.Random(3)
    model: Model = {}
    engine = Engine(None, compaction=CompactionPolicy(min_weight=4, dead_ratio=0.1))
    for _ in churn(engine, model, rng, 9):
        check(engine, model, rng, 10)


def test_a_store_written_without_the_section_is_answered_and_gets_it_at_compaction(
    tmp_path: Path,
) -> None:
    rng = random.Random(4)
    model: Model = {}
    old = local(tmp_path, value_index=False)
    for _ in churn(old, model, rng, 4):
        pass
    assert all("values" not in s for s in sections(tmp_path))
    assert VALUE_INDEX not in features(tmp_path)
    check(old, model, rng)  # built from the records in memory
    engine = local(tmp_path)  # opened by a release that writes the section
    assert engine.state.values.missing
    for _ in churn(engine, model, rng, 2):  # old and new segments side by side
        check(engine, model, rng, 20)
    assert VALUE_INDEX in features(tmp_path)
    engine.compact()
    assert all("values" in s for s in sections(tmp_path))
    check(engine, model, rng)
    engine.verify()
    reopened = local(tmp_path)
    assert not reopened.state.values.missing
    check(reopened, model, rng)


def test_compaction_writes_the_section_of_a_single_old_segment(tmp_path: Path) -> None:
    rng = random.Random(5)
    model: Model = {}
    old = local(tmp_path, value_index=False)
    write(old, model, rng, [f"x{i}" for i in range(30)])
    old.compact()
    assert sections(tmp_path) == [["ids", "postings", "records", "vectors"]]
    local(tmp_path).compact()  # one segment, nothing deleted: rewritten for its section
    assert sections(tmp_path) == [["ids", "postings", "records", "values", "vectors"]]
    check(local(tmp_path), model, rng)


def test_a_reader_that_does_not_know_the_feature_refuses_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local(tmp_path).apply(["a"], ["t"], [{"n": 1}], vectors(random.Random(6), 1))
    known = frozenset({KEYWORD_INDEX, TYPED_VALUES})
    monkeypatch.setattr(manifest_module, "SUPPORTED_FEATURES", known)
    with pytest.raises(IntegrityError, match=r"does not know: \['value-index'\]"):
        local(tmp_path)


# -- what the columns get right ----------------------------------------------------------------

EDGE: dict[str, dict[str, Any]] = {
    "int": {"v": 2**53}, "next": {"v": 2**53 + 1}, "float": {"v": float(2**53)},
    "big": {"v": 2**64}, "zero": {"v": 0}, "minus0": {"v": -0.0}, "half": {"v": 0.5},
    "true": {"v": True}, "one": {"v": 1}, "onef": {"v": 1.0}, "str1": {"v": "1"},
    "none": {"v": None}, "missing": {}, "list": {"v": [1]}, "dict": {"v": {"a": 1}},
    "day": {"v": dt.date(2024, 1, 1)}, "naive": {"v": dt.datetime(2024, 1, 1)},
    "utc": {"v": AWARE[0]}, "plus": {"v": AWARE[1]}, "later": {"v": AWARE[2]},
}  # fmt: skip
EDGE_FILTERS: list[tuple[dict[str, Any], list[str]]] = [
    ({"v": 2**53}, ["float", "int"]),
    ({"v": 2**53 + 1}, ["next"]),
    ({"v": {"$gt": 2**53}}, ["big", "next"]),
    ({"v": {"$gte": float(2**53)}}, ["big", "float", "int", "next"]),
    ({"v": {"$lt": 2**64}}, ["float", "half", "int", "minus0", "next", "one", "onef", "zero"]),
    ({"v": {"$in": [0, 1]}}, ["minus0", "one", "onef", "zero"]),
    ({"v": True}, ["true"]),
    ({"v": {"$between": [0.5, 1]}}, ["half", "one", "onef"]),
    ({"v": {"$gte": "1"}}, ["str1"]),
    ({"v": {"$lte": {"$date": "2024-01-01"}}}, ["day"]),
    ({"v": {"$gte": {"$datetime": "2024-01-01T00:00:00"}}}, ["naive"]),
    ({"v": {"$datetime": "2024-01-01T00:00:00+00:00"}}, ["plus", "utc"]),
    ({"v": {"$gt": AWARE[0]}}, ["later"]),
    ({"v": {"$gt": 0, "$lt": 1}}, ["half"]),
    ({"$or": [{"v": {"$lt": -1}}, {"v": "1"}]}, ["str1"]),
]


@pytest.mark.parametrize(("spec", "want"), EDGE_FILTERS)
def test_kinds_and_exact_numbers(tmp_path: Path, spec: dict[str, Any], want: list[str]) -> None:
    engine = local(tmp_path)
    ids = sorted(EDGE)
    engine.apply(ids, ids, [EDGE[i] for i in ids], vectors(random.Random(7), len(ids)))
    assert sorted(i for i in ids if oracle(spec, EDGE[i])) == want  # the reference agrees
    assert sorted(engine.ids(spec)) == want
    cold = local(tmp_path)
    assert sorted(cold.ids(spec)) == want
    assert not cold.state.values.missing


def test_merged_sections_are_those_the_metadata_give() -> None:
    """`ValueIndex.select` over blocks with and without sections, any slots: byte for byte
    what `build_values` makes of those rows' metadata (so `verify()` holds after merges)."""
    rng = random.Random(8)
    for _ in range(300):
        index, metas = ValueIndex(), []
        for _ in range(rng.randint(1, 4)):
            block = [meta(rng) for _ in range(rng.randint(1, 6))]
            section = EncodedValues(build_values(block), "s") if rng.random() < 0.7 else None
            index.add(len(metas), len(block), section, block)
            metas += block
        slots = sorted(rng.sample(range(len(metas)), rng.randint(0, len(metas))))
        assert index.select(np.asarray(slots, dtype=np.int64)) == build_values(
            [metas[s] for s in slots]
        )


def test_ids_by_value_comes_from_the_columns(tmp_path: Path) -> None:
    engine = local(tmp_path)
    metas = [{"k": AWARE[1]}, {"k": AWARE[0]}, {"k": 1}, {"k": 1.0}, {"k": None}, {"k": [1]}]
    engine.apply(list("abcdef"), list("abcdef"), metas, vectors(random.Random(9), 6))
    groups = dict((repr(v), ids) for v, ids in local(tmp_path).ids_by_value("k"))
    assert groups == {repr(AWARE[0]): ["a", "b"], "1": ["c", "d"], "None": ["e"]}


# -- a cold open -------------------------------------------------------------------------------


def test_a_cold_open_decodes_no_record_for_equality_in_and_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(10)
    engine = local(tmp_path)
    metas = [{"bucket": i % 10, "day": dt.date(2024, 1, 1) + dt.timedelta(i % 40),
              "src": f"file{i % 7}.txt", "other": i} for i in range(300)]  # fmt: skip
    for a in range(0, 300, 100):  # three segments
        ids = [str(i) for i in range(a, a + 100)]
        engine.apply(ids, ids, metas[a : a + 100], vectors(rng, 100))
    calls: list[str] = []
    for name in ("metadatas", "row", "rows"):
        real = getattr(RawRecords, name)
        monkeypatch.setattr(RawRecords, name, _counting(real, name, calls))
    cold = local(tmp_path)
    state = cold.state
    march = dt.date(2024, 2, 1)
    assert cold.ids({"bucket": 3}) == [str(i) for i in range(3, 300, 10)]
    assert sorted(cold.ids({"src": {"$in": ["file1.txt", "file2.txt"]}}), key=int) == [
        str(i) for i in range(300) if i % 7 in (1, 2)
    ]
    assert cold.ids({"day": {"$gte": march}}) == [
        str(i) for i in range(300) if dt.date(2024, 1, 1) + dt.timedelta(i % 40) >= march
    ]
    assert cold.ids({"bucket": {"$gt": 7}, "day": {"$lt": march}}) == [
        str(i) for i in range(300) if i % 10 > 7 and i % 40 < 31
    ]
    assert calls == [] and all(r is LAZY for r in state.recs)  # not one record decoded
    assert state.values.decoded == {"bucket", "src", "day"}  # only the keys filtered on
    hits = cold.search(vectors(rng, 1)[0], k=5, filter={"bucket": {"$between": [2, 3]}})
    assert len(hits) == 5 and all(h.document.metadata["bucket"] in (2, 3) for h in hits)
    assert calls == ["row"] * 5  # a search decodes only the records it returns
    # the same filter on a store written without the section decodes its records: the
    # counter sees the old path
    old = local(tmp_path / "old", value_index=False)
    old.apply(["a", "b"], ["a", "b"], [{"bucket": 3}, {"bucket": 4}], vectors(rng, 2))
    calls.clear()
    assert local(tmp_path / "old").ids({"bucket": 3}) == ["a"] and calls == ["metadatas"]


def _counting(real: Any, name: str, calls: list[str]) -> Any:
    def wrapper(self: RawRecords, *args: Any) -> Any:
        calls.append(name)
        return real(self, *args)

    return wrapper


# -- damaged sections --------------------------------------------------------------------------


def one_segment(tmp_path: Path) -> list[dict[str, Any]]:
    metas = [{"n": i % 3, "s": f"s{i}", "d": dt.date(2024, 1, 1 + i)} for i in range(6)]
    local(tmp_path).apply([str(i) for i in range(6)], ["t"] * 6, metas, vectors(random.Random(11), 6))
    return metas


def section_of(tmp_path: Path) -> bytes:
    segment = next(tmp_path.glob("segments/*.seg")).read_bytes()
    return bytes(unpack_sections(segment, "s")["values"])


def test_a_flipped_byte_in_the_section_fails_the_checksum(tmp_path: Path) -> None:
    one_segment(tmp_path)
    target = next(tmp_path.glob("segments/*.seg"))
    data = bytearray(target.read_bytes())
    at = data.index(b'[["d",')  # the section's directory
    data[at + 3] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum"):
        local(tmp_path)


def _blocks(section: bytes) -> dict[str, tuple[int, int]]:
    return read_directory(section, 6, "s")


def _patched(section: bytes, key: str, offset: int, value: bytes) -> bytes:
    at = _blocks(section)[key][0] + offset
    return section[:at] + value + section[at + len(value) :]


u64, i64, u32 = np.uint64, np.int64, np.uint32
N, D, S = {"n": 1}, {"d": {"$gte": dt.date(2024, 1, 2)}}, {"s": "s1"}  # a filter on each key
# key n holds 0 1 2 0 1 2: its block is N runs (offset 0), then kind 8, D 16, C 24, values 32,
# counts 56, rows 72; key d one date a row (values from 32), key s one string a row (ends 32)
DAMAGES: list[tuple[Callable[[bytes], bytes], str, dict[str, Any] | None]] = [
    (lambda s: u64(7).tobytes() + s[8:], "covers 7 rows", None),
    (lambda s: s[:8] + u64(10**9).tobytes() + s[16:], "has a directory longer", None),
    (lambda s: s.replace(b'[["d"', b'{["d"'), "not ASCII JSON", N),
    (lambda s: s.replace(b'["n",', b'["0",'), "not sorted and unique", N),
    (lambda s: s + bytes(8), "do not fill it", N),
    (lambda s: _patched(s, "n", 0, u64(99).tobytes()), "99 runs", N),
    (lambda s: _patched(s, "n", 8, u64(ord("q")).tobytes()), "unknown or repeated", N),
    (lambda s: _patched(s, "n", 16, u64(2**60).tobytes()), "more values or rows", N),
    (lambda s: _patched(s, "n", 24, u64(2**40).tobytes()), "more values or rows", N),
    (lambda s: _patched(s, "n", 32, i64(5).tobytes()), "do not ascend", N),
    (lambda s: _patched(s, "n", 56, u32(3).tobytes()), "counts or rows", N),
    (lambda s: _patched(s, "n", 72, u32(6).tobytes()), "counts or rows", N),
    (lambda s: _patched(s, "n", 72, u32(4).tobytes()), "not ascending", N),
    (lambda s: _patched(s, "d", 72, i64(10**9).tobytes()), "out of range", D),
    (lambda s: _patched(s, "s", 72, u64(2**62).tobytes()), "longer than its block", S),
]


@pytest.mark.parametrize(("damage", "found", "spec"), DAMAGES)
def test_a_damaged_section_is_an_integrity_error(
    tmp_path: Path,
    damage: Callable[[bytes], bytes],
    found: str,
    spec: dict[str, Any] | None,
) -> None:
    one_segment(tmp_path)
    rewrite_section(tmp_path, "values", damage(section_of(tmp_path)))  # re-signed
    if spec is None:  # checked when the segment is opened
        with pytest.raises(IntegrityError, match=f"damaged values section: it .*{found}"):
            local(tmp_path)
        return
    engine = local(tmp_path)  # opening checks only the header
    with pytest.raises(IntegrityError, match=f"damaged values section: it .*{found}"):
        engine.ids(spec)
    with pytest.raises(IntegrityError):
        engine.verify()


def test_a_section_that_disagrees_with_the_records_fails_verify(tmp_path: Path) -> None:
    metas = one_segment(tmp_path)
    lying = [{**m, "n": 9} for m in metas]  # well formed, but not these records' values
    rewrite_section(tmp_path, "values", build_values(lying))
    engine = local(tmp_path)
    assert engine.ids({"n": 9}) == [str(i) for i in range(6)]  # believed until verified
    with pytest.raises(IntegrityError, match="values section that is not that of its records"):
        engine.verify()


def test_unindexed_keys_and_hostile_counts_are_bounded() -> None:
    section = encode_values(2, {"big": None, "k": {}})
    assert read_directory(section, 2, "s")["big"][1] == 0  # not indexed: tested instead
    with pytest.raises(IntegrityError):  # a column of no runs
        read_column(section, *read_directory(section, 2, "s")["k"], 2, "s")


# -- helpers -----------------------------------------------------------------------------------


def features(path: Path) -> list[str]:
    latest = sorted(path.glob("manifests/*.json"))[-1]
    return json.loads(latest.read_text())["features"]  # type: ignore[no-any-return]


def sections(path: Path) -> list[list[str]]:
    latest = json.loads(sorted(path.glob("manifests/*.json"))[-1].read_text())
    return [
        sorted(unpack_sections((path / s["file"]["path"]).read_bytes(), "s"))
        for s in latest["segments"]
        if s["rows"]
    ]


@pytest.mark.parametrize("distance", ["cosine", "l2", "inner_product"])
def test_exact_scores_in_blocks_equal_one_product(
    distance: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vectordb_manager.engine import search as search_module

    rng = random.Random(12)
    engine = Engine(None, distance=distance)
    ids = [str(i) for i in range(100)]
    engine.apply(ids, ids, [{"n": i % 10} for i in range(100)], vectors(rng, 100))
    q = engine.prepare_query(vectors(rng, 1)[0])
    assert q is not None
    allowed = np.arange(3, 100, 7, dtype=np.int64)  # few: compared in blocks, not in place
    whole = search_module.exact_raw(engine.state, q, allowed)
    monkeypatch.setattr(search_module, "_GATHER_BYTES", 4 * DIM * 3)  # blocks of 3 rows
    assert np.allclose(search_module.exact_raw(engine.state, q, allowed), whole, atol=1e-5)
    stored = engine.state.index.vectors()[allowed]  # type: ignore[union-attr]
    want = ((stored - q) ** 2).sum(axis=1) if distance == "l2" else stored @ q[0]
    assert np.allclose(whole, want, atol=1e-5)


def test_opening_leaves_the_state_in_the_collectors_old_generation(tmp_path: Path) -> None:
    """Opening promotes the state's per-document containers, so that the first searches'
    young collections do not traverse them (twice: ~0.1 s at 1M documents)."""
    import gc

    rng = random.Random(13)
    ids = [str(i) for i in range(50)]
    local(tmp_path).apply(ids, ids, [{"n": i} for i in range(50)], vectors(rng, 50))
    state = local(tmp_path).state
    young = {id(o) for g in (0, 1) for o in gc.get_objects(generation=g)}
    assert not {id(state.ids), id(state.recs), id(state.slot)} & young
