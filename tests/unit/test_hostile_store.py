"""Hostile and damaged stores: nothing escapes the store, nothing is lost (issue 9)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
from moto import mock_aws

from tests.integration.moto_bucket import mocked_client
from vectordb_manager import (
    IntegrityError,
    LocalVectorStore,
    S3VectorStore,
    StorageError,
    StoreNotFoundError,
    VectorDatabaseManager,
    VectorDBConfig,
)
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.limits import MAX_VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_opening_without_create_never_creates_anything(tmp_path: Path) -> None:
    where = tmp_path / "absent"
    with pytest.raises(StoreNotFoundError, match="no store at"):
        LocalVectorStore(HashingEmbeddings(8), where, create=False)
    config = VectorDBConfig(local_path=str(where), embedding_provider="fake")
    with pytest.raises(StoreNotFoundError, match="no store at"):
        VectorDatabaseManager(config, create=False)
    assert not where.exists()
    LocalVectorStore(HashingEmbeddings(8), where).add_texts(["a"], ids=["1"])
    assert len(LocalVectorStore(HashingEmbeddings(8), where, create=False)) == 1


def test_a_store_without_manifests_is_refused_not_recreated(tmp_path: Path) -> None:
    store = LocalVectorStore(HashingEmbeddings(8), tmp_path)
    store.add_texts(["alpha", "beta"], ids=["a", "b"])
    segments = sorted(p.name for p in (tmp_path / "segments").iterdir())
    shutil.rmtree(tmp_path / "manifests")
    for _ in range(2):  # and a second attempt does not change that
        with pytest.raises(IntegrityError, match=r"no manifest.*Restore manifests/"):
            LocalVectorStore(HashingEmbeddings(8), tmp_path)
    assert not (tmp_path / "manifests").exists()
    assert sorted(p.name for p in (tmp_path / "segments").iterdir()) == segments


EMB = HashingEmbeddings(16)


def store_files(path: Path) -> dict[str, bytes]:
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in path.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


def test_a_reader_is_never_beaten_by_a_concurrent_compaction(tmp_path: Path) -> None:
    """Every time the reader opens a file, another writer adds and compacts, replacing it.
    Replaced files stay for the retention time, so the reader loads what it listed (it used
    to give up after 10 attempts, "the store keeps being compacted")."""
    writer = LocalVectorStore(EMB, tmp_path)
    writer.add_texts([f"first {i}" for i in range(10)], ids=[f"f{i}" for i in range(10)])
    reader = LocalVectorStore(EMB, tmp_path)
    for i in range(3):
        writer.add_texts([f"more {i}"], ids=[f"m{i}"])
    storage = reader.engine.storage
    assert storage is not None
    real_open = storage.open
    rounds: list[int] = []

    one_at_a_time = threading.Lock()  # files are opened in several threads at once

    def open_while_compacting(name: str, size: int | None = None) -> IO[bytes]:
        with one_at_a_time:
            rounds.append(len(rounds))
            writer.add_texts([f"first 0, version {len(rounds)}"], ids=["f0"])  # a tombstone
            assert writer.compact(), "the compaction replaced every file"
        return real_open(name, size)

    storage.open = open_while_compacting  # type: ignore[method-assign]
    assert reader.refresh()
    assert rounds, "the reader read files while they were being replaced"
    assert {"f0", "f9", "m0", "m2"} <= set(reader.engine.ids())
    report = reader.verify()  # verifying while others write is no error either
    assert report["documents"] == len(reader) == 13
    storage.open = real_open  # type: ignore[method-assign]
    reader.refresh()
    assert sorted(reader.engine.ids()) == sorted(writer.engine.ids())


def test_a_failed_commit_removes_what_it_wrote(tmp_path: Path) -> None:
    store = LocalVectorStore(EMB, tmp_path)
    store.add_texts(["kept"], ids=["k"])
    before = store_files(tmp_path)
    storage = store.engine.storage
    assert storage is not None

    def full(name: str, data: bytes, **kwargs: Any) -> bool:
        raise StorageError(f"cannot write {name}: No space left on device")

    storage.write_if_absent = full  # type: ignore[method-assign]
    with pytest.raises(StorageError, match="No space left"):
        store.add_texts(["lost"], ids=["l"])
    assert store_files(tmp_path) == before, "the failed write left its segment behind"
    assert store.engine.ids() == ["k"]


def test_a_commit_whose_answer_was_lost_is_recognised_as_ours(tmp_path: Path) -> None:
    store = LocalVectorStore(EMB, tmp_path)
    storage = store.engine.storage
    assert storage is not None
    real = storage.write_if_absent

    def lost_answer(name: str, data: bytes, **kwargs: Any) -> bool:
        real(name, data, **kwargs)
        raise StorageError(f"cannot write {name}: connection reset")

    storage.write_if_absent = lost_answer  # type: ignore[method-assign]
    assert store.add_texts(["landed"], ids=["x"]) == ["x"]
    assert LocalVectorStore(EMB, tmp_path).get_by_ids(["x"])[0].page_content == "landed"


def test_hnsw_returns_k_results_among_many_identical_vectors(tmp_path: Path) -> None:
    """Boilerplate chunks embed identically; the HNSW graph then comes back short."""
    texts = [f"boilerplate footer {i % 20}" for i in range(2000)]
    store = LocalVectorStore(EMB, None, index="hnsw")
    store.add_texts(texts, ids=[str(i) for i in range(2000)])
    for k in (2000, 2500):
        assert len(store.similarity_search("boilerplate footer 3", k=k)) == 2000
    near = store.similarity_search_with_score("boilerplate footer 3", k=100)
    assert len(near) == 100 and near[0][1] == pytest.approx(0.0, abs=1e-6)


def test_a_manifest_cannot_size_memory_beyond_the_stored_files(tmp_path: Path) -> None:
    """A manifest claims 10**10 rows and a matching size: refused by comparing the claim with
    the stored file before anything is allocated (it used to allocate, and die)."""
    store = LocalVectorStore(EMB, tmp_path)
    store.add_texts(["a", "b"], ids=["a", "b"])
    manifest = sorted((tmp_path / "manifests").glob("*.json"))[-1]
    doc = json.loads(manifest.read_text())
    doc["segments"][0]["rows"] = 10**10
    doc["segments"][0]["file"]["bytes"] = 10**10 * 16 * 4 + 4096
    doc["live_count"] = 10**10
    manifest.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=r"is .* bytes but the manifest says"):
        LocalVectorStore(EMB, tmp_path)


def test_the_highest_version_is_never_passed(tmp_path: Path) -> None:
    store = LocalVectorStore(EMB, tmp_path)
    store.add_texts(["a"], ids=["a"])
    last = sorted((tmp_path / "manifests").glob("*.json"))[-1]
    doc = json.loads(last.read_text())
    doc["version"] = MAX_VERSION
    (tmp_path / "manifests" / f"{MAX_VERSION:020d}.json").write_text(json.dumps(doc))
    store = LocalVectorStore(EMB, tmp_path)
    before = store_files(tmp_path)
    with pytest.raises(StorageError, match="highest version number"):
        store.add_texts(["b"], ids=["b"])
    assert store_files(tmp_path) == before


CHILD = """
import os, sys
from vectordb_manager import LocalVectorStore, StorageError
from vectordb_manager.embeddings import HashingEmbeddings
os.setgid(65534); os.setuid(65534)  # after the imports: the interpreter is root's
try:
    LocalVectorStore(HashingEmbeddings(8), sys.argv[1])
