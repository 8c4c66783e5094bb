"""Every endpoint of `vectordb serve`, success and error paths, through a real server process
(uvicorn on a free local port) over a local root, with the model-free ``fake`` embeddings.

One server serves the whole module; each test works in collections of its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_support import ServerProcess, error_message, fake_model_server

MAX_BODY = 64 * 1024
MAX_UPLOAD = 256 * 1024


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[ServerProcess]:
    with fake_model_server(
        workdir, "--max-body-bytes", str(MAX_BODY), "--max-upload-bytes", str(MAX_UPLOAD)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def new_collection(client: httpx.Client, **settings: Any) -> str:
    name = f"c-{uuid.uuid4().hex[:10]}"
    r = client.post("/collections", json={"name": name, **settings})
    assert r.status_code == 201, r.text
    return name


@pytest.fixture
def coll(client: httpx.Client) -> Iterator[str]:
    name = new_collection(client)
    yield name
    client.delete(f"/collections/{name}")


error = error_message


def add(client: httpx.Client, name: str, docs: list[dict[str, Any]], **extra: Any) -> list[str]:
    r = client.post(f"/collections/{name}/documents", json={"documents": docs, **extra})
    assert r.status_code == 201, r.text
    return list(r.json()["ids"])


def snapshot(client: httpx.Client, name: str) -> tuple[Any, ...]:
    """What a failed request must leave unchanged: the store's version and every document."""
    stats = client.get(f"/collections/{name}").json()["stats"]
    ids = client.get(f"/collections/{name}/documents").json()["ids"]
    docs = client.post(f"/collections/{name}/documents/get", json={"ids": ids}).json()
    return stats["version"], stats["documents"], json.dumps(docs, sort_keys=True)


# -- operations and schema ---------------------------------------------------------------------
def test_health_ready_and_openapi(client: httpx.Client) -> None:
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "embedding_model": "hashing-bow-64",
        "model_loaded": True,
        "error": None,
    }
    schema = client.get("/openapi.json").json()
    expected = {
        ("/health", "get"), ("/ready", "get"), ("/collections", "get"), ("/collections", "post"),
        ("/collections/{name}", "get"), ("/collections/{name}", "delete"),
        ("/collections/{name}/documents", "post"), ("/collections/{name}/documents", "get"),
        ("/collections/{name}/documents/get", "post"),
        ("/collections/{name}/documents/delete", "post"),
        ("/collections/{name}/documents/{doc_id}", "get"),
        ("/collections/{name}/documents/{doc_id}", "put"),
        ("/collections/{name}/documents/{doc_id}", "delete"),
        ("/collections/{name}/upload", "post"), ("/collections/{name}/query", "post"),
        ("/collections/{name}/verify", "post"), ("/collections/{name}/compact", "post"),
    }  # fmt: skip
    found = {(path, method) for path, ops in schema["paths"].items() for method in ops}
    assert found == expected
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            ok = op["responses"].get("200") or op["responses"].get("201")
            assert ok and "schema" in ok["content"]["application/json"], (path, method)
            assert op["responses"]["404"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }
            if method in ("post", "put") and not path.endswith(("/verify", "/compact")):
                assert "requestBody" in op, (path, method)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert client.get("/redoc").status_code == 200


def test_unknown_paths_and_methods(client: httpx.Client) -> None:
    error(client.get("/nope"), 404, "not_found")
    error(client.patch("/collections"), 405, "method_not_allowed")
    error(client.get("/collections/absent"), 404, "collection_not_found")
    error(client.post("/collections/absent/query", json={"text": "x"}), 404, "collection_not_found")
    error(client.get("/collections/.hidden"), 404, "collection_not_found")
    error(client.get("/collections/..%2Fetc"), 404, "not_found")


