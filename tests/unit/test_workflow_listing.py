"""An ingestion's listing read a page at a time (`workflows.sources.list_page`), and its
bounded report (`workflows.reports`): real directories (links, FIFOs, hidden entries, names
that sort unlike their strings), a moto bucket, every page size; the peer is ``ingest``'s own
listing (`processing.files.expand`) and a plain `IngestReport`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from vectordb_manager.ingestion import IngestReport
from vectordb_manager.processing.files import expand, walk, walk_after
from vectordb_manager.workflows import WorkflowIngestReport
from vectordb_manager.workflows.reports import (
    NAME_BYTES,
    REASON_CHARS,
    BoundedReport,
    bounded,
)
from vectordb_manager.workflows.sources import count_sources, list_page
from vectordb_manager.workflows.types import ListCursor, SourceFile


def tree(root: Path) -> Path:
    """Files whose paths sort unlike their strings ("a/b" before "a-b", "a" before "a.txt"),
    hidden entries, links to a file (listed) and to a directory (not entered), a dangling
    link, a FIFO, an empty directory, a name that is not UTF-8."""
    for rel in ("a/b.txt", "a/c/d.md", "a-b.txt", "a b.txt", "a.txt", "B.txt", "é.txt",
                "z/y/x/w.txt", ".hidden/h.txt", "a/.h.txt", "deep/.git/config"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / "empty").mkdir()
    (root / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name")
    (root / "link.txt").symlink_to(root / "a.txt")
    (root / "linkdir").symlink_to(root / "a", target_is_directory=True)
    (root / "dangling.txt").symlink_to(root / "nowhere")
    os.mkfifo(root / "fifo")
    return root


def paths(targets: Any) -> list[Path]:
    return [t.path for t in targets]


def test_walk_after_resumes_the_walk_from_any_place(tmp_path: Path) -> None:
    root = tree(tmp_path / "docs")
    full = paths(walk(root, "**/*"))
    assert root / "link.txt" in full and root / "linkdir" / "b.txt" not in full
    assert paths(walk_after(root, "**/*", None)) == full
    # after each file, and after places where no file is (any more)
    places = [*full, root / "a", root / "a" / "c", root / "a.s", root / "zz", root / "0",
              root / "a" / "c" / "d.md" / "gone"]
    for after in places:
        assert paths(walk_after(root, "**/*", after)) == [p for p in full if p > after], after
    # another pattern: the whole tree walked, what comes before dropped
    txt = paths(walk(root, "**/*.txt"))
    assert paths(walk_after(root, "**/*.txt", root / "a.txt")) == [
        p for p in txt if p > root / "a.txt"
    ]


def pages(roots: list[str], glob: str, limit: int, client: Any = None) -> list[SourceFile]:
    """Every page of the listing, each checked, concatenated."""
    out: list[SourceFile] = []
    cursor: ListCursor | None = ListCursor()
    while cursor is not None:
        page = list_page(roots, glob, client, cursor, limit)
        assert len(page.sources) <= limit
        assert page.sources or page.next is None
        out += page.sources
        cursor = page.next
    return out


@pytest.mark.parametrize("glob", ["**/*", "**/*.txt"])
@pytest.mark.parametrize("limit", [1, 2, 3, 7, 1000])
def test_pages_of_any_size_make_ingests_listing(tmp_path: Path, glob: str, limit: int) -> None:
    """Overlapping roots (a directory, one inside it, a file in both), a file named twice,
    a missing path: the pages list what `expand` lists, in its order, each file once."""
    root = tree(tmp_path / "docs")
    roots = [str(root / "a"), str(root), str(root / "a.txt"), str(root / "a.txt"),
             str(root / "missing.txt"), str(root / "z" / "y")]
    expected = [(str(t.path), t.in_directory) for t in expand(roots, glob)]
    assert [(s.path, s.in_directory) for s in pages(roots, glob, limit)] == expected
    assert count_sources(roots, glob, None) == len(expected)


def test_a_page_lists_what_exists_after_the_cursor(tmp_path: Path) -> None:
    """Files deleted or created between pages: nothing listed twice, nothing after the
    cursor missed, the cursor's own file may be gone."""
    root = tmp_path / "docs"
    for i in range(12):
        (root / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 3}" / f"f{i:02d}.txt").write_text(str(i))
    first = list_page([str(root)], "**/*", None, ListCursor(), 5)
    assert first.next is not None
    cursor = Path(first.next.after or "")
    assert cursor == root / "d1" / "f01.txt"
    cursor.unlink()  # the cursor itself
    (root / "d2" / "f05.txt").unlink()  # one still to come
    (root / "d0" / "f99.txt").write_text("before the cursor: for the next ingestion")
    (root / "d1" / "f01b.txt").write_text("after the cursor")
    (root / "d3").mkdir()
    (root / "d3" / "new.txt").write_text("a new directory")
    rest = pages_from([str(root)], first.next)
    now = [str(t.path) for t in expand([root], "**/*")]
    assert rest == [p for p in now if Path(p) > cursor]
    assert not {s.path for s in first.sources} & set(rest)
    assert str(root / "d1" / "f01b.txt") in rest and str(root / "d0" / "f99.txt") not in rest


