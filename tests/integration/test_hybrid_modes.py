"""Keyword and hybrid search beyond the store: the manager's modes, ``vectordb search --mode``,
the analyzer settings from the configuration, and an S3 store (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from moto import mock_aws

from tests.integration.moto_bucket import mocked_client
from vectordb_manager import (
    InvalidInputError,
    LocalVectorStore,
    S3VectorStore,
    VectorDatabaseManager,
    VectorDBConfig,
)
from vectordb_manager.cli import main
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.analyzer import Analyzer

TEXTS = [
    "the deploy failed with ERR_CONN_RESET while uploading the bundle",
    "connection pools keep sockets open between requests",
    "retry with exponential backoff when the server is busy",
    "the socket was closed by the peer during the handshake",
    "upgrade to v2.3.1 to fix the memory leak in the parser",
    "rotate the credentials every ninety days",
]
METAS = [{"n": i, "kind": "error" if i in (0, 3) else "note"} for i in range(len(TEXTS))]
IDS = [f"t{i}" for i in range(len(TEXTS))]


class Counting(Embeddings):
    """Hashing embeddings that count the queries they embed."""

    def __init__(self) -> None:
        self.inner = HashingEmbeddings(64)
        self.model_name = self.inner.model_name
        self.queries = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.queries += 1
        return self.inner.embed_query(text)


def manager(emb: Embeddings | None = None, **config: Any) -> VectorDatabaseManager:
    db = VectorDatabaseManager(
        VectorDBConfig(storage_type="memory", embedding_provider="fake", **config),
        embeddings=emb or HashingEmbeddings(64),
    )
    db.vector_store.add_texts(TEXTS, METAS, ids=IDS)
    return db


# -- the manager -----------------------------------------------------------------------------
def test_manager_search_modes_are_the_store_searches() -> None:
    db = manager()
    store = db.vector_store
    f = {"kind": "error"}
    for query in ("ERR_CONN_RESET", "socket closed", "v2.3.1 parser"):
        assert db.search(query, 3) == store.similarity_search(query, 3)
        assert db.search(query, 3, mode="vector", filter=f) == store.similarity_search(query, 3, f)
        assert db.search(query, 3, mode="keyword", filter=f) == store.keyword_search(query, 3, f)
        assert db.search(query, 3, mode="hybrid") == store.hybrid_search(query, 3)
        assert db.search(query, 2, mode="hybrid", fusion="weighted", alpha=0.2) == (
            store.hybrid_search(query, 2, fusion="weighted", alpha=0.2)
        )
        assert db.search_with_scores(query, 3) == (
            store.similarity_search_with_relevance_scores(query, k=3)
        )
        assert db.search_with_scores(query, 3, mode="keyword") == (
            store.keyword_search_with_score(query, 3)
        )
        assert db.search_with_scores(query, 3, f, mode="hybrid", rank_constant=10) == (
            store.hybrid_search_with_score(query, 3, f, rank_constant=10)
        )


def test_the_configured_search_mode_is_the_default() -> None:
    db = manager(search_mode="keyword")
    assert db.search("ERR_CONN_RESET", 3) == db.vector_store.keyword_search("ERR_CONN_RESET", 3)
    assert [d.id for d in db.search("ERR_CONN_RESET", 3)] == ["t0"]
    assert db.search("ERR_CONN_RESET", 3, mode="vector") == (
        db.vector_store.similarity_search("ERR_CONN_RESET", 3)
    )
    retriever = db.as_retriever(search_kwargs={"k": 3})
    assert retriever.search_type == "keyword"
    assert retriever.invoke("ERR_CONN_RESET") == db.search("ERR_CONN_RESET", 3)
    assert manager(search_mode="hybrid").as_retriever().search_type == "hybrid"
    assert manager().as_retriever().search_type == "similarity"
    assert db.as_retriever(search_type="mmr").search_type == "mmr"


def test_a_bad_mode_or_option_is_refused_before_embedding() -> None:
    emb = Counting()
    db = manager(emb)
    with pytest.raises(InvalidInputError, match="mode='bm25' is not a search mode; use one of"):
        db.search("socket", mode="bm25")
    with pytest.raises(InvalidInputError, match="alpha=3"):
        db.search_with_scores("socket", mode="hybrid", alpha=3)
    with pytest.raises(InvalidInputError, match="unexpected keyword argument"):
        db.search("socket", mode="vector", fusion="rrf")
    assert emb.queries == 0


def test_text_settings_choose_the_analyzer_and_a_store_keeps_its_own(tmp_path: Path) -> None:
    config = VectorDBConfig(
        local_path=str(tmp_path / "kb"), embedding_provider="fake", text_stemming=False
    )
    db = VectorDatabaseManager(config, embeddings=HashingEmbeddings(64))
    assert db.vector_store.engine.analyzer == Analyzer("english", stem=False)
    db.add_texts(["connecting connections connect"])
    assert db.search("connect", mode="keyword") and not db.search("connects", mode="keyword")
    reopened = VectorDatabaseManager(
        VectorDBConfig(local_path=str(tmp_path / "kb"), embedding_provider="fake"),
        embeddings=HashingEmbeddings(64),
    )  # no text settings: the analyzer the store records
    assert reopened.vector_store.engine.analyzer == Analyzer("english", stem=False)
    assert not reopened.search("connects", mode="keyword")


# -- the command line ------------------------------------------------------------------------
@pytest.fixture
def kb(tmp_path: Path) -> Iterator[list[str]]:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(TEXTS):
        (docs / f"{i}.txt").write_text(text + "\n")
    args = ["--provider", "fake", "-q", "--path", str(tmp_path / "kb")]
    assert main([*args, "ingest", str(docs)]) == 0
    yield args


def _json_ids(capsys: pytest.CaptureFixture[str]) -> list[tuple[str, float]]:
    out = json.loads(capsys.readouterr().out)
    return [(Path(hit["metadata"]["source"]).name, hit["score"]) for hit in out]


def test_cli_search_modes(kb: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main([*kb, "search", "ERR_CONN_RESET", "--mode", "keyword", "--json"]) == 0
    keyword = _json_ids(capsys)
    assert [name for name, _ in keyword] == ["0.txt"] and keyword[0][1] > 0
    config = VectorDBConfig(local_path=kb[-1], embedding_provider="fake")
    db = VectorDatabaseManager(config, create=False)
    for mode in ("vector", "hybrid"):
        assert main([*kb, "search", "socket closed", "-k", "3", "--mode", mode, "--json"]) == 0
        got = _json_ids(capsys)
        want = db.search_with_scores("socket closed", 3, mode=mode)
        assert got == [(Path(d.metadata["source"]).name, s) for d, s in want]
    assert main([*kb, "search", "socket", "--mode", "hybrid", "--fusion", "weighted",
                 "--alpha", "0.25", "--json"]) == 0
    got = _json_ids(capsys)
    want = db.search_with_scores("socket", mode="hybrid", fusion="weighted", alpha=0.25)
    assert got == [(Path(d.metadata["source"]).name, s) for d, s in want]
    assert main([*kb, "search", "v2.3.1", "--mode", "keyword"]) == 0
    assert "4.txt" in capsys.readouterr().out


def test_cli_search_mode_from_the_environment(
    kb: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECTORDB_SEARCH_MODE", "keyword")
    capsys.readouterr()
    assert main([*kb, "search", "rotate credentials", "--json"]) == 0
    assert [name for name, _ in _json_ids(capsys)] == ["5.txt"]  # the only document with them


def test_cli_refuses_fusion_options_outside_hybrid(
    kb: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main([*kb, "search", "socket", "--fusion", "weighted"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vectordb: error: --fusion and --alpha apply to hybrid search; add --mode hybrid"]
    assert main([*kb, "search", "socket", "--mode", "hybrid", "--alpha", "7"]) == 1
    assert "alpha=7.0 must be a number from 0" in capsys.readouterr().err


def test_cli_text_flags_reach_the_configuration(tmp_path: Path) -> None:
    from vectordb_manager.cli import build_config, build_parser

    args = build_parser().parse_args(
        ["--text-language", "german", "--no-text-stemming", "--text-stopwords", "stats"]
    )
    config = build_config(args, environ={})
    assert config.text_analyzer() == Analyzer("german", stem=False, stopwords=True)
    assert build_config(build_parser().parse_args(["stats"]), environ={}).text_analyzer() is None


# -- S3 --------------------------------------------------------------------------------------
@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = mocked_client()
        client.create_bucket(Bucket="hybrid")
        yield client


def test_s3_store_searches_like_a_local_one(s3: Any) -> None:
    emb = HashingEmbeddings(64)
    remote = S3VectorStore(emb, "hybrid", "kb", client=s3, index="hnsw")
    local = LocalVectorStore(emb, index="hnsw")
    for store in (remote, local):
        store.add_texts(TEXTS[:4], METAS[:4], ids=IDS[:4])
        store.add_texts(TEXTS[4:], METAS[4:], ids=IDS[4:])
        store.delete(["t2"])
    reopened = S3VectorStore(emb, "hybrid", "kb", client=s3)
    for query in ("ERR_CONN_RESET socket", "v2.3.1", "the peer closed the connection"):
        for f in (None, {"kind": "note"}):
            want_kw = local.keyword_search_with_score(query, 3, f)
            assert remote.keyword_search_with_score(query, 3, f) == want_kw
            assert reopened.keyword_search_with_score(query, 3, f) == want_kw
            want = local.hybrid_search_with_score(query, 3, f, fusion="weighted")
            assert remote.hybrid_search_with_score(query, 3, f, fusion="weighted") == want
            assert reopened.hybrid_search(query, 3, f) == local.hybrid_search(query, 3, f)
