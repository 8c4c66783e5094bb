"""The persistence format: manifests, segments and index snapshots (see docs/format.md).

A store is a set of immutable files plus a sequence of manifests. Each manifest names every
live segment with its size and SHA-256; the newest manifest is the store. Nothing here knows
where bytes live: the engine passes them to a `Storage`.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import mmap
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any

import numpy as np

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    orjson = None  # type: ignore[assignment]

from vectordb_manager.errors import IntegrityError

FORMAT_NAME = "vectordb-manager"
FORMAT_VERSION = 1
SUPPORTED_FEATURES: frozenset[str] = frozenset()
MANIFEST_DIR = "manifests/"
SEGMENT_DIR = "segments/"
INDEX_DIR = "indexes/"
_MANIFEST_DIGITS = 20

Vectors = np.ndarray[Any, np.dtype[np.float32]]


def now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(text: str, metadata_json: str) -> str:
    """The hash that identifies a record's content (text and canonical metadata)."""
    h = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    h.update(b"\x00")
    h.update(metadata_json.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )


def manifest_name(version: int) -> str:
    return f"{MANIFEST_DIR}{version:0{_MANIFEST_DIGITS}d}.json"


def parse_manifest_name(name: str) -> int | None:
    stem = name[len(MANIFEST_DIR) :]
    if not name.startswith(MANIFEST_DIR) or not stem.endswith(".json"):
        return None
    digits = stem[: -len(".json")]
    return int(digits) if digits.isdigit() and len(digits) == _MANIFEST_DIGITS else None


