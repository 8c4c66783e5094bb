"""Manifests: one committed version of a store, and the strict parser every reader uses.

A manifest is read from files anyone may have written, so `Manifest.from_bytes` believes
nothing it has not checked: every field must have exactly the type and range a writer
produces, every file path must be one a writer makes (``segments/<name>.seg``,
``indexes/<name>.faiss``, a name being 32 lowercase hex digits), and the fields must agree
with each other (a segment's ``bytes`` hold at least its vectors, the snapshot covers the first
segment, ``live_count`` is at most the rows). Anything else raises `IntegrityError` naming the
manifest and the field, before anything is allocated or read on the manifest's word. The
rules are listed in docs/format.md.

`Manifest.to_bytes` applies the same rules to what a writer is about to commit, so a writer
can never produce a manifest that readers refuse (a version past `MAX_VERSION` included).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NoReturn

from vectordb_manager.engine.limits import (
    MAX_DIMENSION,
    MAX_MANIFEST_BYTES,
    MAX_VERSION,
)
from vectordb_manager.engine.options import DISTANCES, INDEX_TYPES
from vectordb_manager.errors import IntegrityError, StorageError

FORMAT_NAME = "vectordb-manager"
FORMAT_VERSION = 1
TYPED_VALUES = "typed-values"
"""The feature of a store whose segments may hold typed records (dates and datetimes in the
metadata, tagged; see `records`): set by the first commit that writes one, and kept by every
later version, so that a reader that cannot untag them refuses the store instead of
returning the tags as metadata."""
KEYWORD_INDEX = "keyword-index"
"""The feature of a store whose segments may hold a ``postings`` section (the keyword index):
set by the first commit that writes one, and kept by every later version."""
VALUE_INDEX = "value-index"
"""The feature of a store whose segments may hold a ``values`` section (the metadata value
columns filters answer from): set by the first commit that writes one, and kept by every
later version."""
SUPPORTED_FEATURES: frozenset[str] = frozenset((TYPED_VALUES, KEYWORD_INDEX, VALUE_INDEX))
MANIFEST_DIR = "manifests/"
SEGMENT_DIR = "segments/"
INDEX_DIR = "indexes/"
SNAPSHOT_KINDS = ("hnsw", "ivf")
MAX_FILE_BYTES = 2**63 - 1
"""The largest size a manifest may give a file (and the most deletes a segment may claim)."""

_MANIFEST_DIGITS = 20
_NAME = re.compile(r"[0-9a-f]{32}")
_SNAPSHOT_PATH = re.compile(r"indexes/[0-9a-f]{32}\.faiss")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DAMAGED = (
    "The manifest is damaged or was not written by vectordb-manager; restore the store "
    "from a backup."
)


def now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def sha256(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


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
    def of(cls, path: str, data: builtins.bytes | bytearray | memoryview) -> FileRef:
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
    def from_json(cls, d: Any, name: str = "manifest", where: str = "file") -> FileRef:
        """A file entry; `IntegrityError` (naming manifest ``name`` and field ``where``)
        unless its path is a clean relative path, its size an integer and its checksum 64
        lowercase hex digits."""
        fields = _Fields(name)
        d = fields.obj(d, where)
        path = fields.string(fields.get(d, "path", where), f"{where}.path")
        problem = path_problem(path)
        if problem:
            fields.bad(f"{where}.path", f"is {_show(path)}, {problem}")
        digest = fields.string(fields.get(d, "sha256", where), f"{where}.sha256")
        if not _SHA256.fullmatch(digest):
            fields.bad(f"{where}.sha256", f"is {_show(digest)}, not 64 lowercase hex digits")
        size = fields.integer(fields.get(d, "bytes", where), f"{where}.bytes", 0, MAX_FILE_BYTES)
        return cls(path, size, digest)


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a clean relative path (``None`` if it is one): the writer only
    makes ``dir/name`` paths of visible characters, with forward slashes."""
    if not path:
        return "which is empty"
    if path.startswith("/"):
        return "an absolute path, outside the store"
    if "\\" in path:
        return "which holds a backslash"
    if _CONTROL.search(path):
        return "which holds a control character"
    parts = path.split("/")
    if ".." in parts:
        return "whose '..' points outside the store"
    if "" in parts or "." in parts:
        return "which is not a clean relative path (empty or '.' component)"
    return None


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
    def from_json(cls, d: Any, name: str = "manifest", where: str = "segment") -> SegmentRef:
        """A segment entry; `IntegrityError` unless its name is 32 lowercase hex digits, its
        file ``segments/<name>.seg`` and its counts non-negative integers."""
        fields = _Fields(name)
        d = fields.obj(d, where)
        seg_name = fields.string(fields.get(d, "name", where), f"{where}.name")
        if not _NAME.fullmatch(seg_name):
            fields.bad(f"{where}.name", f"is {_show(seg_name)}, not 32 lowercase hex digits")
        file = fields.file(
            d,
            where,
            f"{SEGMENT_DIR}{seg_name}.seg".__eq__,
            f"a segment's file must be {SEGMENT_DIR}<its name>.seg",
        )
        rows = fields.integer(fields.get(d, "rows", where), f"{where}.rows", 0, MAX_FILE_BYTES)
        deletes = fields.get(d, "deletes", where)
        deletes = fields.integer(deletes, f"{where}.deletes", 0, MAX_FILE_BYTES)
        return cls(seg_name, rows, deletes, file)


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
    def from_json(
        cls, d: Any, name: str = "manifest", where: str = "index_snapshot"
    ) -> SnapshotRef:
        """A snapshot entry; `IntegrityError` unless its file is ``indexes/<name>.faiss``,
        its kind ``hnsw`` or ``ivf`` and its rows a non-negative integer."""
        fields = _Fields(name)
        d = fields.obj(d, where)
        file = fields.file(
            d,
            where,
            lambda path: _SNAPSHOT_PATH.fullmatch(path) is not None,
            f"an index snapshot's file must be {INDEX_DIR}<32 lowercase hex digits>.faiss",
        )
        segment = fields.string(fields.get(d, "segment", where), f"{where}.segment")
        rows = fields.integer(fields.get(d, "rows", where), f"{where}.rows", 0, MAX_FILE_BYTES)
        kind = fields.choice(fields.get(d, "kind", where), f"{where}.kind", SNAPSHOT_KINDS)
        return cls(file, segment, rows, kind)


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
    analyzer: dict[str, Any] | None = None  # the keyword index's text analyzer, as JSON

    def next(self, **changes: Any) -> Manifest:
        """The next version with ``changes``; `StorageError` if this is the last version a
        manifest name can hold (`MAX_VERSION`), so nothing more can be committed."""
        if self.version >= MAX_VERSION:
            raise StorageError(
                f"the store is at version {self.version}, the highest version number a "
                "manifest name can hold; no further change can be committed to it. Copy its "
                "documents into a new store (VectorDatabaseManager.switch_backend)."
            )
        return replace(self, version=self.version + 1, created_at=now_iso(), **changes)

    def with_feature(self, name: str) -> tuple[str, ...]:
        """The features of this version plus ``name`` (for the next version's ``features``)."""
        return self.features if name in self.features else (*self.features, name)

    def to_json(self) -> dict[str, Any]:
        return {
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
            **({"analyzer": self.analyzer} if self.analyzer is not None else {}),
        }

    def to_bytes(self) -> bytes:
        """The manifest's file; `StorageError` if readers would refuse it (checked by the
        same rules as `from_bytes`, so no writer can commit what no reader opens)."""
        doc = self.to_json()
        try:
            _parse(doc, f"manifest version {self.version}")
        except IntegrityError as exc:
            problem = str(exc).removesuffix(" " + _DAMAGED).rstrip(".")
            raise StorageError(
                f"{problem}; refusing to commit it (nothing was written): this is a bug, or an "
                "input that was not checked"
            ) from None
        # (no indent: the C encoder, ~10x as fast as the indenting one, which runs in Python)
        data = json.dumps(doc, ensure_ascii=False, allow_nan=False).encode("utf-8")
        if len(data) > MAX_MANIFEST_BYTES:
            raise StorageError(
                f"the manifest would be {len(data)} bytes, more than readers accept "
                f"({MAX_MANIFEST_BYTES}); compact the store to merge its segments"
            )
        return data

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> Manifest:
        """Parse and check a manifest file named ``name``; `IntegrityError` naming the file
        and the field for anything a writer could not have written."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise IntegrityError(
                f"{name} is {len(data)} bytes, more than a manifest may be "
                f"({MAX_MANIFEST_BYTES}); it was not written by vectordb-manager"
            )
        try:
            doc = json.loads(bytes(data).decode("utf-8"))
        except RecursionError:
            raise IntegrityError(f"{name} is not a valid manifest: nested too deeply") from None
        except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise IntegrityError(f"{name} is not a valid manifest (not JSON): {exc}") from None
        manifest = _parse(doc, name)
        if parse_manifest_name(name) not in (None, manifest.version):
            raise IntegrityError(
                f"{name} holds version {manifest.version}; the file was renamed or replaced"
            )
        return manifest


def _parse(doc: Any, name: str) -> Manifest:
    """The manifest in a decoded JSON document, checked field by field and as a whole."""
    fields = _Fields(name)
    if type(doc) is not dict or doc.get("format") != FORMAT_NAME:
        raise IntegrityError(f"{name} is not a vectordb-manager manifest")
    fv = fields.get(doc, "format_version")
    if type(fv) is int and fv > FORMAT_VERSION:
        raise IntegrityError(
            f"{name} has format version {fv}; this release reads up to {FORMAT_VERSION}. "
            "Upgrade vectordb-manager to open this store."
        )
    fields.integer(fv, "format_version", 1, FORMAT_VERSION)
    features = fields.get(doc, "features")
    if type(features) is not list or not all(type(f) is str for f in features):
        fields.bad("features", f"is {_show(features)}, not a list of strings")
    unknown = sorted(set(features) - SUPPORTED_FEATURES)
    if unknown:
        raise IntegrityError(
            f"{name} uses features this release does not know: {_show(unknown)}. "
            "Upgrade vectordb-manager to open this store."
        )
    version = fields.integer(fields.get(doc, "version"), "version", 1, MAX_VERSION)
    created_at = fields.string(fields.get(doc, "created_at"), "created_at")
    dim = fields.get(doc, "dimension")
    dim = None if dim is None else fields.integer(dim, "dimension", 1, MAX_DIMENSION)
    distance = fields.choice(fields.get(doc, "distance"), "distance", DISTANCES)
    index = fields.obj(fields.get(doc, "index"), "index")
    kind = fields.choice(fields.get(index, "type", "index"), "index.type", INDEX_TYPES)
    params = fields.obj(fields.get(index, "params", "index"), "index.params")
    for key, value in params.items():
        if not _scalar(value):
            fields.bad(f"index.params.{key}", f"is {_show(value)}, not a JSON scalar")
    model = fields.get(doc, "embedding_model")
    if model is not None:
        model = fields.string(model, "embedding_model")
    live = fields.integer(fields.get(doc, "live_count"), "live_count", 0, MAX_FILE_BYTES)
    listed = fields.get(doc, "segments")
    if type(listed) is not list:
        fields.bad("segments", f"is {_show(listed)}, not a list")
    segments = tuple(SegmentRef.from_json(s, name, f"segments[{i}]") for i, s in enumerate(listed))
    analyzer = doc.get("analyzer")  # optional: stores written before keyword search lack it
    if analyzer is not None:
        for key, value in fields.obj(analyzer, "analyzer").items():
            if not _scalar(value):
                fields.bad(f"analyzer.{key}", f"is {_show(value)}, not a JSON scalar")
    snap = fields.get(doc, "index_snapshot")
    snapshot = None if snap is None else SnapshotRef.from_json(snap, name)
    _check_whole(fields, segments, snapshot, dim, live)
    return Manifest(
        version=version,
        distance=distance,
        index=kind,
        index_params=params,
        dimension=dim,
        embedding_model=model,
        segments=segments,
        snapshot=snapshot,
        live_count=live,
        created_at=created_at,
        features=tuple(features),
        analyzer=analyzer,
    )


def _check_whole(
    fields: _Fields,
    segments: tuple[SegmentRef, ...],
    snapshot: SnapshotRef | None,
    dim: int | None,
    live: int,
) -> None:
    """The rules between fields: unique segments, sizes that hold the vectors, the snapshot
    over the first segment, ``live_count`` within the rows."""
    seen: dict[str, int] = {}
    for i, seg in enumerate(segments):
        where = f"segments[{i}]"
        if seg.name in seen:  # (paths follow from names, so they are unique too)
            fields.bad(f"{where}.name", f"repeats the name of segments[{seen[seg.name]}]")
        seen[seg.name] = i
        if seg.rows and dim is None:
            fields.bad("dimension", f"is null, but {where} holds {seg.rows} rows")
        need = seg.rows * (dim or 0) * 4
        if seg.file.bytes < need:
            fields.bad(
                f"{where}.file.bytes",
                f"is {seg.file.bytes}, fewer than the {need} bytes that its vectors take "
                f"({where}.rows = {seg.rows} of dimension {dim})",
            )
    total = sum(seg.rows for seg in segments)
    if live > total:
        fields.bad("live_count", f"says {live} documents but the segments hold {total} rows")
    if snapshot is not None:
        if not segments or snapshot.segment != segments[0].name:
            fields.bad("index_snapshot.segment", "is not the name of the first segment")
        if snapshot.rows != segments[0].rows:
            fields.bad(
                "index_snapshot.rows",
                f"is {snapshot.rows}, but the first segment has {segments[0].rows} rows",
            )


class _Fields:
    """Typed access to a manifest's decoded JSON: every refusal names the manifest and the
    field, and shows a hostile value only shortened (never as advice)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def bad(self, where: str, problem: str) -> NoReturn:
        raise IntegrityError(f"{self.name} is not a valid manifest: {where} {problem}. {_DAMAGED}")

    def get(self, obj: dict[str, Any], key: str, where: str = "") -> Any:
        if key not in obj:
            self.bad(f"{where}.{key}" if where else key, "is missing")
        return obj[key]

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if type(value) is not dict:
            self.bad(where, f"is {_show(value)}, not an object")
        return value

    def integer(self, value: Any, where: str, low: int, high: int) -> int:
        if type(value) is not int or not low <= value <= high:
            self.bad(where, f"is {_show(value)}, not an integer from {low} to {high}")
        return value

    def string(self, value: Any, where: str) -> str:
        if type(value) is not str:
            self.bad(where, f"is {_show(value)}, not a string")
        return value

    def file(
        self, d: dict[str, Any], where: str, fits: Callable[[str], bool], rule: str
    ) -> FileRef:
        """The ``file`` entry of ``d``, whose path must fit the ``rule``."""
        file = FileRef.from_json(self.get(d, "file", where), self.name, f"{where}.file")
        if not fits(file.path):
            self.bad(f"{where}.file.path", f"is {_show(file.path)}; {rule}")
        return file

    def choice(self, value: Any, where: str, choices: tuple[str, ...]) -> str:
        if type(value) is not str or value not in choices:
            self.bad(where, f"is {_show(value)}, not one of {', '.join(choices)}")
        return value