except StorageError as exc:
    print("StorageError:", exc)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges in a child")
def test_an_unreadable_store_directory_is_named(tmp_path: Path) -> None:
    where = tmp_path / "private" / "store"
    LocalVectorStore(EMB, where).add_texts(["a"], ids=["a"])
    os.chmod(tmp_path / "private", 0o700)
    os.chmod(tmp_path, 0o755)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(where)], capture_output=True, text=True, check=True,
        cwd=ROOT,
    ).stdout
    assert out.startswith("StorageError: cannot read the folder") and str(where) in out, out
    assert "permission" in out and "index.pkl" not in out


def test_on_s3_segments_without_a_manifest_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = mocked_client()
        client.create_bucket(Bucket="remains")
        S3VectorStore(EMB, "remains", "kb", client=client).add_texts(["a"], ids=["a"])
        for obj in client.list_objects_v2(Bucket="remains", Prefix="kb/manifests/")["Contents"]:
            client.delete_object(Bucket="remains", Key=obj["Key"])
        left = [o["Key"] for o in client.list_objects_v2(Bucket="remains")["Contents"]]
        with pytest.raises(IntegrityError, match="no manifest"):
            S3VectorStore(EMB, "remains", "kb", client=client)
        assert [o["Key"] for o in client.list_objects_v2(Bucket="remains")["Contents"]] == left


def test_an_altered_index_snapshot_cannot_change_the_stored_vectors(tmp_path: Path) -> None:
    """Someone changes vectors inside an HNSW snapshot and re-signs it in the manifest: the
    segment's vectors still count, and verify() reports the snapshot."""
    store = LocalVectorStore(EMB, tmp_path, index="hnsw")
    store.add_texts([f"document number {i}" for i in range(40)], ids=[str(i) for i in range(40)])
    assert store.compact()
    original = store.engine.state.index.vectors().copy()  # type: ignore[union-attr]
    manifest = sorted((tmp_path / "manifests").glob("*.json"))[-1]
    doc = json.loads(manifest.read_text())
    snapshot = tmp_path / doc["index_snapshot"]["file"]["path"]
    data = bytearray(snapshot.read_bytes())
    at = bytes(data).find(original[7].tobytes())
    assert at > 0, "the snapshot holds the vectors"
    altered = np.full(16, 0.25, dtype=np.float32).tobytes()  # document 7 points elsewhere
    data[at : at + len(altered)] = altered
    snapshot.write_bytes(bytes(data))
    doc["index_snapshot"]["file"]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest.write_text(json.dumps(doc))

    again = LocalVectorStore(EMB, tmp_path, index="hnsw")
    assert np.array_equal(again.engine.state.index.vectors(), original)  # type: ignore[union-attr]
    with pytest.raises(IntegrityError, match="snapshot's vectors differ from its segment's"):
        again.verify()
