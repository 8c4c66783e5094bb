"""The SDK against a real server: LangChain's standard vector store tests through
`RemoteVectorStore` (the server embedding, and this side embedding), its retrievers, scores,
errors and the admin client; and the transport's retries against a stub HTTP server."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from tests.server_support import ServerProcess, fake_model_server
from vectordb_manager import (
    ConcurrentModificationError,
    DimensionMismatchError,
    DocumentNotFoundError,
    IntegrityError,
    InvalidInputError,
    StoreNotFoundError,
)
from vectordb_manager.client import (
    AsyncVectorDBClient,
    CollectionExistsError,
    RemoteVectorStore,
    ServiceError,
    VectorDBClient,
)
from vectordb_manager.client.transport import Transport


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with fake_model_server(tmp_path_factory.mktemp("remote")) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[VectorDBClient]:
    with VectorDBClient(server.url) as client:
        yield client


@pytest.fixture
def store(admin: VectorDBClient, server: ServerProcess) -> Iterator[RemoteVectorStore]:
    name = f"s-{uuid.uuid4().hex[:10]}"
    admin.create_collection(name)
    remote = RemoteVectorStore(server.url, name)
    yield remote
    remote.close()
    admin.delete_collection(name)


class TestServerEmbeds(VectorStoreIntegrationTests):
    """The server embeds texts with the collection's model."""

    @pytest.fixture
    def vectorstore(self, store: RemoteVectorStore) -> Iterator[VectorStore]:
        yield store


class TestClientEmbeds(VectorStoreIntegrationTests):
    """This side embeds (LangChain's fake model, 6 dimensions) and sends vectors."""

    @pytest.fixture
    def vectorstore(self, admin: VectorDBClient, server: ServerProcess) -> Iterator[VectorStore]:
        name = f"e-{uuid.uuid4().hex[:10]}"
        admin.create_collection(name, embedding={"provider": "fake", "dimensions": 6})
        remote = RemoteVectorStore(server.url, name, embedding=self.get_embeddings())
        yield remote
        remote.close()
        admin.delete_collection(name)


ANIMALS = [
    ("cats purr and sleep all day", {"animal": "cat", "legs": 4}),
    ("dogs bark at the postman", {"animal": "dog", "legs": 4}),
    ("birds sing at dawn", {"animal": "bird", "legs": 2}),
    ("fish swim in cold water", {"animal": "fish", "legs": 0}),
]


@pytest.fixture
def animals(store: RemoteVectorStore) -> RemoteVectorStore:
    store.add_texts([t for t, _ in ANIMALS], [m for _, m in ANIMALS], ids=["c", "d", "b", "f"])
    return store


def test_scores_and_filters(animals: RemoteVectorStore) -> None:
    (doc, distance), *_ = animals.similarity_search_with_score("cats sleep", k=4)
    assert doc.id == "c" and 0 <= distance < 1
    relevance = animals.similarity_search_with_relevance_scores("cats sleep", k=2)
    assert relevance[0][0].id == "c"
    assert relevance[0][1] == pytest.approx(1 - distance / 2)
    assert animals._select_relevance_score_fn()(distance) == pytest.approx(relevance[0][1])
    legs = animals.similarity_search("animals", k=4, filter={"legs": {"$gte": 4}})
    assert {d.id for d in legs} == {"c", "d"}
    near = animals.similarity_search_with_score("cats sleep", k=4, score_threshold=distance)
    assert [d.id for d, _ in near] == ["c"]
    by_vector = animals.similarity_search_by_vector([0.0] * 63 + [1.0], k=1)
    assert len(by_vector) == 1
    with pytest.raises(InvalidInputError, match="callable"):
        animals.similarity_search("x", filter=lambda md: True)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="lambda_mult"):
        animals.similarity_search("x", lambda_mult=0.3)


def test_keyword_hybrid_mmr_and_retrievers(animals: RemoteVectorStore) -> None:
    keyword = animals.keyword_search_with_score("postman", k=4)
    assert [d.id for d, _ in keyword] == ["d"] and keyword[0][1] > 0
    hybrid = animals.hybrid_search("birds at dawn", k=2, fusion="weighted", alpha=0.5)
    assert hybrid[0].id == "b"
    mmr = animals.max_marginal_relevance_search("cats", k=2, fetch_k=4, lambda_mult=0.2)
    assert len(mmr) == 2 and mmr[0].id == "c"
    for search_type, kwargs, first in [
        ("similarity", {"k": 1}, "f"),
        ("mmr", {"k": 1, "fetch_k": 3}, "f"),
        ("similarity_score_threshold", {"k": 1, "score_threshold": 0.5}, "f"),
        ("keyword", {"k": 1}, "f"),
        ("hybrid", {"k": 1, "filter": {"legs": 0}}, "f"),
    ]:
        retriever = animals.as_retriever(search_type=search_type, search_kwargs=kwargs)
        assert [d.id for d in retriever.invoke("fish swim")] == [first], search_type


