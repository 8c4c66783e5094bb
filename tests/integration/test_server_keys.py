"""API keys and their scopes, through a real server configured from a TOML file's
``[server]`` table: missing and unknown keys (401), read-only keys and keys limited to some
collections (403), both ways of presenting a key, and no key in the server's log."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.server_support import ServerProcess, running_server
from vectordb_manager.client import AccessDeniedError, RemoteVectorStore, VectorDBClient

WRITE = "write-key-0b5e1c2f9a"
READ = "read-key-77d3e0a4c1"
TEAM = "team-key-5c9a8e1d33"
KEYS = (WRITE, READ, TEAM)

CONFIG = f"""
[vectordb]
embedding_provider = "fake"
embedding_dimensions = 32

[server]
refresh_interval = 0

[[server.api_keys]]
key = "{WRITE}"
access = "write"
name = "admin"

[[server.api_keys]]
key = "{READ}"
access = "read"
name = "reader"

[[server.api_keys]]
key = "{TEAM}"
access = "write"
collections = ["team"]
name = "team"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("keys")
    (workdir / "server.toml").write_text(CONFIG)
    with running_server(
        workdir,
        ["--config", str(workdir / "server.toml"), "--path", str(workdir / "root")],
        ["--log-level", "debug"],
        access_log=True,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


def code(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    return str(r.json()["code"])


def test_open_endpoints_need_no_key(http: httpx.Client) -> None:
    assert http.get("/health").status_code == 200
    assert http.get("/ready").status_code == 200
    assert http.get("/openapi.json").status_code == 200
    assert http.get("/docs").status_code == 200


def test_missing_and_unknown_keys(http: httpx.Client) -> None:
    r = http.get("/collections")
    assert code(r, 401) == "missing_key" and r.headers["www-authenticate"] == "Bearer"
    assert code(http.get("/collections", headers=key("not-a-key-at-all")), 401) == "invalid_key"
    assert code(http.get("/collections", headers=key(WRITE + "x")), 401) == "invalid_key"
    assert code(http.get("/collections", headers=key(WRITE[:-1])), 401) == "invalid_key"
    bearer = {"Authorization": f"Bearer {READ}"}
    assert http.get("/collections", headers=bearer).status_code == 200
    assert code(http.get("/collections", headers={"Authorization": "Bearer nope-nope"}), 401) == "invalid_key"
    assert code(http.post("/collections/any/query", json={"text": "x"}), 401) == "missing_key"


def test_read_only_and_read_write_keys(http: httpx.Client) -> None:
    assert code(http.post("/collections", json={"name": "shared"}, headers=key(READ)), 403) == "read_only_key"
    assert http.post("/collections", json={"name": "shared"}, headers=key(WRITE)).status_code == 201
    docs = {"documents": [{"id": "1", "text": "shared knowledge"}]}
    assert code(http.post("/collections/shared/documents", json=docs, headers=key(READ)), 403) == "read_only_key"
    assert http.post("/collections/shared/documents", json=docs, headers=key(WRITE)).status_code == 201
    found = http.post("/collections/shared/query", json={"text": "knowledge"}, headers=key(READ))
    assert found.status_code == 200 and found.json()["results"][0]["id"] == "1"
    assert http.post("/collections/shared/verify", headers=key(READ)).json()["ok"] is True
    for method, path in [
        ("POST", "/collections/shared/compact"),
        ("POST", "/collections/shared/documents/delete"),
        ("DELETE", "/collections/shared/documents/1"),
        ("PUT", "/collections/shared/documents/1"),
        ("DELETE", "/collections/shared"),
    ]:
        body = {"ids": ["1"]} if path.endswith("delete") else {"text": "x"}
        r = http.request(method, path, json=body, headers=key(READ))
        assert code(r, 403) == "read_only_key", (method, path)
    assert http.get("/collections/shared/documents/1", headers=key(READ)).json()["text"] == "shared knowledge"


def test_keys_limited_to_collections(http: httpx.Client) -> None:
    assert http.post("/collections", json={"name": "team"}, headers=key(TEAM)).status_code == 201
    other = http.post("/collections", json={"name": "other"}, headers=key(TEAM))
    assert code(other, 403) == "collection_not_allowed"
    http.post("/collections", json={"name": "private"}, headers=key(WRITE))
    assert code(http.get("/collections/private", headers=key(TEAM)), 403) == "collection_not_allowed"
    q = {"text": "x"}
    assert code(http.post("/collections/private/query", json=q, headers=key(TEAM)), 403) == "collection_not_allowed"
    assert code(http.delete("/collections/private", headers=key(TEAM)), 403) == "collection_not_allowed"
    listed = http.get("/collections", headers=key(TEAM)).json()["collections"]
    assert [c["name"] for c in listed] == ["team"]
    everything = {c["name"] for c in http.get("/collections", headers=key(READ)).json()["collections"]}
    assert {"team", "private"} <= everything
    assert http.get("/collections/private", headers=key(WRITE)).status_code == 200


def test_sdk_with_keys(server: ServerProcess) -> None:
    admin = VectorDBClient(server.url, api_key=WRITE)
    admin.create_collection("sdk", exist_ok=True)
    RemoteVectorStore(server.url, "sdk", api_key=WRITE).add_texts(["keyed text"], ids=["k"])
    reader = RemoteVectorStore(server.url, "sdk", api_key=READ)
    assert reader.similarity_search("keyed", k=1)[0].id == "k"
    with pytest.raises(AccessDeniedError) as read_only:
        reader.add_texts(["nope"])
    assert read_only.value.status == 403 and read_only.value.code == "read_only_key"
    with pytest.raises(AccessDeniedError) as missing:
        RemoteVectorStore(server.url, "sdk").similarity_search("keyed")
    assert missing.value.status == 401
    assert "read-key" not in repr(reader) and "read-key" not in repr(reader.transport)


def test_no_key_in_the_log(server: ServerProcess, http: httpx.Client) -> None:
    http.get("/collections", headers=key(READ))
    http.get("/collections", headers={"Authorization": f"Bearer {WRITE}"})
    http.get("/collections", headers=key(TEAM + "-wrong"))
    log = server.log_text()
    assert "GET /collections" in log  # the access log is on
    assert not [k for k in KEYS if k in log]