# -- collections -------------------------------------------------------------------------------
def test_collection_lifecycle(client: httpx.Client, workdir: Path) -> None:
    name = f"life-{uuid.uuid4().hex[:8]}"
    created = client.post("/collections", json={"name": name, "distance": "l2", "index": "hnsw"})
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["distance"], body["index"]) == (name, "l2", "hnsw")
    assert body["embedding"] == {"provider": "fake", "model": None, "dimensions": 64}
    assert body["stats"]["documents"] == 0 and body["stats"]["dimension"] == 64
    assert (workdir / "root" / name / "collection.json").is_file()
    error(client.post("/collections", json={"name": name}), 409, "collection_exists")
    listed = [c["name"] for c in client.get("/collections").json()["collections"]]
    assert name in listed
    add(client, name, [{"text": "one"}, {"text": "two"}])
    described = client.get(f"/collections/{name}").json()
    assert described["stats"]["documents"] == 2 and described["distance"] == "l2"
    deleted = client.delete(f"/collections/{name}")
    assert deleted.status_code == 200 and deleted.json()["objects_removed"] >= 3
    assert not (workdir / "root" / name).exists()
    error(client.get(f"/collections/{name}"), 404, "collection_not_found")
    error(client.delete(f"/collections/{name}"), 404, "collection_not_found")
    assert name not in [c["name"] for c in client.get("/collections").json()["collections"]]
    again = client.post("/collections", json={"name": name})  # the name is free again
    assert again.status_code == 201 and again.json()["stats"]["documents"] == 0
    client.delete(f"/collections/{name}")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "../up"}, 400, "invalid_input"),
        ({"name": ".hidden"}, 400, "invalid_input"),
        ({"name": "a" * 64}, 400, "invalid_input"),
        ({"name": "ok", "distance": "manhattan"}, 422, "validation_error"),
        ({"name": "ok", "colour": "blue"}, 422, "validation_error"),
        ({"name": "ok", "chunk_size": 100, "chunk_overlap": 100}, 400, "invalid_configuration"),
        ({"name": "ok", "embedding": {"provider": "openai"}}, 400, "invalid_configuration"),
        ({"name": "ok", "embedding": {"provider": "fake", "dimensions": 0}}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ],
)
def test_create_refuses_bad_settings(
    client: httpx.Client, workdir: Path, body: dict[str, Any], status: int, code: str
) -> None:
    before = client.get("/collections").json()
    error(client.post("/collections", json=body), status, code)
    assert client.get("/collections").json() == before
    assert not (workdir / "root" / "ok").exists()


def test_create_refuses_a_store_that_is_not_a_collection(client: httpx.Client, workdir: Path) -> None:
    from vectordb_manager import LocalVectorStore
    from vectordb_manager.embeddings import HashingEmbeddings

    LocalVectorStore(HashingEmbeddings(64), workdir / "root" / "plain").add_texts(["x"])
    message = error(client.post("/collections", json={"name": "plain"}), 409, "location_in_use")
    assert "plain" in message
    assert not (workdir / "root" / "plain" / "collection.json").exists()
    assert "plain" not in [c["name"] for c in client.get("/collections").json()["collections"]]


def test_collection_with_its_own_model(client: httpx.Client) -> None:
    name = new_collection(client, embedding={"provider": "fake", "dimensions": 8})
    assert client.get(f"/collections/{name}").json()["stats"]["dimension"] == 8
    add(client, name, [{"id": "v", "text": "vectors", "vector": [1, 0, 0, 0, 0, 0, 0, 0]}])
    r = client.post(f"/collections/{name}/query", json={"vector": [1, 0, 0, 0, 0, 0, 0, 0], "k": 1})
    assert r.json()["results"][0]["id"] == "v"
    error(
        client.post(f"/collections/{name}/query", json={"vector": [1.0] * 64}),
        400,
        "dimension_mismatch",
    )
    client.delete(f"/collections/{name}")