async def test_async_surface(animals: RemoteVectorStore) -> None:
    assert [d.id for d in await animals.asimilarity_search("dogs bark", k=1)] == ["d"]
    pairs = await animals.asimilarity_search_with_relevance_scores("dogs bark", k=1)
    assert pairs[0][0].id == "d" and 0.5 < pairs[0][1] <= 1
    assert [d.id for d in await animals.akeyword_search("dawn", k=2)] == ["b"]
    assert (await animals.ahybrid_search("cold water", k=1))[0].id == "f"
    assert len(await animals.amax_marginal_relevance_search("cats", k=2)) == 2
    retriever = animals.as_retriever(search_type="keyword", search_kwargs={"k": 1})
    assert [d.id for d in await retriever.ainvoke("postman")] == ["d"]
    await animals.adelete(["d"])
    assert await animals.aget_by_ids(["d", "c"]) == animals.get_by_ids(["c"])
    await animals.adelete()
    assert animals.get_ids() == []
    await animals.aclose()


TWINS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("similarity_search", ("cats sleep",), {"k": 3, "filter": {"legs": {"$gte": 2}}}),
    ("similarity_search_with_score", ("dogs",), {"k": 4, "score_threshold": 1.0}),
    ("similarity_search_with_relevance_scores", ("birds",), {"k": 2}),
    ("similarity_search_by_vector", ([0.0] * 63 + [1.0],), {"k": 2}),
    ("similarity_search_with_score_by_vector", ([1.0] * 64,), {"k": 3}),
    ("max_marginal_relevance_search", ("cats",), {"k": 2, "fetch_k": 4, "lambda_mult": 0.2}),
    ("max_marginal_relevance_search_by_vector", ([1.0] * 64,), {"k": 2, "fetch_k": 3}),
    ("keyword_search", ("postman dawn",), {"k": 3}),
    ("keyword_search_with_score", ("postman dawn",), {"k": 3}),
    ("hybrid_search", ("cold water",), {"k": 2, "fusion": "weighted", "alpha": 0.3}),
    ("hybrid_search_with_score", ("cold water",), {"k": 3, "rank_constant": 10}),
    ("get_ids", (), {"filter": {"legs": 4}}),
    ("get_by_ids", (["f", "nope", "c"],), {}),
]


@pytest.mark.parametrize("embed_here", [False, True], ids=["server-embeds", "client-embeds"])
async def test_async_twins_answer_as_the_sync_methods(
    animals: RemoteVectorStore, embed_here: bool
) -> None:
    """Each async method gives what its sync twin gives (they share the request building
    and the answer's reading), whichever side embeds the query."""
    from vectordb_manager.embeddings import HashingEmbeddings

    remote = animals
    if embed_here:  # the server's fake model, on this side
        remote = RemoteVectorStore(
            animals.transport.url, animals.collection, embedding=HashingEmbeddings(64)
        )
    for name, args, kwargs in TWINS:
        sync = getattr(remote, name)(*args, **kwargs)
        assert sync, name  # each asks for something that exists
        assert await getattr(remote, f"a{name}")(*args, **kwargs) == sync, name
    with pytest.raises(InvalidInputError, match="rank_constnt"):
        await remote.ahybrid_search("x", rank_constnt=3)
    await remote.aclose()


def test_dates_round_trip(store: RemoteVectorStore) -> None:
    when = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC)
    meta = {"day": datetime.date(2024, 5, 1), "at": when, "own": {"$x": 1}}
    store.add_texts(["dated"], [meta], ids=["t"])
    (doc,) = store.get_by_ids(["t"])
    assert doc.metadata == meta
    found = store.similarity_search("dated", filter={"day": {"$gte": {"$date": "2024-01-01"}}})
    assert [d.id for d in found] == ["t"]


