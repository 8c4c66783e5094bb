"""LangChain's indexing API (`index` / `aindex` with a record manager) over our stores.

`index()` calls ``add_documents(docs, ids=..., batch_size=...)`` and ``delete(ids)`` on the
store; every cleanup mode is run on a store in memory and on disk (and once on S3), checking
the counts `index()` returns, what the store then holds, and that a run with nothing to do
writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.indexing import InMemoryRecordManager, aindex, index
from moto import mock_aws

from tests.integration.moto_bucket import mocked_client
from vectordb_manager import LocalVectorStore, S3VectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.vectorstores.engine_store import EngineVectorStore

MODES = [None, "incremental", "full", "scoped_full"]
A1 = Document(page_content="apples grow on trees", metadata={"source": "a.txt", "n": 1})
A2 = Document(page_content="apples are red or green", metadata={"source": "a.txt", "n": 2})
A2_NEW = Document(page_content="apples are sweet", metadata={"source": "a.txt", "n": 2})
B1 = Document(page_content="bananas are yellow", metadata={"source": "b.txt", "n": 1})
FIRST = [A1, A2, B1]
SECOND = [A1, A2_NEW]  # a.txt changed its second chunk; b.txt is not in this run

# after SECOND, per cleanup mode: (deleted, what the store holds)
AFTER_SECOND: dict[str | None, tuple[int, list[Document]]] = {
    None: (0, [A1, A2, A2_NEW, B1]),
    "incremental": (1, [A1, A2_NEW, B1]),  # only a.txt's stale chunk goes
    "full": (2, [A1, A2_NEW]),  # everything not seen in this run goes
    "scoped_full": (1, [A1, A2_NEW, B1]),  # a.txt's stale chunk; b.txt was not in the run
}


def contents(store: EngineVectorStore) -> list[tuple[str, dict[str, Any]]]:
    docs = store.get_by_ids(store.get_ids())
    return sorted((d.page_content, d.metadata) for d in docs)


def expected(docs: list[Document]) -> list[tuple[str, dict[str, Any]]]:
    return sorted((d.page_content, d.metadata) for d in docs)


def writes(store: EngineVectorStore) -> tuple[Any, ...]:
    """Changes with every write: the manifest version on disk, the slots (one per record
    ever written) and tombstones in memory."""
    state = store.engine.state
    return (store.stats()["version"], state.slots, state.dead)


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalVectorStore:
    path = tmp_path / "store" if request.param == "disk" else None
    return LocalVectorStore(HashingEmbeddings(64), path)


async def run(
    how: str, docs: list[Document], manager: InMemoryRecordManager, store: EngineVectorStore,
    cleanup: str | None,
) -> dict[str, int]:
    kwargs: dict[str, Any] = {
        "cleanup": cleanup, "source_id_key": "source", "key_encoder": "sha256", "batch_size": 2,
    }
    if how == "sync":
        return dict(index(docs, manager, store, **kwargs))
    return dict(await aindex(docs, manager, store, **kwargs))


async def check_modes(how: str, store: EngineVectorStore, cleanup: str | None) -> None:
    manager = InMemoryRecordManager(namespace=f"test/{uuid.uuid4().hex}")
    manager.create_schema()

    first = await run(how, FIRST, manager, store, cleanup)
    assert first == {"num_added": 3, "num_updated": 0, "num_skipped": 0, "num_deleted": 0}
    assert contents(store) == expected(FIRST)
    assert sorted(store.get_ids()) == sorted(manager.list_keys())

    before = writes(store)
    again = await run(how, FIRST, manager, store, cleanup)
    assert again == {"num_added": 0, "num_updated": 0, "num_skipped": 3, "num_deleted": 0}
    assert writes(store) == before  # nothing to do: nothing written

    deleted, holds = AFTER_SECOND[cleanup]
    second = await run(how, SECOND, manager, store, cleanup)
    assert second == {"num_added": 1, "num_updated": 0, "num_skipped": 1, "num_deleted": deleted}
    assert contents(store) == expected(holds)
    assert sorted(store.get_ids()) == sorted(manager.list_keys())

    before = writes(store)
    again = await run(how, SECOND, manager, store, cleanup)
    assert again == {"num_added": 0, "num_updated": 0, "num_skipped": 2, "num_deleted": 0}
    assert writes(store) == before
    assert contents(store) == expected(holds)


@pytest.mark.parametrize("cleanup", MODES)
@pytest.mark.parametrize("how", ["sync", "async"])
async def test_index_every_cleanup_mode(store: LocalVectorStore, how: str, cleanup: str | None) -> None:
    await check_modes(how, store, cleanup)


async def test_index_reopened_store_sees_the_same(tmp_path: Path) -> None:
    store = LocalVectorStore(HashingEmbeddings(64), tmp_path / "s")
    await check_modes("sync", store, "incremental")
    reopened = LocalVectorStore(HashingEmbeddings(64), tmp_path / "s")
    assert contents(reopened) == contents(store)


def test_index_force_update_rewrites_in_place(store: LocalVectorStore) -> None:
    manager = InMemoryRecordManager(namespace="force")
    index(FIRST, manager, store, cleanup="full", source_id_key="source", key_encoder="sha256")
    ids = sorted(store.get_ids())
    result = index(
        FIRST, manager, store, cleanup="full", source_id_key="source", key_encoder="sha256",
        force_update=True,
    )
    assert result == {"num_added": 0, "num_updated": 3, "num_skipped": 0, "num_deleted": 0}
    assert sorted(store.get_ids()) == ids and contents(store) == expected(FIRST)


@pytest.fixture
def s3_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3VectorStore]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = mocked_client()
        client.create_bucket(Bucket="vdbm-index")
        yield S3VectorStore(HashingEmbeddings(64), "vdbm-index", "idx", client=client)


@pytest.mark.parametrize("how", ["sync", "async"])
async def test_index_on_s3(s3_store: S3VectorStore, how: str) -> None:
    await check_modes(how, s3_store, "incremental")