def pages_from(roots: list[str], cursor: ListCursor | None) -> list[str]:
    out: list[str] = []
    while cursor is not None:
        page = list_page(roots, "**/*", None, cursor, 2)
        out += [s.path for s in page.sources]
        cursor = page.next
    return out


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="corpus")
        keys = ["kb", "kb/a.txt", "kb/dir/", "kb/dir/b.txt", "kb/.git/x", "kb/sub/.h.txt",
                "kb/sub/c.txt", "kb/sub/d/e.md", "kb2/outside.txt", "kb/é.txt", "kb/z.txt",
                "other/kb/f.txt"]
        for key in keys:
            client.put_object(Bucket="corpus", Key=key, Body=key.encode())
        yield client


@pytest.mark.parametrize("limit", [1, 2, 3, 50])
def test_s3_prefixes_page_after_the_last_key(bucket: Any, limit: int) -> None:
    """Pages (``StartAfter``) of two overlapping prefixes after a local file: each object
    once, in key order, hidden ones and folder markers left out, the prefix's own object
    named directly."""
    roots = ["s3://corpus/kb/sub", "s3://corpus/kb"]
    found = [(s.path, s.in_directory, s.root) for s in pages(roots, "**/*", limit, bucket)]
    url = "s3://corpus/"
    assert found == [
        (f"{url}kb/sub/c.txt", True, 0),
        (f"{url}kb/sub/d/e.md", True, 0),
        (f"{url}kb", False, 1),
        (f"{url}kb/a.txt", True, 1),
        (f"{url}kb/dir/b.txt", True, 1),
        (f"{url}kb/z.txt", True, 1),
        (f"{url}kb/é.txt", True, 1),
    ]
    assert count_sources(roots, "**/*", bucket) == len(found)
    # an object named directly, then its prefix: listed once, as named
    named = pages(["s3://corpus/kb/a.txt", "s3://corpus/kb/dir"], "**/*", limit, bucket)
    assert [(s.path, s.in_directory) for s in named] == [
        (f"{url}kb/a.txt", False), (f"{url}kb/dir/b.txt", True)
    ]
    again = pages(["s3://corpus/kb/a.txt", "s3://corpus/kb"], "**/*", limit, bucket)
    assert [s.path for s in again].count(f"{url}kb/a.txt") == 1


def test_a_bounded_report_counts_every_file_and_names_the_first() -> None:
    total = BoundedReport(files=5, failures=3)
    plain = IngestReport()
    for batch in range(6):  # 6 batches of 4 files: 2 added, 1 unchanged, 1 failed each
        part = IngestReport(
            files_seen=4,
            files_added=[f"/d/{batch}-0", f"/d/{batch}-1"],
            files_unchanged=[f"/d/{batch}-2"],
            files_failed={f"/d/{batch}-3": "bad " * (batch * 200)},
            chunks_added=2,
            texts_embedded=2,
        )
        for name in ("files_added", "files_unchanged"):
            getattr(plain, name).extend(getattr(part, name))
        plain.files_failed.update(part.files_failed)
        total.add(bounded(part.to_dict(), 5, 3))  # as a batch bounds its own report
    report = total.report
    assert report["files_seen"] == 24 and report["chunks_added"] == 12
    for name in ("files_added", "files_unchanged", "files_failed", "files_skipped"):
        assert total.count(name) == len(getattr(plain, name)), name
    assert report["files_added"] == plain.files_added[:5]
    assert report["unlisted"]["files_added"] == 7
    assert list(report["files_failed"]) == list(plain.files_failed)[:3]
    assert all(len(why) <= REASON_CHARS for why in report["files_failed"].values())
    assert report["files_failed"]["/d/2-3"].endswith("…")
    assert report["ok"] is False

    # long names: the bytes run out before the count does
    long = BoundedReport(files=1000, failures=10)
    names = [f"/{'x' * 1000}/{i}" for i in range(400)]
    long.add(IngestReport(files_seen=400, files_added=names).to_dict())
    kept = long.report["files_added"]
    assert kept == names[: len(kept)] and 100 < len(kept) < 400
    assert sum(len(n) + 3 for n in kept) <= NAME_BYTES
    assert long.count("files_added") == 400


def test_a_capped_report_says_how_many_it_does_not_name() -> None:
    report = WorkflowIngestReport(
        files_seen=30,
        files_added=["/d/1", "/d/2"],
        files_skipped={"/d/3": "empty file"},
        files_failed={"/d/4": "not valid JSON"},
        unlisted={"files_added": 20, "files_skipped": 4, "files_failed": 2},
        workflow_id="vectordb-ingest-x",
    )
    first, *rest = str(report).splitlines()
    assert first.startswith("30 files: 22 added, 0 updated, 0 unchanged, 5 skipped, 3 failed;")
    assert "  (not named here: 20 added, 4 skipped, 2 failed; the report names the first of each)" in rest
    assert rest[-1] == "workflow vectordb-ingest-x: completed"
    data = report.to_dict()
    assert data["counts"]["files_added"] == 22 and data["unlisted"]["files_failed"] == 2
    assert sum(data["counts"][k] for k in data["counts"] if k != "files_removed") == 30
    assert "added=22" in repr(report)
    assert not WorkflowIngestReport(unlisted={"files_failed": 1}).ok
