"""The persistence format: segment files, and the names of every part of it (docs/format.md).

A store is a set of immutable files plus a sequence of manifests. Each manifest names every
live segment with its size and SHA-256; the newest manifest is the store. This module reads and
writes segment files; `engine.manifest` parses manifests, `engine.records` the records' JSON
lines and `engine.npy` the vectors' ``.npy`` header (their names are importable from here too).
Nothing here knows where bytes live: the engine passes them to a `Storage`.

Reading never trusts a file beyond its checksum: the section table, the ids, the records and
the ``.npy`` header are each checked, and anything malformed raises `IntegrityError`. While a
segment streams in, only the fixed binary prefixes are read to find where things are; the
vectors go straight to their destination in the shape the manifest implies; the JSON parts
and the ``.npy`` header are parsed only after the whole file's checksum has been verified.
"""

from __future__ import annotations

import builtins
import json
import mmap
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import IO, Any

import numpy as np

from vectordb_manager.engine import npy
from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.columns import EncodedValues, build_values
from vectordb_manager.engine.columns import check_header as check_values_header
from vectordb_manager.engine.hashing import HashingReader, canonical_json, content_hash
from vectordb_manager.engine.limits import MAX_DIMENSION, MAX_METADATA_DEPTH
from vectordb_manager.engine.manifest import (
    INDEX_DIR,
    MANIFEST_DIR,
    SEGMENT_DIR,
    FileRef,
    Manifest,
    SegmentRef,
    SnapshotRef,
    manifest_name,
    now_iso,
    parse_manifest_name,
)
from vectordb_manager.engine.pages import scratch
from vectordb_manager.engine.postings import EncodedPostings, Postings, check_header
from vectordb_manager.engine.records import (
    MAX_RECORD_LINE_BYTES,
    Ends,
    RawRecords,
    check_depths,
    check_lines,
    damaged,
    dump_ids,
    encode_flat_records,
    encode_record,
    flat_scalars,
    id_list,
    longest_line,
    nests,
    newlines,
)
from vectordb_manager.errors import IntegrityError, InvalidInputError

Buffer = bytes | bytearray | memoryview
Blob = Buffer  # a file's whole contents, as written (`pack_sections` gives a memoryview)

Vectors = np.ndarray[Any, np.dtype[np.float32]]


@dataclass
class SegmentData:
    """The contents of one segment, decoded."""

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    hashes: list[str]
    created: list[str]
    updated: list[str]
    vectors: Vectors
    deletes: list[str] = field(default_factory=list)
    raw: RawRecords | None = None  # set when texts..updated are left undecoded
    # a merge's rows, taken where they are when the file is laid out (no copy before):
    record_pieces: Sequence[Buffer] | None = None  # the records' lines, in pieces
    vector_rows: tuple[Vectors, np.ndarray[Any, Any]] | None = None  # (vectors, which rows)
    # the rows' keyword postings: decoded, a verified section not decoded yet, or none
    postings: Postings | EncodedPostings | None = None
    # the rows' metadata value columns: a ``values`` section (built or read), or none
    values: EncodedValues | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Fill:
    """A piece of a section written in place when the file is laid out: ``size`` bytes that
    ``write`` puts into the memory it is given."""

    size: int
    write: Callable[[memoryview], None]


Piece = Buffer | Fill  # a part of a section, as `pack_sections` lays it out


def _gather(vectors: Vectors, rows: np.ndarray[Any, Any]) -> Fill:
    """The rows of ``vectors``, copied once, straight into the file: runs of consecutive
    rows (a merge's, mostly) as slices, six times as fast as `np.take` row by row."""
    dim = vectors.shape[1]

    def write(target: memoryview) -> None:
        out = np.frombuffer(target, dtype=np.float32).reshape(len(rows), dim)
        starts = np.flatnonzero(np.diff(rows) != 1) + 1
        if len(rows) == 0 or len(starts) * 64 > len(rows):  # scattered: one take
            np.take(vectors, rows, axis=0, out=out)
            return
        bounds = [0, *starts.tolist(), len(rows)]
        for a, b in pairwise(bounds):
            first = int(rows[a])
            out[a:b] = vectors[first : first + b - a]

    return Fill(len(rows) * dim * 4, write)


