"""The ``openai`` embedding provider against a real local server speaking the embeddings API.

The server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1) answers ``POST /v1/embeddings`` with
deterministic vectors (a signed, hashed bag of words, L2-normalised), in float or base64
(little-endian float32) encoding, records every request, and can be told to fail the next
requests with a given status. Everything goes through the package: ``VectorDBConfig`` ->
``EmbeddingService.from_config`` / ``VectorDatabaseManager`` / ``create_vector_store``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from vectordb_manager import (
    ConfigurationError,
    EmbeddingError,
    EmbeddingService,
    VectorDatabaseManager,
    VectorDBConfig,
    create_vector_store,
)

API_KEY = "sk-test-123"
MODEL = "text-embedding-3-small"
DEFAULT_DIM = 64
_WORD = re.compile(r"\w+")


# -- the server ------------------------------------------------------------------------------


def server_vector(text: str, dim: int = DEFAULT_DIM) -> list[float]:
    """The server's embedding of a text: a signed, hashed bag of lower-cased words."""
    vec = np.zeros(dim, dtype=np.float64)
    for word in _WORD.findall(text.lower()):
        value = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        vec[value % dim] += 1.0 if (value >> 63) & 1 else -1.0
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:
        vec[0], norm = 1.0, 1.0
    return [float(x) for x in vec / norm]


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any

    @property
    def inputs(self) -> list[str]:
        data = self.body["input"]
        return [data] if isinstance(data, str) else list(data)


