"""``vectordb search`` through the engine alone (`vectordb_manager.quick_search`), with the real
offline model: the same results as the manager's (documents, scores, order, errors) in every
mode, on a local and an S3 store; the same printed output, text and JSON; and a fresh command
process that imports none of LangChain's store, retriever, callback or tracing machinery, nor
langsmith."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from tests.s3_support import moto_server, s3_client
from vectordb_manager import LocalVectorStore, S3VectorStore, VectorDatabaseManager, VectorDBConfig
from vectordb_manager.cli import main
from vectordb_manager.errors import ConfigurationError, InvalidInputError, StoreNotFoundError
from vectordb_manager.quick_search import EngineSearch, open_search

ROOT = Path(__file__).resolve().parents[2]
TEXTS = {
    "bread": ("Knead the dough, let it rise for an hour, then bake the bread at 220 degrees.",
              {"source": "cooking.txt", "kind": "recipe", "year": 2021}),
    "soup": ("Simmer the onions slowly in butter for a rich French onion soup.",
             {"source": "cooking.txt", "kind": "recipe", "year": 2019}),
    "faiss": ("A flat index compares the query with every vector: exact nearest neighbours.",
              {"source": "vectors.md", "kind": "note", "year": 2023}),
    "hnsw": ("HNSW builds a graph of vectors for approximate nearest neighbour search.",
             {"source": "vectors.md", "kind": "note", "year": 2024}),
    "s3": ("Upload the segments to the bucket, then commit the manifest with a conditional put.",
           {"source": "s3.md", "kind": "note", "year": 2024}),
    "tax": ("File the quarterly tax return before the deadline to avoid a penalty.",
            {"source": "finance.txt", "kind": "admin", "year": 2022, "tags": ["tax", "dates"]}),
}
QUERIES = ["which index gives exact nearest neighbours", "how do I bake bread", "tax penalty"]
# (mode, filter, options): every mode, with and without filters and fusion options
CASES: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = [
    ("vector", None, {}),
    ("vector", {"kind": "note"}, {}),
    ("vector", {"year": {"$gte": 2022}, "kind": {"$in": ["note", "admin"]}}, {}),
    ("vector", None, {"score_threshold": 0.6}),
    ("keyword", None, {}),
    ("keyword", {"source": "cooking.txt"}, {}),
    ("hybrid", None, {}),
    ("hybrid", {"kind": {"$ne": "admin"}}, {"fusion": "weighted", "alpha": 0.7}),
    ("hybrid", None, {"alpha": 0.0}),
]
# the modules LangChain's stores, retrievers and model classes bring (a second of startup)
KEPT_OFF = ("langsmith", "langchain_core.vectorstores", "langchain_core.retrievers",
            "langchain_core.callbacks", "langchain_core.runnables", "langchain_core.tracers",
            "langchain_core.embeddings", "torch", "transformers", "sentence_transformers")


def build(store: LocalVectorStore | S3VectorStore) -> None:
    store.add_texts([t for t, _ in TEXTS.values()], [m for _, m in TEXTS.values()],
                    ids=list(TEXTS))


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, minilm: Embeddings) -> Path:
    path = tmp_path_factory.mktemp("quick") / "store"
    build(LocalVectorStore(minilm, path))
    return path


def flat(hits: list[tuple[Any, float]]) -> list[tuple[str | None, str, dict[str, Any], float]]:
    return [(d.id, d.page_content, d.metadata, s) for d, s in hits]


def answers(config: VectorDBConfig, query: str, k: int, filter_: Any, mode: str,
            options: dict[str, Any]) -> tuple[Any, Any]:
    """(the engine's answer, the manager's answer): results, or the error's type and text."""
    out = []
    for searcher in (EngineSearch(config), VectorDatabaseManager(config, create=False)):
        try:
            out.append(flat(searcher.search_with_scores(query, k, filter_, mode=mode,
                                                        **dict(options))))
        except Exception as exc:  # compared below: the same error either way
            out.append((type(exc).__name__, str(exc)))
    return out[0], out[1]


@pytest.mark.parametrize(("mode", "filter_", "options"), CASES)
def test_the_engine_answers_as_the_manager_does(local: Path, mode: str, filter_: Any,
                                               options: dict[str, Any]) -> None:
    config = VectorDBConfig(local_path=str(local))
    for query in QUERIES:
        for k in (1, 3, 10):
            ours, theirs = answers(config, query, k, filter_, mode, options)
            assert ours == theirs, (query, k)
    vector, _ = answers(config, QUERIES[0], 2, None, "vector", {})
    assert [i for i, *_ in vector] == ["faiss", "hnsw"]  # and they are right


