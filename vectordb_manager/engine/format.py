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
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

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

    def check(self, data: builtins.bytes) -> builtins.bytes:
        if len(data) != self.bytes:
            raise IntegrityError(
                f"{self.path} is {len(data)} bytes but the manifest says {self.bytes}; "
                "the file is truncated or replaced. Restore it from a backup."
            )
        if sha256(data) != self.sha256:
            raise IntegrityError(
                f"{self.path} does not match its SHA-256 checksum in the manifest; "
                "the file is damaged. Restore it from a backup."
            )
        return data

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
    """A records file kept as bytes, with each line's span, for decoding rows on demand."""

    blob: bytes | memoryview
    starts: np.ndarray[Any, np.dtype[np.int64]]
    ends: np.ndarray[Any, np.dtype[np.int64]]
    path: str

    @classmethod
    def split(cls, blob: bytes | memoryview, path: str) -> RawRecords:
        ends = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == 10)
        starts = np.empty_like(ends)
        if len(ends):
            starts[0] = 0
            starts[1:] = ends[:-1] + 1
        return cls(blob, starts, ends, path)

    def row(self, i: int) -> tuple[str, dict[str, Any], str, str, str]:
        """Decode line ``i`` into (text, metadata, hash, created_at, updated_at)."""
        return _record_tuple(_loads(self.blob[self.starts[i] : self.ends[i]]), self.path)

    def rows(self) -> list[tuple[str, dict[str, Any], str, str, str]]:
        try:
            return [_record_tuple(r, self.path) for r in _decode_records(self.blob)]
        except ValueError as exc:
            raise IntegrityError(f"{self.path} holds malformed records: {exc!r}") from exc


def _record_tuple(r: Any, path: str) -> tuple[str, dict[str, Any], str, str, str]:
    try:
        record = (r["text"], r["metadata"], r["hash"], r["created_at"], r["updated_at"])
    except (KeyError, TypeError) as exc:
        raise IntegrityError(f"{path} holds a malformed record: {exc!r}") from exc
    if not isinstance(record[0], str) or not isinstance(record[1], dict):
        raise IntegrityError(f"{path} holds a record with a bad text or metadata")
    return record


def _loads(line: bytes | memoryview) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(bytes(line).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"a record is not valid JSON: {exc}") from exc


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
        parts["records"] = _encode_records(seg)
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
    if bytes(view[:8]) != SEGMENT_MAGIC or len(data) < 16:
        raise IntegrityError(f"{path} is not a vectordb-manager segment file")
    size = int.from_bytes(view[8:16], "little")
    try:
        header = json.loads(bytes(view[16 : 16 + size]))
        table = header["sections"]
        out = {}
        for key, (at, length) in table.items():
            if key not in SECTIONS or at < 16 + size or at + length > len(data):
                raise ValueError(f"bad section {key!r}")
            out[key] = view[at : at + length]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{path} has a malformed header: {exc}") from exc
    return out


def _dumps(ids: list[str]) -> bytes:
    """A JSON list of strings."""
    if orjson is not None:
        try:
            return orjson.dumps(ids)
        except TypeError:
            pass  # lone surrogates
    return json.dumps(ids).encode("ascii")


def _id_list(data: memoryview, path: str) -> list[str]:
    ids = _loads(data)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise IntegrityError(f"{path} does not hold a JSON list of ids")
    return ids


def decode_segment(
    ref: SegmentRef, blobs: dict[str, bytes], dimension: int | None, *, lazy: bool = False
) -> SegmentData:
    """Decode an (already checksum-verified) segment file; raises `IntegrityError` if malformed.

    ``lazy``: keep the records undecoded (``SegmentData.raw``) and decode rows on demand.
    """
    path = ref.file.path
    sections = unpack_sections(blobs[path], path)
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict[str, Any]] = []
    hashes: list[str] = []
    created: list[str] = []
    updated: list[str] = []
    raw = None
    vectors: Vectors = np.zeros((0, dimension or 0), dtype=np.float32)
    if ref.rows:
        if not all(k in sections for k in ("ids", "records", "vectors")):
            raise IntegrityError(f"{path} lacks the ids, records or vectors of its rows")
        ids = _id_list(sections["ids"], path)
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
        vectors = load_npy(sections["vectors"], path)
        if vectors.shape[0] != len(ids) or (
            dimension is not None and vectors.shape[1] != dimension
        ):
            raise IntegrityError(
                f"{path} holds vectors of shape {vectors.shape}, expected ({len(ids)}, {dimension})"
            )
    if len(ids) != ref.rows:
        raise IntegrityError(f"{path} has {len(ids)} rows; the manifest says {ref.rows}")
    deletes = _id_list(sections["deletes"], path) if "deletes" in sections else []
    if len(deletes) != ref.deletes:
        raise IntegrityError(f"{path} deletes {len(deletes)} ids; the manifest says {ref.deletes}")
    return SegmentData(ids, texts, metas, hashes, created, updated, vectors, deletes, raw)


def load_npy(data: bytes | memoryview, path: str) -> Vectors:
    """Read a float32 ``.npy`` array without copying it; object arrays (pickles) are refused."""
    stream = io.BytesIO(bytes(data[:4096]))  # the header; the data is read in place
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
    count = int(shape[0]) * int(shape[1])
    offset = stream.tell()
    if len(data) - offset != count * 4:
        raise IntegrityError(
            f"{path} has {len(data) - offset} bytes of vectors; shape {shape} needs {count * 4}"
        )
    array: Vectors = np.frombuffer(data, dtype=np.float32, count=count, offset=offset)
    return array.reshape(shape)


def _encode_records(seg: SegmentData) -> bytes:
    """One JSON object per line (JSON escapes newlines inside strings)."""
    rows = [
        {"id": i, "text": t, "metadata": m, "hash": h, "created_at": c, "updated_at": u}
        for i, t, m, h, c, u in zip(
            seg.ids, seg.texts, seg.metadatas, seg.hashes, seg.created, seg.updated, strict=True
        )
    ]
    if orjson is not None:
        try:
            return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"
        except (TypeError, orjson.JSONEncodeError):
            pass  # integers beyond 64 bits or lone surrogates: the standard library copes
    lines = [json.dumps(r, ensure_ascii=True, allow_nan=False) for r in rows]
    return ("\n".join(lines) + "\n").encode("ascii")


def _decode_records(data: bytes | memoryview) -> list[Any]:
    # the file's newlines separate records, so joining lines with commas makes one JSON array
    array = b"[" + bytes(data).rstrip(b"\n").replace(b"\n", b",") + b"]"
    if orjson is not None:
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