def _scalar(value: Any) -> bool:
    """A JSON scalar: null, a boolean, a string, an integer or a finite number."""
    if type(value) is float:
        return math.isfinite(value)
    return value is None or type(value) in (bool, int, str)


def _show(value: Any) -> str:
    """A short description of a (possibly hostile, huge) value for an error message."""
    if type(value) is int and abs(value) >= 10**30:
        return f"an integer of {value.bit_length()} bits"
    if type(value) is str:
        return repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
    if type(value) is list:
        if all(type(v) is str for v in value) and len(value) <= 4:
            return _show_strings(value)
        return f"a list of {len(value)} items"
    if type(value) is dict:
        return f"an object of {len(value)} fields"
    return repr(value)


def _show_strings(values: list[str]) -> str:
    return "[" + ", ".join(_show(v) for v in values) + "]"


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "INDEX_DIR",
    "KEYWORD_INDEX",
    "MANIFEST_DIR",
    "SEGMENT_DIR",
    "SNAPSHOT_KINDS",
    "SUPPORTED_FEATURES",
    "TYPED_VALUES",
    "VALUE_INDEX",
    "FileRef",
    "Manifest",
    "SegmentRef",
    "SnapshotRef",
    "manifest_name",
    "now_iso",
    "parse_manifest_name",
    "path_problem",
    "sha256",
]
