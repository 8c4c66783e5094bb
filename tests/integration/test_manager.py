"""VectorDatabaseManager: incremental ingestion, reports, documents, backends and models."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from vectordb_manager import (
    ConfigurationError,
    DimensionMismatchError,
    DocumentNotFoundError,
    InvalidInputError,
    VectorDatabaseManager,
    VectorDBConfig,
)
from vectordb_manager.embeddings import HashingEmbeddings


class Counting(Embeddings):
    """Hashing embeddings that count how many texts they embed."""

    def __init__(self, size: int = 64) -> None:
        self.inner = HashingEmbeddings(size)
        self.size = size
        self.model_name = self.inner.model_name
        self.embedded = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    write(root / "cats.txt", "Cats purr when they are content. " * 20)
    write(root / "dogs.md", "# Dogs\n\nDogs bark at strangers.\n\n## Training\n\nReward good behaviour. " * 3)
    write(root / "sub" / "birds.txt", "Birds sing at dawn and fly south in winter. " * 10)
    return root


def manager(tmp_path: Path, emb: Embeddings | None = None, **config: Any) -> VectorDatabaseManager:
    settings: dict[str, Any] = {"local_path": str(tmp_path / "store"), "chunk_size": 200,
                                "chunk_overlap": 20, "embedding_provider": "fake", **config}
    cfg = VectorDBConfig(**settings)
    return VectorDatabaseManager(cfg, embeddings=emb)


def test_ingest_then_reingest_embeds_nothing(tmp_path: Path, corpus: Path) -> None:
    emb = Counting()
    db = manager(tmp_path, emb)
    first = db.ingest([corpus])
    assert first.ok and first.files_seen == 3 and len(first.files_added) == 3
    assert first.chunks_added == db.count() == emb.embedded > 3
    version = db.stats()["version"]
    again = manager(tmp_path, emb).ingest(corpus)
    assert again.texts_embedded == 0 and emb.embedded == first.chunks_added
    assert len(again.files_unchanged) == 3 and again.chunks_added == again.chunks_removed == 0
    assert manager(tmp_path, emb).stats()["version"] == version  # nothing written
    hits = db.search("why do cats purr", k=2)
    assert hits and all(h.metadata["source"].endswith("cats.txt") for h in hits)


def test_modified_file_replaces_its_chunks(tmp_path: Path, corpus: Path) -> None:
    db = manager(tmp_path)
    db.ingest(corpus)
    cats = str((corpus / "cats.txt").absolute())
    before = set(db.vector_store.get_ids({"source": cats}))
    write(corpus / "cats.txt", "Cats sleep sixteen hours a day. " * 5)
    report = db.ingest(corpus)
    assert report.files_updated == [str(corpus / "cats.txt")] and len(report.files_unchanged) == 2
    after = set(db.vector_store.get_ids({"source": cats}))
    assert after and not after & before
    assert report.chunks_removed == len(before)
    texts = [d.page_content for d in db.get(sorted(after))]
    assert len(texts) == len(after) and all("sleep" in t for t in texts)


def test_full_cleanup_removes_deleted_files(tmp_path: Path, corpus: Path) -> None:
    db = manager(tmp_path)
    db.ingest(corpus)
    (corpus / "sub" / "birds.txt").unlink()
    incremental = db.ingest(corpus)
    assert not incremental.files_removed
    assert db.vector_store.get_ids({"source": str((corpus / "sub" / "birds.txt").absolute())})
    full = db.ingest(corpus, cleanup="full")
    assert full.files_removed == [str((corpus / "sub" / "birds.txt").absolute())]
    assert not db.vector_store.get_ids({"source": str((corpus / "sub" / "birds.txt").absolute())})
    assert full.chunks_removed > 0


def test_problem_files_are_reported_and_nothing_stops(tmp_path: Path, corpus: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (corpus / "blob.txt").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    write(corpus / "legacy.txt", "Caf\xe9 cr\xe8me br\xfbl\xe9e, na\xefve fa\xe7ade. " * 5, encoding="latin-1")
    (corpus / "empty.txt").write_text("")
    (corpus / "image.png").write_bytes(b"\x89PNG\r\n")
    report = manager(tmp_path).ingest(corpus)
    assert set(report.files_failed) == {str(corpus / "broken.pdf"), str(corpus / "blob.txt")}
    assert "binary" in report.files_failed[str(corpus / "blob.txt")]
    assert str(corpus / "legacy.txt") in report.files_added
    assert str(corpus / "empty.txt") in report.files_skipped
    assert str(corpus / "image.png") in report.files_skipped
    text = str(report)
    assert "broken.pdf" in text and "blob.txt" in text and "failed" in text
    assert "broken.pdf" in repr(report)
    assert not report.ok
    legacy = manager(tmp_path).search("crème brûlée", k=1)[0]
    assert "Café" in legacy.page_content


def test_documents_update_get_delete(tmp_path: Path) -> None:
    with manager(tmp_path) as db:
        ids = db.add_texts(["alpha text", "beta text"], [{"n": 1}, {"n": 2}])
        db.add_documents([Document(page_content="gamma text", id="g")])
        assert db.count() == 3
        db.update_document("g", Document(page_content="gamma updated", metadata={"v": 2}))
        assert db.get(["g"])[0].page_content == "gamma updated"
        with pytest.raises(DocumentNotFoundError, match="no document has id 'nope'"):
            db.update_document("nope", Document(page_content="x"))
        assert db.delete([ids[0], "missing"]) == 1
        assert db.count() == 2
        (doc, score), = db.search_with_scores("beta", k=1, filter={"n": 2})
        assert doc.id == ids[1] and 0 <= score <= 1
        assert [d.id for d in db.as_retriever(search_kwargs={"k": 1}).invoke("gamma")] == ["g"]


def test_switch_backend_copies_vectors_without_embedding(tmp_path: Path, corpus: Path) -> None:
    emb = Counting()
    db = manager(tmp_path, emb)
    db.ingest(corpus)
    embedded = emb.embedded
    ids = sorted(db.vector_store.get_ids())
    target = db.config.replace(local_path=str(tmp_path / "copy"))
    assert db.switch_backend(target) == len(ids)
    assert emb.embedded == embedded
    assert sorted(db.vector_store.get_ids()) == ids
    reopened = manager(tmp_path / "x", emb, local_path=str(tmp_path / "copy"))
    assert sorted(reopened.vector_store.get_ids()) == ids
    reopened.verify()


def test_switch_backend_refuses_another_model(tmp_path: Path) -> None:
    db = manager(tmp_path)
    with pytest.raises(ConfigurationError, match="reembed"):
        db.switch_backend(db.config.replace(embedding_provider="huggingface"))


def test_reembed_builds_a_store_for_a_new_model(tmp_path: Path, corpus: Path) -> None:
    db = manager(tmp_path)
    db.ingest(corpus)
    n = db.count()
    with pytest.raises(ConfigurationError, match="another local_path"):
        db.reembed(db.config)
    new_emb = Counting(32)
    target = db.config.replace(local_path=str(tmp_path / "new"), embedding_dimensions=32)
    assert db.reembed(target, embeddings=new_emb) == n
    assert new_emb.embedded == n and db.stats()["dimension"] == 32
    assert db.search("cats purr", k=1)[0].metadata["source"].endswith("cats.txt")
    # the old store is untouched: it still opens with its own model and refuses the new one
    assert manager(tmp_path).count() == n
    with pytest.raises(DimensionMismatchError):
        manager(tmp_path, Counting(32))


def test_a_file_that_becomes_empty_loses_its_chunks(tmp_path: Path, corpus: Path) -> None:
    db = manager(tmp_path)
    db.ingest(corpus)
    (corpus / "cats.txt").write_text("")
    report = db.ingest(corpus)
    assert str(corpus / "cats.txt") in report.files_updated
    assert not db.vector_store.get_ids({"source": str((corpus / "cats.txt").absolute())})


def test_vacuum_and_compact(tmp_path: Path) -> None:
    db = manager(tmp_path)
    ids = db.add_texts(["alpha text"])
    db.add_texts(["beta text"])
    db.delete(ids)
    leftover = tmp_path / "store" / "segments" / f"{'0' * 32}.seg"  # a crashed writer's
    leftover.write_bytes(b"unreferenced")
    os.utime(leftover, (time.time() - 3600, time.time() - 3600))
    for bad in (-1, float("nan"), float("inf"), "600", True):
        with pytest.raises(InvalidInputError, match=r"older_than=.* must be a finite number"):
            db.vacuum(bad)  # type: ignore[arg-type]
    assert leftover.exists()
    assert db.vacuum(older_than=7200) == []
    assert db.vacuum() == [f"segments/{leftover.name}"] and not leftover.exists()
    assert db.stats()["segments"] == 3
    assert db.compact() is True
    assert db.stats()["segments"] == 1 and db.stats()["tombstones"] == 0 and db.count() == 1
    assert db.compact() is False
    assert db.verify()["documents"] == 1



def recorded_applies(db: VectorDatabaseManager, monkeypatch: pytest.MonkeyPatch) -> list[tuple[set[str], set[str]]]:
    """(ids written, ids deleted) of each commit the manager asks of its store."""
    calls: list[tuple[set[str], set[str]]] = []
    real = db.vector_store.apply

    def apply(documents: Any = (), delete: Any = ()) -> list[str]:
        ids = real(documents, delete)
        calls.append((set(ids), set(delete)))
        return ids

    monkeypatch.setattr(db.vector_store, "apply", apply)
    return calls


def test_a_changed_file_is_replaced_in_one_commit(tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its new chunks and the removal of its stale ones are one commit, so no version holds
    both: a crash cannot leave the old and the new text searchable together."""
    db = manager(tmp_path)
    db.ingest(corpus)
    cats = str((corpus / "cats.txt").absolute())
    old = set(db.vector_store.get_ids({"source": cats}))
    write(corpus / "cats.txt", "Cats sleep sixteen hours a day. " * 5)
    calls = recorded_applies(db, monkeypatch)
    report = db.ingest(corpus)
    assert report.files_updated == [str(corpus / "cats.txt")]
    new = set(db.vector_store.get_ids({"source": cats}))
    assert new and not new & old
    assert calls == [(new, old)]


