"""The keyword index on S3 (moto): the same segment files, so the same scores as the reference
through changes, compaction and reopening; a store written without postings gets them at its
next compaction."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.moto_bucket import moto_bucket
from tests.unit.test_text_index import Model, check, churn, scenario
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.core import Engine
from vectordb_manager.engine.format import unpack_sections
from vectordb_manager.engine.manifest import KEYWORD_INDEX
from vectordb_manager.storage.s3 import S3Storage

BUCKET = "vdbm-text"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_bucket(monkeypatch, BUCKET) as client:
        yield client


def open_engine(client: Any, prefix: str, **kw: Any) -> Engine:
    kw.setdefault("compaction", CompactionPolicy(enabled=False))
    return Engine(S3Storage(client, BUCKET, prefix), **kw)


def latest(client: Any, prefix: str) -> dict[str, Any]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/manifests/")["Contents"]
    newest = max(o["Key"] for o in listed)
    return json.loads(client.get_object(Bucket=BUCKET, Key=newest)["Body"].read())  # type: ignore[no-any-return]


def section_names(client: Any, prefix: str) -> list[list[str]]:
    names = []
    for seg in latest(client, prefix)["segments"]:
        key = f"{prefix}/{seg['file']['path']}"
        data = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        names.append(sorted(set(unpack_sections(data, key)) - {"values"}))  # (test_text_index.py)
    return names


def test_scores_equal_the_reference_on_s3(client: Any) -> None:
    scenario(S3Storage(client, BUCKET, "scores"), lambda: open_engine(client, "scores"), seed=21)
    assert KEYWORD_INDEX in latest(client, "scores")["features"]
    found = section_names(client, "scores")
    assert all("postings" in names for names in found if "records" in names)


def test_an_s3_store_without_postings_gets_them_at_compaction(client: Any) -> None:
    rng = random.Random(22)
    model = Model()
    old = open_engine(client, "old", keyword_index=False)
    for _ in churn(old, model, rng, 4):
        pass
    assert all("postings" not in names for names in section_names(client, "old"))
    engine = open_engine(client, "old")
    check(engine, model)  # built from the texts, in memory
    engine.compact()
    assert section_names(client, "old") == [["ids", "postings", "records", "vectors"]]
    reopened = open_engine(client, "old")
    assert not reopened.state.text.from_texts
    check(reopened, model)
    reopened.verify()