@pytest.mark.parametrize(("k", "filter_", "mode", "options"), [
    (0, None, "vector", {}), (2, {"year": {"$bogus": 1}}, "vector", {}),
    (2, ["not", "a", "dict"], "keyword", {}), (2, None, "hybrid", {"fusion": "max"}),
    (2, None, "vector", {"alpha": 0.5}), (2, None, "sideways", {}),
])
def test_bad_arguments_are_the_same_errors(local: Path, k: int, filter_: Any, mode: str,
                                           options: dict[str, Any]) -> None:
    ours, theirs = answers(VectorDBConfig(local_path=str(local)), "bread", k, filter_, mode,
                           options)
    assert ours == theirs and ours[0] == "InvalidInputError"


def test_an_empty_query_or_a_missing_store_is_refused_before_anything_loads(
        tmp_path: Path, local: Path) -> None:
    with pytest.raises(InvalidInputError, match="is empty"):
        EngineSearch(VectorDBConfig(local_path=str(local))).search_with_scores("  ")
    with pytest.raises(StoreNotFoundError, match="no store at"):
        open_search(VectorDBConfig(local_path=str(tmp_path / "none")))
    assert not (tmp_path / "none").exists()


def test_other_models_and_stores_in_memory_go_through_the_manager(local: Path) -> None:
    assert isinstance(open_search(VectorDBConfig(local_path=str(local))), EngineSearch)
    memory = VectorDBConfig(storage_type="memory")
    assert not EngineSearch.can_answer(memory)
    assert isinstance(open_search(memory), VectorDatabaseManager)
    fake = VectorDBConfig(local_path=str(local), embedding_provider="fake")
    assert not EngineSearch.can_answer(fake)
    with pytest.raises(ConfigurationError, match="being opened with 'hashing-bow-384'"):
        open_search(fake)  # the manager's refusal of another model


@pytest.fixture(scope="module")
def s3_config(minilm: Embeddings) -> Iterator[VectorDBConfig]:
    with moto_server() as url:
        client = s3_client(url)
        client.create_bucket(Bucket="quick")
        build(S3VectorStore(minilm, "quick", "kb", client=client))
        yield VectorDBConfig(storage_type="s3", s3_bucket="quick", s3_prefix="kb",
                             s3_endpoint_url=url, aws_region="us-east-1")


def test_an_s3_store_is_answered_as_the_manager_does(
        s3_config: VectorDBConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert isinstance(open_search(s3_config), EngineSearch)
    for mode, filter_, options in CASES[:: 2]:
        ours, theirs = answers(s3_config, QUERIES[1], 3, filter_, mode, options)
        assert ours == theirs and ours


@pytest.mark.parametrize("args", [[], ["--json"], ["--mode", "hybrid", "--alpha", "0.3"],
                                  ["--mode", "keyword", "--json"], ["--filter", '{"kind": "note"}']])
def test_the_printed_results_are_the_managers(local: Path, args: list[str],
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    command = ["--path", str(local), "search", "exact nearest neighbours", "-k", "4", *args]
    assert main(command) == 0
    ours = capsys.readouterr()
    # the manager's answer, printed by the same command: the engine's way switched off
    monkeypatch.setattr(EngineSearch, "can_answer", staticmethod(lambda config: False))
    assert main(command) == 0
    theirs = capsys.readouterr()
    assert (ours.out, ours.err) == (theirs.out, theirs.err) and ours.out
    if "--json" in args:  # (keyword: only the documents holding a query term)
        assert len(json.loads(ours.out)) == (2 if "keyword" in args else 4)


def test_a_search_process_imports_no_langchain_store_machinery(local: Path) -> None:
    """What the fresh command imported, from ``python -X importtime`` (this test fails where
    the command opens a LangChain store: langsmith alone is most of a second)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vectordb_manager", "--path", str(local),
         "search", "how do I bake bread", "-k", "2", "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)$", done.stderr, re.M))
    assert "faiss" in modules and "vectordb_manager.minilm" in modules  # it did search
    loaded = {m for m in modules for off in KEPT_OFF if m == off or m.startswith(off + ".")}
    assert loaded == set()
    assert [hit["id"] for hit in json.loads(done.stdout)] == ["bread", "soup"]
