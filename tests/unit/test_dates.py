"""Dates and datetimes in metadata: accepted, and given back as themselves (the same type, time
zone offset and microseconds; a date never a datetime) after persistence, reopening,
compaction, `copy_to`, migration and `iter_documents`, at any depth; their tagged records,
the ``typed-values`` feature an older reader refuses, damaged tags, the CLI's output, and
LangChain's `TimeWeightedVectorStoreRetriever` over a store on disk with the real model."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from vectordb_manager import (
    IntegrityError,
    InvalidInputError,
    LocalVectorStore,
    VectorDatabaseManager,
    VectorDBConfig,
)
from vectordb_manager.cli import main
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine import manifest as manifest_module
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.format import (
    FileRef,
    SegmentData,
    SegmentRef,
    canonical_json,
    content_hash,
    encode_segment,
    pack_sections,
    read_segment,
    unpack_sections,
)
from vectordb_manager.engine.limits import MAX_METADATA_DEPTH
from vectordb_manager.engine.manifest import KEYWORD_INDEX, TYPED_VALUES, VALUE_INDEX, sha256
from vectordb_manager.engine.records import RawRecords, encode_record

EMB = HashingEmbeddings(32)
NAME = "0" * 32


def tz(hours: int, minutes: int = 0, seconds: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes, seconds=seconds))


MOMENT = (2024, 2, 29, 23, 59, 58)
META: dict[str, Any] = {
    "utc": datetime(*MOMENT, 123456, UTC),
    "paris": datetime(*MOMENT, tzinfo=tz(1)),
    "india": datetime(*MOMENT, 1, tz(5, 30)),
    "newfoundland": datetime(*MOMENT, tzinfo=tz(-3, -30)),
    "odd_offset": datetime(*MOMENT, tzinfo=tz(0, 20, 15)),
    "naive": datetime(*MOMENT),
    "naive_micro": datetime(*MOMENT, 999999),
    "day": date(2024, 2, 29),
    "first": date(1, 1, 1),
    "last": datetime(9999, 12, 31, 23, 59, 59, 999999),
    "nested": {"when": [date(2020, 1, 1), {"at": datetime(2020, 1, 1, 12, tzinfo=tz(-8))}]},
    "deep_list": [[[datetime(2021, 6, 1, 0, 0, 0, 5, UTC)]]],
    # user values that look like the tags must come back as they are
    "tag_like": {"$date": "x"},
    "tag_like_datetime": {"$datetime": "2024-01-01T00:00:00"},
    "escape_like": {"$dict": {"$date": "y"}},
    "dollar": {"$": 1},
    "two_keys": {"$date": "2020-01-01", "other": 1},
    "tag_key_with_a_date": {"$date": date(2020, 1, 1)},
    "in_list": [{"$x": [1]}, "$date"],
    "plain": "text",
    "n": 3,
}


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types throughout, datetimes with the same UTC offset (aware
    datetimes compare equal at the same instant whatever their offsets)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime):
        return a == b and a.isoformat() == b.isoformat() and (a.tzinfo is None) == (b.tzinfo is None)
    return bool(a == b)


def test_same_tells_a_date_from_a_datetime_and_offsets_apart() -> None:
    assert same(META, json.loads(json.dumps(META, default=str))) is False
    assert not same(date(2020, 1, 1), datetime(2020, 1, 1))
    assert not same(datetime(2020, 1, 1, tzinfo=tz(1)), datetime(2019, 12, 31, 23, tzinfo=UTC))
    assert not same(datetime(2020, 1, 1), datetime(2020, 1, 1, tzinfo=UTC))


def open_store(path: Path, **kw: Any) -> LocalVectorStore:
    return LocalVectorStore(EMB, path, **kw)


def features(path: Path) -> list[str]:
    """The newest manifest's features but the keyword index's and the value index's (which
    every store with documents has: see test_text_index.py and test_value_index.py)."""
    latest = sorted(path.glob("manifests/*.json"))[-1]
    found = json.loads(latest.read_text())["features"]
    return [f for f in found if f not in ("keyword-index", "value-index")]


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_dates_round_trip_through_reopening_and_compaction(tmp_path: Path, index: str) -> None:
    no_merges = CompactionPolicy(enabled=False)
    store = open_store(tmp_path, index=index, compaction=no_merges)
    docs = [
        Document(page_content=f"document {i}", metadata={**META, "i": i}, id=f"d{i}")
        for i in range(5)
    ]
    store.add_documents(docs[:3])
    store.add_texts(["no dates here"], [{"tag_like": {"$date": "x"}, "i": 9}], ids=["plain"])
    store.add_documents(docs[3:])
    store.delete(["d4"])
    expected = {d.id: d.metadata for d in docs[:4]} | {"plain": {"tag_like": {"$date": "x"}, "i": 9}}

    def check(s: LocalVectorStore) -> None:
        got = {d.id: d.metadata for d in s.get_by_ids(list(expected))}
        assert got.keys() == expected.keys()
        for key, meta in expected.items():
            assert same(got[key], meta), key
        batches = list(s.iter_documents(batch_size=2))
        assert {d.id for b in batches for d in b} == set(expected)
        assert all(same(d.metadata, expected[d.id]) for b in batches for d in b)
        hits = s.similarity_search("document 1", k=5)
        assert hits and all(same(h.metadata, expected[h.id]) for h in hits)  # type: ignore[index]
        assert s.verify()["documents"] == 5  # every record re-read: hashes match

    check(store)
    check(open_store(tmp_path, index=index, compaction=no_merges))  # lazily decoded
    assert store.stats()["segments"] == 4
    assert store.compact() is True
    check(store)
    again = open_store(tmp_path, index=index)
    assert again.stats()["segments"] == 1
    check(again)
    assert features(tmp_path) == [TYPED_VALUES]


def test_a_store_in_memory_gives_dates_back_too() -> None:
    store = LocalVectorStore(EMB)
    store.add_texts(["t", "u"], [META, {"n": 1}], ids=["a", "b"])
    store.delete(["b"])
    store.compact()
    assert same(store.get_by_ids(["a"])[0].metadata, META)
    assert same(store.similarity_search("t", k=1)[0].metadata, META)


def test_a_date_stays_a_date_and_naive_stays_naive(tmp_path: Path) -> None:
    open_store(tmp_path).add_texts(["t"], [{"d": date(2020, 5, 17), "n": datetime(2020, 5, 17)}], ids=["a"])
    meta = open_store(tmp_path).get_by_ids(["a"])[0].metadata
    assert type(meta["d"]) is date and meta["d"] == date(2020, 5, 17)
    assert type(meta["n"]) is datetime and meta["n"].tzinfo is None


def test_records_merged_by_a_tail_compaction_keep_their_dates(tmp_path: Path) -> None:
    policy = CompactionPolicy(fan_in=2, min_weight=1, full_ratio=1000.0)
    store = open_store(tmp_path, compaction=policy)
    for i in range(6):
        store.add_texts([f"t{i}"], [{"at": datetime(2020, 1, 1, i, tzinfo=tz(i)), "i": i}], ids=[f"{i}"])
        store.get_by_ids([f"{i}"])  # some records decoded in memory, re-encoded when merged
    store.wait_for_compaction()
    assert store.stats()["segments"] < 6
    for s in (store, open_store(tmp_path)):
        for d in s.get_by_ids([str(i) for i in range(6)]):
            i = d.metadata["i"]
            assert same(d.metadata["at"], datetime(2020, 1, 1, i, tzinfo=tz(i)))


def test_filters_see_real_datetimes(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add_texts(
        ["a", "b"], [{"k": "x", "at": datetime(2020, 1, 1, tzinfo=tz(2))}, {"k": "y", "at": date(2021, 1, 1)}],
        ids=["a", "b"],
    )
    again = open_store(tmp_path)
    assert again.get_ids({"k": "x"}) == ["a"]  # a value index, built from the undecoded records
    seen = dict(again.engine.state.scan_metas())
    assert same(seen[0]["at"], datetime(2020, 1, 1, tzinfo=tz(2)))
    assert same(seen[1]["at"], date(2021, 1, 1))
    again.add_texts(["c"], [{"k": "x", "at": datetime(2022, 1, 1)}], ids=["c"])  # indexed at once
    assert again.get_ids({"k": "x"}) == ["a", "c"]
    predicate_saw = [m["at"] for _, m in again.engine.state.metas()]
    assert [type(v) for v in predicate_saw] == [datetime, date, datetime]


def test_every_bulk_decoder_untags() -> None:
    seg = _segment([META, {"plain": 1}, {"d": [date(2000, 1, 2)]}])
    raw = _read(pack_sections(_parts(seg))).raw
    assert raw is not None
    for metas in (raw.metadatas(0, 3), [r.metadata for r in raw.rows()], [raw.row(i).metadata for i in range(3)]):
        assert all(same(a, b) for a, b in zip(metas, seg.metadatas, strict=True))


def test_unchanged_documents_with_dates_are_not_written_again(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add_texts(["t"], [META], ids=["a"])
    version = store.stats()["version"]
    open_store(tmp_path).add_texts(["t"], [dict(META)], ids=["a"])  # the same content
    assert open_store(tmp_path).stats()["version"] == version


def test_a_tag_like_dict_replaced_by_the_date_it_spells_is_a_change(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add_texts(["t"], [{"d": {"$date": "2020-01-01"}}], ids=["a"])
    store.add_texts(["t"], [{"d": date(2020, 1, 1)}], ids=["a"])  # same text, same vector
    assert same(open_store(tmp_path).get_by_ids(["a"])[0].metadata, {"d": date(2020, 1, 1)})
    store.add_texts(["t"], [{"d": {"$date": "2020-01-01"}}], ids=["a"])  # and back
    assert same(open_store(tmp_path).get_by_ids(["a"])[0].metadata, {"d": {"$date": "2020-01-01"}})


def test_content_hashes_of_metadata_without_dates_are_unchanged() -> None:
    meta = {"s": "é", "d": {"$date": "x"}, "l": [1, 2.5, None]}
    assert canonical_json(meta) == json.dumps(
        meta, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    assert canonical_json({"d": date(2020, 1, 1)}) != canonical_json({"d": {"$date": "2020-01-01"}})


# -- what is accepted ------------------------------------------------------------------------


class _Broken(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("no offset today")


class _MyDatetime(datetime):
    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "not what the base class writes"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (time(12, 30), r"time values are not allowed .*only date and datetime.*dates, datetimes"),
        (timedelta(hours=1), r"timedelta values are not allowed"),
        (datetime(2020, 1, 1, tzinfo=_Broken()), r"fails to give its UTC offset .*no offset today"),
        ([object()], r"object values are not allowed; use .*dates, datetimes, lists"),
    ],
)
def test_other_types_are_refused_naming_dates_as_allowed(tmp_path: Path, value: Any, message: str) -> None:
    store = open_store(tmp_path)
    with pytest.raises(InvalidInputError, match=message):
        store.add_texts(["t"], [{"v": value}])
    assert len(store) == 0 and features(tmp_path) == []


def test_subclasses_and_zones_come_back_as_plain_types_with_the_offset(tmp_path: Path) -> None:
    paris = datetime(2024, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))  # summer: +02:00
    sub = _MyDatetime(2024, 1, 1, 8, 30, 0, 7)
    open_store(tmp_path).add_texts(["t"], [{"paris": paris, "sub": sub}], ids=["a"])
    meta = open_store(tmp_path).get_by_ids(["a"])[0].metadata
    assert same(meta["paris"], datetime(2024, 7, 1, 12, 0, tzinfo=tz(2)))
    assert same(meta["sub"], datetime(2024, 1, 1, 8, 30, 0, 7))


def test_the_input_is_copied_not_kept(tmp_path: Path) -> None:
    meta: dict[str, Any] = {"when": [date(2020, 1, 1)]}
    store = open_store(tmp_path)
    store.add_texts(["t"], [meta], ids=["a"])
    meta["when"].append("changed")
    assert store.get_by_ids(["a"])[0].metadata == {"when": [date(2020, 1, 1)]}


def test_dates_at_the_depth_limit_are_accepted_and_read_back(tmp_path: Path) -> None:
    value: Any = date(2020, 1, 1)
    for _ in range(MAX_METADATA_DEPTH - 1):
        value = {"$k": value}  # each level a tag-like dict: escaped, twice as deep tagged
    meta = {"k": value}
    open_store(tmp_path).add_texts(["t"], [meta], ids=["a"])
    assert same(open_store(tmp_path).get_by_ids(["a"])[0].metadata, meta)
    with pytest.raises(InvalidInputError, match="levels deep"):
        open_store(tmp_path).add_texts(["t"], [{"k": [meta]}], ids=["b"])


# -- the feature flag ------------------------------------------------------------------------


def test_the_feature_is_set_by_the_first_typed_record_and_kept(tmp_path: Path) -> None:
    store = open_store(tmp_path, index="hnsw")
    store.add_texts(["plain"], [{"d": {"$date": "x"}}], ids=["p"])
    assert features(tmp_path) == []  # readers of older releases can still open it
    store.add_texts(["dated"], [{"d": date(2020, 1, 1)}], ids=["d"])
    assert features(tmp_path) == [TYPED_VALUES]
    store.add_texts(["plain again"], ids=["q"])
    assert features(tmp_path) == [TYPED_VALUES]
    store.delete(["d"])
    store.compact()  # a full compaction (with its index snapshot) keeps it too
    assert json.loads(sorted(tmp_path.glob("manifests/*.json"))[-1].read_text())["index_snapshot"]
    assert features(tmp_path) == [TYPED_VALUES]
    other = open_store(tmp_path, index="hnsw")  # another writer commits after reading it
    other.add_texts(["more"], ids=["r"])
    assert features(tmp_path) == [TYPED_VALUES]


def test_a_reader_without_the_feature_refuses_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(tmp_path).add_texts(["t"], [{"at": datetime(2020, 1, 1)}], ids=["a"])
    # a reader that knows the keyword and value indexes but not dates
    known = frozenset({KEYWORD_INDEX, VALUE_INDEX})
    monkeypatch.setattr(manifest_module, "SUPPORTED_FEATURES", known)
    with pytest.raises(IntegrityError, match=r"features this release does not know: \['typed-values'\]"):
        open_store(tmp_path)


def test_a_store_without_dates_is_still_opened_by_an_older_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    store.add_texts(["t"], [{"d": {"$date": "x"}, "n": 1}], ids=["a"])
    store.compact()
    known = frozenset({KEYWORD_INDEX, VALUE_INDEX})
    monkeypatch.setattr(manifest_module, "SUPPORTED_FEATURES", known)
    assert open_store(tmp_path).get_by_ids(["a"])[0].metadata == {"d": {"$date": "x"}, "n": 1}


# -- damaged tags ----------------------------------------------------------------------------


def _segment(metas: list[dict[str, Any]]) -> SegmentData:
    ids, texts = [f"id{i}" for i in range(len(metas))], [f"text {i}" for i in range(len(metas))]
    hashes = [content_hash(t, canonical_json(m)) for t, m in zip(texts, metas, strict=True)]
    times = ["2026-01-01T00:00:00+00:00"] * len(metas)
    vectors = np.ones((len(metas), 4), dtype=np.float32)
    return SegmentData(ids, texts, metas, hashes, times, times, vectors)


def _parts(seg: SegmentData) -> dict[str, bytes]:
    ref, blobs = encode_segment(NAME, seg)
    return {k: bytes(v) for k, v in unpack_sections(blobs[ref.file.path], "seg").items()}


def _read(data: bytes, rows: int = 3, *, lazy: bool = True) -> SegmentData:
    ref = SegmentRef(NAME, rows, 0, FileRef(f"segments/{NAME}.seg", len(data), sha256(data)))
    return read_segment(ref, io.BytesIO(data), 4, lazy=lazy)


def _nest(levels: int, inner: Any) -> Any:
    """``levels`` escaped dicts (two levels each, tagged) around ``inner``."""
    for _ in range(levels):
        inner = {"$dict": {"$k": inner}}
    return inner


def _plain_nest(levels: int) -> Any:
    inner: Any = 1
    for _ in range(levels):
        inner = {"a": inner}
    return inner


BAD_TAGS: list[tuple[str, Any, str]] = [
    ("month-13", {"$date": "2020-13-01"}, "'2020-13-01', not an ISO 8601 date"),
    ("basic-format-date", {"$date": "20200101"}, "not an ISO 8601 date as written"),
    ("datetime-as-date", {"$date": "2020-01-01T00:00:00"}, "ISO 8601 date"),
    ("date-as-datetime", {"$datetime": "2020-01-01"}, "ISO 8601 datetime"),
    ("zulu", {"$datetime": "2020-01-01T00:00:00Z"}, "ISO 8601 datetime"),
    ("garbage", {"$datetime": "yesterday"}, "'yesterday'"),
    ("number", {"$datetime": 1577836800}, "holding 1577836800"),
    ("null", {"$date": None}, "holding None"),
    ("unknown-tag", {"$time": "12:00"}, "unknown tag '\\$time'"),
    ("escape-of-no-dict", {"$dict": 3}, r"\$dict tag"),
    ("escape-of-a-plain-dict", {"$dict": {"a": 1}}, r"\$dict tag"),
    ("escape-of-two-keys", {"$dict": {"$a": 1, "$b": 2}}, r"\$dict tag"),
    ("in-a-list", [1, {"$date": "2020-02-30"}], "2020-02-30"),
    ("too-deep-tagged", _nest(2 * MAX_METADATA_DEPTH, 1), "nests deeper"),
    ("too-deep-untagged", _plain_nest(MAX_METADATA_DEPTH), "nests deeper"),  # 33 levels
]


def _typed_line(value: Any, flag: Any = 1) -> bytes:
    row = {"id": "id1", "text": "t", "metadata": {"v": value}, "hash": "", "created_at": "",
           "updated_at": "", "typed": flag}
    return json.dumps(row).encode()


def _with_line(line: bytes) -> bytes:
    parts = _parts(_segment([{"d": date(2020, 1, 1)}, {"i": 1}, {"i": 2}]))
    lines = parts["records"].splitlines()
    parts["records"] = b"\n".join([lines[0], line, lines[2]]) + b"\n"
    return pack_sections(parts)


def _bad_lines() -> Iterator[Any]:
    for name, value, message in BAD_TAGS:
        yield pytest.param(_typed_line(value), message, id=name)
    for flag in (2, 0, True, "1", None, 1.0):
        yield pytest.param(_typed_line({"$date": "2020-01-01"}, flag), '"typed" is not 1', id=f"flag-{flag!r}")


@pytest.mark.parametrize(("line", "message"), list(_bad_lines()))
def test_a_damaged_typed_record_is_integrity_error_on_every_path(line: bytes, message: str) -> None:
    data = _with_line(line)
    with pytest.raises(IntegrityError, match=message):
        _read(data, lazy=False)
    seg = _read(data)
    assert seg.raw is not None
    assert same(seg.raw.row(0).metadata, {"d": date(2020, 1, 1)})  # its neighbours stay readable
    for decode in (lambda r: r.row(1), RawRecords.rows, lambda r: r.metadatas(0, 3)):
        with pytest.raises(IntegrityError, match=f"segments/{NAME}.seg .*{message}"):
            decode(seg.raw)


def test_the_nesting_limit_for_tagged_metadata_is_exactly_what_a_writer_can_need() -> None:
    # the deepest a writer writes: 31 escaped dicts around a date, 64 levels tagged
    deepest = _nest(MAX_METADATA_DEPTH - 1, {"$date": "2020-01-01"})
    seg = _read(_with_line(_typed_line(deepest)))
    assert seg.raw is not None and type(seg.raw.row(1).metadata["v"]) is dict
    seg = _read(_with_line(_typed_line(_nest(MAX_METADATA_DEPTH - 1, [{"$date": "2020-01-01"}]))))
    assert seg.raw is not None
    with pytest.raises(IntegrityError, match="nests deeper"):
        seg.raw.row(1)


def test_an_untyped_record_keeps_tag_like_values_as_they_are() -> None:
    line = encode_record("id1", ("t", {"v": {"$date": "nonsense"}}, "", "", ""))
    assert b'"typed"' not in line  # no date: stored as before, readable by older releases
    seg = _read(_with_line(line))
    assert seg.raw is not None and seg.raw.row(1).metadata == {"v": {"$date": "nonsense"}}


def test_a_store_with_a_damaged_tag_fails_reads_of_that_record(tmp_path: Path) -> None:
    open_store(tmp_path).add_texts(["alpha", "beta"], [{"d": date(2020, 1, 1)}, {"i": 1}], ids=["a", "b"])
    segment = next(tmp_path.glob("segments/*.seg"))
    parts = {k: bytes(v) for k, v in unpack_sections(segment.read_bytes(), "s").items()}
    parts["records"] = parts["records"].replace(b'"2020-01-01"', b'"2020-01-32"')
    data = pack_sections(parts)
    segment.write_bytes(data)
    manifest = sorted(tmp_path.glob("manifests/*.json"))[-1]
    doc = json.loads(manifest.read_text())
    doc["segments"][0]["file"].update(bytes=len(data), sha256=sha256(data))  # re-signed
    manifest.write_text(json.dumps(doc))
    store = open_store(tmp_path)  # opening decodes no record
    assert store.get_by_ids(["b"])[0].metadata == {"i": 1}
    for call in (lambda: store.get_by_ids(["a"]), store.verify, lambda: list(store.iter_documents())):
        with pytest.raises(IntegrityError, match=r"\$date tag holding '2020-01-32'"):
            call()


# -- copies, migration, output ------------------------------------------------------------------


def test_copy_to_another_store_keeps_the_dates(tmp_path: Path) -> None:
    source = open_store(tmp_path / "a")
    source.add_texts(["t1", "t2"], [META, {"n": 1}], ids=["1", "2"])
    target = open_store(tmp_path / "b", index="hnsw")
    assert source.copy_to(target) == 2
    for store in (target, open_store(tmp_path / "b", index="hnsw")):
        got = {d.id: d.metadata for d in store.get_by_ids(["1", "2"])}
        assert same(got, {"1": META, "2": {"n": 1}})
    assert features(tmp_path / "b") == [TYPED_VALUES]


def test_migrate_keeps_the_dates(tmp_path: Path) -> None:
    config = VectorDBConfig(local_path=str(tmp_path / "source"), embedding_provider="fake")
    db = VectorDatabaseManager(config)
    db.add_texts(["dated text"], [META])
    target = config.replace(local_path=str(tmp_path / "target"))
    assert db.switch_backend(target) == 1
    docs = [d for batch in VectorDatabaseManager(target).vector_store.iter_documents() for d in batch]
    assert len(docs) == 1 and same(docs[0].metadata, META)


def test_cli_output_gives_dates_as_iso_strings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = VectorDBConfig(local_path=str(tmp_path), embedding_provider="fake")
    meta = {"at": datetime(2024, 1, 2, 3, 4, 5, 6, tz(5, 30)), "day": date(2024, 1, 2), "n": [date(2020, 1, 1)]}
    VectorDatabaseManager(config).add_documents([Document(page_content="dated text", metadata=meta, id="a")])
    common = ["--provider", "fake", "--path", str(tmp_path), "-q"]
    iso = {"at": "2024-01-02T03:04:05.000006+05:30", "day": "2024-01-02", "n": ["2020-01-01"]}
    for args in (["get", "a", "--json"], ["search", "dated text", "--json"]):
        capsys.readouterr()
        assert main([*common, *args]) == 0
        assert json.loads(capsys.readouterr().out)[0]["metadata"] == iso
    assert main([*common, "get", "a"]) == 0
    assert json.dumps(iso, ensure_ascii=False) in capsys.readouterr().out


# -- LangChain's time-weighted retriever ----------------------------------------------------------


@pytest.mark.slow
def test_time_weighted_retriever_over_a_store_on_disk(tmp_path: Path, minilm: Embeddings) -> None:
    from langchain_classic.retrievers import TimeWeightedVectorStoreRetriever

    now = datetime.now()
    texts = {
        "old": ("The cat sat on the warm mat by the fire.", now - timedelta(hours=200)),
        "recent": ("A cat is sleeping on a rug near the fireplace.", now - timedelta(hours=1)),
        "other": ("Quarterly tax filings are due at the end of the month.", now - timedelta(hours=300)),
    }
    store = LocalVectorStore(minilm, tmp_path)
    retriever = TimeWeightedVectorStoreRetriever(vectorstore=store, decay_rate=0.1, k=2)
    retriever.add_documents(
        [Document(page_content=t, metadata={"name": n, "last_accessed_at": at}) for n, (t, at) in texts.items()]
    )
    query = "the cat sat on the mat by the fire"
    assert [d.metadata["name"] for d in store.similarity_search(query, k=2)] == ["old", "recent"]
    assert [d.metadata["name"] for d in retriever.invoke(query)] == ["recent", "old"]  # decayed

    reopened = LocalVectorStore(minilm, tmp_path)
    stored = sorted(
        (d for batch in reopened.iter_documents() for d in batch), key=lambda d: d.metadata["buffer_idx"]
    )
    for doc in stored:  # as the retriever wrote them: naive datetimes, created_at set by it
        assert same(doc.metadata["last_accessed_at"], texts[doc.metadata["name"]][1])
        assert type(doc.metadata["created_at"]) is datetime and doc.metadata["created_at"].tzinfo is None
        assert now <= doc.metadata["created_at"] <= datetime.now()
    # a retriever over the reopened store, its memory stream rebuilt from the stored documents
    again = TimeWeightedVectorStoreRetriever(vectorstore=reopened, memory_stream=stored, decay_rate=0.1, k=2)
    assert [d.metadata["name"] for d in again.invoke(query)] == ["recent", "old"]
    barely = TimeWeightedVectorStoreRetriever(
        vectorstore=reopened, memory_stream=stored, decay_rate=1e-9, k=2
    )
    assert [d.metadata["name"] for d in barely.invoke(query)] == ["old", "recent"]  # relevance only