def new_segment_name() -> str:
    """A random name: segments spread evenly over an object store's key space."""
    return uuid.uuid4().hex


SEGMENT_MAGIC = b"VDBSEG01"
SECTIONS = ("ids", "records", "vectors", "deletes", "postings", "values")
MAX_SEGMENT_HEADER_BYTES = 1 << 16
"""The longest section table a reader accepts (a writer's is under 200 bytes)."""
_ALIGN = 64
_NUMPY_COPY = 1 << 16  # pieces from this size on are copied by NumPy, without the GIL
_ROW_SECTIONS = frozenset(("ids", "records", "vectors"))
_OPTIONAL_ROW_SECTIONS = frozenset(("postings", "values"))


def encode_segment(name: str, seg: SegmentData) -> tuple[SegmentRef, dict[str, Blob]]:
    """Serialize a segment into its one file; returns the manifest entry and path -> bytes
    (`lay_out_segment`, then `segment_ref`)."""
    path, data = lay_out_segment(name, seg)
    return segment_ref(name, seg, path, data), {path: data}


def segment_ref(name: str, seg: SegmentData, path: str, data: Blob) -> SegmentRef:
    """The manifest entry of segment ``name``, laid out at ``path`` as ``data``: hashes it
    (the slow part, which a commit runs while the written file is being synced)."""
    return SegmentRef(name, len(seg), len(seg.deletes), FileRef.of(path, data))


def lay_out_segment(name: str, seg: SegmentData) -> tuple[str, memoryview]:
    """A segment's one file: its path and its bytes.

    Layout: ``VDBSEG01``, the header's length (uint64, little-endian), a JSON header mapping
    each section to ``[offset, length]`` in the file, then the sections, each starting at a
    multiple of 64 bytes: ``ids`` (JSON list), ``records`` (JSON lines), ``vectors`` (.npy,
    float32), ``deletes`` (JSON list), ``postings`` (the rows' keyword postings, see
    `engine.postings`) and ``values`` (their metadata value columns, see `engine.columns`).
    Sections with nothing in them are left out.
    """
    parts: dict[str, Piece | list[Piece]] = {}
    if len(seg):
        parts["ids"] = dump_ids(seg.ids)
        # undecoded records (a merge, or a write encoded ahead) are written as they are
        if seg.record_pieces is not None:
            parts["records"] = list(seg.record_pieces)
        else:
            parts["records"] = seg.raw.blob if seg.raw is not None else encode_records(seg)
        # the .npy header, then the vectors' bytes (copied once, when the file is laid out)
        if seg.vector_rows is not None:
            source, rows_at = seg.vector_rows
            header = npy.encode_header((len(rows_at), int(source.shape[1])))
            parts["vectors"] = [header, _gather(source, rows_at)]
        else:
            vectors = np.ascontiguousarray(seg.vectors, dtype=np.float32)
            rows, dim = vectors.shape
            raw = vectors.reshape(-1).view(np.uint8).data
            parts["vectors"] = [npy.encode_header((rows, dim)), raw]
        if isinstance(seg.postings, Postings):
            parts["postings"] = seg.postings.encode()
        elif seg.postings is not None:
            parts["postings"] = seg.postings.data
        if seg.values is not None:
            parts["values"] = seg.values.data
    if seg.deletes:
        parts["deletes"] = dump_ids(seg.deletes)
    return f"{SEGMENT_DIR}{name}.seg", pack_sections(parts)


