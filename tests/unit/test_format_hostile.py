"""Hostile stores: every malformed manifest field, segment header and record is refused with
the package's IntegrityError, saying what is wrong (issue "Hostile stores and inputs").
Manifests are parsed from bytes, segments read through `read_segment` from real bytes and
files, and the end-to-end cases open real stores on disk. The .npy header of a segment's
vectors: test_format_npy.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import rewrite_section
from tests.segment_support import DIM, A, read_bytes, sample_parts, sample_segment
from vectordb_manager import IntegrityError, InvalidInputError, LocalVectorStore, StorageError
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine import limits as lim
from vectordb_manager.engine.format import (
    Manifest,
    canonical_json,
    content_hash,
    manifest_name,
    pack_sections,
    unpack_sections,
)

NAME = "manifests/00000000000000000003.json"
B = "b" * 32
SHA = "0123456789abcdef" * 4
MISSING = object()
INF = object()  # written as the literal 1e999, which json reads as float("inf")


def _doc() -> dict[str, Any]:
    """A valid manifest, as a writer would produce it."""
    segments = [(A, 3, 0), (B, 2, 1)]
    return {
        **{"format": "vectordb-manager", "format_version": 1, "features": [], "version": 3},
        **{"created_at": "2026-01-01T00:00:00.000000+00:00", "dimension": DIM},
        "distance": "cosine",
        "index": {"type": "hnsw", "params": {"hnsw_m": 32, "ivf_nlist": None}},
        "embedding_model": "hashing-16",
        "live_count": 4,
        "segments": [
            {"name": n, "rows": r, "deletes": d, "file": _file(f"segments/{n}.seg", 1024)}
            for n, r, d in segments
        ],
        "index_snapshot": {
            **{"file": _file(f"indexes/{A}.faiss", 5000), "segment": A},
            **{"rows": 3, "kind": "hnsw"},
        },
    }


def _file(path: str, size: int) -> dict[str, Any]:
    return {"path": path, "bytes": size, "sha256": SHA}


def _encode(doc: Any) -> bytes:
    text = json.dumps(doc, default=lambda v: "__INF__" if v is INF else None)
    return text.replace('"__INF__"', "1e999").encode()


def _setter(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Sets (or with MISSING removes) a field given as ``a.b[0].c``."""
    keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", field)]

    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in keys[:-1]:
            target = target[key]
        if value is MISSING:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value

    return change


