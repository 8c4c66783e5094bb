"""Several server processes over one root: concurrent writes through all of them, every
acknowledged write visible through each afterwards, ``verify`` clean; a server killed in the
middle of writes loses nothing it acknowledged while the others keep serving. Over a local
directory and over moto's S3 server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.s3_support import moto_server, s3_client
from tests.server_support import ServerProcess, running_server
from vectordb_manager import VectorDBError
from vectordb_manager.client import RemoteVectorStore, VectorDBClient

EMBEDDING = {"VECTORDB_EMBEDDING_DIMENSIONS": "32"}
WRITERS_PER_SERVER = 4
ROUNDS = 12


@dataclass
class Acknowledged:
    """What the servers acknowledged: ids added (and not deleted since), ids deleted."""

    present: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)  # each failed write's message
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def failures(self) -> int:
        return len(self.errors)


def write(
    url: str,
    collection: str,
    tag: str,
    acked: Acknowledged,
    rounds: int = ROUNDS,
    started: threading.Event | None = None,
) -> None:
    """Adds and deletes through one server, recording what it acknowledged; with
    ``started``, set it after a few writes and stop at the first failure (the server is to be
    killed)."""
    store = RemoteVectorStore(url, collection, retries=5, timeout=30)
    for i in range(rounds):
        ids = [f"{tag}-{i}-a", f"{tag}-{i}-b"]
        try:
            store.add_texts([f"{tag} text {i}", f"{tag} other {i}"], [{"w": tag, "i": i}] * 2, ids=ids)
        except VectorDBError as exc:
            with acked.lock:
                acked.errors.append(f"{type(exc).__name__}: {exc}")
            if started is not None:
                break
            continue
        with acked.lock:
            acked.present |= set(ids)
        if started is not None and i >= 2:
            started.set()
        if i % 4 == 3:
            gone = f"{tag}-{i - 1}-a"
            with acked.lock:
                acked.present.discard(gone)  # unknown until acknowledged
            try:
                store.delete([gone])
            except VectorDBError:
                continue
            with acked.lock:
                acked.deleted.add(gone)
    store.close()


def check(url: str, collection: str, acked: Acknowledged) -> None:
    """Every acknowledged write is visible through the server at ``url``."""
    store = RemoteVectorStore(url, collection)
    ids = set(store.get_ids())
    assert acked.present <= ids, sorted(acked.present - ids)[:5]
    assert not acked.deleted & ids, sorted(acked.deleted & ids)[:5]
    docs = store.get_by_ids(sorted(acked.present))
    assert len(docs) == len(acked.present)
    assert all(d.metadata["w"] in d.page_content for d in docs)
    assert VectorDBClient(url).verify(collection)["documents"] == len(ids)


def wait_until_visible(url: str, collection: str, acked: Acknowledged) -> None:
    """Poll the server until it shows every acknowledged write (its refresh interval)."""
    deadline = time.monotonic() + 30
    store = RemoteVectorStore(url, collection)
    while not acked.present <= set(store.get_ids()):
        assert time.monotonic() < deadline, "the writes never became visible"
        time.sleep(0.05)  # between polls
    check(url, collection, acked)


def run_writers(servers: list[ServerProcess], collection: str) -> Acknowledged:
    acked = Acknowledged()
    with ThreadPoolExecutor(len(servers) * WRITERS_PER_SERVER) as pool:
        futures = [
            pool.submit(write, s.url, collection, f"s{n}w{w}", acked)
            for n, s in enumerate(servers)
            for w in range(WRITERS_PER_SERVER)
        ]
        for f in futures:
            f.result()
    return acked


# -- a local directory ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replicas")


@pytest.fixture(scope="module")
def pair(root: Path) -> Iterator[list[ServerProcess]]:
    # --verbose: the engines' commits, reloads and absent deletes in the logs, for `explain`
    args = ["--verbose", "--path", str(root / "root"), "--provider", "fake"]
    with (
        running_server(root, args, ["--refresh-interval", "0"], env=EMBEDDING, name="a") as a,
        running_server(root, args, ["--refresh-interval", "0.5"], env=EMBEDDING, name="b") as b,
    ):
        yield [a, b]


def test_concurrent_writes_through_two_servers(pair: list[ServerProcess]) -> None:
    a, b = pair
    name = f"r-{uuid.uuid4().hex[:8]}"
    VectorDBClient(b.url).create_collection(name)
    acked = run_writers(pair, name)
    assert acked.failures == 0, acked.errors[:3]
    assert len(acked.present) == 2 * WRITERS_PER_SERVER * 2 * ROUNDS - len(acked.deleted)
    try:
        check(a.url, name, acked)  # refresh interval 0: at once
    except AssertionError as failed:
        raise AssertionError(f"{failed}\n{explain(pair)}") from None
    wait_until_visible(b.url, name, acked)  # within its refresh interval


def explain(servers: list[ServerProcess]) -> str:
    """What the servers' engines logged about absent deletes and reloads (a store another
    writer compacted), and their warnings and errors: the trail of a lost write."""
    words = ("absent", "reloaded", "carried over", "WARNING", "ERROR", "Traceback")
    return "\n".join(
        f"{s.log.name}: {line}"
        for s in servers
        for line in s.log_text().splitlines()
        if any(w in line for w in words)
    )[-8000:]


def test_collections_appear_and_disappear_for_every_server(pair: list[ServerProcess]) -> None:
    a, b = pair
    name = f"cd-{uuid.uuid4().hex[:8]}"
    VectorDBClient(b.url).create_collection(name)
    assert httpx.get(f"{a.url}/collections/{name}").status_code == 200
    assert httpx.post(f"{b.url}/collections", json={"name": name}).status_code == 409
    assert httpx.post(f"{a.url}/collections", json={"name": name}).status_code == 409
    RemoteVectorStore(b.url, name).add_texts(["through b"], ids=["x"])
    assert RemoteVectorStore(a.url, name).get_by_ids(["x"])[0].page_content == "through b"
    VectorDBClient(a.url).delete_collection(name)
    deadline = time.monotonic() + 30
    while httpx.get(f"{b.url}/collections/{name}").status_code != 404:  # b's interval
        assert time.monotonic() < deadline
        time.sleep(0.05)  # between polls
    VectorDBClient(a.url).create_collection(name)  # a new one under the old name
    assert RemoteVectorStore(b.url, name).get_ids() == []  # not the deleted one


def test_a_killed_server_loses_nothing_it_acknowledged(
    pair: list[ServerProcess], root: Path
) -> None:
    a, b = pair
    name = f"k-{uuid.uuid4().hex[:8]}"
    VectorDBClient(a.url).create_collection(name)
    args = ["--path", str(root / "root"), "--provider", "fake"]
    with running_server(root, args, ["--refresh-interval", "0"], env=EMBEDDING, name="c") as c:
        acked = Acknowledged()
        started = threading.Event()
        with ThreadPoolExecutor(4) as pool:
            doomed = [
                pool.submit(write, c.url, name, f"c{w}", acked, 200, started) for w in range(2)
            ]
            alive = [pool.submit(write, b.url, name, f"b{w}", acked, 10) for w in range(2)]
            assert started.wait(60)
            c.kill()  # in the middle of writes
            for f in doomed + alive:
                f.result()
    assert acked.failures > 0  # the writes in flight (and after) through c failed
    check(a.url, name, acked)
    wait_until_visible(b.url, name, acked)
    assert {f"b{w}-9-b" for w in range(2)} <= acked.present  # b kept serving


# -- moto's S3 server ----------------------------------------------------------------------------
def test_two_servers_over_s3(root: Path) -> None:
    with moto_server() as moto_url:
        s3_client(moto_url).create_bucket(Bucket="replicas")
        env = {
            **EMBEDDING,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        args = ["--storage", "s3", "--bucket", "replicas", "--prefix", "collections",
                "--endpoint-url", moto_url, "--provider", "fake"]  # fmt: skip
        with (
            running_server(root, args, ["--refresh-interval", "0"], env=env, name="s3a") as a,
            running_server(root, args, ["--refresh-interval", "0"], env=env, name="s3b") as b,
        ):
            VectorDBClient(a.url).create_collection("shared")
            assert [c["name"] for c in VectorDBClient(b.url).list_collections()] == ["shared"]
            acked = run_writers([a, b], "shared")
            assert acked.failures == 0, acked.errors[:3]
            check(a.url, "shared", acked)
            check(b.url, "shared", acked)
            keys = [o["Key"] for o in s3_client(moto_url).list_objects_v2(
                Bucket="replicas", Prefix="collections/shared/")["Contents"]]  # fmt: skip
            assert "collections/shared/collection.json" in keys
            VectorDBClient(b.url).delete_collection("shared")
            assert httpx.get(f"{a.url}/collections/shared").status_code == 404
            left = s3_client(moto_url).list_objects_v2(Bucket="replicas", Prefix="collections/")
            assert left.get("KeyCount", 0) == 0
