"""Deleting a collection while another server process writes to it: the writers get 404
``collection_not_found`` (never a 5xx), and the collection does not half reappear: nothing
is left under its name, and it can be created again, empty."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.server_support import ServerProcess, running_server

EMBEDDING = {"VECTORDB_EMBEDDING_DIMENSIONS": "16"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ...]]:
    """Two servers over one root: ``deleter`` re-reads before every request; ``stale``
    only every 30 s, so its writes just after the deletion do not see it beforehand."""
    workdir = tmp_path_factory.mktemp("delete-race")
    root = ["--path", str(workdir / "root"), "--provider", "fake"]
    with (
        running_server(
            workdir, root, ["--refresh-interval", "0"], env=EMBEDDING, name="deleter"
        ) as deleter,
        running_server(
            workdir, root, ["--refresh-interval", "30"], env=EMBEDDING, name="stale"
        ) as stale,
    ):
        yield deleter, stale


@dataclass
class Writes:
    statuses: list[tuple[int, str]] = field(default_factory=list)
    going: threading.Event = field(default_factory=threading.Event)  # a few acknowledged
    deleted: threading.Event = field(default_factory=threading.Event)


def writer(url: str, name: str, tag: str, writes: Writes) -> None:
    """Adds one document at a time until three answers after the deletion were 404."""
    after = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(2000):
            body = {"documents": [{"id": f"{tag}-{i}", "text": f"{tag} wrote {i}"}]}
            r = client.post(f"/collections/{name}/documents", json=body)
            code = r.json().get("code", "") if r.status_code != 201 else ""
            writes.statuses.append((r.status_code, code))
            if i == 3:
                writes.going.set()
            if writes.deleted.is_set():
                after += 1
                if after >= 3 and r.status_code == 404:
                    return


def test_a_collection_deleted_under_a_writer(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    deleter, stale = servers
    name = f"race-{uuid.uuid4().hex[:8]}"
    root = Path(deleter.log).parent / "root"
    with (
        httpx.Client(base_url=deleter.url, timeout=60) as a,
        httpx.Client(base_url=stale.url, timeout=60) as b,
    ):
        assert a.post("/collections", json={"name": name}).status_code == 201
        writes = {tag: Writes() for tag in ("via-deleter", "via-stale")}
        threads = [
            threading.Thread(target=writer, args=(deleter.url, name, "via-deleter", writes["via-deleter"])),
            threading.Thread(target=writer, args=(stale.url, name, "via-stale", writes["via-stale"])),
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        for w in writes.values():
            assert w.going.wait(120), "the writers never got going"
        assert a.delete(f"/collections/{name}").status_code == 200
        for w in writes.values():
            w.deleted.set()
        for thread in threads:
            thread.join(120)
            assert not thread.is_alive()

        for tag, w in writes.items():
            # 503 "busy": two writers racing for each version, past the commit's retries (a
            # loaded machine), answered as such to be retried (the SDK does); never another 5xx
            failed = [(s, c) for s, c in w.statuses if s != 201 and (s, c) != (503, "busy")]
            assert {s for s, _ in failed} <= {404}, (tag, failed)
            assert {c for s, c in w.statuses if s == 404} == {"collection_not_found"}
            assert w.statuses[-1][0] == 404, tag
        # the stale server's writes went through before it noticed, and were voided
        assert "was deleted while a write ran" in stale.log_text()

        assert not (root / name).exists()  # nothing half reappears
        for client in (a, b):
            assert client.get(f"/collections/{name}").status_code == 404
            assert name not in [c["name"] for c in client.get("/collections").json()["collections"]]
        again = b.post("/collections", json={"name": name})
        assert again.status_code == 201, again.text  # not 409 location_in_use
        assert a.get(f"/collections/{name}").json()["stats"]["documents"] == 0
        assert b.get(f"/collections/{name}/documents").json()["total"] == 0
        assert b.post(f"/collections/{name}/verify").json()["ok"] is True