def test_errors_are_the_package_exceptions(
    store: RemoteVectorStore, server: ServerProcess, admin: VectorDBClient
) -> None:
    with pytest.raises(InvalidInputError) as bad_k:
        store.similarity_search("x", k=0)
    assert bad_k.value.status == 422 and bad_k.value.code == "validation_error"  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError, match="filter"):
        store.similarity_search("x", filter={"a": {"$nope": 1}})
    with pytest.raises(DimensionMismatchError):
        store.similarity_search_by_vector([1.0, 0.0], k=1)
    missing = RemoteVectorStore(server.url, "no-such-collection")
    with pytest.raises(StoreNotFoundError) as absent:
        missing.similarity_search("x")
    assert absent.value.code == "collection_not_found"  # type: ignore[attr-defined]
    with pytest.raises(CollectionExistsError) as exists:
        admin.create_collection(store.collection)
    assert exists.value.status == 409
    assert admin.create_collection(store.collection, exist_ok=True)["name"] == store.collection
    with pytest.raises(DocumentNotFoundError):
        store.transport.request("GET", f"/collections/{store.collection}/documents/zz")
    unreachable = RemoteVectorStore("http://127.0.0.1:9", "x", retries=0)
    with pytest.raises(ServiceError, match="cannot reach"):
        unreachable.similarity_search("x")


class _Awaited:
    """An `AsyncVectorDBClient` driven from sync code: each coroutine it returns is run to
    its end on one event loop, so one test body checks both clients."""

    def __init__(self, client: AsyncVectorDBClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return self._loop.run_until_complete(result) if inspect.iscoroutine(result) else result

        return call

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture(params=["sync", "async"])
def any_admin(request: pytest.FixtureRequest, server: ServerProcess) -> Iterator[Any]:
    """The admin client, sync or async (`_Awaited`), over the module's server."""
    client: Any = (
        VectorDBClient(server.url)
        if request.param == "sync"
        else _Awaited(AsyncVectorDBClient(server.url))
    )
    yield client
    client.close()


def test_admin_client(any_admin: Any, tmp_path: Path) -> None:
    admin = any_admin
    name = f"adm-{uuid.uuid4().hex[:8]}"
    created = admin.create_collection(name, distance="l2", chunk_size=200, chunk_overlap=20)
    assert created["distance"] == "l2" and created["chunk_size"] == 200
    assert name in [c["name"] for c in admin.list_collections()]
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Alpha\n\nAlpacas graze in the Andes.\n")
    (docs / "sub" / "b.txt").write_text("Beavers build dams.")
    (docs / ".hidden.txt").write_text("never uploaded")
    (docs / "c.bin").write_bytes(b"\x00\x01")
    report = admin.upload(name, docs, batch_bytes=30)  # small batches: several requests
    assert sorted(report["files_added"]) == ["docs/a.md", "docs/sub/b.txt"]
    assert list(report["files_failed"]) == ["docs/c.bin"] and report["ok"] is False
    assert report["files_seen"] == 3
    store = admin.store(name)
    assert store.similarity_search("beavers dams", k=1)[0].page_content == "Beavers build dams."
    again = admin.upload(name, docs)
    assert sorted(again["files_unchanged"]) == ["docs/a.md", "docs/sub/b.txt"]
    assert again["texts_embedded"] == 0
    assert admin.verify(name)["documents"] == admin.describe_collection(name)["stats"]["documents"]
    before = admin.describe_collection(name)["stats"]
    assert admin.compact(name) is (before["segments"] > 1 or before["tombstones"] > 0)
    assert admin.describe_collection(name)["stats"]["segments"] == 1
    assert admin.compact(name) is False
    with pytest.raises(InvalidInputError, match="not a file"):
        admin.upload(name, tmp_path / "absent.txt")
    assert admin.delete_collection(name) is True
    assert admin.delete_collection(name, missing_ok=True) is False
    with pytest.raises(StoreNotFoundError):
        admin.delete_collection(name)
    assert admin.health()["status"] == "ok" and admin.ready() is True


def test_from_texts_creates_the_collection(server: ServerProcess, admin: VectorDBClient) -> None:
    name = f"ft-{uuid.uuid4().hex[:8]}"
    store = RemoteVectorStore.from_texts(["alpha", "beta"], url=server.url, collection=name)
    assert len(store.get_ids()) == 2
    RemoteVectorStore.from_texts(["gamma"], url=server.url, collection=name, ids=["g"])
    assert len(store.get_ids()) == 3
    admin.delete_collection(name)


# -- retries (a stub server that answers 503 a given number of times) ------------------------
class _Flaky(BaseHTTPRequestHandler):
    failures: ClassVar[int] = 0
    status: ClassVar[int] = 503
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        failing = len(self.requests) <= self.failures
        body = b'{"code": "busy", "message": "writers kept committing first; retry"}'
        if self.status == 429:  # a reverse proxy's rate limit: not the server's JSON
            body = b"<html>429 Too Many Requests</html>"
        if not failing:
            body = b'{"status": "ok", "version": "stub"}'
        self.send_response(self.status if failing else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Handler", (_Flaky,), {"requests": [], "failures": 0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_503_is_retried_then_reported(
    flaky: tuple[str, type[_Flaky]], caplog: pytest.LogCaptureFixture
) -> None:
    url, handler = flaky
    caplog.set_level(logging.DEBUG, logger="vectordb_manager.client.transport")
    handler.failures = 2
    assert Transport(url, retries=3, max_wait=0.01).request("GET", "/health")["status"] == "ok"
    assert len(handler.requests) == 3
    handler.requests.clear()
    handler.failures = 10
    with pytest.raises(ConcurrentModificationError) as busy:
        Transport(url, retries=2, max_wait=0.01).request("GET", "/health")
    assert busy.value.status == 503 and len(handler.requests) == 3  # type: ignore[attr-defined]
    retried = [r for r in caplog.records if "Retrying" in r.getMessage()]
    assert len(retried) == 2 + 2


async def test_the_async_admin_client_retries_as_the_sync_one(
    flaky: tuple[str, type[_Flaky]], caplog: pytest.LogCaptureFixture
) -> None:
    url, handler = flaky
    caplog.set_level(logging.DEBUG, logger="vectordb_manager.client.transport")
    handler.failures = 2
    async with AsyncVectorDBClient(url, retries=3) as admin:
        assert (await admin.health())["version"] == "stub"
    assert len(handler.requests) == 3
    handler.requests.clear()
    handler.failures = 10
    async with AsyncVectorDBClient(url, retries=1) as admin:
        with pytest.raises(ConcurrentModificationError):
            await admin.health()
    assert len(handler.requests) == 2
    async with AsyncVectorDBClient("http://127.0.0.1:9", retries=2) as admin:
        with pytest.raises(ServiceError, match="cannot reach"):
            await admin.list_collections()
    assert len([r for r in caplog.records if "ConnectError" in r.getMessage()]) == 2


def test_a_proxys_rate_limit_is_retried(flaky: tuple[str, type[_Flaky]]) -> None:
    url, handler = flaky
    handler.status, handler.failures = 429, 2
    assert VectorDBClient(url, retries=2).health()["version"] == "stub"
    assert len(handler.requests) == 3
    handler.requests.clear()
    handler.failures = 10
    with pytest.raises(ServiceError, match="429") as limited:
        VectorDBClient(url, retries=1).health()
    assert limited.value.status == 429 and len(handler.requests) == 2


def test_connection_errors_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="vectordb_manager.client.transport")
    with pytest.raises(ServiceError, match="cannot reach") as failed:
        Transport("http://127.0.0.1:9", retries=2, max_wait=0.01).request("GET", "/health")
    assert failed.value.code == "unreachable"
    assert len([r for r in caplog.records if "ConnectError" in r.getMessage()]) == 2