NOT_INTS = [True, 1.5, INF, "3", None, [1], MISSING]
BAD_PATHS = [
    *("", "/abs", "./x", "a//b", "..", "../../etc/passwd", f"segments/../{A}.seg"),
    *(f"segments/{A}\x00.seg", f"segments/\x01{A}.seg", f"segments\\{A}.seg"),
    *(f"segments/{B}.seg", f"indexes/{A}.seg", f"segments/{A}.faiss", f"segments/{A}.seg/"),
    *(f"./segments/{A}.seg", f"segments//{A}.seg"),
]
HOSTILE_FIELDS: list[tuple[str, Any]] = [
    *[("distance", v) for v in ("bogus", "", "COSINE", 1, None, ["cosine"], MISSING)],
    *[("format_version", v) for v in (True, 1.0, "1", 0, -7, 2, 10**30, None, MISSING)],
    *[("version", v) for v in (0, -1, 99999999999999999999, lim.MAX_VERSION + 1, *NOT_INTS)],
    *[("features", v) for v in ([[1]], "x", [1], ["zstd-records"], {"a": 1}, None, MISSING)],
    *[("created_at", v) for v in (1, None, ["x"], MISSING)],
    *[("embedding_model", v) for v in (1, [], {}, True, MISSING)],
    *[("dimension", v) for v in (0, -1, lim.MAX_DIMENSION + 1, True, 16.0, "16", INF, MISSING)],
    *[("index", v) for v in ("flat", None, [], MISSING)],
    *[("index.type", v) for v in ("bogus", 1, None, MISSING)],
    *[("index.params", v) for v in ([], "x", None, MISSING)],
    *[("index.params.hnsw_m", v) for v in ([1], {"a": 1}, INF)],
    *[("live_count", v) for v in (-1, 6, 2.0, *NOT_INTS)],
    *[("segments", v) for v in ("x", None, {}, MISSING)],
    *[("segments[0]", v) for v in ("x", [], None)],
    *[("segments[0].name", v) for v in ("A" * 32, "a" * 31, "../x", "", 1, MISSING)],
    *[("segments[0].rows", v) for v in (-1, 10**9, *NOT_INTS)],
    *[("segments[1].deletes", v) for v in (-1, 2**63, *NOT_INTS)],
    *[("segments[0].file", v) for v in ("x", None, MISSING)],
    *[("segments[0].file.path", v) for v in (*BAD_PATHS, 1, None, MISSING)],
    *[("segments[0].file.bytes", v) for v in (-1, 2**63, 100, *NOT_INTS)],
    *[
        ("segments[0].file.sha256", v)
        for v in (SHA.upper(), SHA[:-1], "zz" * 32, SHA + "\n", 1, None, MISSING)
    ],
    *[("index_snapshot", v) for v in ("x", [], 1, True)],
    *[("index_snapshot.kind", v) for v in ("flat", "bogus", None, MISSING)],
    *[("index_snapshot.segment", v) for v in (B, 1, None, MISSING)],
    *[("index_snapshot.rows", v) for v in (2, -1, True, INF, MISSING)],
    *[
        ("index_snapshot.file.path", v)
        for v in (f"segments/{A}.faiss", "indexes/x.faiss", f"indexes/../{A}.faiss", "/abs")
    ],
]


def _case_id(case: tuple[str, Any]) -> str:
    field, value = case
    shown = "MISSING" if value is MISSING else "1e999" if value is INF else repr(value)
    return f"{field}={shown[:40]}"


@pytest.mark.parametrize("case", HOSTILE_FIELDS, ids=_case_id)
def test_hostile_manifest_field_is_refused_naming_the_file_and_field(case: tuple[str, Any]) -> None:
    field, value = case
    doc = _doc()
    _setter(field, value)(doc)
    with pytest.raises(IntegrityError) as info:
        Manifest.from_bytes(_encode(doc), NAME)
    message = str(info.value)
    assert NAME in message
    assert field in message or field.replace("_", " ") in message, message
    assert "open it with" not in message, "advice derived from a hostile value"


def test_the_valid_manifest_parses_and_round_trips() -> None:
    manifest = Manifest.from_bytes(_encode(_doc()), NAME)
    assert (manifest.version, manifest.dimension, len(manifest.segments)) == (3, DIM, 2)
    assert manifest.snapshot is not None and manifest.snapshot.segment == A
    assert Manifest.from_bytes(manifest.to_bytes(), NAME) == manifest


def _set_all(*changes: tuple[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        for field, value in changes:
            _setter(field, value)(doc)

    return change


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (_set_all(("segments[1]", _doc()["segments"][0])), "segments[1].name repeats"),
        (_set_all(("segments", []), ("live_count", 0)), "index_snapshot.segment"),
        (
            _set_all(("dimension", None), ("index_snapshot", None)),
            "dimension is null, but segments[0] holds 3 rows",
        ),
        (_set_all(("segments[0].rows", 10**9)), "segments[0].file.bytes is 1024, fewer than"),
    ],
)
def test_fields_that_contradict_each_other_are_refused(
    change: Callable[[dict[str, Any]], None], fragment: str
) -> None:
    doc = _doc()
    change(doc)
    with pytest.raises(IntegrityError, match=f"^{re.escape(NAME)} .*{re.escape(fragment)}"):
        Manifest.from_bytes(_encode(doc), NAME)


