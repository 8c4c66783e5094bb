"""The `vectordb` command end to end, in process through ``main(argv)``, plus its help texts
and a few true subprocesses (``python -m``, the console script, exit codes); the tests of
single commands are in test_cli_commands.py."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vectordb_manager import LocalVectorStore
from vectordb_manager.cli import build_parser, main
from vectordb_manager.embeddings import HashingEmbeddings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "documents"


def subprocess_run(*args: str, exe: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(exe or [sys.executable, "-m", "vectordb_manager"]), *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
    )


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``vectordb ARGS`` in this process (``env``: extra environment variables)."""

    def call(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        with monkeypatch.context() as patch:
            for key, value in (env or {}).items():
                patch.setenv(key, value)
            code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["vectordb", *args], code, out, err)

    return call


def test_every_command_has_help() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) >= {
        "ingest", "search", "stats", "get", "delete", "verify", "migrate", "vacuum", "compact"
    }
    helps = {c.dest: c.help for c in subparsers._choices_actions}
    for name, sub in subparsers.choices.items():
        assert helps.get(name), f"{name} has no help text"
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.dest} has no help text"
    for action in parser._actions:
        if action.dest not in ("help", "command"):
            assert action.help, f"--{action.dest} has no help text"


def test_help_runs_as_a_module_and_as_the_console_script() -> None:
    result = subprocess_run("search", "--help")
    assert result.returncode == 0 and "--filter" in result.stdout
    script = Path(sys.executable).with_name("vectordb")
    result = subprocess_run("--help", exe=[str(script)])
    assert result.returncode == 0 and "vacuum" in result.stdout


def test_end_to_end(tmp_path: Path, run: Run) -> None:
    store = tmp_path / "store"
    common = ["--provider", "fake", "--path", str(store), "-q"]
    ingest = run(*common, "ingest", str(EXAMPLES))
    assert ingest.returncode == 0, ingest.stderr
    assert "7 added" in ingest.stdout
    again = run(*common, "ingest", str(EXAMPLES))
    assert "7 unchanged" in again.stdout and "0 texts embedded" in again.stdout

    search = run(*common, "search", "conditional writes to S3 buckets", "-k", "2", "--json")
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)
    assert len(hits) == 2 and hits[0]["metadata"]["source"].endswith("s3.txt")
    assert 0 <= hits[1]["score"] <= hits[0]["score"] <= 1

    filtered = run(*common, "search", "bread", "--filter", '{"file_type": "txt", "source": {"$ne": "x"}}')
    assert filtered.returncode == 0 and "1. [" in filtered.stdout

    stats = run(*common, "stats", "--json")
    data = json.loads(stats.stdout)
    assert data["documents"] == len(list(EXAMPLES.glob("*.txt"))) and data["storage_type"] == "local"

    doc_id = hits[0]["id"]
    got = run(*common, "get", doc_id, "--json")
    assert json.loads(got.stdout)[0]["id"] == doc_id
    missing = run(*common, "get", "no-such-id")
    assert missing.returncode == 1 and "not found: no-such-id" in missing.stderr

    assert run(*common, "verify").stdout.startswith("OK:")
    deleted = run(*common, "delete", doc_id, "nope")
    assert "deleted 1 of 2" in deleted.stdout

    target = tmp_path / "target.json"
    target.write_text(json.dumps({"local_path": str(tmp_path / "migrated")}))
    migrate = run(*common, "migrate", "--to", str(target))
    assert migrate.returncode == 0, migrate.stderr
    assert f"copied {data['documents'] - 1} documents" in migrate.stdout
    moved = run("--provider", "fake", "--path", str(tmp_path / "migrated"), "stats", "--json")
    assert json.loads(moved.stdout)["documents"] == data["documents"] - 1


def test_quiet_and_verbose_are_taken_after_the_command_too(tmp_path: Path, run: Run) -> None:
    """``vectordb ingest docs -q`` as well as ``vectordb -q ingest docs``; a command that does
    not repeat them keeps what was given before it."""
    parser = build_parser()
    for argv, quiet, verbose in [
        (["ingest", "d", "-q"], True, False),
        (["-q", "ingest", "d"], True, False),
        (["ingest", "d"], False, False),
        (["-v", "search", "x", "--quiet"], True, True),
        (["stats", "-v"], False, True),
    ]:
        args = parser.parse_args(argv)
        assert (args.quiet, args.verbose) == (quiet, verbose), argv
    ingest = run("--provider", "fake", "--path", str(tmp_path / "s"), "ingest", str(EXAMPLES), "-q")
    assert ingest.returncode == 0 and "7 added" in ingest.stdout and ingest.stderr == ""


def test_config_file_environment_and_flags(tmp_path: Path, run: Run) -> None:
    config = tmp_path / "vectordb.toml"
    config.write_text(f'embedding_provider = "fake"\nlocal_path = "{tmp_path / "from-file"}"\n')
    run("--config", str(config), "-q", "ingest", str(EXAMPLES / "rag.txt"))
    assert (tmp_path / "from-file" / "manifests").is_dir()
    env = {"VECTORDB_LOCAL_PATH": str(tmp_path / "from-env")}
    run("--config", str(config), "-q", "ingest", str(EXAMPLES / "rag.txt"), env=env)
    assert (tmp_path / "from-env" / "manifests").is_dir()
    run("--config", str(config), "--path", str(tmp_path / "from-flag"), "-q", "ingest",
        str(EXAMPLES / "rag.txt"), env=env)
    assert (tmp_path / "from-flag" / "manifests").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider", "fake", "--chunk-size", "10", "--chunk-overlap", "50", "stats"], "chunk_overlap=50"),
        (["--config", "/no/such/file.toml", "stats"], "cannot read configuration file"),
        (["--provider", "fake", "search", "x", "--filter", "{bad json"], "--filter is not valid JSON"),
        (["--provider", "fake", "search", "x", "--filter", '{"a": {"$regex": "x"}}'], "unknown operator"),
        (["--provider", "fake", "search", "x", "-k", "0"], "k=0"),
    ],
)
def test_failures_are_one_line_without_traceback(tmp_path: Path, run: Run, args: list[str], message: str) -> None:
    LocalVectorStore(HashingEmbeddings(), tmp_path / "s")  # an empty store to fail on
    result = run("--path", str(tmp_path / "s"), *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vectordb: error:") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_file_names_the_field(tmp_path: Path, run: Run) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"index_type": "annoy", "chunk_size": -1}))
    result = run("--config", str(config), "stats")
    assert result.returncode == 1
    assert "index_type='annoy'" in result.stderr and "chunk_size=-1" in result.stderr


def test_vacuum_without_a_store_exits_non_zero_and_creates_nothing(tmp_path: Path) -> None:
    result = subprocess_run("--provider", "fake", "--path", str(tmp_path / "none"), "vacuum", "--older-than", "0")
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"vectordb: error: no store at {tmp_path / 'none'}")
    assert list(tmp_path.iterdir()) == []
