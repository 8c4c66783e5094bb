"""Ingestion and retrieval on Temporal (`vectordb_manager.workflows`), end to end.

A real Temporal test server, real worker processes and real clients (the ``vectordb`` CLI and
`temporal_child`), real files, stores on disk and on moto's S3 server, the package's
deterministic model-free embeddings (what is compared is the store, not its semantics). The
workers log every embedding call, so "embeds nothing" is counted, not inferred.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.s3_support import moto_server, s3_client
from tests.temporal_support import (
    ROOT,
    Client,
    assert_same_store,
    child_env,
    embedded,
    log_lines,
    run_cli,
    start_workers,
    stop,
    store_rows,
    temporal_server,
    wait_until,
)
from vectordb_manager import VectorDatabaseManager, VectorDBConfig

pytestmark = pytest.mark.slow

CHUNKING = {"embedding_provider": "fake", "chunk_size": 200, "chunk_overlap": 20}
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent",
}


@dataclass
class Cluster:
    address: str
    queue: str
    log: Path
    client: Client

    def ingest(self, cfg: VectorDBConfig, paths: list[Path], **kw: Any) -> Any:
        """Ingest through the workflow (``kw``: ``cleanup``, ``policy``); its answer."""
        request = {"store": spec(cfg), "paths": [str(p) for p in paths], **kw}
        return self.client.call({"op": "ingest", "queue": self.queue, "request": request})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with temporal_server() as address:
        yield address


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[Client]:
    driver = Client(server)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(scope="module")
def cluster(
    server: str, client: Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two workers on one queue, embedding without delay."""
    log = tmp_path_factory.mktemp("workers") / "embed.log"
    workers = start_workers(server, "shared", log, 2, env=S3_ENV)
    try:
        yield Cluster(server, "shared", log, client)
    finally:
        for proc in workers:
            stop(proc)


def paragraph(topic: str, n: int) -> str:
    return " ".join(f"{topic} sentence {i} talks about {topic} matters." for i in range(n))


def make_corpus(root: Path, *, broken: bool = True, texts: int = 4) -> Path:
    """Mixed files: markdown, text, JSON, JSON Lines, CSV, HTML, an empty and an unsupported
    file, and (``broken``) a JSON file that cannot be parsed."""
    root.mkdir(parents=True)
    (root / "guide.md").write_text(
        f"# Guide\n\n{paragraph('setup', 6)}\n\n## Usage\n\n{paragraph('usage', 8)}\n"
    )
    (root / "data.json").write_text(
        json.dumps([{"text": paragraph(f"record{i}", 3), "n": i} for i in range(3)])
    )
    (root / "lines.jsonl").write_text(
        "\n".join(json.dumps({"text": paragraph(f"line{i}", 2)}) for i in range(3))
    )
    (root / "rows.csv").write_text("q,a\n" + "\n".join(f"q{i},{paragraph('csv', 2)}" for i in range(3)))
    (root / "page.html").write_text(f"<html><title>Page</title><body><p>{paragraph('web', 6)}</p></body></html>")
    (root / "empty.txt").write_text("")
    (root / "image.bin").write_bytes(b"\x00\x01")
    if broken:
        (root / "broken.json").write_text("{not json")
    sub = root / "sub"
    sub.mkdir()
    for i in range(texts):
        (sub / f"notes{i}.txt").write_text("\n\n".join(paragraph(f"topic{i}x{j}", 4) for j in range(3)))
    return root


def config(path: Path) -> VectorDBConfig:
    return VectorDBConfig(local_path=str(path), **CHUNKING)


def spec(cfg: VectorDBConfig) -> dict[str, Any]:
    """What a workflow carries of ``cfg`` (`activities.store_spec`, without importing it)."""
    data = cfg.to_dict()
    if cfg.storage_type == "local":
        data["local_path"] = str(Path(cfg.local_path).absolute())
    return data


def plain(cfg: VectorDBConfig, paths: list[Path], **kw: Any) -> Any:
    with VectorDatabaseManager(cfg) as db:
        return db.ingest(paths, **kw)