def test_verify_raises_on_damage(admin: VectorDBClient, server: ServerProcess) -> None:
    root = Path(server.log).parent / "root"
    name = f"dmg-{uuid.uuid4().hex[:8]}"
    admin.create_collection(name)
    admin.store(name).add_texts(["to be damaged"])
    segment = next((root / name / "segments").iterdir())
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        admin.verify(name)
    admin.delete_collection(name)


def test_cli_commands_through_the_server(
    animals: RemoteVectorStore,
    server: ServerProcess,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vectordb_manager.cli import main

    remote = ["--server", server.url, "--collection", animals.collection]
    assert main([*remote, "search", "cats sleeping", "-k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["id"] == "c" and 0 < hits[0]["score"] <= 1
    assert main([*remote, "search", "postman", "--mode", "keyword"]) == 0
    assert "1. [" in capsys.readouterr().out
    assert main([*remote, "search", "x", "--filter", '{"legs": {"$gt": 3}}', "--json"]) == 0
    assert {h["id"] for h in json.loads(capsys.readouterr().out)} == {"c", "d"}
    assert main([*remote, "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["documents"] == 4 and stats["name"] == animals.collection
    assert main([*remote, "get", "c", "zz"]) == 1
    out = capsys.readouterr()
    assert "cats purr" in out.out and "not found: zz" in out.err
    assert main([*remote, "delete", "b", "zz"]) == 0
    assert "deleted 1 of 2" in capsys.readouterr().out
    assert main([*remote, "verify"]) == 0 and "documents=3" in capsys.readouterr().out
    assert main([*remote, "compact"]) == 0
    assert main([*remote, "vacuum"]) == 1
    assert "not through --server" in capsys.readouterr().err
    assert main(["--server", server.url, "search", "x"]) == 1
    assert "--collection" in capsys.readouterr().err
    monkeypatch.setenv("VECTORDB_SERVER_URL", server.url)
    monkeypatch.setenv("VECTORDB_COLLECTION", "no-such-collection")
    assert main(["search", "x"]) == 1
    assert "no collection named" in capsys.readouterr().err
