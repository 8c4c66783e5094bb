"""The examples run and print what their docstrings promise.

Each script runs as a subprocess (``sys.executable examples/X.py``, the S3 ones with ``--moto``,
which starts a local moto server on 127.0.0.1), and the notebook runs top to bottom through
nbclient on a kernel that uses this interpreter. Assertions are on the real output: which file
ranks first, that re-ingesting embeds nothing, that a migration copies without re-embedding.
Every example loads the offline all-MiniLM-L6-v2 model itself (a few seconds each).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOTEBOOK = EXAMPLES / "quickstart.ipynb"
FILES = 11  # examples/documents (7 .txt) + examples/more_documents (.md .html .jsonl .csv)

pytestmark = pytest.mark.slow


def example_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of an example: offline model, temporary files under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VDBM_", "VECTORDB_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TMPDIR=str(tmp), **extra)
    return env


def run_example(script: str, *args: str, tmp: Path, expect: int = 0) -> str:
    """Run ``examples/<script>`` from ``tmp``; returns its stdout (asserting the exit code)."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True, text=True, timeout=240, cwd=tmp, env=example_env(tmp), check=False,
    )
    assert result.returncode == expect, (
        f"{script} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
        f"--- stderr\n{result.stderr[-4000:]}"
    )
    return result.stdout if expect == 0 else result.stdout + result.stderr


def block(output: str, start: str) -> list[str]:
    """The lines after the first line starting with ``start``, up to the next blank line."""
    lines = output.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(start))
    out = []
    for line in lines[index + 1 :]:
        if not line.strip():
            break
        out.append(line)
    return out


def hits(output: str, question_line: str) -> list[tuple[float, str]]:
    """(score, where) of each ranked hit printed under a quickstart question."""
    found = []
    for line in block(output, question_line):
        match = re.match(r"\s+\d+\. (\d\.\d{3})  (.+)$", line)
        if match:
            found.append((float(match.group(1)), match.group(2)))
    return found


# -- quickstart.py and rag_chain.py share one store ----------------------------------------------


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """Run quickstart.py into a kept store; yields (store directory, stdout)."""
    tmp = tmp_path_factory.mktemp("quickstart")
    store = tmp / "kb"
    yield store, run_example("quickstart.py", "--store", str(store), tmp=tmp)


def test_quickstart_ingests_every_format(quickstart: tuple[Path, str]) -> None:
    store, out = quickstart
    first = block(out, "== ingest ==")[0]
    match = re.match(
        rf"{FILES} files: {FILES} added, 0 updated, 0 unchanged, 0 skipped, 0 failed; "
        r"0 gone files removed; (\d+) chunks added, 0 removed, (\d+) texts embedded",
        first,
    )
    assert match, first
    assert int(match.group(1)) == int(match.group(2)) >= FILES
    assert f"stats: {match.group(1)} chunks, 384 dimensions" in out
    assert "model sentence-transformers/all-MiniLM-L6-v2" in out
    assert (store / "manifests").is_dir()


def test_quickstart_ranks_the_right_file_first(quickstart: tuple[Path, str]) -> None:
    _, out = quickstart
    expected = {
        "Q: How can two writers commit to object storage without a lock?": "s3.txt",
        "Q: How should I split documents before embedding them?": "rag_guide.md > Chunking",
        "Q: What is retrieval-augmented generation?": "rag.txt",
    }
    for question, source in expected.items():
        ranked = hits(out, question)
        assert len(ranked) == 2, (question, ranked)
        assert ranked[0][1] == source, (question, ranked)
        assert 1 >= ranked[0][0] >= ranked[1][0] >= 0


def test_quickstart_filter_keeps_only_matching_documents(quickstart: tuple[Path, str]) -> None:
    _, out = quickstart
    unfiltered = [where for _, where in hits(out, "Q: something quick for dinner")]
    assert unfiltered[0] == "recipes.jsonl line 3 (Chicken curry)"  # 45 minutes
    filtered = [
        where
        for _, where in hits(out, "Q: something quick for dinner   filter={'file_type': 'jsonl'")
    ]
    assert filtered == ["recipes.jsonl line 1 (Tomato pasta)", "recipes.jsonl line 4 (Omelette)"]


def test_quickstart_reingest_embeds_nothing(quickstart: tuple[Path, str]) -> None:
    _, out = quickstart
    again = block(out, "== ingest again")
    assert again[0].startswith(f"{FILES} files: 0 added, 0 updated, {FILES} unchanged")
    assert "0 chunks added, 0 removed, 0 texts embedded" in again[0]
    assert "texts_embedded=0, failed={})" in again[1]


