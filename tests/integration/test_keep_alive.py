"""The keep-alive race: the server closes an idle kept-alive connection just as the client
sends its next request on it, which then fails without an answer ("Server disconnected
without sending a response"). The SDK sends a repeatable request again on a new connection,
and only those; the server keeps idle connections open longer than the SDK does
(``keep_alive``), so that the client closes them first.

A real server with a short keep-alive closes the connection; `KeepAliveRace` holds that close
back from the client until its next request, as the network does in the race."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server_support import KeepAliveRace, ServerProcess, fake_model_server
from vectordb_manager.client import RemoteVectorStore, ServiceError, VectorDBClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with fake_model_server(tmp_path_factory.mktemp("keep-alive"), "--keep-alive", "1") as s:
        VectorDBClient(s.url).create_collection("docs")
        yield s


@pytest.fixture
def race(server: ServerProcess) -> Iterator[KeepAliveRace]:
    relay = KeepAliveRace(server.url)
    yield relay
    relay.close()


def test_repeatable_requests_racing_the_close_of_an_idle_connection_are_sent_again(
    race: KeepAliveRace,
) -> None:
    store = RemoteVectorStore(race.url, "docs")
    store.add_texts(["alpha beta"], ids=["a"])  # the connection is kept alive
    assert race.wait_for_close(1)  # the server closed it, idle (after 1 s)
    assert [d.id for d in store.similarity_search("alpha", k=1)] == ["a"]
    assert race.connections == 2  # the query failed on the first, went again on a new one
    assert race.wait_for_close(2)
    store.add_texts(["gamma delta"], ids=["g"])  # a write names its ids: repeatable too
    assert race.connections == 3
    assert sorted(store.get_ids()) == ["a", "g"]
    store.close()


async def test_the_async_surface_sends_again_too(race: KeepAliveRace) -> None:
    store = RemoteVectorStore(race.url, "docs")
    await store.aadd_texts(["alpha beta"], ids=["a"])
    assert race.wait_for_close(1)
    assert [d.id for d in await store.asimilarity_search("alpha", k=1)] == ["a"]
    assert race.connections == 2
    await store.transport.aclose()


def test_a_collection_is_not_created_twice(race: KeepAliveRace, server: ServerProcess) -> None:
    """Creating a collection is not repeatable (lost mid-request, it may have been applied):
    it fails as unreachable, and the server never saw it."""
    admin = VectorDBClient(race.url)
    assert admin.health()["status"] == "ok"  # the connection is kept alive
    assert race.wait_for_close(1)
    with pytest.raises(ServiceError, match="cannot reach") as lost:  # closed, or reset
        admin.create_collection("other")
    assert lost.value.code == "unreachable" and race.connections == 1
    assert "other" not in {c["name"] for c in VectorDBClient(server.url).list_collections()}
