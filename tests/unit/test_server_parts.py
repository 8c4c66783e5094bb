"""The service's parts that need no server: settings and where they come from, API keys,
the error table, collection descriptors, and the descriptor-driven registry over a local
root (in process)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from vectordb_manager import (
    ConcurrentModificationError,
    ConfigurationError,
    DimensionMismatchError,
    DocumentNotFoundError,
    DocumentProcessingError,
    EmbeddingError,
    IntegrityError,
    InvalidInputError,
    StorageError,
    StoreNotFoundError,
    VectorDBConfig,
    VectorDBError,
)
from vectordb_manager.cli import build_parser
from vectordb_manager.config import load_config_file
from vectordb_manager.server.auth import KeyRing
from vectordb_manager.server.command import build_settings
from vectordb_manager.server.errors import ERROR_CODES, PACKAGE_ERRORS, ApiError, classify
from vectordb_manager.server.limits import UPLOAD_PATH
from vectordb_manager.server.registry import CollectionRegistry, CollectionSpec
from vectordb_manager.server.settings import SETTING_NAMES, ApiKey, ServerSettings, parse_keys

FAKE = VectorDBConfig(embedding_provider="fake", embedding_dimensions=16)
SECRET = "s3cret-value-123"
WAIT = 60.0  # seconds: generous, for a busy machine; the events come at once


# -- settings ----------------------------------------------------------------------------------
def test_setting_names_are_the_fields() -> None:
    import dataclasses

    assert set(SETTING_NAMES) == {f.name for f in dataclasses.fields(ServerSettings)} - {"store"}


def test_settings_validate_every_field_at_once() -> None:
    with pytest.raises(ConfigurationError) as bad:
        ServerSettings(
            store=VectorDBConfig(storage_type="memory"),
            port=70000,
            refresh_interval=-1,
            max_body_bytes=0,
            host="",
        )
    message = str(bad.value)
    for name in ("memory", "port=70000", "refresh_interval=-1", "max_body_bytes=0", "host="):
        assert name in message


def test_settings_precedence_file_env_flags() -> None:
    settings = ServerSettings.from_sources(
        FAKE,
        file_section={"port": 1, "host": "0.0.0.0", "refresh_interval": 5},
        environ={"VECTORDB_SERVER_PORT": "2", "VECTORDB_SERVER_REFRESH_INTERVAL": "0.25"},
        flags={"port": 3, "host": None},
    )
    assert (settings.port, settings.host, settings.refresh_interval) == (3, "0.0.0.0", 0.25)
    with pytest.raises(ConfigurationError, match=r"unknown server setting.*'prot'"):
        ServerSettings.from_sources(FAKE, file_section={"prot": 1}, environ={})
    with pytest.raises(ConfigurationError, match="VECTORDB_SERVER_PORT='x'"):
        ServerSettings.from_sources(FAKE, environ={"VECTORDB_SERVER_PORT": "x"})


def test_keep_alive_outlasts_clients_idle_connections() -> None:
    """The server keeps an idle connection open longer than httpx (the SDK) keeps it, so the
    client closes it first: a server that closes first races the client's next request."""
    import httpx

    assert ServerSettings().keep_alive > httpx.Limits().keepalive_expiry  # type: ignore[operator]
    parsed = ServerSettings.from_sources(FAKE, environ={"VECTORDB_SERVER_KEEP_ALIVE": "9"})
    assert parsed.keep_alive == 9
    args = build_parser().parse_args(["--provider", "fake", "serve", "--keep-alive", "2"])
    assert build_settings(args).keep_alive == 2
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigurationError, match="keep_alive"):
            ServerSettings(keep_alive=bad)  # type: ignore[arg-type]


def test_keys_from_the_environment_and_their_checks() -> None:
    env = {"VECTORDB_SERVER_API_KEYS": json.dumps([{"key": SECRET, "access": "write"}])}
    settings = ServerSettings.from_sources(FAKE, environ=env)
    assert settings.api_keys == (ApiKey(key=SECRET, access="write"),)
    assert SECRET not in repr(settings) and SECRET not in repr(settings.api_keys[0])
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        ServerSettings.from_sources(FAKE, environ={"VECTORDB_SERVER_API_KEYS": "[{"})
    for bad, match in [
        ([{"key": "short"}], "at least 8"),
        ([{"key": SECRET, "access": "admin"}], "'read' or 'write'"),
        ([{"key": SECRET, "scope": "x"}], "unknown field"),
        ([{"key": SECRET, "collections": "docs"}], "list of collection names"),
        ([{"key": SECRET}, {"key": SECRET}], "twice"),
        ({"key": SECRET}, "must be a list"),
    ]:
        with pytest.raises(ConfigurationError, match=match):
            parse_keys(bad, "keys")