def test_rag_chain_answers_with_sources(quickstart: tuple[Path, str], tmp_path: Path) -> None:
    store, _ = quickstart
    questions = [
        "How long should bread dough rise?",
        "How can two writers commit to S3 without a lock?",
        "Where do the S3 credentials come from?",
        "What is the capital of France?",
    ]
    out = run_example("rag_chain.py", "--store", str(store), *questions, tmp=tmp_path)
    # the store written by quickstart.py is reused as it is: nothing to embed
    assert re.search(r"store: .*kb: \d+ chunks \(0 embedded now\)", out), out
    answers = {}
    for question in questions:
        lines = block(out, f"Q: {question}")
        assert lines[0].startswith("A: ") and lines[1].strip() == "sources:", lines
        answers[question] = (lines[0][3:], [line.split("] ", 1)[1] for line in lines[2:]])
    answer, sources = answers["How long should bread dough rise?"]
    assert "let it rise for an hour" in answer and answer.endswith("[1]")
    assert sources[0] == "cooking.txt" and len(sources) == 3
    answer, sources = answers["How can two writers commit to S3 without a lock?"]
    assert "If-None-Match" in answer and sources[0] == "s3.txt"
    answer, sources = answers["Where do the S3 credentials come from?"]
    assert answer.startswith("From the standard AWS chain") and "s3_faq.html" in sources
    answer, _ = answers["What is the capital of France?"]
    assert answer.startswith("I don't know")


def test_rag_chain_defaults_in_a_temporary_store(tmp_path: Path) -> None:
    out = run_example("rag_chain.py", tmp=tmp_path)
    assert re.search(r"\d+ chunks \((\d+) embedded now\)", out)
    assert "A: Never unpickle files that come from an untrusted source" in out
    assert list(tmp_path.glob("vdbm-*")) == []  # the temporary store was removed


def test_demo_prints_no_progress_bar(tmp_path: Path) -> None:
    """``make demo``, run twice (the second time the model loads at the first question): the
    output, stderr merged in, holds no bar between a question and its answers, nor anywhere."""
    work = tmp_path / "examples"
    work.mkdir()
    shutil.copy(EXAMPLES / "demo.py", work)
    shutil.copytree(EXAMPLES / "documents", work / "documents")
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, str(work / "demo.py")], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=240, cwd=tmp_path,
            env=example_env(tmp_path), check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-4000:]
        out = result.stdout
        assert "Loading weights" not in out and "it/s" not in out and "%|" not in out, out
        for question in ("Q: How can two writers", "Q: Which index gives exact"):
            assert len(block(out, question)) == 2  # the two answers, right after the question
    assert "0 texts embedded" in out


# -- S3 (moto) -----------------------------------------------------------------------------------


def test_s3_store_on_moto(tmp_path: Path) -> None:
    out = run_example("s3_store.py", "--moto", tmp=tmp_path)
    assert re.search(r"moto S3 server at http://127\.0\.0\.1:\d+, bucket 'vdbm-examples'", out)
    assert "opened S3VectorStore('s3://vdbm-examples/stores/s3-example/', documents=0" in out
    added = re.search(r"added (\d+) chunks: the store now holds (\d+) documents", out)
    assert added and added.group(1) == added.group(2), out
    count = added.group(2)
    objects = block(out, "3 objects under s3://vdbm-examples/stores/s3-example/")
    assert sum("/manifests/" in line for line in objects) == 2
    assert sum("/segments/" in line for line in objects) == 1
    first = block(out, "Q: How can two writers commit")
    assert re.match(r"  1\. 0\.\d{3}  s3\.txt  ", first[0]), first
    filtered = block(out, "Q: Which index gives exact results?")
    assert [line.split()[2] for line in filtered] == ["vector_indexes.csv"] * 2
    assert "name: Flat" in filtered[0]
    assert f"after reopening: {count} documents (before: {count}), same hits: True" in out
    assert f"verify(): OK, documents={count}, tombstones=0" in out


def test_s3_store_without_a_bucket_explains_what_to_set(tmp_path: Path) -> None:
    out = run_example("s3_store.py", tmp=tmp_path, expect=1)
    assert "set VDBM_S3_BUCKET" in out and "--moto" in out
    assert "Traceback" not in out