@pytest.mark.parametrize(
    "data",
    [
        _encode(_doc()) + b" " * (lim.MAX_MANIFEST_BYTES + 1),  # valid JSON, too large
        b'{"format": "vectordb-manager", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"format": "vectordb-manager", "version": 1' + b"0" * 5000 + b"}",
        b"\xff\xfe",
        b"[]",
        b"",
    ],
    ids=["too-large", "deeply-nested", "5000-digit-int", "not-utf8", "a-list", "empty"],
)
def test_manifest_bytes_that_are_no_manifest_are_refused(data: bytes) -> None:
    with pytest.raises(IntegrityError, match=f"^{NAME}"):
        Manifest.from_bytes(data, NAME)


def test_a_writer_cannot_propose_a_version_past_the_limit() -> None:
    last = Manifest(version=lim.MAX_VERSION, distance="cosine", index="flat")
    assert Manifest.from_bytes(last.to_bytes(), manifest_name(lim.MAX_VERSION)) == last
    with pytest.raises(StorageError, match="no further change can be committed"):
        last.next()
    with pytest.raises(StorageError, match="refusing to commit"):
        Manifest(version=lim.MAX_VERSION + 1, distance="cosine", index="flat").to_bytes()
    with pytest.raises(StorageError, match="distance"):
        Manifest(version=1, distance="bogus", index="flat").to_bytes()


def _store(path: Path) -> LocalVectorStore:
    return LocalVectorStore(HashingEmbeddings(DIM), path)


def _latest(path: Path) -> Path:
    return sorted(path.glob("manifests/*.json"))[-1]


def test_a_store_at_the_last_version_refuses_writes_and_stays_as_it_was(tmp_path: Path) -> None:
    _store(tmp_path).add_texts(["alpha", "beta"], ids=["a", "b"])
    latest = _latest(tmp_path)
    doc = json.loads(latest.read_text())
    doc["version"] = lim.MAX_VERSION
    (tmp_path / manifest_name(lim.MAX_VERSION)).write_text(json.dumps(doc))
    latest.unlink()
    manifests = sorted(p.name for p in tmp_path.glob("manifests/*"))
    store = _store(tmp_path)
    with pytest.raises(StorageError, match="no further change can be committed"):
        store.add_texts(["gamma"], ids=["c"])
    assert sorted(p.name for p in tmp_path.glob("manifests/*")) == manifests
    assert sorted(_store(tmp_path).get_ids()) == ["a", "b"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("distance", "bogus"), ("features", [[1]]), ("version", 99999999999999999999)],
)
def test_opening_a_store_with_a_hostile_manifest_raises_integrity_error(
    tmp_path: Path, field: str, value: Any
) -> None:
    _store(tmp_path).add_texts(["alpha"], ids=["a"])
    latest = _latest(tmp_path)
    doc = json.loads(latest.read_text())
    doc[field] = value
    latest.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=field) as info:
        _store(tmp_path)
    assert "open it with" not in str(info.value)


# -- segments ----------------------------------------------------------------------------


def _with_header(template: str) -> bytes:
    """A segment file whose JSON header is ``template`` filled in with the real sections'
    offsets and lengths (``I``/``IL`` for ids, ``R``/``RL``, ``V``/``VL``, ``SIZE``)."""
    data = bytes(pack_sections(sample_parts(sample_segment())))
    table = json.loads(data[16 : 16 + int.from_bytes(data[8:16], "little")])["sections"]
    (i, il), (r, rl), (v, vl) = table["ids"], table["records"], table["vectors"]
    values = {"I": i, "IL": il, "R": r, "RL": rl, "V": v, "VL": vl, "SIZE": len(data)}
    raw = (template % {**values, "R1": r + 1, "RL1": rl - 1}).encode()  # R1: not aligned
    assert 16 + len(raw) <= i, "the test's header does not fit before the sections"
    return data[:8] + len(raw).to_bytes(8, "little") + raw.ljust(i - 16, b"\0") + data[i:]