@dataclass
class Failure:
    """A scripted error response."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAI:
    """State shared by the handler threads: recorded requests and scripted failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests: list[Request] = []
        self._script: deque[Failure | None] = deque()
        self._lock = threading.Lock()

    def fail(
        self,
        status: int,
        times: int = 1,
        *,
        after: int = 0,
        message: str = "scripted failure",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Let ``after`` requests succeed, then answer ``times`` requests with ``status``."""
        with self._lock:
            self._script.extend([None] * after)
            self._script.extend([Failure(status, message, headers or {})] * times)

    def record(self, request: Request) -> Failure | None:
        with self._lock:
            self.requests.append(request)
            return self._script.popleft() if self._script else None

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()

    @property
    def batches(self) -> list[list[str]]:
        return [r.inputs for r in self.requests]


def _headers(items: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in items}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        self._reply(status, {"error": {"message": message, "type": kind, "code": None}}, headers)

    def do_GET(self) -> None:
        self.server.state.record(Request("GET", self.path, _headers(self.headers.items()), None))
        self._error(404, f"no route GET {self.path}")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        failure = self.server.state.record(
            Request("POST", self.path, _headers(self.headers.items()), body)
        )
        if failure is not None:
            self._error(failure.status, failure.message, failure.headers)
            return
        if self.path != "/v1/embeddings":
            self._error(404, f"no route POST {self.path}")
            return
        if not isinstance(body, dict) or "input" not in body or "model" not in body:
            self._error(400, "'input' and 'model' are required")
            return
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._error(400, "this server only embeds strings")
            return
        dim = body.get("dimensions") or DEFAULT_DIM
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64") or not isinstance(dim, int) or dim <= 0:
            self._error(400, f"bad encoding_format {fmt!r} or dimensions {dim!r}")
            return
        data = []
        for i, text in enumerate(texts):
            vector: Any = server_vector(text, dim)
            if fmt == "base64":
                vector = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        tokens = sum(len(_WORD.findall(t)) for t in texts)
        self._reply(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: FakeOpenAI


@pytest.fixture(scope="module")
def _running() -> Iterator[FakeOpenAI]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    host, port = httpd.server_address[:2]
    httpd.state = FakeOpenAI(f"http://{host!s}:{port}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.state
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@dataclass
class Connections:
    """Every outgoing connection and name lookup made during a test."""

    connects: list[Any] = field(default_factory=list)
    lookups: list[Any] = field(default_factory=list)


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Connections:
    """Record outgoing connections; anything but 127.0.0.1 is refused (and recorded)."""
    seen = Connections()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        seen.connects.append(address)
        if not (isinstance(address, tuple) and address[0] == "127.0.0.1"):
            raise ConnectionRefusedError(f"test forbids connecting to {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.lookups.append(host)
        if host not in ("127.0.0.1", b"127.0.0.1"):
            raise socket.gaierror(f"test forbids resolving {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


@pytest.fixture
def server(
    _running: FakeOpenAI, network: Connections, monkeypatch: pytest.MonkeyPatch
) -> FakeOpenAI:
    """The server, with no recorded requests or scripted failures, and a clean environment."""
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_API_BASE",
        "OPENAI_ORGANIZATION",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "OPENAI_PROXY",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)

    def no_tiktoken(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("tiktoken must not be used with a base_url")

    import tiktoken

    monkeypatch.setattr(tiktoken, "encoding_for_model", no_tiktoken)
    monkeypatch.setattr(tiktoken, "get_encoding", no_tiktoken)
    _running.reset()
    return _running


def make_config(server: FakeOpenAI, **overrides: Any) -> VectorDBConfig:
    settings: dict[str, Any] = {
        "embedding_provider": "openai",
        "openai_base_url": server.url + "/v1",
        "openai_api_key": API_KEY,
        "embedding_model": MODEL,
        "embedding_dimensions": DEFAULT_DIM,
        "embedding_batch_size": 4,
        "storage_type": "memory",
        **overrides,
    }
    return VectorDBConfig(**settings)


TEXTS = [
    "cats purr when they are content",
    "dogs bark at strangers",
    "birds sing at dawn",
    "fish swim in the sea",
    "horses gallop across fields",
    "bees make honey in hives",
    "owls hunt at night",
    "frogs croak near ponds",
    "snakes shed their skin",
    "wolves howl at the moon",
]


async def aclose(service: EmbeddingService) -> None:
    """Close the async client's connections (the package offers no ``aclose``)."""
    await service.inner.async_client._client.close()  # type: ignore[attr-defined]


def assert_vectors(vectors: Any, texts: list[str], dim: int = DEFAULT_DIM) -> None:
    array = np.asarray(vectors, dtype=np.float64)
    expected = np.asarray([server_vector(t, dim) for t in texts])
    assert array.shape == expected.shape
    # float32 on the wire (base64): equal to ~1e-7; each row must match its own text
    np.testing.assert_allclose(array, expected, atol=1e-6)


# -- construction ----------------------------------------------------------------------------


def test_known_dimension_without_any_request(server: FakeOpenAI, network: Connections) -> None:
    service = EmbeddingService.from_config(make_config(server))
    assert service.known_dimension == DEFAULT_DIM
    assert service.dimension == DEFAULT_DIM
    assert service.model_name == MODEL
    VectorDatabaseManager(make_config(server))
    assert server.requests == []
    assert network.connects == []


def test_no_token_counting_with_a_base_url(server: FakeOpenAI) -> None:
    inner: Any = EmbeddingService.from_config(make_config(server)).inner
    assert type(inner).__name__ == "OpenAIEmbeddings"
    assert inner.check_embedding_ctx_length is False
    assert inner.model == MODEL
    assert inner.dimensions == DEFAULT_DIM


def test_missing_api_key_is_a_configuration_error(server: FakeOpenAI) -> None:
    config = make_config(server, openai_api_key=None)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        EmbeddingService.from_config(config)
    assert server.requests == []


# -- requests and batching -------------------------------------------------------------------


def test_batches_follow_embedding_batch_size_in_order(server: FakeOpenAI) -> None:
    service = EmbeddingService.from_config(make_config(server, embedding_batch_size=4))
    vectors = service.embed_documents(TEXTS)
    assert server.batches == [TEXTS[0:4], TEXTS[4:8], TEXTS[8:10]]
    assert_vectors(vectors, TEXTS)
    array = service.embed_array(TEXTS)
    assert array.dtype == np.float32
    assert array.shape == (10, DEFAULT_DIM)
    assert_vectors(array, TEXTS)


def test_langchain_chunk_size_inside_a_batch_keeps_order(server: FakeOpenAI) -> None:
    service = EmbeddingService.from_config(make_config(server, embedding_batch_size=4))
    service.inner.chunk_size = 3  # type: ignore[attr-defined]
    vectors = service.embed_documents(TEXTS)
    sizes = [len(b) for b in server.batches]
    assert sizes == [3, 1, 3, 1, 2]
    assert [t for b in server.batches for t in b] == TEXTS
    assert_vectors(vectors, TEXTS)


def test_request_carries_model_dimensions_and_bearer_key(
    server: FakeOpenAI, network: Connections
) -> None:
    service = EmbeddingService.from_config(make_config(server))
    service.embed_documents(TEXTS[:2])
    service.embed_query("a question about cats")
    assert len(server.requests) == 2
    for request in server.requests:
        assert (request.method, request.path) == ("POST", "/v1/embeddings")
        assert request.body["model"] == MODEL
        assert request.body["dimensions"] == DEFAULT_DIM
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.headers["content-type"].startswith("application/json")
    assert server.requests[1].inputs == ["a question about cats"]
    # nothing else was contacted: no tiktoken download, no api.openai.com
    port = int(server.url.rsplit(":", 1)[1])
    assert network.connects, "the connection guard saw no connection at all"
    assert {c[:2] for c in network.connects} == {("127.0.0.1", port)}
    assert set(network.lookups) <= {"127.0.0.1", b"127.0.0.1"}


def test_base64_and_float_encodings_give_the_same_vectors(server: FakeOpenAI) -> None:
    service = EmbeddingService.from_config(make_config(server))
    default = service.embed_documents(TEXTS[:3])
    # the openai client asks for base64 unless told otherwise, and decodes it
    assert server.requests[0].body["encoding_format"] == "base64"
    floats = service.inner.embed_documents(  # type: ignore[call-arg]
        TEXTS[:3], encoding_format="float"
    )
    assert server.requests[1].body["encoding_format"] == "float"
    assert_vectors(default, TEXTS[:3])
    assert_vectors(floats, TEXTS[:3])


def test_dimension_learnt_from_a_model_without_a_known_size(server: FakeOpenAI) -> None:
    config = make_config(server, embedding_model="nomic-embed-text", embedding_dimensions=None)
    service = EmbeddingService.from_config(config)
    assert service.known_dimension is None
    assert server.requests == []
    vectors = service.embed_documents(TEXTS[:2])
    assert "dimensions" not in server.requests[0].body
    assert service.known_dimension == DEFAULT_DIM
    assert_vectors(vectors, TEXTS[:2])


async def test_async_embed_documents_and_query(server: FakeOpenAI) -> None:
    service = EmbeddingService.from_config(make_config(server, embedding_batch_size=4))
    vectors = await service.aembed_documents(TEXTS)
    assert server.batches == [TEXTS[0:4], TEXTS[4:8], TEXTS[8:10]]
    assert_vectors(vectors, TEXTS)
    query = await service.aembed_query("owls at night")
    assert_vectors([query], ["owls at night"])
    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in server.requests)
    await aclose(service)


