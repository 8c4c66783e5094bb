"""Persistence under damage: flipped, cut or missing files, files longer than recorded,
overlapping sections, planted pickles, hostile manifests, a damaged index snapshot; every one
refused with `IntegrityError` (or `StorageError`), never loaded."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import VectorTable, clustered, rewrite_section, segment_file
from vectordb_manager import IntegrityError, LocalVectorStore, StorageError
from vectordb_manager.embeddings import HashingEmbeddings

EMB = HashingEmbeddings(64)


def open_store(path: Path, **kw: object) -> LocalVectorStore:
    return LocalVectorStore(EMB, path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_flipped_byte_is_detected(tmp_path: Path, where: float) -> None:
    open_store(tmp_path).add_texts(["alpha", "beta"])
    target = segment_file(tmp_path)
    data = bytearray(target.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum"):
        open_store(tmp_path)


def test_truncated_file_is_detected(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add_texts(["alpha", "beta"])
    target = segment_file(tmp_path)
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="truncated"):
        store.verify()
    with pytest.raises(IntegrityError, match="truncated"):
        open_store(tmp_path)


def test_missing_file_is_detected(tmp_path: Path) -> None:
    open_store(tmp_path).add_texts(["alpha"])
    segment_file(tmp_path).unlink()
    with pytest.raises(IntegrityError, match="missing"):
        open_store(tmp_path)


class _Boom:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path("/tmp/vectordb-pickle-ran").touch, ())


def test_planted_pickle_is_refused_and_never_executed(tmp_path: Path) -> None:
    """An attacker replaces the vectors with a pickle and fixes up the manifest's checksums."""
    marker = Path("/tmp/vectordb-pickle-ran")
    marker.unlink(missing_ok=True)
    open_store(tmp_path).add_texts(["alpha"])
    buf = io.BytesIO()
    np.save(buf, np.array([_Boom()], dtype=object), allow_pickle=True)
    rewrite_section(tmp_path, "vectors", buf.getvalue())
    (tmp_path / "index.pkl").write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(IntegrityError, match="refused, never loaded"):
        open_store(tmp_path)
    assert not marker.exists(), "a pickle from the store was executed"


def test_langchain_faiss_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "index.faiss").write_bytes(b"x")
    (tmp_path / "index.pkl").write_bytes(b"x")
    with pytest.raises(StorageError, match="unpickle"):
        open_store(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format_version=99), "format version 99"),
        (lambda d: d.update(features=["zstd-records"]), "features this release does not know"),
        (lambda d: d.update(format="other"), "not a vectordb-manager manifest"),
        (lambda d: d["segments"][0]["file"].update(path="../../etc/passwd"),
         "outside the store"),
        (lambda d: d.update(live_count=5), "says 5 documents"),
    ],
)
def test_manifest_problems_are_refused(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    open_store(tmp_path).add_texts(["alpha"])
    manifest = sorted(tmp_path.glob("manifests/*.json"))[-1]
    doc = json.loads(manifest.read_text())
    change(doc)
    manifest.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=message):
        open_store(tmp_path)


def test_not_json_manifest(tmp_path: Path) -> None:
    open_store(tmp_path).add_texts(["alpha"])
    sorted(tmp_path.glob("manifests/*.json"))[-1].write_bytes(b"\x00garbage")
    with pytest.raises(IntegrityError, match="not a valid manifest"):
        open_store(tmp_path)


def test_path_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StorageError, match="is a file"):
        open_store(f)


def test_file_longer_than_its_manifest_entry_is_detected(tmp_path: Path) -> None:
    open_store(tmp_path).add_texts(["alpha", "beta"])
    target = segment_file(tmp_path)
    target.write_bytes(target.read_bytes() + b"\0" * 64)
    with pytest.raises(IntegrityError, match="bytes but the manifest says"):
        open_store(tmp_path)


def test_overlapping_sections_are_refused(tmp_path: Path) -> None:
    open_store(tmp_path).add_texts(["alpha", "beta"])
    target = segment_file(tmp_path)
    data = bytearray(target.read_bytes())
    size = int.from_bytes(data[8:16], "little")
    header = json.loads(bytes(data[16 : 16 + size]))
    ids_at = header["sections"]["ids"][0]
    header["sections"]["records"][0] = ids_at  # records start inside ids
    new = json.dumps(header).encode().ljust(size)
    data[16 : 16 + size] = new
    target.write_bytes(bytes(data))
    manifest = sorted(tmp_path.glob("manifests/*.json"))[-1]
    doc = json.loads(manifest.read_text())
    doc["segments"][0]["file"]["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    manifest.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="malformed header"):
        open_store(tmp_path)


def test_damaged_index_snapshot_is_refused_before_faiss_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emb = VectorTable(clustered(300, 32))
    store = LocalVectorStore(emb, tmp_path, index="hnsw")
    store.add_texts([f"d:{i}" for i in range(300)], ids=[str(i) for i in range(300)])
    assert store.compact()
    (snap,) = tmp_path.glob("indexes/*")
    original = snap.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0xFF
    snap.write_bytes(bytes(data))
    from vectordb_manager.engine.index import VectorIndex

    parsed: list[object] = []
    real = VectorIndex.from_snapshot.__func__  # type: ignore[attr-defined]

    def spy(cls, data, **kw):  # type: ignore[no-untyped-def]
        parsed.append(data)
        return real(cls, data, **kw)

    monkeypatch.setattr(VectorIndex, "from_snapshot", classmethod(spy))
    with pytest.raises(IntegrityError, match="checksum"):
        LocalVectorStore(emb, tmp_path, index="hnsw")
    assert parsed == [], "FAISS was given a snapshot that failed its checksum"
    snap.write_bytes(original)
    again = LocalVectorStore(emb, tmp_path, index="hnsw")
    assert len(parsed) == 1 and len(again) == 300
    assert again.similarity_search("d:7", k=1)[0].id == "7"
