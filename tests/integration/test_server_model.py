"""The server with the real offline model (all-MiniLM-L6-v2): ``/ready`` turns 200 once it
is loaded, and queries are semantic (a query shares no word with the document it finds)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.server_support import running_server
from vectordb_manager.client import RemoteVectorStore, VectorDBClient


@pytest.mark.slow
def test_real_model_readiness_and_semantic_search(tmp_path: Path) -> None:
    with running_server(tmp_path, ["--path", str(tmp_path / "root")]) as server:
        deadline = time.monotonic() + 120
        while (ready := httpx.get(f"{server.url}/ready")).status_code != 200:
            assert ready.status_code == 503 and ready.json()["model_loaded"] is False
            assert ready.json()["error"] is None, ready.json()
            assert time.monotonic() < deadline, "the model never loaded"
            time.sleep(0.1)  # between polls
        assert ready.json()["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
        admin = VectorDBClient(server.url)
        created = admin.create_collection("kb")
        assert created["stats"]["dimension"] == 384
        store = RemoteVectorStore(server.url, "kb")
        store.add_texts(
            [
                "The cat curled up on the windowsill and purred.",
                "Interest rates rose again this quarter.",
                "The striker scored twice in the final.",
            ],
            ids=["pet", "money", "sport"],
        )
        assert store.similarity_search("a sleepy kitten", k=1)[0].id == "pet"
        assert store.similarity_search("monetary policy of central banks", k=1)[0].id == "money"
        scored = store.similarity_search_with_relevance_scores("football match goals", k=3)
        assert scored[0][0].id == "sport" and scored[0][1] > scored[1][1]
