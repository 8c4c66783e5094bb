"""The LangChain surface beyond the standard suite: constructors, ids, copies, the factory."""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document

from vectordb_manager import (
    LocalVectorStore,
    VectorDBConfig,
    create_vector_store,
)
from vectordb_manager.embeddings import HashingEmbeddings

EMB = HashingEmbeddings(32)


def test_from_documents_passes_path_and_options(tmp_path: Path) -> None:
    docs = [Document(page_content="alpha beta", metadata={"n": 1}, id="a"), Document(page_content="gamma")]
    store = LocalVectorStore.from_documents(docs, EMB, path=tmp_path, distance="l2", index="hnsw")
    assert isinstance(store, LocalVectorStore)
    again = LocalVectorStore(EMB, tmp_path, distance="l2")
    assert len(again) == 2 and again.get_by_ids(["a"])[0].metadata == {"n": 1}
    assert again.stats()["distance"] == "l2"


def test_from_texts_in_memory() -> None:
    store = LocalVectorStore.from_texts(["one", "two"], EMB, metadatas=[{"k": 1}, {"k": 2}], ids=["1", "2"])
    assert [d.id for d in store.similarity_search("two", k=1)] == ["2"]


def test_document_ids_are_honoured_and_missing_ones_generated() -> None:
    store = LocalVectorStore(EMB)
    ids = store.add_documents([Document(page_content="x", id="given"), Document(page_content="y")])
    assert ids[0] == "given" and len(ids[1]) == 36
    assert {d.id for d in store.get_by_ids(ids)} == set(ids)


def test_explicit_ids_win_over_document_ids() -> None:
    store = LocalVectorStore(EMB)
    assert store.add_documents([Document(page_content="x", id="doc")], ids=["kw"]) == ["kw"]
    assert store.get_by_ids(["doc"]) == []


def test_metadata_is_copied_in_and_out() -> None:
    store = LocalVectorStore(EMB)
    meta = {"tags": ["a"]}
    store.add_texts(["text"], [meta], ids=["t"])
    meta["tags"].append("changed")
    got = store.get_by_ids(["t"])[0]
    assert got.metadata == {"tags": ["a"]}
    got.metadata["tags"].append("mutated")
    assert store.get_by_ids(["t"])[0].metadata == {"tags": ["a"]}


def test_get_by_ids_keeps_order_and_skips_missing() -> None:
    store = LocalVectorStore(EMB)
    store.add_texts(["a", "b", "c"], ids=["1", "2", "3"])
    assert [d.id for d in store.get_by_ids(["3", "nope", "1"])] == ["3", "1"]


def test_empty_add_and_len_repr_stats(tmp_path: Path) -> None:
    store = LocalVectorStore(EMB, tmp_path)
    assert store.add_texts([]) == []
    store.add_texts(["a"])
    assert len(store) == 1
    assert "documents=1" in repr(store)
    stats = store.stats()
    assert stats["documents"] == 1 and stats["dimension"] == 32 and stats["index"] == "flat"
    assert stats["embedding_model"] == "hashing-bow-32"


def test_create_vector_store_local_and_memory(tmp_path: Path) -> None:
    config = VectorDBConfig(local_path=str(tmp_path / "s"), distance_metric="l2", index_type="hnsw",
                            embedding_provider="fake")
    store = create_vector_store(config, EMB)
    assert isinstance(store, LocalVectorStore) and store.path == tmp_path / "s"
    store.add_texts(["persisted"])
    assert len(LocalVectorStore(EMB, tmp_path / "s", distance="l2")) == 1
    memory = create_vector_store(config.replace(storage_type="memory"), EMB)
    assert isinstance(memory, LocalVectorStore) and memory.path is None


async def test_async_surface(tmp_path: Path) -> None:
    store = LocalVectorStore(EMB, tmp_path)
    ids = await store.aadd_texts(["async text one", "other words"], ids=["a1", "a2"])
    assert ids == ["a1", "a2"]
    assert (await store.asimilarity_search("async one", k=1))[0].id == "a1"
    scored = await store.asimilarity_search_with_relevance_scores("async one", k=2)
    assert scored[0][1] >= scored[1][1]
    assert [d.id for d in await store.aget_by_ids(["a2"])] == ["a2"]
    assert await store.adelete(["a1"])
    mmr = await store.amax_marginal_relevance_search("words", k=1)
    assert [d.id for d in mmr] == ["a2"]
    retriever = store.as_retriever(search_kwargs={"k": 1})
    assert [d.id for d in await retriever.ainvoke("other")] == ["a2"]


def test_writing_while_iterating_rows_does_not_deadlock(tmp_path: Path) -> None:
    store = LocalVectorStore(EMB, tmp_path)
    store.add_texts([f"text {i}" for i in range(30)], ids=[str(i) for i in range(30)])
    seen = 0
    for rows in store.engine.iter_rows(batch_size=10):
        seen += len(rows)
        store.add_texts([f"copy of {rows.ids[0]}"], ids=[f"copy-{rows.ids[0]}"])
    assert seen == 30 and len(store) == 33


def test_apply_adds_and_deletes_in_one_commit(tmp_path: Path) -> None:
    store = LocalVectorStore(EMB, tmp_path, compaction={"enabled": False})
    store.add_texts(["old chunk one", "old chunk two", "other"], ids=["o1", "o2", "x"])
    version = store.stats()["version"]
    ids = store.apply(
        [Document(page_content="new chunk", id="n1"), Document(page_content="no id yet")],
        delete=["o1", "o2", "not-there"],
    )
    assert ids[0] == "n1" and len(ids) == 2
    assert store.stats()["version"] == version + 1, "one commit"
    again = LocalVectorStore(EMB, tmp_path)
    assert sorted(again.engine.ids()) == sorted(["x", *ids])
    # an id deleted and given a document in the same call keeps the document
    store.apply([Document(page_content="replaced", id="x")], delete=["x"])
    assert store.get_by_ids(["x"])[0].page_content == "replaced"
    assert store.apply(delete=["n1"]) == [] and "n1" not in store.engine.ids()


def test_ids_by_value_groups_without_decoding(tmp_path: Path) -> None:
    store = LocalVectorStore(EMB, tmp_path)
    store.add_texts(["a", "b", "c", "d"], [{"s": "x"}, {"s": "y"}, {"s": "x"}, {}], ids=["1", "2", "3", "4"])
    again = LocalVectorStore(EMB, tmp_path)
    assert sorted(again.ids_by_value("s")) == [("x", ["1", "3"]), ("y", ["2"])]
    assert again.ids_by_value("missing") == []


def test_copy_to_moves_vectors_without_embedding(tmp_path: Path) -> None:
    source = LocalVectorStore(EMB, tmp_path / "a", distance="l2")
    source.add_texts([f"text {i}" for i in range(25)], [{"i": i} for i in range(25)], ids=[str(i) for i in range(25)])

    class NoEmbedding(HashingEmbeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("copy_to must not embed")

    target = LocalVectorStore(NoEmbedding(32), tmp_path / "b", distance="l2")
    batches: list[int] = []
    assert source.copy_to(target, batch_size=10, progress=batches.append) == 25
    assert batches == [10, 10, 5]
    ids = [str(i) for i in range(25)]
    assert target.get_by_ids(ids) == source.get_by_ids(ids)
    vector = EMB.embed_query("text 7")
    assert [d.id for d in target.similarity_search_by_vector(vector, k=3)] == [
        d.id for d in source.similarity_search_by_vector(vector, k=3)
    ]
