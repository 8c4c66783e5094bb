"""`read_segment` (vectordb_manager/engine/format.py) on honest segments: the vectors stream
into the caller's sink in bounded chunks, never through one big read; records over a real
file stay undecoded in a read-only map until asked for; a file that fails its checksum gives
`IntegrityError` and nothing else, and a store that meets one keeps what it had.

The hostile side (malformed tables, headers, records) is in test_format_hostile.py."""

from __future__ import annotations

import io
import json
import mmap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vectordb_manager import IntegrityError, LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.format import (
    Fill,
    HashingReader,
    SegmentData,
    SegmentRef,
    canonical_json,
    content_hash,
    encode_segment,
    pack_sections,
    read_segment,
    unpack_sections,
)

NAME = "c" * 32
ROWS, DIM = 3000, 128  # 1.5 MB of vectors: more than one of the reader's 1 MiB chunks


def make_segment(rows: int = ROWS, dim: int = DIM) -> SegmentData:
    rng = np.random.default_rng(5)
    ids = [f"id{i}" for i in range(rows)]
    texts = [f"text number {i}" for i in range(rows)]
    metas: list[dict[str, Any]] = [{"i": i, "even": i % 2 == 0} for i in range(rows)]
    hashes = [content_hash(t, canonical_json(m)) for t, m in zip(texts, metas, strict=True)]
    times = ["2026-01-01T00:00:00+00:00"] * rows
    vectors = rng.normal(size=(rows, dim)).astype(np.float32)
    return SegmentData(ids, texts, metas, hashes, times, times, vectors)


def encoded(seg: SegmentData) -> tuple[SegmentRef, bytes]:
    ref, blobs = encode_segment(NAME, seg)
    return ref, bytes(blobs[ref.file.path])