def test_an_honest_segment_reads_back_exactly(tmp_path: Path) -> None:
    seg = sample_segment(deletes=("gone",))
    data = bytes(pack_sections(sample_parts(seg)))
    for where in (None, tmp_path / "s.seg"):
        for lazy in (True, False):
            got = read_bytes(data, 3, 1, lazy=lazy, where=where)
            assert got.ids == seg.ids and got.deletes == ["gone"]
            assert np.array_equal(got.vectors, seg.vectors)
            rows = got.raw.rows() if got.raw else list(zip(got.texts, got.metadatas, strict=True))
            assert [tuple(r[:2]) for r in rows] == list(zip(seg.texts, seg.metadatas, strict=True))


_TABLE = '{"sections": {"ids": %s, "records": %s, "vectors": %s}}'
_IDS, _RECORDS, _VECTORS = "[%(I)d, %(IL)d]", "[%(R)d, %(RL)d]", "[%(V)d, %(VL)d]"
HOSTILE_HEADERS = [
    *(_TABLE % (ids, _RECORDS, _VECTORS) for ids in ("[%(I)d, 1e999]", "[1e999, %(IL)d]")),
    *(_TABLE % (ids, _RECORDS, _VECTORS) for ids in ("[%(I)d.0, %(IL)d]", '["%(I)d", %(IL)d]')),
    *(_TABLE % (ids, _RECORDS, _VECTORS) for ids in ('[%(I)d, "%(IL)d"]', "[%(I)d, true]")),
    *(_TABLE % (ids, _RECORDS, _VECTORS) for ids in ("[[%(I)d], %(IL)d]", "[%(I)d, -1]")),
    *(_TABLE % (ids, _RECORDS, _VECTORS) for ids in ("[%(I)d, %(IL)d, 0]", "null", "{}")),
    *(_TABLE % (_IDS, _RECORDS, vectors) for vectors in ("[%(V)d, %(SIZE)d]", "[%(V)d, NaN]")),
    *(_TABLE % (_IDS, records, _VECTORS) for records in ("[%(I)d, %(RL)d]", "[%(R1)d, %(RL1)d]")),
    _TABLE.replace('"vectors"', '"vector"') % (_IDS, _RECORDS, _VECTORS),  # unknown section
    _TABLE.replace(', "vectors": %s', "") % (_IDS, _RECORDS),  # rows without vectors
    _TABLE.replace("}}", '}, "x": 1}') % (_IDS, _RECORDS, _VECTORS),
    *('{"sections": [[%(I)d, %(IL)d]]}', "[%(I)d, %(IL)d]", '"sections"', "[" * 60 + "]" * 60),
    '{"sections": {"ids": [%(I)d, %(IL)d]',
]


@pytest.mark.parametrize("template", HOSTILE_HEADERS, ids=lambda t: t[:90])
def test_a_hostile_section_table_is_refused(template: str) -> None:
    assert read_bytes(_with_header(HOSTILE_HEADERS[0].replace("1e999", "%(IL)d"))).ids  # the helper
    with pytest.raises(IntegrityError, match=f"segments/{A}.seg"):
        read_bytes(_with_header(template), lazy=False)


def test_a_section_table_nested_too_deeply_is_refused() -> None:
    header = b"[" * 50_000 + b"]" * 50_000  # within the 64 KiB a table may take
    data = b"VDBSEG01" + len(header).to_bytes(8, "little") + header
    with pytest.raises(IntegrityError, match="malformed header"):
        read_bytes(data)


@pytest.mark.parametrize("length", [2**64 - 1, 2**40, 10**6])
def test_a_header_length_beyond_the_file_or_limit_is_refused(length: int) -> None:
    data = bytearray(pack_sections(sample_parts(sample_segment()))) + b"\0" * (10**6 + 64)
    data[8:16] = length.to_bytes(8, "little")
    with pytest.raises(IntegrityError, match="malformed header: header length"):
        read_bytes(bytes(data))


