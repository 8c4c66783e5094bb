"""The `vectordb` command in process, through ``main(argv)``: commands that must not create a
store, ``vacuum`` and ``compact``, refused migrations, ``--verbose`` and unencodable names."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.moto_bucket import moto_bucket
from tests.s3_support import moto_server, s3_client
from vectordb_manager import LocalVectorStore, S3VectorStore
from vectordb_manager.cli import main
from vectordb_manager.embeddings import HashingEmbeddings

FAKE = ["--provider", "fake", "-q"]
# every command that reads or changes an existing store, with its arguments
EXISTING_STORE_COMMANDS = [
    ["stats"],
    ["search", "anything"],
    ["get", "some-id"],
    ["verify"],
    ["delete", "some-id"],
    ["vacuum"],
    ["compact"],
]


def tree(root: Path) -> list[str]:
    """Every directory and file under ``root``, relative."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command", [*EXISTING_STORE_COMMANDS, ["migrate", "--to", "target.json"]],
                         ids=lambda c: c[0])
def test_commands_on_a_missing_local_store_fail_and_create_nothing(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "target.json").write_text(json.dumps({"local_path": str(tmp_path / "target")}))
    before = tree(tmp_path)
    store = tmp_path / "missing" / "store"
    assert main([*FAKE, "--path", str(store), *command]) == 1
    captured = capsys.readouterr()
    assert one_error_line(captured.err).startswith(f"vectordb: error: no store at {store}")
    assert captured.out == ""
    assert tree(tmp_path) == before


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_bucket(monkeypatch, "cli-bucket") as client:
        yield client