class CountingStream(io.BytesIO):
    """A stream that records how many bytes each ``read`` and ``readinto`` call moved."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []
        self.readintos: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.reads.append(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        got = super().readinto(buffer)
        self.readintos.append(got)
        return got


def test_vectors_stream_into_the_sink_in_bounded_chunks() -> None:
    seg = make_segment()
    ref, data = encoded(seg)
    stream = CountingStream(data)
    target = np.full((ROWS, DIM), np.nan, dtype=np.float32)
    asked: list[tuple[int, int]] = []

    def sink(rows: int, dim: int) -> np.ndarray:
        asked.append((rows, dim))
        return target

    got = read_segment(ref, stream, DIM, sink)
    assert asked == [(ROWS, DIM)]
    assert got.vectors is target  # filled in place: no second copy
    assert np.array_equal(target, seg.vectors)
    # the vectors came through readinto, straight into the sink, a chunk at a time; what
    # went through read() (prefixes, ids, records) is far less than the vectors
    assert sum(stream.readintos) >= seg.vectors.nbytes
    assert max(stream.readintos) <= HashingReader.CHUNK
    assert max(stream.reads) <= HashingReader.CHUNK
    assert sum(stream.reads) < seg.vectors.nbytes / 2


def test_without_a_sink_the_vectors_get_their_own_array() -> None:
    seg = make_segment(rows=10, dim=8)
    ref, data = encoded(seg)
    got = read_segment(ref, io.BytesIO(data), 8)
    assert got.vectors.shape == (10, 8) and got.vectors.dtype == np.float32
    assert got.vectors.flags.c_contiguous and got.vectors.flags.writeable
    assert np.array_equal(got.vectors, seg.vectors)


def test_a_sink_that_declines_lets_the_vectors_go_but_still_checks_them() -> None:
    seg = make_segment(rows=10, dim=8)
    ref, data = encoded(seg)
    asked: list[tuple[int, int]] = []

    def decline(rows: int, dim: int) -> None:
        asked.append((rows, dim))

    got = read_segment(ref, io.BytesIO(data), 8, decline)
    assert asked == [(10, 8)]
    assert got.vectors.shape == (0, 8)
    assert got.ids == seg.ids
    # the vectors it let go are still covered by the checksum
    start, length = _section(data, "vectors")
    damaged = bytearray(data)
    damaged[start + length - 1] ^= 0x40
    with pytest.raises(IntegrityError, match="checksum"):
        read_segment(ref, io.BytesIO(bytes(damaged)), 8, decline)


def read_from_file(seg: SegmentData, where: Path, *, lazy: bool) -> SegmentData:
    """``seg`` written to the file ``where`` and read back through an open file (which is
    closed on return, as a store closes it)."""
    ref, data = encoded(seg)
    where.write_bytes(data)
    with where.open("rb") as stream:
        return read_segment(ref, stream, seg.vectors.shape[1], lazy=lazy)


def test_records_over_a_file_are_mapped_and_decoded_only_when_asked(tmp_path: Path) -> None:
    seg = make_segment(rows=50, dim=8)
    got = read_from_file(seg, tmp_path / "s.seg", lazy=True)
    # nothing decoded: the records are a view of a read-only map of the (verified) file
    assert got.texts == [] and got.metadatas == [] and got.hashes == []
    assert got.raw is not None and len(got.raw) == 50
    assert isinstance(got.raw.blob, memoryview) and isinstance(got.raw.blob.obj, mmap.mmap)
    assert got.raw.blob.readonly
    # decoded on demand, after the stream was closed, each row as it was written
    assert got.raw.row(7)[:3] == (seg.texts[7], seg.metadatas[7], seg.hashes[7])
    rows = [got.raw.row(i) for i in range(50)]
    assert [r[0] for r in rows] == seg.texts and [r[1] for r in rows] == seg.metadatas


def test_records_from_a_stream_without_a_file_are_kept_undecoded_bytes() -> None:
    seg = make_segment(rows=20, dim=8)
    ref, data = encoded(seg)
    got = read_segment(ref, io.BytesIO(data), 8, lazy=True)
    assert got.texts == [] and got.raw is not None
    assert isinstance(got.raw.blob, bytes)  # a copy of the section, not a view of the file
    assert [got.raw.row(i)[0] for i in range(20)] == seg.texts


def test_eager_reading_decodes_every_record(tmp_path: Path) -> None:
    seg = make_segment(rows=20, dim=8)
    got = read_from_file(seg, tmp_path / "s.seg", lazy=False)
    assert got.raw is None
    assert (got.texts, got.metadatas, got.hashes) == (seg.texts, seg.metadatas, seg.hashes)
    assert (got.created, got.updated) == (seg.created, seg.updated)


@pytest.mark.parametrize("section", ["ids", "records", "vectors"])
def test_a_checksum_failure_gives_integrity_error_after_the_sink_was_filled(
    section: str, tmp_path: Path
) -> None:
    """A changed byte that every parser would accept (a digit of an id or a text, the lowest
    bit of a vector) is found by the checksum alone, once the whole file streamed through:
    the sink already holds the vectors, so the caller must throw them away (the store does,
    below), and nothing is returned."""
    seg = make_segment(rows=10, dim=8)
    ref, data = encoded(seg)
    start, length = _section(data, section)
    if section == "vectors":
        at = start + length - 4  # the lowest mantissa byte of the last vector's last value
    else:  # "id9" or "text number 9" becomes ...8
        digit = b'id9"' if section == "ids" else b"text number 9"
        at = data.index(digit, start, start + length) + len(digit) - (2 if section == "ids" else 1)
    damaged = bytearray(data)
    damaged[at] ^= 0x01
    filled: list[np.ndarray] = []

    def sink(rows: int, dim: int) -> np.ndarray:
        filled.append(np.zeros((rows, dim), np.float32))
        return filled[-1]

    path = tmp_path / "s.seg"
    path.write_bytes(bytes(damaged))
    for stream in (io.BytesIO(bytes(damaged)), path.open("rb")):
        with stream, pytest.raises(IntegrityError, match="does not match its SHA-256 checksum"):
            read_segment(ref, stream, 8, sink)
    # the vectors were streamed into the sink before the checksum could be known
    assert len(filled) == 2
    for vectors in filled:
        changed = np.argwhere(vectors != seg.vectors).tolist()
        assert changed == ([[9, 7]] if section == "vectors" else [])


def test_a_store_keeps_its_state_when_a_new_segment_fails_its_checksum(tmp_path: Path) -> None:
    emb = HashingEmbeddings(16)
    reader = LocalVectorStore(emb, tmp_path)
    reader.add_texts(["alpha", "beta"], ids=["a", "b"])
    before = [(d.id, s) for d, s in reader.similarity_search_with_score("alpha", k=2)]
    writer = LocalVectorStore(emb, tmp_path)
    old = set(tmp_path.glob("segments/*.seg"))
    writer.add_texts(["gamma"], ids=["c"])
    (new,) = set(tmp_path.glob("segments/*.seg")) - old
    data = bytearray(new.read_bytes())
    start, length = _section(bytes(data), "vectors")
    data[start + length - 1] ^= 0x40
    new.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum"):
        reader.refresh()
    # nothing of the damaged file reached the reader: it answers as it did
    assert sorted(reader.get_ids()) == ["a", "b"]
    assert [(d.id, s) for d, s in reader.similarity_search_with_score("alpha", k=2)] == before
    with pytest.raises(IntegrityError, match="checksum"):
        LocalVectorStore(emb, tmp_path)


def _section(data: bytes, name: str) -> tuple[int, int]:
    """Where section ``name`` lies in a segment file, from its header: (offset, length)."""
    header = data[16 : 16 + int.from_bytes(data[8:16], "little")]
    offset, length = json.loads(header)["sections"][name]
    return offset, length


def test_a_line_that_may_hold_a_big_integer_is_told_as_the_pattern_tells_it() -> None:
    """`may_hold_big_int` (the check before orjson reads one line, which would read an
    integer beyond 64 bits as a float) answers what its rule says, a run of 19 digits after
    one of ``:[,``, a blank or ``-`` (or at the start), on random lines of digits and the
    characters around numbers, short lines and lines past its 4 KB switch; and a line read
    lazily keeps such an integer exact."""
    import random
    import re

    from vectordb_manager.engine.records import RawRecords, may_hold_big_int

    rule = re.compile(rb"(?:^|(?<=[:\[, \t\r\n-]))\d{19}")
    rng = random.Random(5)
    alphabet = [b"1", b"2", b"0", b"9", b"a", b":", b"[", b",", b" ", b"-", b'"', b"\n", b"."]
    lines = [b"".join(rng.choices(alphabet, k=rng.randint(0, 80))) for _ in range(3000)]
    lines += [b"9" * rng.randint(15, 25) for _ in range(200)]
    lines += [
        b"".join(rng.choices([b"9", b"9", b"9", b","], k=rng.randint(30, 60))) for _ in range(500)
    ]
    lines += [b" " * 4090 + b"1" * 19, b"x" * 5000, b"x" * 4000 + b",1234567890123456789"]
    lines += [b'{"a":"' + b"1" * 19 + b'"}', b'{"a":x1234567890123456789}']
    assert sum(map(may_hold_big_int, lines)) > 100  # (both answers come up)
    for line in lines:
        assert may_hold_big_int(line) == bool(rule.search(line)), line
        assert may_hold_big_int(memoryview(line)) == bool(rule.search(line)), line
    big = 2**64 + 1
    line = json.dumps(
        {
            "id": "a",
            "text": "t",
            "metadata": {"n": big, "m": -big},
            "hash": "h",
            "created_at": "c",
            "updated_at": "u",
        }
    ).encode()
    assert RawRecords.split(line + b"\n", "f").row(0).metadata == {"n": big, "m": -big}


def test_a_laid_out_file_does_not_depend_on_what_its_memory_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`pack_sections` does not zero the file's memory first: the header's room and the
    padding after each section are zeroed, every other byte is a section's. Laid out in memory
    full of 0xAB, the file is the one laid out in zeroed memory, byte for byte."""
    big = bytes(range(256)) * 400  # copied by NumPy (the large-piece path)
    vectors = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)

    def fill(target: memoryview) -> None:
        np.frombuffer(target, dtype=np.float32)[:] = vectors.reshape(-1)

    parts: dict[str, Any] = {
        "ids": b'["a", "b"]',  # 10 bytes, then padding
        "records": [b"x" * 3, big, b"y" * 5],
        "vectors": [b"\x93NUMPY", Fill(vectors.nbytes, fill)],
        "deletes": b'["c"]',
    }
    files = []
    for before in (0x00, 0xAB):
        monkeypatch.setattr(np, "empty", lambda n, dtype, b=before: np.full(n, b, dtype=dtype))
        files.append(bytes(pack_sections(parts)))
        monkeypatch.undo()
    assert files[0] == files[1]
    sections = unpack_sections(files[0], "seg")
    assert bytes(sections["records"]) == b"xxx" + big + b"yyyyy"
    assert bytes(sections["vectors"])[6:] == vectors.tobytes()
    assert bytes(sections["ids"]) == b'["a", "b"]' and bytes(sections["deletes"]) == b'["c"]'