async def test_async_error_is_an_embedding_error(server: FakeOpenAI) -> None:
    service = EmbeddingService.from_config(make_config(server))
    server.fail(400, message="input is too long for this model")
    with pytest.raises(EmbeddingError, match="input is too long for this model"):
        await service.aembed_documents(TEXTS[:2])
    assert len(server.requests) == 1
    await aclose(service)


# -- errors and retries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "Incorrect API key provided"), (400, "dimensions must be at most 1536")],
)
def test_client_error_is_an_embedding_error_naming_model_and_cause(
    server: FakeOpenAI, status: int, message: str
) -> None:
    service = EmbeddingService.from_config(make_config(server))
    server.fail(status, message=message)
    with pytest.raises(EmbeddingError) as info:
        service.embed_documents(TEXTS[:3])
    text = str(info.value)
    assert MODEL in text
    assert message in text
    assert str(status) in text
    assert len(server.requests) == 1  # 4xx (other than 408/409/429) is not retried


def test_failed_embedding_writes_nothing_to_the_store(server: FakeOpenAI) -> None:
    db = VectorDatabaseManager(make_config(server, embedding_batch_size=4))
    server.fail(401, message="Incorrect API key provided")
    with pytest.raises(EmbeddingError, match="Incorrect API key provided"):
        db.add_texts(TEXTS[:3])
    assert db.count() == 0
    # a failure in the last batch, after two batches succeeded, writes nothing either
    server.fail(400, after=2, message="bad input in batch three")
    with pytest.raises(EmbeddingError, match="bad input in batch three"):
        db.add_texts(TEXTS)
    assert db.count() == 0
    assert [len(b) for b in server.batches] == [3, 4, 4, 2]
    db.add_texts(TEXTS)
    assert db.count() == len(TEXTS)


def test_server_error_is_retried_then_succeeds(server: FakeOpenAI) -> None:
    service = EmbeddingService.from_config(make_config(server))
    # retry-after-ms is honoured by the openai client; it keeps the test fast
    server.fail(500, message="upstream overloaded", headers={"retry-after-ms": "10"})
    vectors = service.embed_documents(TEXTS[:3])
    assert_vectors(vectors, TEXTS[:3])
    assert len(server.requests) == 2
    assert server.batches == [TEXTS[:3], TEXTS[:3]]
    assert server.requests[1].headers.get("x-stainless-retry-count") == "1"