def test_one_config_file_for_the_store_and_the_server(tmp_path: Path) -> None:
    config = tmp_path / "vectordb.toml"
    config.write_text(
        '[vectordb]\nembedding_provider = "fake"\nchunk_size = 300\n\n'
        f'[server]\nport = 9100\n[[server.api_keys]]\nkey = "{SECRET}"\naccess = "read"\n'
    )
    assert load_config_file(config) == {"embedding_provider": "fake", "chunk_size": 300}
    args = build_parser().parse_args(
        ["--config", str(config), "--path", str(tmp_path / "root"), "serve", "--host", "::1"]
    )
    settings = build_settings(args)
    assert settings.port == 9100 and settings.host == "::1"
    assert settings.store.chunk_size == 300 and settings.store.local_path == str(tmp_path / "root")
    assert settings.api_keys[0].access == "read"


# -- keys --------------------------------------------------------------------------------------
def test_key_ring_decisions() -> None:
    ring = KeyRing(
        [
            ApiKey(key="writer-key-1", access="write"),
            ApiKey(key="reader-key-1", access="read"),
            ApiKey(key="scoped-key-1", access="write", collections=frozenset({"a"})),
        ]
    )

    def code(presented: str | None, access: str, collection: str | None = None) -> str:
        try:
            ring.authorize(presented, access, collection)  # type: ignore[arg-type]
        except ApiError as exc:
            return exc.code
        return "ok"

    assert code(None, "read") == "missing_key"
    assert code("", "read") == "missing_key"
    assert code("writer-key-", "read") == "invalid_key"
    assert code("writer-key-1", "write", "x") == "ok"
    assert code("reader-key-1", "read", "x") == "ok"
    assert code("reader-key-1", "write", "x") == "read_only_key"
    assert code("scoped-key-1", "write", "a") == "ok"
    assert code("scoped-key-1", "read", "b") == "collection_not_allowed"
    assert code("scoped-key-1", "read") == "ok"  # no collection named (listing)
    assert ring.identify("scoped-key-1") is not None and ring.identify("nope") is None
    assert KeyRing([]).authorize(None, "write", "x").access == "write"  # open


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (InvalidInputError("k=0 must be positive"), "invalid_input", 400),
        (DimensionMismatchError("dimension 3, not 64"), "dimension_mismatch", 400),
        (ConfigurationError("bad distance"), "invalid_configuration", 400),
        (DocumentNotFoundError("no document x"), "document_not_found", 404),
        (StoreNotFoundError("no store"), "collection_not_found", 404),
        (DocumentProcessingError("bad file"), "unprocessable_file", 400),
        (EmbeddingError("model failed"), "embedding_failed", 502),
        (IntegrityError("checksum"), "integrity_error", 500),
        (ConcurrentModificationError("lost races"), "busy", 503),
        (StorageError("disk full"), "storage_unavailable", 503),
        (VectorDBError("other"), "internal_error", 500),
        (ValueError("LangChain's bad argument"), "invalid_input", 400),
    ],
)
def test_package_errors_map_to_codes(exc: Exception, code: str, status: int) -> None:
    got, message = classify(exc)
    assert (got, ERROR_CODES[got]) == (code, status)
    assert str(exc) in message
    if status >= 500:
        assert "; " in message  # with what to do


def test_every_mapped_code_exists() -> None:
    assert {code for _, code, _ in PACKAGE_ERRORS} <= set(ERROR_CODES)
    assert all(400 <= status < 600 for status in ERROR_CODES.values())
    assert classify(KeyError("x"))[0] == "internal_error"


def test_upload_path() -> None:
    assert UPLOAD_PATH.fullmatch("/collections/docs/upload")
    assert not UPLOAD_PATH.fullmatch("/collections/docs/documents")
    assert not UPLOAD_PATH.fullmatch("/collections/a/b/upload")


# -- collections -------------------------------------------------------------------------------
def test_descriptor_round_trip_and_damage() -> None:
    spec = CollectionSpec("docs", "u1", "2024-01-01T00:00:00+00:00", "fake", None, 16,
                          "cosine", "flat", 1000, 200)  # fmt: skip
    assert CollectionSpec.from_bytes(spec.to_bytes(), "x") == spec
    for damaged in (b"{", b"[]", b'{"format": "other"}', spec.to_bytes().replace(b'"uid"', b'"id"')):
        with pytest.raises(IntegrityError, match="collection descriptor"):
            CollectionSpec.from_bytes(damaged, "x")


