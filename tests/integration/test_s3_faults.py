"""S3VectorStore against moto's real HTTP server, through a proxy that injects faults:
503 SlowDown, 500 after a PUT succeeded, dropped connections, AccessDenied; and several
writers (threads and processes) on one prefix."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import write_concurrently
from tests.integration.test_durability import acknowledged
from tests.s3_support import FaultProxy, fast_retries, moto_server, recorded_backoffs, s3_client
from vectordb_manager import S3VectorStore, StorageError
from vectordb_manager.embeddings import HashingEmbeddings

ROOT = Path(__file__).resolve().parents[2]
EMB = HashingEmbeddings(64)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def bucket(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3_client(moto_url).create_bucket(Bucket=name)
    return name


def open_store(endpoint: str, bucket: str, prefix: str = "store", **kw: Any) -> S3VectorStore:
    return S3VectorStore(EMB, bucket, prefix, client=s3_client(endpoint, max_attempts=kw.pop("max_attempts", 10)), **kw)


def _write_loop(store: S3VectorStore, tag: str, rounds: int) -> tuple[set[str], set[str], int]:
    """Adds and deletes; returns acknowledged-present ids, acknowledged deletes, failures."""
    present: set[str] = set()
    deleted: set[str] = set()
    failures = 0
    for i in range(rounds):
        try:
            ids = [f"{tag}{i}", f"{tag}o{i}"]
            store.add_texts([f"fault text {i}", f"other {i}"], [{"i": i}, {"i": -i}], ids=ids)
            present |= set(ids)
            if i % 4 == 3:
                present.discard(f"{tag}{i - 1}")  # unknown until acknowledged
                store.delete([f"{tag}{i - 1}"])
                deleted.add(f"{tag}{i - 1}")
        except StorageError:
            failures += 1  # not acknowledged: either outcome is allowed
    return present, deleted, failures


@pytest.mark.slow
def test_faults_lose_nothing_acknowledged(moto_url: str, bucket: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="vectordb_manager.storage.s3")
    with fast_retries(), FaultProxy(moto_url, seed=11, slowdown_rate=0.25) as proxy:
        store = open_store(proxy.url, bucket, commit_attempts=100)
        # a quarter of all requests throttled: botocore's retries absorb every one
        present, deleted, failures = _write_loop(store, "a", 30)
        assert failures == 0 and proxy.faults().get("slowdown", 0) > 10, proxy.faults()
        # now also 500s after PUTs that succeeded, and dropped connections (before and after
        # PUTs): botocore's retry quota runs dry at these rates, so some calls fail, but a
        # call that returned is never lost and a failed call leaves a consistent store
        proxy.error_after_put_rate, proxy.drop_rate, proxy.drop_after_put_rate = 0.2, 0.05, 0.05
        more, gone, failures = _write_loop(store, "b", 40)
        faults = proxy.faults()
    present |= more
    deleted |= gone
    assert faults.get("error_after_put", 0) > 5, faults
    assert faults.get("drop", 0) + faults.get("drop_after_put", 0) > 3, faults
    assert "already ours" in caplog.text, "the ambiguous failure (500 after a PUT) was not exercised"
    assert failures < 20
    again = open_store(moto_url, bucket)
    ids = set(again.engine.ids())
    assert present <= ids, sorted(present - ids)
    assert not deleted & ids
    assert len(present) > 60
    again.verify()


def test_access_denied_is_clear_and_fast(moto_url: str, bucket: str) -> None:
    with FaultProxy(moto_url) as proxy, recorded_backoffs() as waits:
        proxy.deny_buckets.add(bucket)
        with pytest.raises(StorageError, match=rf"s3://{bucket}/.*AccessDenied.*permissions"):
            open_store(proxy.url, bucket)
        # fast: one request, 403 is not retried, and nothing waited for a retry
        assert proxy.count() == 1
        assert waits == []


@pytest.mark.slow
def test_threads_with_separate_stores_lose_nothing(moto_url: str, bucket: str) -> None:
    stores = [open_store(moto_url, bucket, commit_attempts=1000) for _ in range(4)]
    expected = write_concurrently(stores, 25, delete_every=5)
    fresh = open_store(moto_url, bucket)
    assert set(fresh.engine.ids()) == expected
    fresh.verify()


@pytest.mark.slow
def test_processes_write_one_prefix_through_faults(moto_url: str, bucket: str) -> None:
    # (no SlowDown here: the children cannot shorten botocore's throttling back-off)
    with FaultProxy(moto_url, seed=5, error_after_put_rate=0.15, drop_after_put_rate=0.03) as proxy:
        env = {**os.environ, "VDBM_S3_ENDPOINT": proxy.url}
        open_store(moto_url, bucket)  # create the store first
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.integration.writer_child", f"s3://{bucket}/store", name, "25", "--deletes"],
                cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env,
            )
            for name in ("p", "q")
        ]
        outputs = [c.communicate(timeout=300)[0] for c in children]
    assert all(c.returncode == 0 for c in children), outputs
    present, deleted = acknowledged([line for out in outputs for line in out.splitlines()])
    fresh = open_store(moto_url, bucket)
    ids = set(fresh.engine.ids())
    assert ids == present and not deleted & ids
    assert len(present) == 2 * (25 * 2 - 8)
    fresh.verify()
