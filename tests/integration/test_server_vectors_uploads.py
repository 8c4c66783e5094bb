"""`vectordb serve`, through a real server process: collections of client-supplied vectors
(no embedding model), uploads named by the caller, and ``vectordb ingest --server``.

One server (model-free ``fake`` embeddings, 64 dimensions) serves the module; each test
works in collections of its own."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_support import ServerProcess, error_message, fake_model_server
from vectordb_manager import InvalidInputError
from vectordb_manager.client import RemoteVectorStore, VectorDBClient
from vectordb_manager.embeddings import HashingEmbeddings


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-vectors")


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[ServerProcess]:
    with fake_model_server(workdir) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def create(client: httpx.Client, **settings: Any) -> str:
    name = f"v-{uuid.uuid4().hex[:10]}"
    r = client.post("/collections", json={"name": name, **settings})
    assert r.status_code == 201, r.text
    return name


NO_MODEL = {"embedding": {"provider": "none", "dimensions": 3}}
VECTORS = [
    {"id": "x", "text": "east", "metadata": {"axis": "x"}, "vector": [1.0, 0.0, 0.0]},
    {"id": "y", "text": "north", "metadata": {"axis": "y"}, "vector": [0.0, 1.0, 0.0]},
    {"id": "z", "text": "up and away", "metadata": {"axis": "z"}, "vector": [0.0, 0.0, 1.0]},
]


# -- collections of vectors computed elsewhere ----------------------------------------------
def test_a_collection_without_a_model_needs_its_dimension(client: httpx.Client) -> None:
    for embedding in ({"provider": "none"}, {"provider": "none", "model": "x", "dimensions": 3}):
        r = client.post("/collections", json={"name": "no-dims", "embedding": embedding})
        assert "dimensions" in error_message(r, 400, "invalid_configuration")
    assert client.get("/collections/no-dims").status_code == 404
    name = create(client, **NO_MODEL)
    described = client.get(f"/collections/{name}").json()
    assert described["embedding"] == {"provider": "none", "model": None, "dimensions": 3}
    assert described["stats"]["dimension"] == 3 and described["stats"]["embedding_model"] == "none"


def test_vectors_only_collection_takes_vectors_and_refuses_texts(client: httpx.Client) -> None:
    name = create(client, **NO_MODEL)
    base = f"/collections/{name}"
    r = client.post(f"{base}/documents", json={"documents": VECTORS})
    assert r.status_code == 201 and r.json()["ids"] == ["x", "y", "z"]

    refusals = [
        ("POST", "/documents", {"documents": [{"id": "t", "text": "a text to embed"}]}),
        ("POST", "/documents", {"documents": [{"id": "t", "text": "to split"}], "split": True}),
        ("PUT", "/documents/x", {"text": "east, renamed"}),
        ("POST", "/query", {"text": "east", "k": 1}),
        ("POST", "/query", {"text": "east", "k": 1, "mmr": True}),
        ("POST", "/query", {"text": "east", "k": 1, "mode": "hybrid"}),
    ]
    for method, tail, body in refusals:
        message = error_message(
            client.request(method, base + tail, json=body), 400, "no_embedding_model"
        )
        assert f"collection {name!r} has no embedding model" in message, message
        assert '"vector"' in message
    upload = [("files", ("notes.txt", b"words to embed", "text/plain"))]
    error_message(client.post(f"{base}/upload", files=upload), 400, "no_embedding_model")
    short = {"documents": [{"id": "s", "text": "short", "vector": [1.0, 0.0]}]}
    error_message(client.post(f"{base}/documents", json=short), 400, "dimension_mismatch")
    assert client.get(f"{base}/documents").json()["ids"] == ["x", "y", "z"]  # nothing changed
    assert client.get(f"{base}/documents/x").json()["text"] == "east"

    near_y = client.post(f"{base}/query", json={"vector": [0.1, 0.9, 0.2], "k": 2}).json()
    assert [r["id"] for r in near_y["results"]] == ["y", "z"]
    mmr = {"vector": [0.1, 0.9, 0.2], "k": 2, "mmr": True, "fetch_k": 3}
    assert client.post(f"{base}/query", json=mmr).json()["results"][0]["id"] == "y"
    keyword = client.post(f"{base}/query", json={"text": "away", "mode": "keyword"}).json()
    assert [r["id"] for r in keyword["results"]] == ["z"]  # BM25 needs no model
    replaced = {"text": "east, moved", "vector": [0.9, 0.1, 0.0]}
    assert client.put(f"{base}/documents/x", json=replaced).status_code == 200
    assert client.get(f"{base}/documents/x").json()["text"] == "east, moved"
    assert client.post(f"{base}/verify").json()["ok"] is True


def test_remote_store_over_a_vectors_only_collection(server: ServerProcess) -> None:
    admin = VectorDBClient(server.url)
    name = f"v-{uuid.uuid4().hex[:10]}"
    admin.create_collection(name, embedding={"provider": "none", "dimensions": 16})
    bare = RemoteVectorStore(server.url, name)
    with pytest.raises(InvalidInputError, match="no embedding model") as refused:
        bare.add_texts(["the server cannot embed this"])
    assert refused.value.code == "no_embedding_model"  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError, match="no embedding model"):
        bare.similarity_search("nor this")
    embedding_here = RemoteVectorStore(server.url, name, embedding=HashingEmbeddings(16))
    embedding_here.add_texts(["red apples", "green pears", "blue skies"], ids=["a", "p", "s"])
    assert embedding_here.similarity_search("apples red", k=1)[0].id == "a"
    assert [d.id for d in bare.keyword_search("skies", k=1)] == ["s"]
    admin.delete_collection(name)


# -- uploads named by the caller -------------------------------------------------------------
def sources(client: httpx.Client, name: str) -> list[str]:
    ids = client.get(f"/collections/{name}/documents").json()["ids"]
    docs = client.post(f"/collections/{name}/documents/get", json={"ids": ids}).json()
    return sorted(d["metadata"]["source"] for d in docs["documents"])


def test_uploads_named_by_the_caller_are_recognised_from_any_server(
    server: ServerProcess, client: httpx.Client, workdir: Path, tmp_path: Path
) -> None:
    """With ``source_names`` a file's chunks carry the name it was uploaded under, so the
    same file uploaded again, through another server with another staging directory, is
    recognised (unchanged: nothing written; changed: its chunks replaced, not added)."""
    guide = tmp_path / "docs" / "guide.md"
    guide.parent.mkdir()
    guide.write_text("# Guide\n\nRotate the keys every month.\n\n## Audit\n\nLog every access.\n")
    name = create(client, chunk_size=40, chunk_overlap=0)
    first = VectorDBClient(server.url).upload(name, guide, base=tmp_path, source_names=True)
    assert first["files_added"] == ["docs/guide.md"] and first["ok"] is True
    chunks = len(sources(client, name))
    assert chunks > 1 and set(sources(client, name)) == {"docs/guide.md"}

    other_dir = tmp_path / "other"
    other_dir.mkdir()
    with fake_model_server(other_dir, root=workdir / "root") as other:
        via_other = VectorDBClient(other.url)
        again = via_other.upload(name, guide, base=tmp_path, source_names=True)
        assert again["files_unchanged"] == ["docs/guide.md"] and again["texts_embedded"] == 0
        guide.write_text(
            "# Guide\n\nRotate the keys every week.\n\n## Audit\n\nLog every access.\n"
        )
        changed = via_other.upload(name, guide, base=tmp_path, source_names=True)
        assert changed["files_updated"] == ["docs/guide.md"] and changed["chunks_removed"] >= 1
    assert sources(client, name) == ["docs/guide.md"] * chunks  # replaced, not duplicated
    hit = client.post(f"/collections/{name}/query", json={"text": "keys week", "k": 1}).json()
    assert "every week" in hit["results"][0]["text"]

    staged = VectorDBClient(server.url).upload(name, guide)  # the default: the staged path
    assert staged["files_added"] == ["guide.md"]
    (staged_source,) = {s for s in sources(client, name) if s != "docs/guide.md"}
    assert staged_source.startswith(str(workdir / "uploads"))  # a server's path
    with pytest.raises(InvalidInputError, match="not under base"):
        VectorDBClient(server.url).upload(name, guide, base=workdir, source_names=True)


# -- vectordb ingest --server ----------------------------------------------------------------
def test_cli_ingest_through_the_server(
    server: ServerProcess,
    client: httpx.Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``vectordb --server URL --collection NAME ingest PATH...`` uploads the files and
    prints the same per-file report as a local ingest of them (``--json`` too); the files
    are named from the current directory, so ingesting them again is incremental."""
    from vectordb_manager.cli import main

    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Alpha\n\nAlpacas graze in the Andes.\n")
    (docs / "sub" / "b.txt").write_text("Beavers build dams.")
    (docs / "empty.txt").write_text("")
    (docs / "broken.json").write_text("{not json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VECTORDB_EMBEDDING_DIMENSIONS", "64")
    name = create(client)
    remote = ["--server", server.url, "--collection", name]

    local_args = ["--path", str(tmp_path / "local"), "--provider", "fake", "ingest", "docs"]
    assert main(local_args) == 1  # a file failed
    local = capsys.readouterr().out
    assert main([*remote, "ingest", "docs"]) == 1  # the same, through the server
    through_server = capsys.readouterr().out
    assert _untimed(through_server) == _untimed(local.replace(f"{tmp_path}/", ""))
    assert through_server.startswith("4 files: 2 added, 0 updated, 0 unchanged, 1 skipped, ")
    assert set(sources(client, name)) == {"docs/a.md", "docs/sub/b.txt"}

    given = [str(docs / "a.md"), "docs/sub/b.txt", "docs/broken.json", "--json"]
    assert main([*remote, "ingest", *given]) == 1
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["files_unchanged"]) == ["docs/a.md", "docs/sub/b.txt"]
    assert list(report["files_failed"]) == ["docs/broken.json"] and report["ok"] is False
    assert report["texts_embedded"] == 0 and report["files_seen"] == 3
    assert main([*remote, "ingest", "docs/sub/b.txt"]) == 0  # all went well: exit 0
    assert "1 unchanged" in capsys.readouterr().out

    assert main([*remote, "ingest", "docs", "--cleanup", "full"]) == 1
    assert "--cleanup" in capsys.readouterr().err
    assert main([*remote, "ingest", "docs", "--temporal", "localhost:7233"]) == 1
    assert "use one of the two" in capsys.readouterr().err
    assert main(["--path", str(tmp_path / "local"), "ingest", "docs", "--base", "docs"]) == 1
    assert "applies with --server" in capsys.readouterr().err
    assert main([*remote, "ingest", "docs/a.md", "--base", str(docs / "sub")]) == 1
    assert "not under base" in capsys.readouterr().err


def _untimed(report: str) -> str:
    """A printed ingest report without its timing."""
    return re.sub(r" in [0-9.]+ s$", "", report.strip(), flags=re.MULTILINE)
