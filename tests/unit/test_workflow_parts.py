"""The workflows' parts that need no Temporal server: what a workflow may carry of a store's
configuration (never a secret), how workers complete it, the batch policy's checks, how
batch reports merge, and the CLI's refusals. (Importing temporalio is fine in this process;
only a client's or worker's runtime threads trouble an interpreter's exit.)"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vectordb_manager import ConfigurationError, InvalidInputError, VectorDBConfig
from vectordb_manager.cli import main
from vectordb_manager.ingestion import IngestReport
from vectordb_manager.workflows import BatchPolicy, StoreCache, ingest_request, store_spec
from vectordb_manager.workflows.reports import BoundedReport


def test_a_spec_carries_no_secret_and_an_absolute_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/tmp")
    config = VectorDBConfig(local_path="kb", embedding_provider="openai", openai_api_key="sk-1")
    spec = store_spec(config)
    assert "openai_api_key" not in spec
    assert "sk-1" not in repr(spec)
    assert spec["local_path"] == "/tmp/kb"


def test_a_memory_store_cannot_be_ingested_by_workers() -> None:
    with pytest.raises(ConfigurationError, match="memory"):
        store_spec(VectorDBConfig(storage_type="memory"))


def test_workers_take_secrets_from_their_own_configuration() -> None:
    spec = store_spec(VectorDBConfig(local_path="/tmp/kb", embedding_provider="openai"))
    cache = StoreCache(VectorDBConfig(openai_api_key="sk-worker"))
    assert cache.config(spec).openai_api_key == "sk-worker"
    with pytest.raises(ConfigurationError, match="openai_api_key"):
        cache.config({**spec, "openai_api_key": "sk-carried"})


@pytest.mark.parametrize(
    ("changes", "bad"),
    [
        ({"files_per_batch": 0}, "files_per_batch"),
        ({"max_concurrent": True}, "max_concurrent"),
        ({"heartbeat_timeout_seconds": -1.0}, "heartbeat_timeout_seconds"),
        ({"max_attempts": 1.5}, "max_attempts"),
        ({"files_per_page": 0}, "files_per_page"),
        ({"batches_per_run": -1}, "batches_per_run"),
        ({"report_files": -1}, "report_files"),
        ({"files_per_batch": 1001}, "files_per_batch=1001 is more than 1000"),
        ({"report_failures": 10_001}, "report_failures=10001 is more than 10000"),
    ],
)
def test_a_bad_policy_is_refused_before_submitting(changes: dict[str, object], bad: str) -> None:
    policy = dataclasses.replace(BatchPolicy(), **changes)
    with pytest.raises(InvalidInputError, match=bad):
        ingest_request(VectorDBConfig(local_path="/tmp/kb"), ["/tmp/docs"], policy=policy)


def test_bad_cleanup_and_no_paths_are_refused() -> None:
    config = VectorDBConfig(local_path="/tmp/kb")
    with pytest.raises(InvalidInputError, match="cleanup"):
        ingest_request(config, ["/tmp/docs"], cleanup="all")
    with pytest.raises(InvalidInputError, match="no paths"):
        ingest_request(config, [])
    request = ingest_request(config, "docs", cleanup="full")
    assert request.paths == [str(Path("docs").absolute())]


def test_batch_reports_merge_into_the_shape_of_an_ingest_report() -> None:
    one = IngestReport(files_seen=2, files_added=["a"], files_failed={"b": "bad"}, chunks_added=3,
                       texts_embedded=3)
    two = IngestReport(files_seen=1, files_unchanged=["c"], files_skipped={"d": "empty"})
    bounded = BoundedReport(files=1000, failures=1000)
    bounded.add(one.to_dict())
    bounded.add(two.to_dict())
    total = bounded.report
    assert total.pop("unlisted") == dict.fromkeys(
        ("files_added", "files_updated", "files_unchanged", "files_removed", "files_skipped",
         "files_failed"), 0)
    assert IngestReport(**{k: v for k, v in total.items() if k != "ok"}) == IngestReport(
        files_seen=3, files_added=["a"], files_unchanged=["c"], files_skipped={"d": "empty"},
        files_failed={"b": "bad"}, chunks_added=3, texts_embedded=3,
        seconds=total["seconds"],
    )
    assert total["ok"] is False


def test_temporal_options_without_temporal_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--path", str(tmp_path / "kb"), "--provider", "fake", "ingest", str(tmp_path),
                 "--wait", "--task-queue", "q"])
    assert code == 1
    err = capsys.readouterr().err
    assert "--task-queue, --wait" in err and "--temporal" in err
    assert not (tmp_path / "kb").exists()


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    """(In a child process: a client's runtime threads must not live in this one.)"""
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "vectordb_manager", "-q", "--path", str(tmp_path / "kb"),
         "--provider", "fake", "ingest", str(tmp_path), "--temporal", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 1, done.stderr
    err = done.stderr.strip()
    assert err.startswith("vectordb: error: cannot reach a Temporal server") and "\n" not in err