def test_commands_on_an_empty_s3_prefix_fail_and_write_nothing(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = ["--storage", "s3", "--bucket", "cli-bucket", "--prefix", "empty", "--region", "us-east-1"]
    for command in EXISTING_STORE_COMMANDS:
        assert main([*FAKE, *s3, *command]) == 1, command
        line = one_error_line(capsys.readouterr().err)
        assert line.startswith("vectordb: error: no store at s3://cli-bucket/empty/"), line
    assert aws.list_objects_v2(Bucket="cli-bucket")["KeyCount"] == 0
    # ingest is the command that creates a store
    S3VectorStore(HashingEmbeddings(), "cli-bucket", "other", client=aws).add_texts(["x"])
    assert main([*FAKE, *s3, "--prefix", "other", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 1


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store of three documents in three segments plus one delete (a fourth segment)."""
    path = tmp_path / "store"
    db = LocalVectorStore(HashingEmbeddings(), path)
    for i, text in enumerate(["cats purr", "dogs bark", "birds sing"]):
        db.add_texts([text], ids=[f"d{i}"])
    db.delete(["d1"])
    return path


def plant(path: Path, age: float) -> Path:
    """An unreferenced file, as a crashed writer leaves it, last modified ``age`` seconds ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"left over")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_vacuum_removes_old_leftovers_only(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_segment = plant(store / "segments" / f"{uuid.uuid4().hex}.seg", 3600)
    old_temp = plant(store / "segments" / f".tmp-{uuid.uuid4().hex}", 3600)
    young = plant(store / "segments" / f"{uuid.uuid4().hex}.seg", 0)
    args = [*FAKE, "--path", str(store)]
    assert main([*args, "vacuum"]) == 0
    out = capsys.readouterr().out
    assert f"removed segments/{old_segment.name}" in out and f"removed segments/{old_temp.name}" in out
    assert "removed 2 unreferenced files (files younger than 600 s are kept)" in out
    assert not old_segment.exists() and not old_temp.exists() and young.exists()

    assert main([*args, "vacuum", "--older-than", "-1"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "older_than=-1.0 must be a finite number of seconds, zero or more" in line
    assert young.exists()

    assert main([*args, "vacuum", "--older-than", "0"]) == 0
    assert f"removed segments/{young.name}\nremoved 1 unreferenced file " in capsys.readouterr().out
    assert not young.exists()
    assert main([*args, "verify"]) == 0 and capsys.readouterr().out.startswith("OK: documents=2")


def test_compact_merges_and_says_so(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [*FAKE, "--path", str(store)]
    assert main([*args, "compact"]) == 0
    assert capsys.readouterr().out.startswith("compacted: 4 segments merged into 1, 1 deleted records")
    assert main([*args, "compact"]) == 0
    assert capsys.readouterr().out.startswith("nothing to compact")
    assert main([*args, "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["segments"] == 1 and stats["documents"] == 2 and stats["tombstones"] == 0


def test_a_refused_migration_creates_no_target(store: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "target.json"
    config.write_text(json.dumps({"local_path": str(tmp_path / "target"), "embedding_dimensions": 32}))
    assert main([*FAKE, "--path", str(store), "migrate", "--to", str(config)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("vectordb: error: the target configuration's embedding model") and "reembed" in line
    assert not (tmp_path / "target").exists()


def test_unencodable_names_are_printed_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = os.fsdecode(b"caf\xe9.txt")  # a file name that is not UTF-8: a lone surrogate
    source = str(tmp_path / "docs" / name)
    LocalVectorStore(HashingEmbeddings(), tmp_path / "store").add_texts(
        ["a recipe for crème brûlée"], [{"source": source}], ids=["recipe"]
    )
    args = [*FAKE, "--path", str(tmp_path / "store")]
    assert main([*args, "search", "recipe", "-k", "1"]) == 0
    assert "caf\\udce9.txt" in capsys.readouterr().out
    assert main([*args, "search", "recipe", "-k", "1", "--json"]) == 0
    (hit,) = json.loads(capsys.readouterr().out)  # the escape is valid JSON for the same name
    assert hit["metadata"]["source"] == source
    assert main([*args, "get", "recipe"]) == 0
    assert f"metadata: {{\"source\": \"{tmp_path}/docs/caf\\udce9.txt\"}}" in capsys.readouterr().out

    assert main([*args, "get", name]) == 1
    assert one_error_line(capsys.readouterr().err) == "vectordb: not found: caf\\udce9.txt"


@pytest.fixture
def debug_records() -> Iterator[list[str]]:
    """Every botocore log message, as logged (installed before the CLI's own handler)."""
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    keep = Keep(logging.DEBUG)
    logger = logging.getLogger("botocore")
    logger.addHandler(keep)
    try:
        yield messages
    finally:
        logger.removeHandler(keep)


def test_verbose_logs_requests_without_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], debug_records: list[str]
) -> None:
    pytest.importorskip("vectordb_manager.storage.redact", reason="needs vectordb_manager.storage.redact")
    secret, token = f"secret-{uuid.uuid4().hex}", f"token-{uuid.uuid4().hex}"
    with moto_server() as url:
        client = s3_client(url)
        client.create_bucket(Bucket="verbose")
        S3VectorStore(HashingEmbeddings(), "verbose", "kb", client=client).add_texts(["hello"])
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAVERBOSETEST")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
        s3 = ["--storage", "s3", "--bucket", "verbose", "--prefix", "kb", "--endpoint-url", url,
              "--region", "us-east-1"]
        assert main([*FAKE, "--verbose", *s3, "stats", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["documents"] == 1
    assert any(token in m for m in debug_records)  # the token was sent, and logged raw
    assert "ListObjectsV2" in captured.err  # requests are logged...
    assert token not in captured.err and secret not in captured.err  # ...credentials are not
    before = len(captured.err)
    logging.getLogger("botocore").debug("after main")  # main removed its handler
    assert len(capsys.readouterr().err) == 0 and before > 0


def test_commands_take_the_stores_recorded_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "l2"
    built = LocalVectorStore(HashingEmbeddings(), path, distance="l2", index="hnsw")
    built.add_texts(["red apples", "green pears"], ids=["a", "p"])
    args = [*FAKE, "--path", str(path)]
    assert main([*args, "stats", "--json"]) == 0  # no --distance: the store's is used
    stats = json.loads(capsys.readouterr().out)
    assert (stats["distance"], stats["requested_index"], stats["documents"]) == ("l2", "hnsw", 2)
    assert main([*args, "search", "red apples", "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == "a"
    # a distance the caller chose must still match the store's
    assert main([*args, "--distance", "cosine", "stats"]) == 1
    assert "distance='l2'" in one_error_line(capsys.readouterr().err)
    # a migration target that names no distance or index gets this store's
    config = tmp_path / "target.json"
    config.write_text(json.dumps({"local_path": str(tmp_path / "target")}))
    assert main([*args, "migrate", "--to", str(config)]) == 0
    capsys.readouterr()
    target = LocalVectorStore(HashingEmbeddings(), tmp_path / "target").stats()
    assert (target["distance"], target["requested_index"], target["documents"]) == ("l2", "hnsw", 2)