# -- documents ---------------------------------------------------------------------------------
def test_add_get_update_delete(client: httpx.Client, coll: str) -> None:
    ids = add(
        client,
        coll,
        [
            {"id": "a", "text": "cats purr softly", "metadata": {"kind": "cat", "n": 1}},
            {"id": "b/with slash?", "text": "dogs bark loudly", "metadata": {"kind": "dog"}},
            {"text": "birds sing at dawn"},
        ],
    )
    assert ids[:2] == ["a", "b/with slash?"] and len(ids[2]) >= 32
    one = client.get(f"/collections/{coll}/documents/a").json()
    assert one == {"id": "a", "text": "cats purr softly", "metadata": {"kind": "cat", "n": 1}}
    slash = client.get(f"/collections/{coll}/documents/b%2Fwith%20slash%3F")
    assert slash.status_code == 200 and slash.json()["id"] == "b/with slash?"
    error(client.get(f"/collections/{coll}/documents/zzz"), 404, "document_not_found")
    many = client.post(f"/collections/{coll}/documents/get", json={"ids": ["zzz", ids[2], "a"]})
    assert [d["id"] for d in many.json()["documents"]] == [ids[2], "a"]
    assert many.json()["missing"] == ["zzz"]

    put = client.put(
        f"/collections/{coll}/documents/a", json={"text": "lions roar", "metadata": {"kind": "lion"}}
    )
    assert put.status_code == 200 and put.json()["text"] == "lions roar"
    hit = client.post(f"/collections/{coll}/query", json={"text": "roar lions", "k": 1}).json()
    assert hit["results"][0]["id"] == "a" and hit["results"][0]["metadata"] == {"kind": "lion"}
    error(
        client.put(f"/collections/{coll}/documents/nope", json={"text": "x"}),
        404,
        "document_not_found",
    )
    assert client.get(f"/collections/{coll}/documents/nope").status_code == 404  # not created

    assert client.delete(f"/collections/{coll}/documents/a").json() == {"deleted": 1}
    error(client.delete(f"/collections/{coll}/documents/a"), 404, "document_not_found")
    gone = client.post(f"/collections/{coll}/documents/delete", json={"ids": [ids[2], "x", "y"]})
    assert gone.json() == {"deleted": 1}
    assert client.get(f"/collections/{coll}/documents").json()["ids"] == ["b/with slash?"]


def test_add_precomputed_vectors(client: httpx.Client, coll: str) -> None:
    e0, e1 = [1.0] + [0.0] * 63, [0.0, 1.0] + [0.0] * 62
    ids = add(client, coll, [{"id": "x", "text": "x", "vector": e0}, {"text": "y", "vector": e1}])
    r = client.post(f"/collections/{coll}/query", json={"vector": e1, "k": 2}).json()
    assert [x["id"] for x in r["results"]] == [ids[1], "x"]
    assert r["results"][0]["distance"] == pytest.approx(0.0, abs=1e-6)
    assert r["results"][0]["score"] == pytest.approx(1.0, abs=1e-6)
    put = client.put(f"/collections/{coll}/documents/x", json={"text": "x2", "vector": e1})
    assert put.status_code == 200
    r = client.post(f"/collections/{coll}/query", json={"vector": e1, "k": 2}).json()
    assert [x["distance"] for x in r["results"]] == pytest.approx([0.0, 0.0], abs=1e-6)


def test_split_into_chunks(client: httpx.Client) -> None:
    name = new_collection(client, chunk_size=40, chunk_overlap=0)
    text = " ".join(f"word{i}" for i in range(40))  # ~290 characters: several chunks
    ids = add(client, name, [{"id": "doc", "text": text, "metadata": {"t": 1}}], split=True)
    assert len(ids) > 3 and ids == [f"doc#{i}" for i in range(len(ids))]
    chunk = client.get(f"/collections/{name}/documents/doc%230").json()
    assert chunk["metadata"]["parent_id"] == "doc" and chunk["metadata"]["t"] == 1
    assert chunk["metadata"]["chunk_index"] == 0
    shorter = add(client, name, [{"id": "doc", "text": "word0 word1"}], split=True)
    assert shorter == ["doc#0"]
    assert client.get(f"/collections/{name}/documents").json()["ids"] == ["doc#0"]
    loose = add(client, name, [{"text": text}], split=True)
    assert len(loose) == len(ids) and client.get(f"/collections/{name}").json()["stats"][
        "documents"
    ] == 1 + len(ids)
    client.delete(f"/collections/{name}")


def test_list_ids_with_filters_and_pages(client: httpx.Client, coll: str) -> None:
    add(client, coll, [{"id": f"d{i}", "text": f"t{i}", "metadata": {"n": i}} for i in range(10)])
    page = client.get(f"/collections/{coll}/documents", params={"limit": 3, "offset": 2}).json()
    assert page == {"ids": ["d2", "d3", "d4"], "total": 10, "offset": 2, "limit": 3}
    passing = client.get(
        f"/collections/{coll}/documents", params={"filter": json.dumps({"n": {"$gte": 7}})}
    ).json()
    assert passing["ids"] == ["d7", "d8", "d9"] and passing["total"] == 3
    bad = {"filter": "{not json"}
    error(client.get(f"/collections/{coll}/documents", params=bad), 400, "invalid_filter")
    op = {"filter": json.dumps({"n": {"$near": 3}})}
    assert "$near" in error(client.get(f"/collections/{coll}/documents", params=op), 400, "invalid_filter")
    error(client.get(f"/collections/{coll}/documents", params={"limit": 0}), 422, "validation_error")


