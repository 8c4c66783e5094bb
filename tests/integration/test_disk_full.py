"""A full disk, for real: a small tmpfs mounted for the test (needs root; skipped otherwise)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import named_by_manifests
from vectordb_manager import LocalVectorStore, StorageError
from vectordb_manager.embeddings import HashingEmbeddings


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def files(path: Path) -> dict[str, int]:
    """Every file under ``path`` (relative, with "/") and its size."""
    out: dict[str, int] = {}
    for folder, _, names in os.walk(path):
        for name in names:
            full = os.path.join(folder, name)
            out[os.path.relpath(full, path).replace(os.sep, "/")] = os.stat(full).st_size
    return out


@pytest.mark.parametrize("index", ["hnsw", "flat"])
def test_a_full_disk_leaves_no_orphans_and_the_store_intact(small_disk: Path, index: str) -> None:
    """Write until the disk is full, then keep trying: every failed write and every failed
    automatic compaction removes what it wrote, so failures do not eat the space (HNSW's
    compactions write a store-sized segment and snapshot each time)."""
    path = small_disk / "store"
    store = LocalVectorStore(HashingEmbeddings(32), path, index=index)
    text = "lorem ipsum dolor sit amet " * 40
    acknowledged: list[str] = []
    failures = 0
    for i in range(2000):
        try:
            store.add_texts([f"{text} {i}"], [{"i": i}], ids=[str(i)])
            acknowledged.append(str(i))
        except StorageError as exc:
            assert "No space left" in str(exc), exc
            failures += 1
            store.wait_for_compaction()  # merges run on their own thread: their files too
            if failures == 1:
                full = files(path)
            assert files(path) == full, "a failed write left files behind"
            if failures == 5:
                break
        store.wait_for_compaction()
        on_disk = {name for name in files(path) if not name.startswith("manifests/")}
        assert on_disk <= named_by_manifests(path), f"orphans: {sorted(on_disk - named_by_manifests(path))[:3]}"
    assert failures == 5 and len(acknowledged) > 50
    again = LocalVectorStore(HashingEmbeddings(32), path, index=index)
    assert sorted(again.engine.ids(), key=int) == acknowledged
    again.verify()
    # the way out: free the space of replaced files now (no reader is loading them), delete
    again.vacuum(older_than=0)
    again.delete(acknowledged[: len(acknowledged) // 2])
    again.add_texts(["fits again"], ids=["new"])
    assert len(LocalVectorStore(HashingEmbeddings(32), path, index=index)) == (
        len(acknowledged) - len(acknowledged) // 2 + 1
    )