@pytest.mark.parametrize("section", ["ids", "deletes"])
@pytest.mark.parametrize(
    "payload",
    [b"[1, 2, 3]", b'"abc"', b"[1e999]", b'["a", "b"', b"[" * 5000 + b"]" * 5000, b"[NaN]", b"{}"],
    ids=["ints", "string", "inf", "cut", "deep", "nan", "object"],
)
def test_ids_and_deletes_must_be_json_lists_of_strings(section: str, payload: bytes) -> None:
    parts = sample_parts(sample_segment(deletes=("x",)))
    parts[section] = payload
    with pytest.raises(IntegrityError, match=f"segments/{A}.seg"):
        read_bytes(pack_sections(parts), 3, 1, lazy=False)


def _nested(depth: int, container: str = "dict") -> dict[str, Any]:
    """Metadata nesting exactly ``depth`` levels (the metadata dict itself is level 1)."""
    value: Any = 1
    for _ in range(depth - 1):
        value = {"k": value} if container == "dict" else [value]
    return {"k": value} if depth > 1 else {"k": 1}


def _line(**fields: Any) -> bytes:
    """A record line for the id ``id1`` with ``fields`` changed (MISSING: left out)."""
    row = {"id": "id1", "text": "t", "metadata": {}, "hash": "", "created_at": "", "updated_at": ""}
    return _encode({k: v for k, v in {**row, **fields}.items() if v is not MISSING})


def _with_line(line: bytes) -> bytes:
    """A segment file of three records, the second one's line replaced by ``line``."""
    parts = sample_parts(sample_segment())
    lines = parts["records"].splitlines()
    parts["records"] = b"\n".join([lines[0], line, lines[2]]) + b"\n"
    return pack_sections(parts)


DEEP = [
    ("dict-33", json.dumps(_nested(lim.MAX_METADATA_DEPTH + 1))),
    ("list-33", json.dumps(_nested(lim.MAX_METADATA_DEPTH + 1, "list"))),
    ("dict-600", '{"k": ' * 600 + "1" + "}" * 600),
    ("list-5000", '{"k": ' + "[" * 5000 + "]" * 5000 + "}"),
    ("dict-5000", '{"k": ' * 5000 + "1" + "}" * 5000),
]


@pytest.mark.parametrize(("meta_json"), [m for _, m in DEEP], ids=[n for n, _ in DEEP])
def test_metadata_nested_too_deep_is_integrity_error_on_every_path(
    tmp_path: Path, meta_json: str
) -> None:
    data = _with_line(_line(metadata=INF).replace(b"1e999", meta_json.encode()))
    with pytest.raises(IntegrityError, match="nest"):
        read_bytes(data, lazy=False)
    with pytest.raises(IntegrityError, match="nest"):
        read_bytes(data, where=tmp_path / "s.seg")  # mapped, then every row decoded
    seg = read_bytes(data)  # lazy: nothing decoded yet
    assert seg.raw is not None
    assert seg.raw.row(0)[0] == "text 0"  # its neighbours stay readable
    for decode in (lambda r: r.row(1), lambda r: r.rows(), lambda r: r.metadatas(0, 3)):
        with pytest.raises(IntegrityError, match="nest"):
            decode(seg.raw)


def test_metadata_at_the_depth_limit_is_accepted() -> None:
    for container in ("dict", "list"):
        meta = _nested(lim.MAX_METADATA_DEPTH, container)
        data = pack_sections(sample_parts(sample_segment([{"i": 0}, meta, {"i": 2}])))
        assert read_bytes(data, lazy=False).metadatas[1] == meta


RECORD_LINES = [
    ("not-an-object", b"[1, 2]"),
    ("hash-not-a-string", _line(hash=1)),
    ("metadata-a-list", _line(metadata=[])),
    ("no-text", _line(text=MISSING)),
    ("infinity", _line(metadata={"x": INF})),
    ("nan", _line(metadata={"x": INF}).replace(b"1e999", b"NaN")),
]


@pytest.mark.parametrize(("line"), [v for _, v in RECORD_LINES], ids=[n for n, _ in RECORD_LINES])
def test_malformed_record_lines_are_refused(line: bytes) -> None:
    with pytest.raises(IntegrityError, match=f"segments/{A}.seg"):
        read_bytes(_with_line(line), lazy=False)
    seg = read_bytes(_with_line(line))
    assert seg.raw is not None
    with pytest.raises(IntegrityError, match=f"segments/{A}.seg"):
        seg.raw.row(1)


