"""The value columns on S3 (moto): the same segment files, read into memory instead of mapped,
so filters equal brute force through changes, compaction and reopening; a store written
without the section is answered from its records and gets it at its next compaction."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.moto_bucket import moto_bucket
from tests.unit.test_value_index import Model, check, churn, scenario
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.core import Engine
from vectordb_manager.engine.format import unpack_sections
from vectordb_manager.storage.s3 import S3Storage

BUCKET = "vdbm-values"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_bucket(monkeypatch, BUCKET) as client:
        yield client


def has_values(client: Any, prefix: str) -> list[bool]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/segments/")["Contents"]
    found = []
    for obj in listed:
        data = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        sections = unpack_sections(data, obj["Key"])
        if "records" in sections:
            found.append("values" in sections)
    return found


def test_filters_equal_brute_force_on_s3(client: Any) -> None:
    scenario(lambda: S3Storage(client, BUCKET, "round"), seed=31)


def test_an_s3_store_without_the_section_gets_it_at_compaction(client: Any) -> None:
    rng = random.Random(32)
    model: Model = {}
    no_merges = CompactionPolicy(enabled=False)
    old = Engine(S3Storage(client, BUCKET, "old"), compaction=no_merges, value_index=False)
    for _ in churn(old, model, rng, 3):
        pass
    assert not any(has_values(client, "old"))
    engine = Engine(S3Storage(client, BUCKET, "old"), compaction=no_merges)
    check(engine, model, rng)  # built from the records, in memory
    engine.compact()
    reopened = Engine(S3Storage(client, BUCKET, "old"), compaction=no_merges)
    assert not reopened.state.values.missing
    check(reopened, model, rng)
    reopened.verify()