def test_registry_over_a_local_root(tmp_path: Path) -> None:
    settings = ServerSettings(store=FAKE.replace(local_path=str(tmp_path)), refresh_interval=0)
    first, second = CollectionRegistry(settings), CollectionRegistry(settings)
    created = first.create("docs", {"distance_metric": "l2", "chunk_size": 100, "chunk_overlap": 0})
    assert created.store.stats()["distance"] == "l2" and created.spec.chunk_size == 100
    with pytest.raises(ApiError) as exists:
        second.create("docs", {})
    assert exists.value.code == "collection_exists"
    created.store.add_texts(["written by the first"], ids=["1"])
    seen = second.get("docs")  # another process would see the same
    assert seen.store.get_by_ids(["1"])[0].page_content == "written by the first"
    assert [s.name for s in second.specs()] == ["docs"]
    (tmp_path / "not-a-collection").mkdir()
    assert second.names() == ["docs"]
    first.delete("docs")
    with pytest.raises(ApiError) as gone:
        second.get("docs")  # its descriptor is gone
    assert gone.value.code == "collection_not_found"
    assert not (tmp_path / "docs").exists()
    with pytest.raises(ApiError) as bad_name:
        first.create("../x", {})
    assert bad_name.value.code == "invalid_input"
    with pytest.raises(ApiError) as not_offered:
        first.create("hf", {"embedding_provider": "huggingface"})
    assert not_offered.value.code == "invalid_configuration"
    assert not (tmp_path / "hf").exists()
    with pytest.raises(ConfigurationError):
        first.create("chunks", {"chunk_size": 10, "chunk_overlap": 10})
    assert not (tmp_path / "chunks").exists()


def test_every_error_code_and_setting_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "server.md").read_text()
    for code, status in ERROR_CODES.items():
        assert f"| {status} | `{code}` |" in doc, code
    for name in SETTING_NAMES:
        assert f"| `{name}` |" in doc, name


def test_the_server_keeps_blas_to_one_thread() -> None:
    """`vectordb serve` answers requests side by side: BLAS's own threads would oversubscribe
    the cores (see `limit_blas_threads`)."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "from vectordb_manager.server.command import limit_blas_threads\n"
        "def blas(): return [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "before = blas()\n"
        "assert limit_blas_threads()\n"
        "print(json.dumps([before, blas()]))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    run = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    before, after = json.loads(run.stdout)
    assert before == [2] and after == [1]


def test_a_collection_in_use_by_a_write_is_served_without_waiting_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a refresh interval, a request that finds a collection due for a refresh while a
    write of this server is committing (on S3, several round trips) is served from what is
    loaded, not queued behind the write; once the write is done it holds both documents."""
    settings = ServerSettings(store=FAKE.replace(local_path=str(tmp_path)), refresh_interval=1e-9)
    registry = CollectionRegistry(settings)
    collection = registry.create("docs", {})
    collection.store.add_texts(["first"], ids=["1"])
    log = collection.store.engine.log
    assert log is not None
    proposing, release = threading.Event(), threading.Event()
    real = log.propose

    def slow_propose(*args: Any, **kwargs: Any) -> bool:
        proposing.set()
        assert release.wait(WAIT)
        return real(*args, **kwargs)

    monkeypatch.setattr(log, "propose", slow_propose)
    writer = threading.Thread(target=collection.store.add_texts, args=(["second"],))
    writer.start()
    served: list[list[str]] = []
    try:
        assert proposing.wait(WAIT)
        reader = threading.Thread(
            target=lambda: served.append(registry.get("docs").store.get_ids()), daemon=True
        )
        reader.start()
        reader.join(WAIT)  # returns at once; before the fix, only once the write was released
        assert served == [["1"]]
    finally:
        release.set()
        writer.join(WAIT)
    assert len(registry.get("docs").store.get_ids()) == 2


def test_serve_tunes_malloc_where_it_can() -> None:
    """glibc's mallopt accepts the arena limit and the fixed thresholds on Linux (the serve
    bench measures the effect: resident memory under 16 clients); elsewhere the call says it
    could not."""
    import sys

    from vectordb_manager.server.command import tune_malloc

    assert tune_malloc() is sys.platform.startswith("linux")