@dataclass(frozen=True)
class FileRef:
    """One immutable file: its relative path, size and checksum."""

    path: str
    bytes: int
    sha256: str

    @classmethod
    def of(cls, path: str, data: builtins.bytes) -> FileRef:
        return cls(path, len(data), sha256(data))

    def check_digest(self, size: int, digest: str) -> None:
        """Raise `IntegrityError` unless ``size`` and ``digest`` are this file's."""
        if size != self.bytes:
            raise IntegrityError(
                f"{self.path} is {size} bytes but the manifest says {self.bytes}; "
                "the file is truncated or replaced. Restore it from a backup."
            )
        if digest != self.sha256:
            raise IntegrityError(
                f"{self.path} does not match its SHA-256 checksum in the manifest; "
                "the file is damaged. Restore it from a backup."
            )

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes, "sha256": self.sha256}

    @classmethod
    def from_json(cls, d: Any) -> FileRef:
        try:
            ref = cls(str(d["path"]), int(d["bytes"]), str(d["sha256"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"manifest has a malformed file entry {d!r}") from exc
        if ref.path.startswith("/") or ".." in ref.path.split("/"):
            raise IntegrityError(f"manifest names a file outside the store: {ref.path!r}")
        return ref


@dataclass(frozen=True)
class SegmentRef:
    """A segment in a manifest: one file holding the rows it adds and the ids it deletes."""

    name: str
    rows: int
    deletes: int
    file: FileRef

    @property
    def weight(self) -> int:
        return self.rows + self.deletes

    def files(self) -> list[FileRef]:
        return [self.file]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "deletes": self.deletes,
            "file": self.file.to_json(),
        }

    @classmethod
    def from_json(cls, d: Any) -> SegmentRef:
        try:
            return cls(
                name=str(d["name"]),
                rows=int(d["rows"]),
                deletes=int(d["deletes"]),
                file=FileRef.from_json(d["file"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IntegrityError(f"manifest has a malformed segment entry {d!r}") from exc


@dataclass(frozen=True)
class SnapshotRef:
    """A serialized FAISS index covering exactly the rows of the first segment."""

    file: FileRef
    segment: str
    rows: int
    kind: str

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file.to_json(),
            "segment": self.segment,
            "rows": self.rows,
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, d: Any) -> SnapshotRef:
        try:
            return cls(
                FileRef.from_json(d["file"]), str(d["segment"]), int(d["rows"]), str(d["kind"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"manifest has a malformed index snapshot entry {d!r}") from exc


@dataclass(frozen=True)
class Manifest:
    """One committed version of the store."""

    version: int
    distance: str
    index: str
    index_params: dict[str, Any] = field(default_factory=dict)
    dimension: int | None = None
    embedding_model: str | None = None
    segments: tuple[SegmentRef, ...] = ()
    snapshot: SnapshotRef | None = None
    live_count: int = 0
    created_at: str = field(default_factory=now_iso)
    features: tuple[str, ...] = ()

    def next(self, **changes: Any) -> Manifest:
        return replace(self, version=self.version + 1, created_at=now_iso(), **changes)

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "features": list(self.features),
            "version": self.version,
            "created_at": self.created_at,
            "dimension": self.dimension,
            "distance": self.distance,
            "index": {"type": self.index, "params": self.index_params},
            "embedding_model": self.embedding_model,
            "live_count": self.live_count,
            "segments": [s.to_json() for s in self.segments],
            "index_snapshot": self.snapshot.to_json() if self.snapshot else None,
        }
        return json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> Manifest:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"{name} is not a valid manifest (not JSON): {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise IntegrityError(f"{name} is not a vectordb-manager manifest")
        fv = doc.get("format_version")
        if not isinstance(fv, int) or fv > FORMAT_VERSION:
            raise IntegrityError(
                f"{name} has format version {fv!r}; this release reads up to {FORMAT_VERSION}. "
                "Upgrade vectordb-manager to open this store."
            )
        features = doc.get("features", [])
        unknown = (
            sorted(set(features) - SUPPORTED_FEATURES) if isinstance(features, list) else [features]
        )
        if unknown:
            raise IntegrityError(
                f"{name} uses features this release does not know: {unknown}. "
                "Upgrade vectordb-manager to open this store."
            )
        try:
            index = doc["index"]
            snap = doc.get("index_snapshot")
            dim = doc.get("dimension")
            manifest = cls(
                version=int(doc["version"]),
                distance=str(doc["distance"]),
                index=str(index["type"]),
                index_params=dict(index.get("params") or {}),
                dimension=int(dim) if dim is not None else None,
                embedding_model=doc.get("embedding_model"),
                segments=tuple(SegmentRef.from_json(s) for s in doc["segments"]),
                snapshot=SnapshotRef.from_json(snap) if snap else None,
                live_count=int(doc.get("live_count", 0)),
                created_at=str(doc.get("created_at", "")),
                features=tuple(features),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{name} is a malformed manifest: {exc!r}") from exc
        if parse_manifest_name(name) not in (None, manifest.version):
            raise IntegrityError(
                f"{name} holds version {manifest.version}; the file was renamed or replaced"
            )
        return manifest


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

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class RawRecords:
    """A records section kept undecoded (bytes, or a read-only map of the verified file), with
    where each line ends, for decoding rows on demand."""

    blob: bytes | memoryview
    ends: np.ndarray[Any, np.dtype[np.int64]]  # the position of each line's newline
    path: str

    @classmethod
    def split(cls, blob: bytes | memoryview, path: str) -> RawRecords:
        return cls(blob, _newlines(blob), path)

    def _start(self, i: int) -> int:
        return int(self.ends[i - 1]) + 1 if i else 0

    def row(self, i: int) -> tuple[str, dict[str, Any], str, str, str]:
        """Decode line ``i`` into (text, metadata, hash, created_at, updated_at)."""
        return _record_tuple(_loads(self.blob[self._start(i) : int(self.ends[i])]), self.path)

    def __len__(self) -> int:
        return len(self.ends)

    def span(self, start: int, stop: int) -> memoryview:
        """Lines ``start``..``stop``, newlines included, as they are stored."""
        return memoryview(self.blob)[self._start(start) : int(self.ends[stop - 1]) + 1]

    def metadatas(self, start: int, stop: int) -> list[dict[str, Any]]:
        """The metadata of lines ``start``..``stop`` (decoded in bulk, nothing kept)."""
        stop = min(stop, len(self.ends))
        if start >= stop:
            return []
        try:
            rows = _decode_records(self.span(start, stop))
            metas = [r["metadata"] for r in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{self.path} holds malformed records: {exc!r}") from exc
        if len(metas) != stop - start or not all(type(m) is dict for m in metas):
            raise IntegrityError(f"{self.path} holds a record with bad metadata")
        return metas

    def rows(self) -> list[tuple[str, dict[str, Any], str, str, str]]:
        try:
            return [_record_tuple(r, self.path) for r in _decode_records(self.blob)]
        except ValueError as exc:
            raise IntegrityError(f"{self.path} holds malformed records: {exc!r}") from exc


def _newlines(data: bytes | memoryview, offset: int = 0) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The positions (plus ``offset``) of the newline bytes in ``data``."""
    found = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    return found + offset if offset else found


def _record_tuple(r: Any, path: str) -> tuple[str, dict[str, Any], str, str, str]:
    try:
        record = (r["text"], r["metadata"], r["hash"], r["created_at"], r["updated_at"])
    except (KeyError, TypeError) as exc:
        raise IntegrityError(f"{path} holds a malformed record: {exc!r}") from exc
    if not isinstance(record[0], str) or not isinstance(record[1], dict):
        raise IntegrityError(f"{path} holds a record with a bad text or metadata")
    return record


def _loads(line: bytes | memoryview) -> Any:
    if orjson is not None and not _may_hold_big_int(line):
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(bytes(line).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"a record is not valid JSON: {exc}") from exc


_LONG = 19  # digits: an integer this long may not fit in 64 bits
_LONG_RUN = re.compile(rb"\d{%d}" % _LONG)
_BEFORE_NUMBER = frozenset(b":[, \t\r\n-")


def _may_hold_big_int(data: bytes | memoryview) -> bool:
    """Whether JSON text may hold an integer beyond 64 bits, which orjson would silently read
    as a float (``json`` keeps it exact). A false alarm (digits inside a string that follow
    one of ``:[,``) only costs the slower parser."""
    view = memoryview(data).cast("B")
    if len(view) < 4096:
        starts = [m.start() for m in _LONG_RUN.finditer(view)]
    else:  # runs of 19 digits, found in a few vectorised passes over cache-sized pieces
        starts = []
        for begin in range(0, len(view), 1 << 20):
            piece = np.frombuffer(view[begin : begin + (1 << 20) + _LONG - 1], dtype=np.uint8)
            run = (piece >= 48) & (piece <= 57)
            for shift in (1, 2, 4, 8, _LONG - 16):  # runs of 2, 4, 8, 16, then 19
                run = run[:-shift] & run[shift:]
            starts += (np.flatnonzero(run) + begin).tolist()
    return any(at == 0 or view[at - 1] in _BEFORE_NUMBER for at in starts)


def new_segment_name() -> str:
    """A random name: segments spread evenly over an object store's key space."""
    return uuid.uuid4().hex


SEGMENT_MAGIC = b"VDBSEG01"
SECTIONS = ("ids", "records", "vectors", "deletes")
_ALIGN = 64


def encode_segment(name: str, seg: SegmentData) -> tuple[SegmentRef, dict[str, bytes]]:
    """Serialize a segment into its one file; returns the manifest entry and path -> bytes.

    Layout: ``VDBSEG01``, the header's length (uint64, little-endian), a JSON header mapping
    each section to ``[offset, length]`` in the file, then the sections, each starting at a
    multiple of 64 bytes: ``ids`` (JSON list), ``records`` (JSON lines), ``vectors`` (.npy,
    float32) and ``deletes`` (JSON list). Sections with nothing in them are left out.
    """
    parts: dict[str, bytes] = {}
    if len(seg):
        parts["ids"] = _dumps(seg.ids)
        # undecoded records (a merge of segments) are written as they were read
        parts["records"] = bytes(seg.raw.blob) if seg.raw is not None else _encode_records(seg)
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(seg.vectors, dtype=np.float32), allow_pickle=False)
        parts["vectors"] = buf.getvalue()
    if seg.deletes:
        parts["deletes"] = _dumps(seg.deletes)
    data = pack_sections(parts)
    file = FileRef.of(f"{SEGMENT_DIR}{name}.seg", data)
    return SegmentRef(name, len(seg), len(seg.deletes), file), {file.path: data}


def pack_sections(parts: dict[str, bytes]) -> bytes:
    """Lay sections out in one segment file (see `encode_segment`)."""
    # the header's size depends on the offsets it holds: reserve room, then fill it in
    room = 16 + len(json.dumps({"sections": {k: [10**15, 10**15] for k in parts}}))
    start = -(-room // _ALIGN) * _ALIGN
    table: dict[str, list[int]] = {}
    offset = start
    for key in SECTIONS:
        if key in parts:
            table[key] = [offset, len(parts[key])]
            offset = -(-(offset + len(parts[key])) // _ALIGN) * _ALIGN
    header = json.dumps({"sections": table}).encode("ascii")
    out = bytearray(offset)
    out[:8] = SEGMENT_MAGIC
    out[8:16] = len(header).to_bytes(8, "little")
    out[16 : 16 + len(header)] = header
    for key, (at, length) in table.items():
        out[at : at + length] = parts[key]
    return bytes(out)


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
    they lie after the header, inside the file and without overlapping."""
    if len(head) < 16 or head[:8] != SEGMENT_MAGIC:
        raise IntegrityError(f"{path} is not a vectordb-manager segment file")
    header_size = int.from_bytes(head[8:16], "little")
    if header_size > size - 16:
        raise IntegrityError(f"{path} has a malformed header: header length {header_size}")
    try:
        table = json.loads(read_header(header_size))["sections"]
        order = sorted((int(at), int(length), str(key)) for key, (at, length) in table.items())
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{path} has a malformed header: {exc!r}") from exc
    end = 16 + header_size
    for at, length, key in order:
        if key not in SECTIONS or at < end or length < 0 or at + length > size:
            raise IntegrityError(f"{path} has a malformed header: bad section {key!r}")
        end = at + length
    return order


def _dumps(ids: list[str]) -> bytes:
    """A JSON list of strings."""
    if orjson is not None:
        try:
            return orjson.dumps(ids)
        except TypeError:
            pass  # lone surrogates
    return json.dumps(ids).encode("ascii")


def _id_list(data: bytes | memoryview, path: str) -> list[str]:
    ids = _loads(data)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise IntegrityError(f"{path} does not hold a JSON list of ids")
    return ids


def _segment(
    ref: SegmentRef,
    sections: Mapping[str, bytes | memoryview],
    vectors: Vectors | None,
    dimension: int | None,
    *,
    lazy: bool,
    shape: tuple[int, ...] | None = None,
    raw: RawRecords | None = None,
) -> SegmentData:
    """A segment from its sections (``shape``: the stored vectors' shape, when ``vectors``
    holds fewer rows because the reader did not keep them; ``raw``: the records' lines, when
    the reader already found them)."""
    path = ref.file.path
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict[str, Any]] = []
    hashes: list[str] = []
    created: list[str] = []
    updated: list[str] = []
    if ref.rows:
        if not all(k in sections for k in ("ids", "records")) or vectors is None:
            raise IntegrityError(f"{path} lacks the ids, records or vectors of its rows")
        ids = _id_list(sections["ids"], path)
        if raw is None:
            # a copy: a view would keep the whole file (vectors included) alive
            raw = RawRecords.split(bytes(sections["records"]), path)
        if len(raw.ends) != len(ids):
            raise IntegrityError(f"{path} has {len(raw.ends)} records for {len(ids)} ids")
        if not lazy:
            rows = _decode_records(sections["records"])
            if [r.get("id") if isinstance(r, dict) else None for r in rows] != ids:
                raise IntegrityError(f"{path}: the records and the id list disagree on the ids")
            for text, meta, h, c, u in (_record_tuple(r, path) for r in rows):
                texts.append(text)
                metas.append(meta)
                hashes.append(h)
                created.append(c)
                updated.append(u)
            raw = None
        shape = shape or vectors.shape
        if shape[0] != len(ids) or (dimension is not None and shape[1] != dimension):
            raise IntegrityError(
                f"{path} holds vectors of shape {shape}, expected ({len(ids)}, {dimension})"
            )
    else:
        vectors = np.zeros((0, dimension or 0), dtype=np.float32)
    if len(ids) != ref.rows:
        raise IntegrityError(f"{path} has {len(ids)} rows; the manifest says {ref.rows}")
    deletes = _id_list(sections["deletes"], path) if "deletes" in sections else []
    if len(deletes) != ref.deletes:
        raise IntegrityError(f"{path} deletes {len(deletes)} ids; the manifest says {ref.deletes}")
    return SegmentData(ids, texts, metas, hashes, created, updated, vectors, deletes, raw)


# Where `read_segment` puts a segment's vectors: given (rows, dimension), a C-contiguous float32
# array of that shape to fill, or ``None`` to check them and let them go.
VectorSink = Callable[[int, int], "Vectors | None"]


class HashingReader:
    """Reads one file front to back, in chunks, checking its size and SHA-256 at the end."""

    CHUNK = 1 << 20

    def __init__(self, stream: IO[builtins.bytes], ref: FileRef) -> None:
        self.stream = stream
        self.ref = ref
        self.pos = 0
        self._hash = hashlib.sha256()

    def _short(self) -> IntegrityError:
        return IntegrityError(
            f"{self.ref.path} ends after {self.pos} bytes but the manifest says "
            f"{self.ref.bytes}; the file is truncated. Restore it from a backup."
        )

    def read(self, n: int) -> builtins.bytes:
        """Exactly ``n`` bytes (`IntegrityError` if the file ends first)."""
        if self.pos + n > self.ref.bytes:
            raise self._short()
        parts = []
        left = n
        while left:
            data = self.stream.read(min(left, self.CHUNK))
            if not data:
                raise self._short()
            self._hash.update(data)
            parts.append(data)
            left -= len(data)
            self.pos += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def chunks(self, n: int, target: memoryview | None = None) -> Iterator[tuple[int, memoryview]]:
        """Read ``n`` bytes in chunks, hashing them, into ``target`` or else a scratch buffer
        that each chunk reuses; yields (offset within the ``n`` bytes, chunk)."""
        if self.pos + n > self.ref.bytes:
            raise self._short()
        scratch = memoryview(bytearray(min(n, self.CHUNK))) if target is None else None
        done = 0
        while done < n:
            size = min(n - done, self.CHUNK)
            chunk = scratch[:size] if scratch is not None else target[done : done + size]  # type: ignore[index]
            got = self.stream.readinto(chunk)  # type: ignore[attr-defined]
            if not got:
                raise self._short()
            self._hash.update(chunk[:got])
            yield done, chunk[:got]
            done += got
            self.pos += got

    def readinto(self, target: memoryview | None, n: int) -> None:
        """Read ``n`` bytes into ``target`` (``None``: read, hash and let them go)."""
        for _ in self.chunks(n, target):
            pass

    def read_lines(self, n: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Read ``n`` bytes of JSON lines without keeping them: where each line ends."""
        found = [_newlines(chunk, at) for at, chunk in self.chunks(n)]
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def finish(self) -> None:
        """Read what is left and check the whole file's size and checksum."""
        self.readinto(None, self.ref.bytes - self.pos)
        extra = len(self.stream.read(1))
        self.ref.check_digest(self.pos + extra, self._hash.hexdigest())


def read_segment(
    ref: SegmentRef,
    stream: IO[builtins.bytes],
    dimension: int | None,
    sink: VectorSink | None = None,
    *,
    lazy: bool = True,
) -> SegmentData:
    """Read, verify and decode a segment file from a stream, front to back.

    The vectors go straight to where ``sink`` says (an index's storage, say), so the file is
    never held whole in memory. With ``lazy`` and a stream over a local file, the records are
    not kept either: they are decoded on demand from a read-only map of the (immutable,
    verified) file, which costs memory only for the pages a search touches. Nothing is decoded
    before the checksum has been verified; if it fails, what was written to the sink must be
    discarded by the caller.
    """
    path = ref.file.path
    fileno = _fileno(stream) if lazy and _CAN_MAP else None
    mapped: tuple[int, int, np.ndarray[Any, np.dtype[np.int64]]] | None = None
    reader = HashingReader(stream, ref.file)
    table = _section_table(reader.read(16), reader.read, ref.file.bytes, path)
    sections: dict[str, builtins.bytes] = {}
    vectors: Vectors | None = None
    shape: tuple[int, ...] | None = None
    for at, length, key in table:
        reader.readinto(None, at - reader.pos)  # the padding before the section
        if key == "records" and fileno is not None and length:
            mapped = (at, length, reader.read_lines(length))
            continue
        if key != "vectors":
            sections[key] = reader.read(length)
            continue
        prefix = reader.read(min(length, 12))
        header_size = _npy_header_size(prefix, path)
        header = prefix + reader.read(header_size - len(prefix))
        shape = _npy_shape(header, path)
        rows, dim = int(shape[0]), int(shape[1])
        if length - header_size != rows * dim * 4:
            raise IntegrityError(
                f"{path} has {length - header_size} bytes of vectors; shape {shape} needs "
                f"{rows * dim * 4}"
            )
        if rows != ref.rows or (dimension is not None and dim != dimension):
            raise IntegrityError(
                f"{path} holds vectors of shape {shape}, expected ({ref.rows}, {dimension})"
            )
        target = sink(rows, dim) if sink is not None else np.empty((rows, dim), np.float32)
        if target is not None and target.shape != (rows, dim):
            raise ValueError(f"the sink gave an array of shape {target.shape}")
        reader.readinto(None if target is None else target.data.cast("B"), rows * dim * 4)
        vectors = target if target is not None else np.zeros((0, dim), dtype=np.float32)
    reader.finish()
    raw = None
    if mapped is not None and fileno is not None:
        at, length, ends = mapped
        view = memoryview(mmap.mmap(fileno, 0, access=mmap.ACCESS_READ))[at : at + length]
        raw = RawRecords(view, ends, path)
        sections["records"] = b""  # present (its lines are in ``raw``)
    return _segment(ref, sections, vectors, dimension, lazy=lazy, shape=shape, raw=raw)


_CAN_MAP = os.name == "posix"  # elsewhere a mapped file could not be removed by compaction


def _fileno(stream: IO[builtins.bytes]) -> int | None:
    """The descriptor of a stream over a real file, or ``None``."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def _npy_header_size(prefix: builtins.bytes, path: str) -> int:
    """The size of a ``.npy`` header (magic to the start of the data) from its first bytes."""
    if len(prefix) < 10 or prefix[:6] != b"\x93NUMPY" or prefix[6] not in (1, 2):
        raise IntegrityError(f"{path} does not hold a valid .npy array")
    if prefix[6] == 1:
        return 10 + int.from_bytes(prefix[8:10], "little")
    if len(prefix) < 12:
        raise IntegrityError(f"{path} does not hold a valid .npy array")
    return 12 + int.from_bytes(prefix[8:12], "little")


def _npy_shape(header: builtins.bytes, path: str) -> tuple[int, ...]:
    """The shape in a whole ``.npy`` header, which must describe a C-order float32 matrix."""
    stream = io.BytesIO(header)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError as exc:
        raise IntegrityError(f"{path} does not hold a valid .npy array: {exc}") from exc
    if dtype != np.dtype("<f4") or fortran or len(shape) != 2:
        raise IntegrityError(
            f"{path} holds {dtype} with shape {shape}; expected a C-order float32 matrix. "
            "Anything else (such as a pickled object array) is refused, never loaded."
        )
    if stream.tell() != len(header):
        raise IntegrityError(f"{path} does not hold a valid .npy array: bad header length")
    return tuple(int(v) for v in shape)


def _encode_records(seg: SegmentData) -> bytes:
    """One JSON object per line (JSON escapes newlines inside strings)."""
    records = zip(seg.texts, seg.metadatas, seg.hashes, seg.created, seg.updated, strict=True)
    return b"".join(encode_record(i, r) + b"\n" for i, r in zip(seg.ids, records, strict=True))


def encode_record(doc_id: str, record: tuple[str, dict[str, Any], str, str, str]) -> bytes:
    """A record's line (without its newline): text, metadata, hash, created and updated."""
    text, meta, digest, created, updated = record
    row = {
        "id": doc_id,
        "text": text,
        "metadata": meta,
        "hash": digest,
        "created_at": created,
        "updated_at": updated,
    }
    if orjson is not None:
        try:
            return orjson.dumps(row)
        except (TypeError, orjson.JSONEncodeError):
            pass  # integers beyond 64 bits or lone surrogates: the standard library copes
    return json.dumps(row, ensure_ascii=True, allow_nan=False).encode("ascii")


def _decode_records(data: bytes | memoryview) -> list[Any]:
    # the file's newlines separate records, so joining lines with commas makes one JSON array
    array = b"[" + bytes(data).rstrip(b"\n").replace(b"\n", b",") + b"]"
    if orjson is not None and not _may_hold_big_int(array):
        try:
            rows: list[Any] = orjson.loads(array)
            return rows
        except orjson.JSONDecodeError:
            pass  # what orjson does not read (lone surrogates, huge integers), json does
    try:
        result: list[Any] = json.loads(array.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"records are not valid JSON lines: {exc}") from exc
    return result