def test_dates_in_metadata_round_trip(client: httpx.Client, coll: str) -> None:
    meta = {"day": {"$date": "2024-05-01"}, "at": {"$datetime": "2024-05-01T12:00:00+00:00"}}
    add(client, coll, [{"id": "d", "text": "dated", "metadata": meta}])
    add(client, coll, [{"id": "e", "text": "later", "metadata": {"day": {"$date": "2025-01-01"}}}])
    assert client.get(f"/collections/{coll}/documents/d").json()["metadata"] == meta
    q = {"text": "dated", "k": 5, "filter": {"day": {"$lt": {"$date": "2024-12-31"}}}}
    results = client.post(f"/collections/{coll}/query", json=q).json()["results"]
    assert [r["id"] for r in results] == ["d"]
    own = {"wrapped": {"$dict": {"$own": 1}}}
    add(client, coll, [{"id": "w", "text": "w", "metadata": own}])
    assert client.get(f"/collections/{coll}/documents/w").json()["metadata"] == own
    before = snapshot(client, coll)
    bad = {"documents": [{"text": "x", "metadata": {"v": {"$own": 1}}}]}
    message = error(client.post(f"/collections/{coll}/documents", json=bad), 400, "invalid_input")
    assert "$dict" in message
    assert snapshot(client, coll) == before


# -- queries -----------------------------------------------------------------------------------
CORPUS = [
    {"id": "p1", "text": "apple pie recipe", "metadata": {"kind": "food", "year": 2019, "tags": ["sweet"], "title": "Apple Pie"}},
    {"id": "p2", "text": "apple phone review", "metadata": {"kind": "tech", "year": 2021, "tags": ["phone"], "title": "iPhone"}},
    {"id": "p3", "text": "banana bread recipe", "metadata": {"kind": "food", "year": 2022, "tags": ["sweet", "bread"]}},
    {"id": "p4", "text": "laptop battery review", "metadata": {"kind": "tech", "year": 2023, "title": "Laptops"}},
    {"id": "p5", "text": "sourdough bread starter", "metadata": {"kind": "food", "year": 2020, "draft": True}},
]  # fmt: skip


@pytest.fixture(scope="module")
def corpus(client: httpx.Client) -> Iterator[str]:
    name = new_collection(client)
    add(client, name, CORPUS)
    yield name
    client.delete(f"/collections/{name}")


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({"kind": "food"}, {"p1", "p3", "p5"}),
        ({"kind": {"$ne": "food"}}, {"p2", "p4"}),
        ({"year": {"$gt": 2021}}, {"p3", "p4"}),
        ({"year": {"$gte": 2021, "$lt": 2023}}, {"p2", "p3"}),
        ({"year": {"$lte": 2019}}, {"p1"}),
        ({"year": {"$in": [2019, 2020]}}, {"p1", "p5"}),
        ({"year": {"$nin": [2019, 2020]}}, {"p2", "p3", "p4"}),
        ({"year": {"$between": [2020, 2022]}}, {"p2", "p3", "p5"}),
        ({"draft": {"$exists": True}}, {"p5"}),
        ({"title": {"$exists": False}}, {"p3", "p5"}),
        ({"tags": {"$contains": "sweet"}}, {"p1", "p3"}),
        ({"title": {"$like": "%Pie"}}, {"p1"}),
        ({"title": {"$ilike": "lap%"}}, {"p4"}),
        ({"year": {"$not": {"$gt": 2020}}}, {"p1", "p5"}),
        ({"$and": [{"kind": "food"}, {"year": {"$gt": 2019}}]}, {"p3", "p5"}),
        ({"$or": [{"kind": "tech"}, {"draft": True}]}, {"p2", "p4", "p5"}),
        ({"$not": {"kind": "food"}}, {"p2", "p4"}),
    ],
)
def test_query_filters_full_operator_set(
    client: httpx.Client, corpus: str, filter_: dict[str, Any], expected: set[str]
) -> None:
    for mode in ("vector", "keyword", "hybrid"):
        q = {"text": "apple bread review recipe", "k": 10, "filter": filter_, "mode": mode}
        r = client.post(f"/collections/{corpus}/query", json=q)
        assert r.status_code == 200, r.text
        got = {x["id"] for x in r.json()["results"]}
        assert got <= expected, (mode, got)
        if mode != "keyword":  # BM25 finds only documents sharing a term with the query
            assert got == expected, (mode, got)