def test_full_cleanup_removes_every_vanished_file_in_one_commit(tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = manager(tmp_path)
    db.ingest(corpus)
    gone = [corpus / "cats.txt", corpus / "sub" / "birds.txt"]
    ids = {i for p in gone for i in db.vector_store.get_ids({"source": str(p.absolute())})}
    for path in gone:
        path.unlink()
    calls = recorded_applies(db, monkeypatch)
    report = db.ingest(corpus, cleanup="full")
    assert sorted(report.files_removed) == sorted(str(p.absolute()) for p in gone)
    assert calls == [(set(), ids)] and len(ids) == report.chunks_removed > 2


class Watching(Counting):
    """Counting embeddings that note, at each call, how far each progress bar has got."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, tuple[int, float | None]]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        from tqdm.std import tqdm

        self.seen.append({str(bar.desc): (bar.n, bar.total) for bar in list(tqdm._instances)})
        return super().embed_documents(texts)


def test_ingest_progress_counts_chunks_while_a_single_large_file_is_embedded(tmp_path: Path) -> None:
    emb = Watching()
    big = write(tmp_path / "docs" / "big.txt", "One sentence about the sea and its ships. " * 3000)
    db = manager(tmp_path, emb, embedding_batch_size=32)
    report = db.ingest(big, progress=True)  # written 256 chunks at a time, as they are read
    assert report.texts_embedded > 512
    # while the one file is read, its bar sits at 0/1 through many calls of the model...
    during = [seen["Processing files"] for seen in emb.seen if "Processing files" in seen]
    assert len(during) >= 512 // 32 and set(during) == {(0, 1)}
    # ...while the chunk bar counts every text embedded
    chunks = [seen["Embedded"][0] for seen in emb.seen]
    assert chunks == list(range(0, report.texts_embedded, 32))


def test_ingest_without_progress_shows_and_counts_no_bar(tmp_path: Path, corpus: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    emb = Watching()
    report = manager(tmp_path, emb).ingest(corpus)
    assert report.texts_embedded > 0 and all(seen == {} for seen in emb.seen)
    assert capsys.readouterr().err == ""


def test_the_store_sees_the_model_through_the_progress_wrapper(tmp_path: Path) -> None:
    emb = Counting(48)
    db = manager(tmp_path, emb)
    db.add_texts(["a text"])
    stats = db.stats()
    assert (stats["embedding_model"], stats["dimension"]) == (emb.model_name, 48)


@pytest.mark.parametrize("query", ["", " ", "\n\t "])
@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_an_empty_query_is_invalid_input(tmp_path: Path, query: str, mode: str) -> None:
    db = manager(tmp_path)
    db.add_texts(["cats purr", "dogs bark"])
    with pytest.raises(InvalidInputError, match="is empty; give the words or question to search for"):
        db.search(query, mode=mode)
    with pytest.raises(InvalidInputError, match="is empty"):
        db.search_with_scores(query, mode=mode)
    with pytest.raises(InvalidInputError, match="the query must be a string, not NoneType"):
        db.search(None)  # type: ignore[arg-type]
    assert [d.page_content for d in db.search("cats", k=1, mode=mode)] == ["cats purr"]