def pack_sections(parts: Mapping[str, Piece | list[Piece]]) -> memoryview:
    """Lay sections out in one segment file (see `encode_segment`); a section may be given as
    a list of pieces (bytes, or a `Fill`), each copied once, straight into the file's bytes.

    The file's memory is not zeroed first (only the header's room and the padding are), and
    large pieces are copied by NumPy, which releases the interpreter lock meanwhile. For a
    merge laying out 100 MB on the upkeep thread, that is 13 ms without the lock, where a
    zeroed ``bytearray`` held the lock from the writers for 60-105 ms of page faults and
    zeroing, then 13 ms of copying (measured here)."""
    pieces = {k: v if isinstance(v, list) else [v] for k, v in parts.items()}
    sizes = {k: sum(_size(p) for p in v) for k, v in pieces.items()}
    # the header's size depends on the offsets it holds: reserve room, then fill it in
    room = 16 + len(json.dumps({"sections": {k: [10**15, 10**15] for k in parts}}))
    start = -(-room // _ALIGN) * _ALIGN
    table: dict[str, list[int]] = {}
    offset = start
    for key in SECTIONS:
        if key in parts:
            table[key] = [offset, sizes[key]]
            offset = -(-(offset + sizes[key]) // _ALIGN) * _ALIGN
    header = json.dumps({"sections": table}).encode("ascii")
    out = scratch(offset)  # (a merge's whole file: on small pages, see `pages.scratch`)
    view = out.data
    head = b"".join((SEGMENT_MAGIC, len(header).to_bytes(8, "little"), header))
    view[: len(head)] = head
    out[len(head) : start] = 0
    for key, (at, _) in table.items():
        end = at
        for piece in pieces[key]:
            size = _size(piece)
            if isinstance(piece, Fill):
                piece.write(view[end : end + size])
            elif size >= _NUMPY_COPY:
                out[end : end + size] = np.frombuffer(memoryview(piece).cast("B"), np.uint8)
            else:
                view[end : end + size] = memoryview(piece).cast("B")
            end += size
        out[end : -(-end // _ALIGN) * _ALIGN] = 0  # the padding up to the next section
    return view


def _size(piece: Piece) -> int:
    return piece.size if isinstance(piece, Fill) else memoryview(piece).nbytes


def unpack_sections(data: bytes, path: str) -> dict[str, memoryview]:
    """The sections of a segment file, as views into its bytes."""
    view = memoryview(data)
    table = _section_table(bytes(view[:16]), lambda n: bytes(view[16 : 16 + n]), len(data), path)
    return {key: view[at : at + length] for at, length, key in table}


def _section_table(
    head: bytes, read_header: Callable[[int], bytes], size: int, path: str
) -> list[tuple[int, int, str]]:
    """The sections (offset, length, name) of a segment file of ``size`` bytes, in file order,
    from its first 16 bytes and a reader of the header that follows; `IntegrityError` unless
    the header is a JSON object ``{"sections": {name: [offset, length], ...}}`` of known
    names and integers, and the sections lie after it, inside the file, each at a multiple of
    64 bytes, none empty and none overlapping another."""
    if len(head) < 16 or head[:8] != SEGMENT_MAGIC:
        raise damaged(path, "is not a vectordb-manager segment file")
    header_size = int.from_bytes(head[8:16], "little")
    if header_size > min(size - 16, MAX_SEGMENT_HEADER_BYTES):
        raise damaged(path, f"has a malformed header: header length {header_size}")
    doc = _header_json(read_header(header_size), path)
    table = doc.get("sections") if type(doc) is dict and len(doc) == 1 else None
    if type(table) is not dict:
        raise damaged(path, 'has a malformed header: not {"sections": {...}}')
    order = []
    for key, entry in table.items():
        if key not in SECTIONS:
            raise damaged(path, f"has a malformed header: unknown section {key[:40]!r}")
        if type(entry) is not list or len(entry) != 2 or any(type(v) is not int for v in entry):
            raise damaged(path, f"has a malformed header: section {key!r} is not [offset, length]")
        order.append((entry[0], entry[1], key))
    order.sort()
    end = 16 + header_size
    for at, length, key in order:
        if at < end or at % _ALIGN or length <= 0 or at + length > size:
            raise damaged(path, f"has a malformed header: bad section {key!r}")
        end = at + length
    return order


def _header_json(data: bytes, path: str) -> Any:
    try:
        return json.loads(data.decode("ascii"), parse_constant=_refuse)
    except RecursionError:
        raise damaged(path, "has a malformed header: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise damaged(path, f"has a malformed header: {exc}") from None


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_sections(ref: SegmentRef, table: list[tuple[int, int, str]]) -> None:
    """A segment with rows has ids, records and vectors, one without has none of them; one
    that deletes has deletes (the writer leaves out every section that would be empty)."""
    names = {key for _, _, key in table}
    every = _ROW_SECTIONS | _OPTIONAL_ROW_SECTIONS
    rows_ok = names >= _ROW_SECTIONS if ref.rows else not names & every
    if not rows_ok or ("deletes" in names) != bool(ref.deletes):
        raise damaged(
            ref.file.path,
            f"has sections {sorted(names)}, which do not fit the manifest's {ref.rows} rows "
            f"and {ref.deletes} deletes",
        )


def _stream_vectors(
    reader: HashingReader,
    ref: SegmentRef,
    dimension: int | None,
    length: int,
    sink: VectorSink | None,
) -> tuple[Vectors, builtins.bytes, tuple[int, int] | None]:
    """Read a ``vectors`` section of ``length`` bytes: its ``.npy`` header, kept whole (it is
    parsed once the file is verified), and its data, into the sink in the shape the manifest
    implies. Returns the vectors, the header and that shape, or ``None`` for the shape when
    the data do not fit it (then nothing went to the sink; the header may say why)."""
    path = ref.file.path
    prefix = reader.read(min(length, npy.PREFIX_BYTES))
    size = npy.header_size(prefix, length, path)
    header = prefix + reader.read(size - len(prefix))
    shape = _vector_shape(ref.rows, dimension, length - size)
    if shape is None:
        reader.readinto(None, length - size)
        return np.zeros((0, 0), dtype=np.float32), header, None
    target = sink(*shape) if sink is not None else np.empty(shape, np.float32)
    if target is not None and target.shape != shape:
        raise ValueError(f"the sink gave an array of shape {target.shape}")
    reader.readinto(None if target is None else target.data.cast("B"), length - size)
    vectors = target if target is not None else np.zeros((0, shape[1]), dtype=np.float32)
    return vectors, header, shape


def _vector_shape(rows: int, dimension: int | None, data: int) -> tuple[int, int] | None:
    """(rows, dimension) if ``data`` bytes are that many float32 vectors; a store's first
    segment may come before its dimension is known, which then follows from ``data``."""
    if dimension is None:
        if data <= 0 or data % (rows * 4):
            return None
        dimension = data // (rows * 4)
    if dimension > MAX_DIMENSION or data != rows * dimension * 4:
        return None
    return rows, dimension


def _segment(
    ref: SegmentRef,
    sections: Mapping[str, bytes | memoryview],
    vectors: Vectors | None,
    dimension: int | None,
    *,
    lazy: bool,
    raw: RawRecords | None = None,
    analyzer: Analyzer | None = None,
    values: memoryview | None = None,
) -> SegmentData:
    """A segment from its verified sections (``raw``: the records' lines, ``values``: its
    values section, when the reader mapped them). Its postings are decoded unless ``lazy``,
    and then, given the store's ``analyzer``, compared with the postings of its texts; its
    values section is checked lazily unless ``lazy``, and then compared with the one its
    records' metadata give."""
    path = ref.file.path
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict[str, Any]] = []
    hashes: list[str] = []
    created: list[str] = []
    updated: list[str] = []
    if ref.rows:
        assert vectors is not None, "a segment with rows has vectors (checked with its table)"
        ids = id_list(sections["ids"], path)
        if raw is None:
            # a copy: a view would keep the whole file (vectors included) alive
            raw = RawRecords.split(bytes(sections["records"]), path)
        check_lines(raw.ends, len(raw.blob), path)
        if len(raw.ends) != len(ids):
            raise damaged(path, f"has {len(raw.ends)} records for {len(ids)} ids")
        raw = replace(raw, ids=ids)
        if not lazy:
            for text, meta, h, c, u in raw.rows():
                texts.append(text)
                metas.append(meta)
                hashes.append(h)
                created.append(c)
                updated.append(u)
            raw = None
    else:
        vectors = np.zeros((0, dimension or 0), dtype=np.float32)
    if len(ids) != ref.rows:
        raise damaged(path, f"has {len(ids)} rows; the manifest says {ref.rows}")
    deletes = id_list(sections["deletes"], path) if "deletes" in sections else []
    if len(deletes) != ref.deletes:
        raise damaged(path, f"deletes {len(deletes)} ids; the manifest says {ref.deletes}")
    postings: Postings | EncodedPostings | None = None
    if "postings" in sections:
        data = bytes(sections["postings"])
        if lazy:
            check_header(data, ref.rows, path)
            postings = EncodedPostings(data, path)
        else:
            postings = Postings.decode(data, ref.rows, path)
            if analyzer is not None and not postings.equals(Postings.build(texts, analyzer)):
                raise damaged(
                    path, "holds keyword postings that are not those of its records' texts"
                )
    seg = SegmentData(ids, texts, metas, hashes, created, updated, vectors, deletes, raw)
    seg.postings = postings
    if values is None and "values" in sections:
        values = memoryview(bytes(sections["values"]))
    if values is not None:
        check_values_header(values, ref.rows, path)
        if not lazy and values != build_values(metas):
            raise damaged(path, "holds a values section that is not that of its records' metadata")
        seg.values = EncodedValues(values, path)
    return seg


# Where `read_segment` puts a segment's vectors: given (rows, dimension), a C-contiguous float32
# array of that shape to fill, or ``None`` to check them and let them go.
VectorSink = Callable[[int, int], "Vectors | None"]


def read_segment(
    ref: SegmentRef,
    stream: IO[builtins.bytes],
    dimension: int | None,
    sink: VectorSink | None = None,
    *,
    lazy: bool = True,
    analyzer: Analyzer | None = None,
) -> SegmentData:
    """Read, verify and decode a segment file from a stream, front to back.

    The vectors go straight to where ``sink`` says (an index's storage, say), so the file is
    never held whole in memory; the sink is asked for the shape the manifest implies,
    ``(ref.rows, dimension)`` (with ``dimension`` ``None``, for a store's first segment, it
    follows from the section's length), never for one the file claims. With ``lazy`` and a
    stream over a local file, the records are not kept either: they are decoded on demand
    from a read-only map of the (immutable, verified) file, which costs memory only for the
    pages a search touches.

    Only the fixed binary prefixes are read before the checksum is verified; the ids, the
    deletes, the ``.npy`` header and the records are parsed after. If anything fails
    (`IntegrityError`), whatever was written to the sink is garbage the caller must discard.
    """
    path = ref.file.path
    fileno = _fileno(stream) if lazy and _CAN_MAP else None
    mapped: tuple[int, int, np.ndarray[Any, np.dtype[np.int64]]] | None = None
    mapped_values: tuple[int, int] | None = None
    reader = HashingReader(stream, ref.file)
    table = _section_table(reader.read(16), reader.read, ref.file.bytes, path)
    _check_sections(ref, table)
    sections: dict[str, builtins.bytes] = {}
    vectors: Vectors | None = None
    npy_header: tuple[builtins.bytes, tuple[int, int] | None] | None = None
    for at, length, key in table:
        reader.readinto(None, at - reader.pos)  # the padding before the section
        if key == "records" and fileno is not None:
            mapped = (at, length, reader.read_lines(length))
        elif key == "values" and fileno is not None:
            reader.readinto(None, length)  # checksummed; mapped once verified
            mapped_values = (at, length)
        elif key == "vectors":
            vectors, header, shape = _stream_vectors(reader, ref, dimension, length, sink)
            npy_header = (header, shape)
        else:
            sections[key] = reader.read(length)
    reader.finish()
    if npy_header is not None:
        header, shape = npy_header
        npy.check_header(header, shape, path)
        if shape is None:
            raise damaged(
                path,
                f"holds vectors whose size fits neither {ref.rows} rows of the store's "
                f"dimension ({dimension}) nor any dimension up to {MAX_DIMENSION}",
            )
    raw = values = None
    if fileno is not None and (mapped is not None or mapped_values is not None):
        whole = memoryview(mmap.mmap(fileno, 0, access=mmap.ACCESS_READ))
        if len(whole) != ref.file.bytes:
            raise IntegrityError(f"{path} changed while it was being read; open the store again")
        if mapped is not None:
            at, length, ends = mapped
            raw = RawRecords(whole[at : at + length], ends, path)
            sections["records"] = b""  # present (its lines are in ``raw``)
        if mapped_values is not None:
            at, length = mapped_values
            values = whole[at : at + length]
    return _segment(
        ref, sections, vectors, dimension, lazy=lazy, raw=raw, analyzer=analyzer, values=values
    )


_CAN_MAP = os.name == "posix"  # elsewhere a mapped file could not be removed by compaction


def _fileno(stream: IO[builtins.bytes]) -> int | None:
    """The descriptor of a stream over a real file, or ``None``."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def record_lines(seg: SegmentData, path: str) -> RawRecords:
    """`encode_records`, kept as the undecoded lines of the segment file at ``path``."""
    blob, ends = _encode_records(seg)
    return RawRecords(blob, newlines(blob) if ends is None else ends, path)


def encode_records(seg: SegmentData) -> bytes:
    """One JSON object per line (JSON escapes newlines inside strings); `InvalidInputError`
    for a record that readers would refuse (metadata nested too deeply, a line too long), so
    a writer never commits what no reader opens. Records with flat metadata, the common case,
    are encoded all at once (the same bytes)."""
    return _encode_records(seg)[0]


def _encode_records(seg: SegmentData) -> tuple[bytes, Ends | None]:
    """`encode_records`, and where its lines end when they were found on the way."""
    records = zip(seg.texts, seg.metadatas, seg.hashes, seg.created, seg.updated, strict=True)
    if flat_scalars(seg.metadatas):
        blob = encode_flat_records(seg.ids, records)
        if blob is not None:
            ends = newlines(blob)
            if longest_line(ends) <= MAX_RECORD_LINE_BYTES:
                return blob, ends
    for doc_id, meta in zip(seg.ids, seg.metadatas, strict=True):  # before encoding them
        if nests(meta):
            try:
                check_depths([meta], "")
            except IntegrityError:
                raise InvalidInputError(
                    f"the metadata of document {doc_id[:80]!r} nests deeper than "
                    f"{MAX_METADATA_DEPTH} levels, which readers refuse; flatten it. Nothing "
                    "was written."
                ) from None
    records = zip(seg.texts, seg.metadatas, seg.hashes, seg.created, seg.updated, strict=True)
    lines = [encode_record(i, r) + b"\n" for i, r in zip(seg.ids, records, strict=True)]
    for doc_id, line in zip(seg.ids, lines, strict=True):
        if len(line) > MAX_RECORD_LINE_BYTES + 1:
            raise InvalidInputError(
                f"document {doc_id[:80]!r} takes {len(line)} bytes as stored, more than "
                f"readers accept ({MAX_RECORD_LINE_BYTES}); split it. Nothing was written."
            )
    return b"".join(lines), None


__all__ = [
    "INDEX_DIR",
    "MANIFEST_DIR",
    "MAX_SEGMENT_HEADER_BYTES",
    "SECTIONS",
    "SEGMENT_DIR",
    "SEGMENT_MAGIC",
    "FileRef",
    "HashingReader",
    "Manifest",
    "RawRecords",
    "SegmentData",
    "SegmentRef",
    "SnapshotRef",
    "VectorSink",
    "Vectors",
    "canonical_json",
    "content_hash",
    "encode_record",
    "encode_records",
    "encode_segment",
    "lay_out_segment",
    "manifest_name",
    "new_segment_name",
    "now_iso",
    "pack_sections",
    "parse_manifest_name",
    "read_segment",
    "record_lines",
    "segment_ref",
    "unpack_sections",
]