def open_store(cfg: VectorDBConfig) -> Any:
    return VectorDatabaseManager(cfg, create=False).vector_store


def test_workflow_gives_the_store_ingest_gives(cluster: Cluster, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    expected = plain(config(tmp_path / "plain"), [corpus])
    before = embedded(cluster.log)
    out = cluster.ingest(
        config(tmp_path / "flow"),
        [corpus],
        policy={"files_per_batch": 2, "commit_batch_size": 8},
    )
    report, progress = out["report"], out["progress"]
    assert report["status"] == "completed"
    for key in ("files_seen", "files_added", "files_updated", "files_unchanged",
                "files_skipped", "files_failed", "chunks_added", "texts_embedded"):
        assert report[key] == getattr(expected, key), key
    assert embedded(cluster.log) - before == expected.texts_embedded > 0
    broken = str(corpus / "broken.json")
    assert report["files_failed"][broken] == expected.files_failed[broken]
    assert progress["files_failed"] == {broken: expected.files_failed[broken]}
    assert progress["status"] == "completed"
    assert progress["files_done"] == progress["files_total"] == expected.files_seen
    flow = open_store(config(tmp_path / "flow"))
    assert_same_store(flow, open_store(config(tmp_path / "plain")))
    flow.verify()


def test_rerun_change_and_cleanup_through_the_cli(cluster: Cluster, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs", broken=False)
    store = tmp_path / "flow"
    args = ["-q", "--provider", "fake", "--chunk-size", "200", "--chunk-overlap", "20",
            "--path", str(store), "ingest", str(corpus), "--temporal", cluster.address,
            "--task-queue", cluster.queue, "--wait", "--json"]
    code, first, err = run_cli(args)
    assert code == 0, err
    assert first["status"] == "completed" and first["texts_embedded"] > 0
    count = embedded(cluster.log)

    code, again, err = run_cli(args)  # unchanged: nothing is embedded, nothing written
    assert code == 0, err
    assert again["texts_embedded"] == again["chunks_added"] == 0
    assert again["files_unchanged"] == first["files_added"]
    assert embedded(cluster.log) == count

    old_ids = {i for i, row in store_rows(open_store(config(store))).items()
               if row[1]["source"] == str(corpus / "sub" / "notes1.txt")}
    (corpus / "sub" / "notes1.txt").write_text(paragraph("rewritten", 9))
    (corpus / "rows.csv").unlink()
    code, third, err = run_cli([*args, "--cleanup", "full"])
    assert code == 0, err
    assert third["files_updated"] == [str(corpus / "sub" / "notes1.txt")]
    assert third["files_removed"] == [str(corpus / "rows.csv")]
    flow = open_store(config(store))
    assert not old_ids & set(store_rows(flow))
    plain(config(tmp_path / "plain"), [corpus])  # the new state, from scratch
    assert_same_store(flow, open_store(config(tmp_path / "plain")))
    flow.verify()


def make_many(root: Path, count: int) -> list[Path]:
    """``count`` small files in 12 directories, in the order ingest lists them: text and
    markdown, each 8th empty, each 17th unsupported, each 29th a JSON file that cannot be
    parsed; plus hidden ones, left out."""
    files = []
    for i in range(count):
        folder = root / f"part{i % 12:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if i % 29 == 28:
            path = folder / f"doc{i:04d}.json"
            path.write_text("{not json")
        elif i % 17 == 16:
            path = folder / f"doc{i:04d}.bin"
            path.write_bytes(b"\x00")
        else:
            path = folder / f"doc{i:04d}.{'md' if i % 2 else 'txt'}"
            path.write_text("" if i % 8 == 7 else paragraph(f"subject{i}", 1 + i % 5))
        files.append(path)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "skip.txt").write_text(paragraph("hidden", 2))
    return sorted(files)


KINDS = ("files_added", "files_updated", "files_unchanged", "files_removed", "files_skipped",
         "files_failed")


def assert_counts_as(report: dict[str, Any], expected: Any, policy: dict[str, int]) -> None:
    """Exact counts as ``expected`` (a plain ingest's report); each kind names its first
    files, at most as many as the policy says, and counts the rest as unlisted."""
    for key in ("files_seen", "chunks_added", "chunks_removed", "texts_embedded"):
        assert report[key] == getattr(expected, key), key
    for kind in KINDS:
        cap = policy["report_failures" if kind == "files_failed" else "report_files"]
        full = getattr(expected, kind)
        named = list(full)[:cap]
        assert report["counts"][kind] == len(full), kind
        assert list(report[kind]) == named, kind
        assert report["unlisted"][kind] == len(full) - len(named), kind
        if isinstance(full, dict):
            assert report[kind] == {p: full[p] for p in named}, kind
    counted = sum(report["counts"][k] for k in KINDS if k != "files_removed")
    assert counted == report["files_seen"]


def test_many_files_page_by_page_over_several_runs(cluster: Cluster, tmp_path: Path) -> None:
    """A few hundred files, listed 10 at a time, a new run every 8 batches: the store and
    the counts of a plain ingest, every run answering the progress query; then, with 20
    files deleted across the pages, a re-run embeds nothing and removes them."""
    files = make_many(tmp_path / "docs", 264)
    corpus = tmp_path / "docs"
    expected = plain(config(tmp_path / "plain"), [corpus])
    assert expected.files_failed and expected.files_skipped  # each kind has files
    policy = {"files_per_batch": 3, "files_per_page": 10, "batches_per_run": 8,
              "report_files": 25, "report_failures": 4, "commit_batch_size": 16}
    before = embedded(cluster.log)
    # halfway through the texts (well past the first run), embedding waits until the
    # progress query has answered from a later run
    hold = Path(f"{cluster.log}.hold")
    hold.write_text(str(before + expected.texts_embedded // 2))
    request = {"store": spec(config(tmp_path / "flow")), "paths": [str(corpus)], "policy": policy}
    try:
        out = cluster.client.call(
            {"op": "ingest", "queue": cluster.queue, "request": request, "release": str(hold),
             "release_when": {"runs": 2, "status": "ingesting"}}
        )
    finally:
        hold.unlink(missing_ok=True)
    report, progress, seen = out["report"], out["progress"], out["seen"]
    assert report["status"] == progress["status"] == "completed"
    assert_counts_as(report, expected, policy)
    assert embedded(cluster.log) - before == expected.texts_embedded
    flow = open_store(config(tmp_path / "flow"))
    assert_same_store(flow, open_store(config(tmp_path / "plain")))
    flow.verify()
    assert progress["runs"] >= len(files) // 3 // 8
    assert progress["listing_complete"] and progress["failures"] == len(expected.files_failed)
    assert progress["files_done"] == progress["files_total"] == expected.files_seen
    # the query answered in the middle of the chain, and what it said only grew
    assert any(p["runs"] >= 2 and p["status"] == "ingesting" for p in seen)
    assert [p["files_done"] for p in seen] == sorted(p["files_done"] for p in seen)
    assert [p["runs"] for p in seen] == sorted(p["runs"] for p in seen)

    gone = files[5::13]
    for path in gone:
        path.unlink()
    count = embedded(cluster.log)
    out = cluster.ingest(config(tmp_path / "flow"), [corpus], policy=policy, cleanup="full")
    rerun = plain(config(tmp_path / "plain"), [corpus], cleanup="full")
    assert rerun.texts_embedded == 0 and rerun.count("files_removed") > 0
    assert out["report"]["status"] == "completed" and out["progress"]["runs"] >= 3
    assert_counts_as(out["report"], rerun, policy)
    assert embedded(cluster.log) == count
    assert_same_store(open_store(config(tmp_path / "flow")), open_store(config(tmp_path / "plain")))


def hold_halfway(cluster: Cluster, texts: int) -> Path:
    """Past half of ``texts`` more, embedding waits until the client removes the file (once
    it has cancelled): the cancel reaches a running ingestion, however slow the machine or
    a progress query (one can wait seconds while a run continues as new)."""
    hold = Path(f"{cluster.log}.hold")
    hold.write_text(str(embedded(cluster.log) + texts // 2))
    return hold


def test_cancel_leaves_a_consistent_store(cluster: Cluster, tmp_path: Path) -> None:
    """Cancelled by its signal in the second run of the chain (pages of 3 files, a new run
    every 2 batches)."""
    corpus = make_corpus(tmp_path / "docs", broken=False, texts=6)
    hold = hold_halfway(cluster, plain(config(tmp_path / "plain"), [corpus]).texts_embedded)
    try:
        policy = {"files_per_batch": 1, "max_concurrent": 1, "commit_batch_size": 2,
                  "files_per_page": 3, "batches_per_run": 2}
        request = {"store": spec(config(tmp_path / "flow")), "paths": [str(corpus)],
                   "cleanup": "full", "policy": policy}
        when = {"runs": 2, "batches_done": 3}
        out = cluster.client.call(
            {"op": "ingest", "queue": cluster.queue, "request": request,
             "cancel_when": when, "release": str(hold), "release_when": when}
        )
    finally:
        hold.unlink(missing_ok=True)
    report, progress = out["report"], out["progress"]
    assert report["status"] == progress["status"] == "cancelled"
    assert progress["runs"] >= 2
    assert 3 <= progress["batches_done"] < progress["batches_total"]
    assert report["files_seen"] == progress["files_done"] < progress["files_total"]
    flow = open_store(config(tmp_path / "flow"))
    flow.verify()
    # every file the report names is whole in the store, and no other file is there
    expected = store_rows(open_store(config(tmp_path / "plain")))
    done = set(report["files_added"])
    assert {i for i, row in expected.items() if row[1]["source"] in done} == set(
        store_rows(flow)
    )
    out = cluster.ingest(config(tmp_path / "flow"), [corpus], policy=policy)
    assert out["report"]["status"] == "completed"
    assert set(out["report"]["files_unchanged"]) == done
    assert_same_store(open_store(config(tmp_path / "flow")), open_store(config(tmp_path / "plain")))


def test_cancel_through_temporal_leaves_a_consistent_store(cluster: Cluster, tmp_path: Path) -> None:
    """``handle.cancel()`` (of the chain's current run, here the second): the running batch
    stops at a safe point (before a commit); whatever is stored is a subset of what ingest
    gives, and a re-run completes it."""
    corpus = make_corpus(tmp_path / "docs", broken=False, texts=6)
    hold = hold_halfway(cluster, plain(config(tmp_path / "plain"), [corpus]).texts_embedded)
    try:
        policy = {"files_per_batch": 2, "max_concurrent": 1, "commit_batch_size": 2,
                  "batches_per_run": 1}
        request = {"store": spec(config(tmp_path / "flow")), "paths": [str(corpus)],
                   "policy": policy}
        out = cluster.client.call(
            {"op": "ingest", "queue": cluster.queue, "request": request,
             "cancel_when": {"runs": 2}, "cancel_through_temporal": True,
             "release": str(hold), "release_when": {"runs": 2}}
        )
    finally:
        hold.unlink(missing_ok=True)
    assert out["report"]["failure"].startswith("CancelledError")
    assert out["progress"]["status"] == "cancelled" and out["progress"]["runs"] >= 2
    assert out["progress"]["batches_done"] < out["progress"]["batches_total"]
    flow = open_store(config(tmp_path / "flow"))
    flow.verify()
    expected = store_rows(open_store(config(tmp_path / "plain")))
    stored = store_rows(flow)
    assert stored and set(stored) < set(expected)
    out = cluster.ingest(config(tmp_path / "flow"), [corpus], policy=policy)
    assert out["report"]["status"] == "completed"
    assert_same_store(open_store(config(tmp_path / "flow")), open_store(config(tmp_path / "plain")))


@pytest.fixture
def s3_store() -> Iterator[dict[str, Any]]:
    with moto_server() as url:
        s3_client(url).create_bucket(Bucket="flows")
        yield {"storage_type": "s3", "s3_bucket": "flows", "s3_prefix": "kb",
               "s3_endpoint_url": url, "aws_region": "us-east-1"}


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_sigkill_of_a_worker_mid_batch(
    server: str, client: Client, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Two workers share the batches; one is killed while it embeds: its batch is retried on
    the other once its heartbeats stop; nothing is lost, nothing duplicated."""
    corpus = make_corpus(tmp_path / "docs", broken=False, texts=8)
    if backend == "s3":
        os.environ.update(S3_ENV)  # the test process's own stores read the bucket too
        cfg = VectorDBConfig(**request.getfixturevalue("s3_store"), **CHUNKING)
    else:
        cfg = config(tmp_path / "flow")
    log, queue = tmp_path / "embed.log", f"kill-{backend}"
    workers = start_workers(server, queue, log, 2, delay=0.1, max_concurrent=1, env=S3_ENV)
    policy = {"files_per_batch": 2, "max_concurrent": 4, "commit_batch_size": 2,
              "heartbeat_timeout_seconds": 2.0, "initial_retry_seconds": 0.2}
    body = {"store": spec(cfg), "paths": [str(corpus)], "policy": policy}
    client.send({"op": "ingest", "queue": queue, "request": body})
    try:
        wait_until(lambda: all(embedded(log, w.pid) for w in workers), "both workers to embed")
        seen = len(log_lines(log, "EMBED"))
        wait_until(lambda: len(log_lines(log, "EMBED")) > seen, "another embedding call")
        pid = int(log_lines(log, "EMBED")[seen][1])  # whoever embeds next is the victim
        victim, survivor = sorted(workers, key=lambda w: w.pid != pid)
        victim.send_signal(signal.SIGKILL)  # during its embedding call: mid-batch
        report = client.receive()["report"]
        victim.wait()
        assert report["status"] == "completed" and not report["files_failed"], report
        expected = plain(config(tmp_path / "plain"), [corpus])
        # a file the killed attempt wrote (in part) is still reported as added
        assert report["files_added"] == expected.files_added
        assert not report["files_updated"] and not report["files_unchanged"]
        flow = open_store(cfg)
        assert_same_store(flow, open_store(config(tmp_path / "plain")))
        assert len(flow) == expected.chunks_added
        flow.verify()
        assert embedded(log, survivor.pid) > 0
    finally:
        for proc in workers:
            stop(proc)


def test_query_workflow(cluster: Cluster, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs", broken=False)
    cfg = config(tmp_path / "kb")
    plain(cfg, [corpus])
    query = "  usage   sentence talks  "
    request = {"store": spec(cfg), "query": query, "k": 2, "fetch_k": 4,
               "rerank": "reverse", "answer": "count"}
    out = cluster.client.call({"op": "query", "queue": cluster.queue, "request": request})
    assert out["query"] == "usage sentence talks"
    with VectorDatabaseManager(cfg) as db:
        top4 = db.search_with_scores("usage sentence talks", k=4)
    expected = [doc.id for doc, _ in reversed(top4)][:2]
    assert [hit["id"] for hit in out["hits"]] == expected
    assert out["hits"][0]["score"] == pytest.approx(top4[-1][1])
    assert out["answer"] == "2 documents for: usage sentence talks"


def test_sources_under_an_s3_prefix(cluster: Cluster, tmp_path: Path) -> None:
    """Objects under s3://bucket/prefix are ingested as files (their URL is their source),
    listed a page at a time over several runs, re-ingested incrementally, and removed under
    cleanup="full" once deleted."""
    corpus = make_corpus(tmp_path / "docs", broken=False, texts=2)
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "secret.txt").write_text(paragraph("hidden", 3))
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    with moto_server() as url:
        client = s3_client(url)
        client.create_bucket(Bucket="sources")
        for path in files:
            key = f"kb/{path.relative_to(corpus).as_posix()}"
            client.put_object(Bucket="sources", Key=key, Body=path.read_bytes())
        client.put_object(Bucket="sources", Key="other/outside.txt", Body=b"not under the prefix")
        cfg = config(tmp_path / "flow").replace(s3_endpoint_url=url, aws_region="us-east-1")
        expected = plain(config(tmp_path / "plain"), [corpus])

        def as_url(local: str) -> str:
            return f"s3://sources/kb/{Path(local).relative_to(corpus).as_posix()}"

        # pages of 2 objects (StartAfter), batches of 3, a new run every 2 batches
        policy = {"files_per_batch": 3, "files_per_page": 2, "batches_per_run": 2}
        out = cluster.ingest(cfg, ["s3://sources/kb"], policy=policy)
        report = out["report"]
        assert out["progress"]["runs"] >= 2 and report["files_seen"] == expected.files_seen
        assert report["files_added"] == [as_url(p) for p in expected.files_added]
        assert report["files_skipped"] == {as_url(p): why for p, why in expected.files_skipped.items()}
        assert report["chunks_added"] == expected.chunks_added

        # the same chunks as the local files give, each with its object's URL as its source
        def chunks(store: Any, rename: Any) -> list[tuple[Any, ...]]:
            return sorted(
                (rename(meta["source"]), meta["chunk_index"], text, meta["content_hash"])
                for text, meta, _ in store_rows(store).values()
            )

        flow = open_store(cfg)
        assert chunks(flow, str) == chunks(open_store(config(tmp_path / "plain")), as_url)
        flow.verify()

        count = embedded(cluster.log)
        gone = "kb/sub/notes1.txt"
        client.delete_object(Bucket="sources", Key=gone)
        out = cluster.ingest(cfg, ["s3://sources/kb"], cleanup="full", policy=policy)
        assert out["report"]["files_removed"] == [f"s3://sources/{gone}"]
        assert out["report"]["texts_embedded"] == 0 and embedded(cluster.log) == count
        assert f"s3://sources/{gone}" not in {m["source"] for _, m, _ in store_rows(flow).values()}
        flow.verify()


def test_the_manager_ingests_on_temporal(cluster: Cluster, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    expected = plain(config(tmp_path / "plain"), [corpus])
    request = {"store": spec(config(tmp_path / "flow")), "paths": [str(corpus)]}
    out = cluster.client.call({"op": "manager-ingest", "queue": cluster.queue, "request": request})
    report = out["report"]
    assert out["type"] == "WorkflowIngestReport"
    assert report["status"] == "completed" and report["workflow_id"].startswith("vectordb-ingest-")
    assert report["ok"] is False  # the broken file
    for key in ("files_added", "files_skipped", "files_failed", "chunks_added"):
        assert report[key] == getattr(expected, key), key
    assert_same_store(open_store(config(tmp_path / "flow")), open_store(config(tmp_path / "plain")))


def test_the_worker_command(server: str, tmp_path: Path) -> None:
    """`vectordb worker` says when it polls, takes an ingestion submitted without --wait,
    and ends on SIGTERM."""
    corpus = make_corpus(tmp_path / "docs", broken=False, texts=1)
    worker = subprocess.Popen(
        [sys.executable, "-m", "vectordb_manager", "--provider", "fake", "worker", "--temporal",
         server, "--task-queue", "cli-worker", "--max-concurrent", "2"],
        cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()  # blocks until the worker polls (or exits)
        assert line == f"vectordb worker: polling task queue cli-worker at {server}\n"
        base = ["-q", "--provider", "fake", "--chunk-size", "200", "--chunk-overlap", "20"]
        queue = ["--temporal", server, "--task-queue", "cli-worker"]
        code, submitted, err = run_cli([*base, "--path", str(tmp_path / "a"), "ingest",
                                        str(corpus), *queue, "--json"])
        assert code == 0, err
        assert submitted["task_queue"] == "cli-worker"
        assert submitted["workflow_id"].startswith("vectordb-ingest-")
        code, report, err = run_cli([*base, "--path", str(tmp_path / "b"), "ingest",
                                     str(corpus), *queue, "--wait", "--json"])
        assert code == 0, err
        assert report["status"] == "completed" and report["chunks_added"] > 0
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        stop(worker)
