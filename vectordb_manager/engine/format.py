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
    """A segment in a manifest: rows added (records + vectors) and ids deleted."""

    name: str
    rows: int
    deletes: int
    records: FileRef | None = None
    vectors: FileRef | None = None
    deleted: FileRef | None = None
    ids: FileRef | None = None

    @property
    def weight(self) -> int:
        return self.rows + self.deletes

    def files(self) -> list[FileRef]:
        return [f for f in (self.ids, self.records, self.vectors, self.deleted) if f is not None]

    def to_json(self) -> dict[str, Any]:
        files = {
            k: v.to_json()
            for k, v in (
                ("ids", self.ids),
                ("records", self.records),
                ("vectors", self.vectors),
                ("deletes", self.deleted),
            )
            if v is not None
        }
        return {"name": self.name, "rows": self.rows, "deletes": self.deletes, "files": files}

    @classmethod
    def from_json(cls, d: Any) -> SegmentRef:
        try:
            files = d.get("files", {})
            return cls(
                name=str(d["name"]),
                rows=int(d["rows"]),
                deletes=int(d["deletes"]),
                records=FileRef.from_json(files["records"]) if "records" in files else None,
                vectors=FileRef.from_json(files["vectors"]) if "vectors" in files else None,
                deleted=FileRef.from_json(files["deletes"]) if "deletes" in files else None,
                ids=FileRef.from_json(files["ids"]) if "ids" in files else None,
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

    blob: bytes
    starts: np.ndarray[Any, np.dtype[np.int64]]
    ends: np.ndarray[Any, np.dtype[np.int64]]
    path: str

    @classmethod
    def split(cls, blob: bytes, path: str) -> RawRecords:
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


def _loads(line: bytes) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"a record is not valid JSON: {exc}") from exc


def new_segment_name() -> str:
    """A random name: segments spread evenly over an object store's key space."""
    return uuid.uuid4().hex


def encode_segment(name: str, seg: SegmentData) -> tuple[SegmentRef, dict[str, bytes]]:
    """Serialize a segment into its files; returns the manifest entry and path -> bytes."""
    blobs: dict[str, bytes] = {}
    records = vectors = deleted = ids = None
    if len(seg):
        id_bytes = _dumps(seg.ids)
        ids = FileRef.of(f"{SEGMENT_DIR}{name}.ids.json", id_bytes)
        blobs[ids.path] = id_bytes
        rec_bytes = _encode_records(seg)
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(seg.vectors, dtype=np.float32), allow_pickle=False)
        vec_bytes = buf.getvalue()
        records = FileRef.of(f"{SEGMENT_DIR}{name}.records.jsonl", rec_bytes)
        vectors = FileRef.of(f"{SEGMENT_DIR}{name}.vectors.npy", vec_bytes)
        blobs[records.path] = rec_bytes
        blobs[vectors.path] = vec_bytes
    if seg.deletes:
        del_bytes = _dumps(seg.deletes)
        deleted = FileRef.of(f"{SEGMENT_DIR}{name}.deletes.json", del_bytes)
        blobs[deleted.path] = del_bytes
    ref = SegmentRef(name, len(seg), len(seg.deletes), records, vectors, deleted, ids)
    return ref, blobs


def _dumps(ids: list[str]) -> bytes:
    """A JSON list of strings."""
    if orjson is not None:
        try:
            return orjson.dumps(ids)
        except TypeError:
            pass  # lone surrogates
    return json.dumps(ids).encode("ascii")


def _id_list(data: bytes, path: str) -> list[str]:
    ids = _loads(data)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise IntegrityError(f"{path} is not a JSON list of ids")
    return ids


def decode_segment(
    ref: SegmentRef, blobs: dict[str, bytes], dimension: int | None, *, lazy: bool = False
) -> SegmentData:
    """Decode (already checksum-verified) segment files; raises `IntegrityError` if malformed.

    ``lazy``: keep the records as bytes (``SegmentData.raw``) and decode rows on demand.
    """
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict[str, Any]] = []
    hashes: list[str] = []
    created: list[str] = []
    updated: list[str] = []
    raw = None
    vectors: Vectors = np.zeros((0, dimension or 0), dtype=np.float32)
    if ref.records is not None and ref.vectors is not None and ref.ids is not None:
        ids = _id_list(blobs[ref.ids.path], ref.ids.path)
        raw = RawRecords.split(blobs[ref.records.path], ref.records.path)
        if len(raw.ends) != len(ids):
            raise IntegrityError(
                f"{ref.records.path} has {len(raw.ends)} records for {len(ids)} ids"
            )
        if not lazy:
            rows = _decode_records(blobs[ref.records.path])
            if [r.get("id") if isinstance(r, dict) else None for r in rows] != ids:
                raise IntegrityError(f"{ref.records.path} and {ref.ids.path} disagree on the ids")
            for text, meta, h, c, u in (_record_tuple(r, ref.records.path) for r in rows):
                texts.append(text)
                metas.append(meta)
                hashes.append(h)
                created.append(c)
                updated.append(u)
            raw = None
        vectors = load_npy(blobs[ref.vectors.path], ref.vectors.path)
        if vectors.shape[0] != len(ids) or (
            dimension is not None and vectors.shape[1] != dimension
        ):
            raise IntegrityError(
                f"{ref.vectors.path} has shape {vectors.shape}, expected ({len(ids)}, {dimension})"
            )
    elif ref.rows:
        raise IntegrityError(f"segment {ref.name} has {ref.rows} rows but not all of its files")
    if len(ids) != ref.rows:
        raise IntegrityError(
            f"segment {ref.name} has {len(ids)} rows; the manifest says {ref.rows}"
        )
    deletes: list[str] = []
    if ref.deleted is not None:
        deletes = _id_list(blobs[ref.deleted.path], ref.deleted.path)
    if len(deletes) != ref.deletes:
        raise IntegrityError(
            f"segment {ref.name} deletes {len(deletes)} ids; the manifest says {ref.deletes}"
        )
    return SegmentData(ids, texts, metas, hashes, created, updated, vectors, deletes, raw)


def load_npy(data: bytes, path: str) -> Vectors:
    """Read a float32 ``.npy`` file without copying it; object arrays (pickles) are refused."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError as exc:
        raise IntegrityError(f"{path} is not a valid .npy file: {exc}") from exc
    if dtype != np.dtype("<f4") or fortran or len(shape) != 2:
        raise IntegrityError(
            f"{path} holds {dtype} with shape {shape}; expected a C-order float32 matrix. "
            "Anything else (such as a pickled object array) is refused, never loaded."
        )
    count = int(shape[0]) * int(shape[1])
    offset = stream.tell()
    if len(data) - offset != count * 4:
        raise IntegrityError(
            f"{path} is {len(data) - offset} data bytes; shape {shape} needs {count * 4}"
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


def _decode_records(data: bytes) -> list[Any]:
    # the file's newlines separate records, so joining lines with commas makes one JSON array
    array = b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]"
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
