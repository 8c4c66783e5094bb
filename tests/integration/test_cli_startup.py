"""The `vectordb` command as real processes: ``--version``, what starting it imports (from
``python -X importtime``), a reader that closes the pipe early, and which progress bars reach
stderr (the real offline model's own bars included)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from vectordb_manager import LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "documents"
CLI = [sys.executable, "-m", "vectordb_manager"]
SCRIPT = str(Path(sys.executable).with_name("vectordb"))
TOOLKITS = {"langchain_core", "langsmith", "faiss", "numpy", "torch", "transformers"}


def run(*args: str, exe: list[str] = CLI, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*exe, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, check=False)


def imported(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime -m vectordb_manager ARGS``: its result and the top-level
    packages it imported."""
    result = run(*args, exe=[sys.executable, "-X", "importtime", "-m", "vectordb_manager"])
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)$", result.stderr, re.M)
    assert names, result.stderr[-2000:]
    return result, {name.split(".")[0] for name in names}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    LocalVectorStore(HashingEmbeddings(), path).add_texts(
        [f"document {i}: " + "words about many things " * 40 for i in range(300)],
        [{"source": f"doc{i}.txt"} for i in range(300)],
    )
    return path


@pytest.mark.parametrize("exe", [CLI, [SCRIPT]], ids=["module", "console-script"])
def test_version_is_the_installed_distributions(exe: list[str]) -> None:
    result = run("--version", exe=exe)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, f"vectordb {metadata.version('vectordb-manager')}\n", "")


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["search", "--help"]])
def test_version_and_help_import_no_toolkit(args: list[str]) -> None:
    result, packages = imported(*args)
    assert result.returncode == 0
    assert packages & TOOLKITS == set()


def test_stats_imports_neither_langchain_nor_a_model(store: Path) -> None:
    result, packages = imported("--provider", "fake", "--path", str(store), "stats", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert packages & {"langchain_core", "langsmith", "torch", "transformers"} == set()
    assert json.loads(result.stdout)["documents"] == 300


def pipe_to_early_closer(*args: str) -> tuple[int, str]:
    """``vectordb ARGS | (a reader that reads one line and exits)``: the command's exit code and
    stderr."""
    producer = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=ROOT)
    assert producer.stdout is not None and producer.stderr is not None
    reader = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline()"],
                              stdin=producer.stdout)
    producer.stdout.close()  # the reader holds the only read end now
    assert reader.wait(timeout=120) == 0
    err = producer.stderr.read().decode()
    producer.stderr.close()
    return producer.wait(timeout=120), err


def test_a_reader_closing_the_pipe_early_ends_the_command_quietly(store: Path) -> None:
    # some 300 kB of JSON: far more than the pipe holds, so the writes after the reader left fail
    code, err = pipe_to_early_closer("--provider", "fake", "--path", str(store),
                                     "search", "words", "-k", "300", "--json")
    assert err == ""
    assert code == 1  # as the Python documentation's "Note on SIGPIPE" has it


def test_stats_into_head_is_quiet(store: Path) -> None:
    code, err = pipe_to_early_closer("--provider", "fake", "--path", str(store), "stats")
    assert (code, err) in ((0, ""), (1, ""))  # all of it may fit in the pipe before it closes


@pytest.mark.slow
def test_quiet_silences_every_bar_and_search_shows_none(tmp_path: Path) -> None:
    """With the real offline model: ``-q ingest`` and ``search`` print no bar at all (the
    model's own "Loading weights" included); a plain ``ingest`` shows ours."""
    store = tmp_path / "store"
    quiet = run("-q", "--path", str(store), "ingest", str(EXAMPLES))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout.startswith("7 files: 7 added")
    searched = run("--path", str(store), "search", "how do I bake bread", "-k", "1")
    assert searched.returncode == 0 and "cooking.txt" in searched.stdout
    assert searched.stderr == ""
    shown = run("--path", str(tmp_path / "other"), "ingest", str(EXAMPLES / "rag.txt"))
    assert shown.returncode == 0, shown.stderr
    assert "Processing files: 100%" in shown.stderr and "1/1" in shown.stderr
    assert re.search(r"Embedded: [1-9]\d* chunks \[", shown.stderr), shown.stderr


def test_the_program_flushes_its_output_and_skips_the_interpreters_teardown(store: Path) -> None:
    """`cli.run` (the console script and ``python -m``) ends the process once the command is
    done: its output is all there, the exit code is the command's, and nothing registered to
    run at exit runs (tearing down torch's modules there takes a second or more)."""
    child = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TEARDOWN', file=sys.stderr))\n"
        f"sys.argv = ['vectordb', '--provider', 'fake', '--path', {str(store)!r}, 'search', 'words',"
        " '-k', '300', '--json']\n"
        "from vectordb_manager.cli import run\n"
        "run()\n"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert len(json.loads(done.stdout)) == 300  # some 300 kB, flushed before the exit
    missing = subprocess.run([*CLI, "--provider", "fake", "--path", str(store / "none"), "stats"],
                             capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert missing.returncode == 1 and missing.stderr.startswith("vectordb: error: no store at")


def test_the_program_finishes_the_merges_its_writes_started(tmp_path: Path) -> None:
    """`cli.run` skips the interpreter's teardown, but not the store's upkeep thread: the
    merges that an ingestion's last commits started are committed before the process ends."""
    from vectordb_manager.engine.compaction import CompactionPolicy

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(16):  # 2,304 chunks: 9 commits of 256, the last one makes a merge due
        (docs / f"f{i}.txt").write_text(
            "\n\n".join(f"part {i}.{j}: " + "some words about things " * 40 for j in range(144))
        )
    path = tmp_path / "store"
    done = run("--provider", "fake", "--path", str(path), "-q", "ingest", str(docs))
    assert done.returncode == 0, done.stderr
    store = LocalVectorStore(HashingEmbeddings(), path, compaction=CompactionPolicy())
    assert store.stats()["version"] >= 11  # 9 commits (+ the creation) and the merge
    assert store.engine._plan_locked()[0] is None  # and none is left due
    assert len(store) == 2304
    named = {
        s["file"]["path"]
        for m in (path / "manifests").glob("*.json")
        for s in json.loads(m.read_text())["segments"]
    }
    assert {p.relative_to(path).as_posix() for p in path.rglob("*.seg")} <= named