def test_rate_limit_with_retry_after_zero_is_retried(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = EmbeddingService.from_config(make_config(server))
    server.fail(429, message="rate limited", headers={"Retry-After": "0"})
    waits: list[float] = []  # what this thread slept (the client sleeps before a retry)
    caller, real_sleep = threading.get_ident(), time.sleep

    def sleep(seconds: float) -> None:
        if threading.get_ident() == caller:
            waits.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    vectors = service.embed_documents(TEXTS[:2])
    assert_vectors(vectors, TEXTS[:2])
    assert len(server.requests) == 2
    # Retry-After: 0 falls back to the client's own backoff (0.5 s less up to 25% jitter)
    assert len(waits) == 1 and 0.375 <= waits[0] <= 0.5, waits


async def test_async_server_error_is_retried(server: FakeOpenAI) -> None:
    service = EmbeddingService.from_config(make_config(server))
    server.fail(503, message="try again", headers={"retry-after-ms": "10"})
    vectors = await service.aembed_documents(TEXTS[:2])
    assert_vectors(vectors, TEXTS[:2])
    assert len(server.requests) == 2
    await aclose(service)


def test_persistent_server_error_gives_up_with_an_embedding_error(server: FakeOpenAI) -> None:
    service = EmbeddingService.from_config(make_config(server))
    server.fail(500, times=10, message="still down", headers={"retry-after-ms": "10"})
    with pytest.raises(EmbeddingError, match="still down") as info:
        service.embed_documents(TEXTS[:2])
    assert MODEL in str(info.value)
    assert len(server.requests) == 3  # one try + the client's default two retries


# -- end to end ------------------------------------------------------------------------------


def test_manager_adds_and_searches_through_the_server(server: FakeOpenAI) -> None:
    db = VectorDatabaseManager(make_config(server, embedding_batch_size=4))
    assert server.requests == []
    ids = db.add_texts(TEXTS, [{"n": i} for i in range(len(TEXTS))])
    assert len(ids) == len(TEXTS)
    assert db.count() == len(TEXTS)
    assert server.batches == [TEXTS[0:4], TEXTS[4:8], TEXTS[8:10]]
    for query, expected in [
        ("why do cats purr", 0),
        ("the wolves and the moon", 9),
        ("honey from bees", 5),
    ]:
        hits = db.search(query, k=1)
        assert [h.page_content for h in hits] == [TEXTS[expected]], query
        assert hits[0].metadata == {"n": expected}
        assert server.requests[-1].inputs == [query]
    scored = db.search_with_scores("dogs bark", k=2)
    assert scored[0][0].page_content == TEXTS[1]
    assert scored[0][1] > scored[1][1]
    assert db.stats()["dimension"] == DEFAULT_DIM


def test_create_vector_store_with_the_service(server: FakeOpenAI) -> None:
    config = make_config(server)
    store = create_vector_store(config, EmbeddingService.from_config(config))
    store.add_texts(["the red fox jumps", "a blue whale sings", "green frogs croak"])
    assert [d.page_content for d in store.similarity_search("blue whale", k=1)] == [
        "a blue whale sings"
    ]
    assert len(server.requests) == 2


# -- secrets ---------------------------------------------------------------------------------


def test_api_key_not_in_repr_or_debug_logs(
    server: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(server)
    assert API_KEY not in repr(config)
    assert API_KEY not in str(config)
    assert "openai_api_key" not in config.to_dict()
    caplog.set_level(logging.DEBUG)
    service = EmbeddingService.from_config(config)
    assert API_KEY not in repr(service.inner)
    service.embed_documents(TEXTS[:2])
    server.fail(500, headers={"retry-after-ms": "10"})
    service.embed_query("retry me")
    server.fail(401, message="Incorrect API key provided")
    with pytest.raises(EmbeddingError) as info:
        service.embed_query("fail me")
    assert API_KEY not in str(info.value)
    VectorDatabaseManager(config).add_texts(TEXTS[:2])
    assert len(server.requests) == 5
    assert any(r.name.startswith("openai") for r in caplog.records), "no client logs captured"
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    for record in caplog.records:
        assert API_KEY not in record.getMessage(), record.name
        assert API_KEY not in repr(record.args), record.name
    assert API_KEY not in caplog.text
