"""Dates and datetimes in metadata on S3 (moto): given back as themselves after reopening and
compaction, the manifest carrying the ``typed-values`` feature, and copies between a local
store and a bucket in both directions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.integration.moto_bucket import moto_bucket
from tests.unit.test_dates import same
from vectordb_manager import LocalVectorStore, S3VectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.manifest import TYPED_VALUES

BUCKET = "vdbm-dates"
EMB = HashingEmbeddings(32)
META: dict[str, Any] = {
    "at": datetime(2024, 3, 10, 1, 59, 59, 999999, timezone(timedelta(hours=5, minutes=30))),
    "utc": datetime(2024, 3, 10, tzinfo=UTC),
    "naive": datetime(2024, 3, 10, 1, 2, 3, 4),
    "day": date(2024, 3, 10),
    "nested": {"days": [date(2020, 1, 1), {"$date": "not a tag"}], "at": datetime(2001, 1, 1)},
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_bucket(monkeypatch, BUCKET) as client:
        yield client


def latest_features(client: Any, prefix: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/manifests/")["Contents"]
    newest = max(o["Key"] for o in listed)
    body = client.get_object(Bucket=BUCKET, Key=newest)["Body"].read()
    found = json.loads(body)["features"]
    return [f for f in found if f not in ("keyword-index", "value-index")]  # (see test_dates.py)


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_dates_round_trip_on_s3_through_reopening_and_compaction(aws: Any, index: str) -> None:
    def store() -> S3VectorStore:
        return S3VectorStore(EMB, BUCKET, index, client=aws, index=index)

    first = store()
    first.add_texts(["plain"], [{"n": 1}], ids=["p"])
    assert latest_features(aws, index) == []
    first.add_texts(["dated one", "dated two"], [META, {**META, "n": 2}], ids=["a", "b"])
    first.delete(["b"])
    assert latest_features(aws, index) == [TYPED_VALUES]
    expected = {"p": {"n": 1}, "a": META}

    def check(s: S3VectorStore) -> None:
        got = {d.id: d.metadata for d in s.get_by_ids(["p", "a", "b"])}
        assert same(got, expected)
        listed = {d.id: d.metadata for batch in s.iter_documents() for d in batch}
        assert same(listed, expected)
        assert s.verify()["documents"] == 2

    check(first)
    second = store()
    check(second)
    assert second.compact() is True
    assert latest_features(aws, index) == [TYPED_VALUES]
    check(second)
    check(store())


def test_copies_between_a_local_store_and_a_bucket_keep_the_dates(aws: Any, tmp_path: Path) -> None:
    local = LocalVectorStore(EMB, tmp_path / "local")
    local.add_texts(["dated"], [META], ids=["a"])
    remote = S3VectorStore(EMB, BUCKET, "copy", client=aws)
    assert local.copy_to(remote) == 1
    assert latest_features(aws, "copy") == [TYPED_VALUES]
    back = LocalVectorStore(EMB, tmp_path / "back")
    assert S3VectorStore(EMB, BUCKET, "copy", client=aws).copy_to(back) == 1
    for store in (remote, LocalVectorStore(EMB, tmp_path / "back")):
        assert same(store.get_by_ids(["a"])[0].metadata, META)