def test_migrate_local_to_s3_copies_vectors_without_embedding(tmp_path: Path) -> None:
    local = tmp_path / "local-store"
    out = run_example("migrate_local_to_s3.py", "--moto", "--local", str(local), tmp=tmp_path)
    count = re.search(r"local documents: (\d+); texts embedded so far: (\d+)", out)
    assert count and count.group(1) == count.group(2), out
    n = count.group(1)
    assert f"copied {n} documents; texts embedded during the migration: 0" in out
    assert f"S3VectorStore('s3://vdbm-examples/stores/migrated/', documents={n}" in out
    assert f"documents: local {n}, s3 {n}" in out
    distances = [
        line for line in block(out, "Q: How should I split documents") if line.startswith("  local")
    ]
    assert len(distances) == 3
    for line in distances:
        local_distance, s3_distance = re.findall(r"(?:local|s3) (\d\.\d+)", line)
        assert local_distance == s3_distance, line
    assert "rag_guide.md Chunking" in distances[0]
    assert "identical ids and scores on both sides: True" in out
    assert f"verify() of the S3 store: OK, documents={n}, tombstones=0" in out
    reingest = block(out, "== 4. ingest the same files into the S3 store ==")[0]
    assert f"{FILES} unchanged" in reingest and "0 texts embedded" in reingest
    assert f"texts embedded in total: {n} (all of them in step 1)" in out
    assert (local / "manifests").is_dir()  # the source store is kept


# -- the notebook --------------------------------------------------------------------------------


def test_notebook_is_committed_without_outputs() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    assert code
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None


def _cell_text(cell: dict[str, object]) -> str:
    parts = []
    for output in cell.get("outputs", []):  # type: ignore[attr-defined]
        if output["output_type"] == "stream" and output["name"] == "stdout":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def test_notebook_runs_top_to_bottom(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    # A "python3" kernelspec that runs *this* interpreter, whatever is installed elsewhere.
    kernels = tmp_path / "kernels"
    spec = kernels / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (test)",
                "language": "python",
            }
        )
    )
    work = tmp_path / "tmp"
    work.mkdir()
    km = AsyncKernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)])
    )
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, km=km, timeout=120, startup_timeout=60, resources={"metadata": {"path": str(EXAMPLES)}}
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        client.execute(cleanup_kc=True, env=example_env(work))
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    # the work of the kernel, ended and reaped by now, in CPU seconds: unlike the time it
    # took, it does not grow when other processes share the machine
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert 0 < cpu < 60, f"the notebook took {cpu:.0f} s of CPU"

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code)
    texts = [_cell_text(c) for c in code]
    everything = "\n".join(texts)
    assert "Traceback" not in everything and "Error" not in everything

    def output_of(snippet: str) -> str:
        return next(t for c, t in zip(code, texts, strict=True) if snippet in c.source)

    assert "VectorDBConfig(" in output_of("config = VectorDBConfig(")
    first_ingest = output_of("report = db.ingest(DOCUMENTS)")
    assert first_ingest.startswith(f"{FILES} files: {FILES} added") and " 0 failed" in first_ingest
    again = output_of("print(db.ingest(DOCUMENTS))")
    assert f"{FILES} unchanged" in again and "0 texts embedded" in again
    s3 = output_of("commit to object storage").splitlines()
    assert len(s3) == 3 and s3[0].split()[1] == "s3.txt"
    chunking = output_of("split documents before embedding").splitlines()
    assert chunking[0].split()[1:3] == ["rag_guide.md", "Chunking"]
    dinner = output_of('question = "something quick for dinner"')
    unfiltered, filtered = dinner.split("recipes ready in 30 minutes or less:")
    assert "Chicken curry" in unfiltered and "Chicken curry" not in filtered
    assert "Tomato pasta" in filtered and "Omelette" in filtered
    retrieved = output_of("retriever.invoke(").splitlines()
    assert len(retrieved) == 2 and retrieved[0].startswith("s3_faq.html | S3 storage FAQ")
    assert all(line.split()[0] in ("s3_faq.html", "rag_guide.md") for line in retrieved)
    stats = output_of("db.stats()")
    assert "'embedding_model': 'sentence-transformers/all-MiniLM-L6-v2'" in stats
    assert "'storage_type': 'local'" in stats
    assert "'tombstones': 0" in output_of("db.verify()")
    assert list(work.glob("vdbm-*")) == []  # the last cell removed the temporary store