def test_a_record_spanning_two_lines_is_refused_not_merged() -> None:
    # joined with a comma, these two lines would make two valid records; read line by line
    # (as a lazy read does) the first is not JSON: both reads must agree that it is damaged
    parts = sample_parts(sample_segment([{"i": 0}, {"i": 1}]))
    good = parts["records"].splitlines()
    head, tail = _encode({**json.loads(good[0]), "metadata": {"k": [INF]}}).split(b"1e999")
    parts["records"] = head + b"1\n2" + tail + b", " + good[1] + b"\n"
    with pytest.raises(IntegrityError, match=f"segments/{A}.seg"):
        read_bytes(pack_sections(parts), rows=2, lazy=False)


def test_a_record_line_longer_than_the_limit_is_refused_unread() -> None:
    long_line = b'{"text": "' + b"x" * (lim.MAX_RECORD_BYTES + 8 * lim.MAX_ID_BYTES) + b'"}'
    with pytest.raises(IntegrityError, match="record line of"):
        read_bytes(_with_line(long_line))


def test_records_must_end_with_a_newline() -> None:
    parts = sample_parts(sample_segment())
    parts["records"] = parts["records"] + b"{}"
    with pytest.raises(IntegrityError, match="newline"):
        read_bytes(pack_sections(parts))


# -- end to end ------------------------------------------------------------------------------


def test_a_store_holding_deep_metadata_fails_searches_with_integrity_error(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add_texts(["alpha"], ids=["a"])
    segment = next(tmp_path.glob("segments/*.seg")).read_bytes()
    record = json.loads(bytes(unpack_sections(segment, "s")["records"]).splitlines()[0])
    meta = json.loads('{"k": ' * 600 + "1" + "}" * 600)
    record["metadata"] = meta
    record["hash"] = content_hash(record["text"], canonical_json(meta))
    rewrite_section(tmp_path, "records", json.dumps(record).encode() + b"\n")
    again = _store(tmp_path)  # opening decodes no record
    for call in (
        lambda: again.similarity_search("alpha", k=1),
        lambda: again.get_by_ids(["a"]),
        lambda: again.similarity_search("alpha", k=1, filter={"k": {"$exists": True}}),
        again.verify,
    ):
        with pytest.raises(IntegrityError, match="nests deeper"):
            call()


def test_a_lazily_decoded_record_must_carry_the_id_the_id_list_gives_it(tmp_path: Path) -> None:
    _store(tmp_path).add_texts(["alpha", "beta"], ids=["a", "b"])
    rewrite_section(tmp_path, "ids", b'["a","x"]')  # re-signed: only the parser can tell
    store = _store(tmp_path)  # opening decodes only ids and vectors
    assert [d.page_content for d in store.get_by_ids(["a"])] == ["alpha"]
    with pytest.raises(IntegrityError, match="disagree on the ids"):
        store.get_by_ids(["x"])  # once gave beta's text under the id "x"


def test_a_writer_refuses_records_that_readers_would_refuse(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add_texts(["alpha"], ids=["a"])
    manifests = sorted(p.name for p in tmp_path.glob("manifests/*"))
    with pytest.raises(InvalidInputError, match=r"nests .*32 levels"):
        store.add_texts(["deep"], [_nested(lim.MAX_METADATA_DEPTH + 1)], ids=["d"])
    store.add_texts(["at the limit"], [_nested(lim.MAX_METADATA_DEPTH)], ids=["ok"])
    assert len(list(tmp_path.glob("manifests/*"))) == len(manifests) + 1  # only "ok" committed
    again = _store(tmp_path)
    assert again.get_by_ids(["ok"])[0].metadata == _nested(lim.MAX_METADATA_DEPTH)
    assert sorted(again.get_ids()) == ["a", "ok"]
