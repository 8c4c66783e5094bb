"""What the `vectordb` commands print for scripts and for people: ``--json`` on every command
(JSON alone on stdout), an ingest summary whose counts add up to the progress bar's total,
``migrate --to`` a directory, an ``s3://`` URL or a configuration file, and an empty query
refused. In process through ``main(argv)``, and as subprocesses where stdout and stderr must
be told apart."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.moto_bucket import moto_bucket
from vectordb_manager import LocalVectorStore, S3VectorStore
from vectordb_manager.cli import main
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.vectorstores.fusion import FUSIONS

ROOT = Path(__file__).resolve().parents[2]
FAKE = ["--provider", "fake", "-q"]
CATEGORIES = ("files_added", "files_updated", "files_unchanged", "files_skipped", "files_failed")


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    db = LocalVectorStore(HashingEmbeddings(), path)
    db.add_texts(["cats purr", "dogs bark", "birds sing"], [{"source": "a.txt"}] * 3,
                 ids=["c", "d", "b"])
    db.delete(["b"])
    return path


def mixed_folder(root: Path) -> Path:
    """Files of every outcome: text, markdown in a subfolder, a large file, an empty file,
    an unsupported type, a binary file; 7 files in all."""
    root.mkdir()
    (root / "sub").mkdir()
    (root / "a.txt").write_text("Apples grow on trees in the orchard. " * 10)
    (root / "b.txt").write_text("Bread needs flour, water, salt and yeast. " * 10)
    (root / "sub" / "c.md").write_text("# Cheese\n\nCheese is made from milk. " * 10)
    (root / "large.txt").write_text("A long text about many things, line after line.\n" * 4000)
    (root / "empty.txt").write_text("")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "blob.txt").write_bytes(b"\x00\x01\x02 not text \x00" * 20)
    return root


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vectordb_manager", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, check=False)


def counted_once(report: dict[str, Any]) -> None:
    """Every file found is in exactly one category, and the categories add up."""
    found = [str(p) for c in CATEGORIES for p in report[c]]
    assert len(found) == len(set(found)) == report["files_seen"]


def json_out(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> Any:
    """Run ``vectordb ARGS`` in process: its stdout, parsed as JSON (asserting the exit code)."""
    capsys.readouterr()
    assert main(list(args)) == code
    out, err = capsys.readouterr()
    assert code or err == "", err
    return json.loads(out)


# -- ingest: the summary and the bar -----------------------------------------------------------
def test_ingest_counts_every_file_once_and_the_bar_has_the_same_total(tmp_path: Path) -> None:
    docs = mixed_folder(tmp_path / "docs")
    store = ["--provider", "fake", "--path", str(tmp_path / "store")]
    result = cli(*store, "ingest", str(docs), "--json")  # bars on (no -q): to stderr
    assert result.returncode == 1  # blob.txt failed
    report = json.loads(result.stdout)  # stdout is the JSON alone
    counted_once(report)
    assert report["files_seen"] == 7 and not report["ok"]
    assert (len(report["files_added"]), len(report["files_skipped"]), len(report["files_failed"])) == (4, 2, 1)
    assert report["texts_embedded"] == report["chunks_added"] > 4
    totals = set(re.findall(r"Processing files: 100%\|[^|]*\| (\d+)/(\d+)", result.stderr))
    assert totals == {("7", "7")}, result.stderr
    embedded = re.findall(r"Embedded: (\d+) chunks", result.stderr)
    assert int(embedded[-1]) == report["texts_embedded"]

    text = cli(*store, "-q", "ingest", str(docs))  # again: unchanged; the text summary
    first = text.stdout.splitlines()[0]
    assert first.startswith("7 files: 0 added, 0 updated, 4 unchanged, 2 skipped, 1 failed; 0 gone files removed;")
    assert text.stderr == ""


def test_every_outcome_is_counted_once_through_changes(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    docs = mixed_folder(tmp_path / "docs")
    args = [*FAKE, "--path", str(tmp_path / "store"), "ingest", str(docs), "--json"]
    first = json_out(capsys, *args, code=1)
    (docs / "b.txt").write_text("")  # had chunks, now empty: updated (to none)
    (docs / "sub" / "c.md").write_text("# Cheese\n\nGouda and brie. " * 10)  # updated
    (docs / "large.txt").unlink()  # gone: removed with --cleanup full, not among those found
    (docs / "new.txt").write_text("A new file about nothing in particular. " * 5)  # added
    second = json_out(capsys, *args, "--cleanup", "full", code=1)
    for report in (first, second):
        counted_once(report)
    assert (first["files_seen"], second["files_seen"]) == (7, 7)
    assert sorted(Path(p).name for p in second["files_updated"]) == ["b.txt", "c.md"]
    assert [Path(p).name for p in second["files_added"]] == ["new.txt"]
    assert [Path(p).name for p in second["files_unchanged"]] == ["a.txt"]
    assert [Path(p).name for p in second["files_removed"]] == ["large.txt"]
    assert sorted(Path(p).name for p in second["files_skipped"]) == ["empty.txt", "image.png"]
    assert [Path(p).name for p in second["files_failed"]] == ["blob.txt"]


# -- --json on every command ---------------------------------------------------------------------
def test_every_command_prints_json_alone(store: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    base = [*FAKE, "--path", str(store)]
    assert [h["id"] for h in json_out(capsys, *base, "search", "cats purr", "-k", "1", "--json")] == ["c"]
    assert json_out(capsys, *base, "stats", "--json")["documents"] == 2
    assert [d["id"] for d in json_out(capsys, *base, "get", "c", "--json")] == ["c"]
    verified = json_out(capsys, *base, "verify", "--json")
    assert verified["ok"] is True and verified["documents"] == 2
    assert json_out(capsys, *base, "vacuum", "--older-than", "0", "--json") == {"removed": [], "older_than": 0.0}
    compacted = json_out(capsys, *base, "compact", "--json")
    assert compacted["compacted"] is True and compacted["segments_before"] == 2
    assert compacted["segments_after"] == 1 and compacted["tombstones_dropped"] == 1
    assert json_out(capsys, *base, "compact", "--json")["compacted"] is False
    migrated = json_out(capsys, *base, "migrate", "--to", str(tmp_path / "copy"), "--json")
    assert migrated == {"copied": 2, "storage_type": "local", "location": str((tmp_path / "copy").resolve())}
    assert json_out(capsys, *base, "delete", "c", "nope", "--json") == {"deleted": 1, "requested": 2}
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "x.txt").write_text("some text to ingest")
    ingested = json_out(capsys, *FAKE, "--path", str(tmp_path / "new"), "ingest", str(docs), "--json")
    assert ingested["files_added"] == [str(docs / "x.txt")] and ingested["ok"] is True


def test_the_help_lists_json_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from vectordb_manager.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands
    for name, sub in commands.items():
        if name in ("serve", "worker"):  # long-running: they print logs, nothing to parse
            continue
        assert any("--json" in a.option_strings for a in sub._actions), name


def test_the_fusion_choices_are_the_librarys() -> None:
    from vectordb_manager.cli import build_parser

    search = next(a for a in build_parser()._actions if a.dest == "command").choices["search"]
    (fusion,) = [a for a in search._actions if a.dest == "fusion"]
    assert tuple(fusion.choices) == FUSIONS


# -- search: an empty query ----------------------------------------------------------------------
@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_an_empty_query_is_a_one_line_error(store: Path, query: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(p.name for p in (store / "manifests").iterdir())
    assert main([*FAKE, "--path", str(store), "search", query]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "is empty; give the words or question to search for" in one_error_line(err)
    assert sorted(p.name for p in (store / "manifests").iterdir()) == before


# -- migrate --to --------------------------------------------------------------------------------
def stats_of(path: Path) -> dict[str, Any]:
    return LocalVectorStore(HashingEmbeddings(), path, create=False).stats()


@pytest.mark.parametrize("kind", ["new", "empty", "store"])
def test_migrate_to_a_directory_makes_a_store_there_with_the_sources_settings(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    LocalVectorStore(HashingEmbeddings(), source, distance="l2", index="hnsw").add_texts(
        ["red apples", "green pears"], ids=["a", "p"])
    target = tmp_path / "nested" / "target"
    if kind == "empty":
        target.mkdir(parents=True)
    if kind == "store":  # a store of the same model and distance already there
        LocalVectorStore(HashingEmbeddings(), target, distance="l2").add_texts(["kiwi"], ids=["k"])
    assert main([*FAKE, "--path", str(source), "migrate", "--to", str(target)]) == 0
    assert capsys.readouterr().out.startswith("copied 2 documents to the local store")
    stats = stats_of(target)
    assert (stats["distance"], stats["requested_index"]) == ("l2", "hnsw")
    assert stats["documents"] == (3 if kind == "store" else 2)


def test_migrate_to_an_s3_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "source"
    LocalVectorStore(HashingEmbeddings(), source).add_texts(["red apples", "green pears"])
    with moto_bucket(monkeypatch, "targets") as client:
        args = [*FAKE, "--region", "us-east-1", "--path", str(source)]
        assert main([*args, "migrate", "--to", "s3://targets/kb/v1", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["location"] == "s3://targets/kb/v1/"
        copied = S3VectorStore(HashingEmbeddings(), "targets", "kb/v1", client=client, create=False)
        assert len(copied) == 2


def test_migrate_to_a_configuration_file_still_works(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "source"
    LocalVectorStore(HashingEmbeddings(), source).add_texts(["red apples"])
    config = tmp_path / "target.yaml"
    config.write_text(f"local_path: {tmp_path / 'from-yaml'}\n")
    assert main([*FAKE, "--path", str(source), "migrate", "--to", str(config)]) == 0
    assert stats_of(tmp_path / "from-yaml")["documents"] == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("busy", "the directory is not empty and holds no store (no manifests/)"),
        ("notes.txt", "is neither a configuration file nor a directory"),
        ("s3://", "names no bucket; use s3://BUCKET/PREFIX"),
        ("missing.yaml", "cannot read configuration file"),
    ],
)
def test_migrate_to_something_else_is_a_clear_error(make: str, message: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "source"
    LocalVectorStore(HashingEmbeddings(), source).add_texts(["red apples"])
    target = tmp_path / make
    if make == "busy":
        target.mkdir()
        (target / "notes.md").write_text("my notes")
    if make == "notes.txt":
        target.write_text("not a configuration")
    to = make if make == "s3://" else str(target)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main([*FAKE, "--path", str(source), "migrate", "--to", to]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("vectordb: error:") and message in line, line
    if make in ("busy", "notes.txt"):
        assert "s3://BUCKET/PREFIX" in line and ".yaml" in line  # what to give instead
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_import_faiss_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.integration.faiss_dirs import EMB, FAISS, saved

    folder = saved(FAISS.from_texts(["cats purr", "dogs bark"], EMB, ids=["c", "d"]), tmp_path / "faiss")
    out = json_out(capsys, *FAKE, "--path", str(tmp_path / "store"), "import-faiss", str(folder), "--json")
    assert (out["imported"], out["documents"], out["source"]) == (2, 2, str(folder))
    assert out["location"] == str((tmp_path / "store").resolve())