def test_query_modes_and_score_meaning(client: httpx.Client, corpus: str) -> None:
    def query(**body: Any) -> dict[str, Any]:
        r = client.post(f"/collections/{corpus}/query", json={"text": "apple recipe", **body})
        assert r.status_code == 200, r.text
        return dict(r.json())

    vector = query(k=3)
    assert vector["mode"] == "vector" and vector["score"]["name"] == "relevance"
    assert vector["score"]["range"] == [0.0, 1.0] and "cosine" in vector["score"]["meaning"]
    scores = [x["score"] for x in vector["results"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(x["score"] == pytest.approx(1 - x["distance"] / 2) for x in vector["results"])
    assert vector["results"][0]["id"] == "p1"
    keyword = query(mode="keyword", k=5)
    assert keyword["score"]["name"] == "bm25" and keyword["score"]["range"] == [0.0, None]
    assert {x["id"] for x in keyword["results"]} == {"p1", "p2", "p3"}
    assert all(x["distance"] is None and x["score"] > 0 for x in keyword["results"])
    hybrid = query(mode="hybrid", k=2)
    assert hybrid["score"]["name"] == "rrf" and hybrid["results"][0]["id"] == "p1"
    assert hybrid["score"]["range"][1] == pytest.approx(1 / 61)
    weighted = query(mode="hybrid", fusion="weighted", alpha=0.3, k=2)
    assert weighted["score"]["name"] == "weighted" and "0.3" in weighted["score"]["meaning"]
    mmr = query(mmr=True, k=2, fetch_k=5, lambda_mult=0.1)
    assert mmr["score"]["name"] == "relevance" and len(mmr["results"]) == 2
    assert "marginal" in mmr["score"]["meaning"]
    threshold = query(k=5, score_threshold=0.75)
    assert threshold["results"] and all(x["score"] >= 0.75 for x in threshold["results"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": "x", "k": 0}, 422, "validation_error"),
        ({"text": "x", "k": -3}, 422, "validation_error"),
        ({"k": 2}, 400, "invalid_input"),
        ({"text": "x", "vector": [0.1] * 64}, 400, "invalid_input"),
        ({"vector": [0.1] * 64, "mode": "keyword"}, 400, "invalid_input"),
        ({"text": "x", "mode": "keyword", "mmr": True}, 400, "invalid_input"),
        ({"text": "x", "alpha": 0.2}, 400, "invalid_input"),
        ({"text": "x", "fetch_k": 9}, 400, "invalid_input"),
        ({"text": "x", "mode": "semantic"}, 422, "validation_error"),
        ({"text": "x", "topk": 3}, 422, "validation_error"),
        ({"text": "x", "filter": {"year": {"$gt": [1]}}}, 400, "invalid_filter"),
        ({"text": "x", "filter": {"$or": {"a": 1}}}, 400, "invalid_filter"),
        ({"text": "x", "filter": "kind=food"}, 422, "validation_error"),
        ({"vector": [0.1] * 3}, 400, "dimension_mismatch"),
        ({"vector": []}, 422, "validation_error"),
        ({"text": "x", "mode": "hybrid", "alpha": 2}, 422, "validation_error"),
    ],
)
def test_query_refuses_bad_input(
    client: httpx.Client, corpus: str, body: dict[str, Any], status: int, code: str
) -> None:
    error(client.post(f"/collections/{corpus}/query", json=body), status, code)


# -- bad input changes nothing -----------------------------------------------------------------
BAD_WRITES: list[tuple[str, str, Any, int, str]] = [
    ("post", "documents", {"documents": [{"id": "a", "text": "1"}, {"id": "a", "text": "2"}]}, 400, "invalid_input"),
    ("post", "documents", {"documents": [{"id": "", "text": "1"}]}, 400, "invalid_input"),
    ("post", "documents", {"documents": [{"text": "1", "vector": [0.0] * 64}, {"text": "2"}]}, 400, "invalid_input"),
    ("post", "documents", {"documents": [{"text": "1", "vector": [0.5] * 63}]}, 400, "dimension_mismatch"),
    ("post", "documents", {"documents": [{"text": "1", "vector": [0.5] * 64}], "split": True}, 400, "invalid_input"),
    ("post", "documents", {"documents": [{"text": 5}]}, 422, "validation_error"),
    ("post", "documents", {"documents": [{"text": "x", "metadata": {"v": {"$bad": 1}}}]}, 400, "invalid_input"),
    ("post", "documents", {"documents": [{"text": "x", "metadata": {"deep": "x" * 70_000}}]}, 413, "payload_too_large"),
    ("post", "documents", [{"text": "not an object"}], 422, "validation_error"),
    ("put", "documents/absent", {"text": "x"}, 404, "document_not_found"),
    ("put", "documents/keep", {"text": "x", "vector": [1.0] * 5}, 400, "dimension_mismatch"),
    ("post", "documents/delete", {"ids": "keep"}, 422, "validation_error"),
    ("delete", "documents/absent", None, 404, "document_not_found"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_WRITES)
def test_bad_writes_change_nothing(
    client: httpx.Client, coll: str, method: str, path: str, body: Any, status: int, code: str
) -> None:
    add(client, coll, [{"id": "keep", "text": "kept", "metadata": {"n": 1}}])
    before = snapshot(client, coll)
    kwargs = {"json": body} if body is not None else {}
    r = client.request(method.upper(), f"/collections/{coll}/{path}", **kwargs)
    error(r, status, code)
    assert snapshot(client, coll) == before


def test_nan_and_infinity_are_refused(client: httpx.Client, coll: str) -> None:
    for token in ("NaN", "Infinity", "-Infinity"):
        vector = ", ".join([token] + ["0.0"] * 63)
        raw = '{"documents": [{"text": "x", "vector": [' + vector + "]}]}"
        r = client.post(
            f"/collections/{coll}/documents",
            content=raw,
            headers={"content-type": "application/json"},
        )
        error(r, 422, "validation_error")
    assert client.get(f"/collections/{coll}").json()["stats"]["documents"] == 0


# -- malformed and oversized bodies ------------------------------------------------------------
def test_malformed_bodies(client: httpx.Client, coll: str) -> None:
    url = f"/collections/{coll}/documents"
    json_type = {"content-type": "application/json"}
    message = error(client.post(url, content=b'{"documents": [', headers=json_type), 400, "malformed_body")
    assert "not valid JSON" in message
    error(client.post(url, content=b"\xff\xfe", headers=json_type), 400, "malformed_body")
    error(client.post(url, content=b'{"documents": []}', headers={"content-type": "text/plain"}), 422, "validation_error")
    error(client.post(url), 422, "validation_error")
    assert client.get(f"/collections/{coll}").json()["stats"]["version"] == 1


def test_oversized_bodies_get_413_before_being_read(client: httpx.Client, coll: str) -> None:
    url = f"/collections/{coll}/documents"
    big = json.dumps({"documents": [{"text": "x" * (MAX_BODY + 10)}]}).encode()
    r = client.post(url, content=big, headers={"content-type": "application/json"})
    message = error(r, 413, "payload_too_large")
    assert str(MAX_BODY) in message and "max_body_bytes" in message

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        yield b'{"documents": [{"text": "'
        for _ in range(MAX_BODY // 1024 + 4):
            yield b"y" * 1024
        yield b'"}]}'

    r = client.post(url, content=chunks(), headers={"content-type": "application/json"})
    assert r.request.headers.get("transfer-encoding") == "chunked"
    error(r, 413, "payload_too_large")
    small = json.dumps({"documents": [{"text": "x" * (MAX_BODY // 2)}]})
    assert client.post(url, content=small, headers={"content-type": "application/json"}).status_code == 201
    assert client.get(f"/collections/{coll}").json()["stats"]["documents"] == 1


# -- uploads -----------------------------------------------------------------------------------
def test_upload_ingests_with_a_per_file_report(client: httpx.Client, coll: str, workdir: Path) -> None:
    files = [
        ("files", ("notes/guide.md", b"# Guide\n\nRotate the keys every month.\n", "text/markdown")),
        ("files", ("plain.txt", b"Penguins live in the south.", "text/plain")),
        ("files", ("data.xyz", b"???", "application/octet-stream")),
        ("files", ("empty.txt", b"", "text/plain")),
    ]
    r = client.post(f"/collections/{coll}/upload", files=files)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ok"] is False and report["files_seen"] == 4  # each file counted once
    assert sorted(report["files_added"]) == ["notes/guide.md", "plain.txt"]
    assert list(report["files_failed"]) == ["data.xyz"] and "unsupported" in report["files_failed"]["data.xyz"]
    assert list(report["files_skipped"]) == ["empty.txt"]
    assert "data.xyz" in report["summary"] and str(workdir) not in report["summary"]
    hit = client.post(f"/collections/{coll}/query", json={"text": "penguins south", "k": 1}).json()
    assert hit["results"][0]["text"] == "Penguins live in the south."
    assert hit["results"][0]["metadata"]["file_type"] == "txt"
    assert not any((workdir / "uploads").rglob("*.*"))  # staged files removed

    again = client.post(f"/collections/{coll}/upload", files=files[:2]).json()
    assert sorted(again["files_unchanged"]) == ["notes/guide.md", "plain.txt"]
    assert again["texts_embedded"] == 0 and again["ok"] is True
    changed = [("files", ("plain.txt", b"Penguins swim in cold water.", "text/plain"))]
    updated = client.post(f"/collections/{coll}/upload", files=changed).json()
    assert updated["files_updated"] == ["plain.txt"] and updated["chunks_removed"] == 1
    assert client.get(f"/collections/{coll}").json()["stats"]["documents"] == 2


def test_upload_refusals(client: httpx.Client, coll: str) -> None:
    url = f"/collections/{coll}/upload"
    bad_name = [("files", ("../escape.txt", b"x", "text/plain"))]
    error(client.post(url, files=bad_name), 400, "invalid_input")
    twice = [("files", ("a.txt", b"x", "text/plain")), ("files", ("a.txt", b"y", "text/plain"))]
    error(client.post(url, files=twice), 400, "invalid_input")
    error(client.post(url, json={"files": []}), 422, "validation_error")
    between = [("files", ("big.txt", b"word " * (MAX_BODY // 4), "text/plain"))]  # > body limit
    assert client.post(url, files=between).status_code == 200  # uploads have their own limit
    too_big = [("files", ("huge.txt", b"word " * (MAX_UPLOAD // 4), "text/plain"))]
    message = error(client.post(url, files=too_big), 413, "payload_too_large")
    assert "max_upload_bytes" in message
    assert client.get(f"/collections/{coll}/documents").json()["total"] >= 1


# -- maintenance -------------------------------------------------------------------------------
def test_verify_and_compact(client: httpx.Client, coll: str) -> None:
    for i in range(3):
        add(client, coll, [{"id": f"x{i}", "text": f"text {i}"}])
    client.post(f"/collections/{coll}/documents/delete", json={"ids": ["x0"]})
    verified = client.post(f"/collections/{coll}/verify").json()
    assert verified["ok"] is True and verified["report"]["documents"] == 2
    compacted = client.post(f"/collections/{coll}/compact").json()
    assert compacted["compacted"] is True and compacted["stats"]["segments"] == 1
    assert compacted["stats"]["tombstones"] == 0 and compacted["stats"]["documents"] == 2
    assert client.post(f"/collections/{coll}/compact").json()["compacted"] is False


def test_verify_reports_damage(client: httpx.Client, workdir: Path) -> None:
    name = new_collection(client)
    add(client, name, [{"id": "a", "text": "soon damaged"}])
    segment = next((workdir / "root" / name / "segments").iterdir())
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    r = client.post(f"/collections/{name}/verify")
    assert r.status_code == 200
    assert r.json()["ok"] is False and "checksum" in r.json()["problem"].lower()
    client.delete(f"/collections/{name}")
