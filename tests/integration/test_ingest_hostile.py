"""VectorDatabaseManager.ingest on hostile inputs: names that are not UTF-8, FIFOs, files the
store refuses or that fail part way, and large files streamed into the store."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from vectordb_manager import (
    DocumentProcessor,
    IngestReport,
    VectorDatabaseManager,
    VectorDBConfig,
)
from vectordb_manager.embeddings import HashingEmbeddings

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types")


class Recording(Embeddings):
    """Hashing embeddings that record each call's size; ``hook`` runs before each call.

    A text holding ``POISON`` gets an all-zero vector, which a cosine store refuses
    (`InvalidInputError`), as it would refuse a metadata value it cannot keep.
    """

    def __init__(self, hook: Any = None) -> None:
        self.inner = HashingEmbeddings(32)
        self.size = 32
        self.model_name = self.inner.model_name
        self.calls: list[int] = []
        self.hook = hook

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.hook is not None:
            self.hook(len(self.calls))
        self.calls.append(len(texts))
        vectors = self.inner.embed_documents(texts)
        return [[0.0] * self.size if "POISON" in t else v for t, v in zip(texts, vectors, strict=True)]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def manager(
    tmp_path: Path, emb: Embeddings | None = None, processor: DocumentProcessor | None = None
) -> VectorDatabaseManager:
    config = VectorDBConfig(local_path=str(tmp_path / "store"), chunk_size=200, chunk_overlap=20,
                            embedding_provider="fake", embedding_dimensions=32)
    return VectorDatabaseManager(config, embeddings=emb or Recording(), processor=processor)


def tree(tmp_path: Path, **files: str) -> Path:
    """A directory ``docs`` holding the files named (``a_txt`` is ``a.txt``) with their text."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in files.items():
        (docs / name.replace("_", ".")).write_text(text)
    return docs


def ids_of(db: VectorDatabaseManager, path: Path) -> set[str]:
    return set(db.vector_store.get_ids({"source": str(path)}))


def printable(report: IngestReport) -> str:
    """The report's str and repr, written to a UTF-8 stream as print() would."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    print(report, file=out)
    print(repr(report), file=out)
    out.flush()
    return out.buffer.getvalue().decode()  # type: ignore[attr-defined,no-any-return]


def prose(paragraphs: int, tag: str = "") -> str:
    return "\n\n".join(
        f"Paragraph {p} {tag}: rivers and mountains, markets and harbours, early and late. " * 3
        for p in range(paragraphs)
    )


# -- names that are not UTF-8 -------------------------------------------------------------


def test_a_name_that_is_not_utf8_is_ingested_updated_and_cleaned_up(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    raw = os.path.join(os.fsencode(docs), b"caf\xe9.txt")
    try:
        with open(raw, "w") as out:
            out.write("Coffee and croissants at the corner cafe. " * 20)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    cafe = Path(os.fsdecode(raw))
    (docs / "good.txt").write_text("A good plain file about tea. " * 10)
    emb = Recording()
    db = manager(tmp_path, emb)
    first = db.ingest(docs)
    assert first.ok and sorted(first.files_added) == sorted([str(cafe), str(docs / "good.txt")])
    stored = db.get(sorted(ids_of(db, cafe)))
    assert len(stored) > 1 and {d.metadata["source"] for d in stored} == {str(cafe)}

    embedded = sum(emb.calls)
    again = manager(tmp_path, emb).ingest(docs)
    assert again.texts_embedded == 0 and sum(emb.calls) == embedded
    assert sorted(again.files_unchanged) == sorted([str(cafe), str(docs / "good.txt")])

    before = ids_of(db, cafe)
    cafe.write_text("Espresso only, nothing else. " * 20)
    changed = db.ingest(docs)
    assert changed.files_updated == [str(cafe)]
    after = ids_of(db, cafe)
    assert after and not after & before

    cafe.unlink()
    binary = Path(os.fsdecode(os.path.join(os.fsencode(docs), b"bin\xff.txt")))
    binary.write_bytes(b"\x00\x01 not text")
    full = db.ingest(docs, cleanup="full")
    assert full.files_removed == [str(cafe)] and full.chunks_removed == len(after)
    assert not ids_of(db, cafe) and ids_of(db, docs / "good.txt")
    assert list(full.files_failed) == [str(binary)]
    text = printable(full)
    assert f"  failed  {docs}/bin\\xff.txt: binary file, not text" in text
    assert "bin\\udcff.txt" in text  # the repr, as Python holds the name


def test_report_names_that_are_not_utf8_print_escaped() -> None:
    report = IngestReport(files_seen=1, files_failed={"/d/caf\udce9.txt": "refused \ud800"},
                          files_skipped={"/d/b\udcff.md": "empty file"})
    text = printable(report)
    assert "  failed  /d/caf\\xe9.txt: refused \\ud800" in text
    assert "  skipped /d/b\\xff.md: empty file" in text
    assert "'/d/caf\\udce9.txt'" in text  # the repr shows the str as Python holds it


# -- one file's failure is that file's only -----------------------------------------------


def test_chunks_the_store_refuses_fail_only_their_file(tmp_path: Path) -> None:
    docs = tree(tmp_path, a_txt="Apples grow on trees. " * 5, b_txt="This one holds POISON. " * 5,
                c_txt="Cherries are red. " * 5)
    db = manager(tmp_path)
    report = db.ingest(docs)  # one batch for all three: it is refused, then split by file
    assert report.files_added == [str(docs / "a.txt"), str(docs / "c.txt")]
    assert list(report.files_failed) == [str(docs / "b.txt")]
    assert report.files_failed[str(docs / "b.txt")].startswith("the store refused its chunks: ")
    assert "all zeros" in report.files_failed[str(docs / "b.txt")]
    assert report.files_seen == 3 and not report.ok
    assert db.count() == report.chunks_added == len(ids_of(db, docs / "a.txt")) + len(
        ids_of(db, docs / "c.txt")
    )
    assert not ids_of(db, docs / "b.txt")
    db.verify()


def test_a_file_refused_part_way_keeps_its_previous_chunks(tmp_path: Path) -> None:
    docs = tree(tmp_path, big_txt=prose(40, "first"))
    big = docs / "big.txt"
    processor = DocumentProcessor(200, 20, block_size=1000)
    db = manager(tmp_path, processor=processor)
    db.ingest(docs)
    first = ids_of(db, big)
    assert len(first) > 40
    big.write_text(prose(40, "second") + "\n\nThe very end holds POISON.")
    (docs / "other.txt").write_text("Another file, ingested in the same run. " * 3)
    report = db.ingest(docs, batch_size=4)  # many batches of big.txt are stored first
    assert list(report.files_failed) == [str(big)]
    assert report.files_added == [str(docs / "other.txt")]
    assert ids_of(db, big) == first  # what this run wrote for it was taken out again
    assert db.count() == len(first) + len(ids_of(db, docs / "other.txt"))
    assert report.chunks_added == len(ids_of(db, docs / "other.txt"))
    db.verify()


def test_a_file_that_changes_while_it_streams_is_undone(tmp_path: Path) -> None:
    docs = tree(tmp_path, a_txt="First file, read in full. " * 5, b_txt=prose(40, "live"))
    live = docs / "b.txt"

    def writer(call: int) -> None:
        if call == 1:  # b.txt's first batch: its file is still being read
            with live.open("a") as out:
                out.write("\n\nA paragraph appended by a writer.")

    emb = Recording(writer)
    db = manager(tmp_path, emb, DocumentProcessor(200, 20, block_size=1000))
    report = db.ingest(docs, batch_size=4)
    assert list(report.files_failed) == [str(live)]
    assert report.files_failed[str(live)].startswith("the file changed while it was being read")
    assert len(emb.calls) > 2  # b.txt's chunks were being stored while it was read
    assert not ids_of(db, live)
    assert report.files_added == [str(docs / "a.txt")]
    assert db.count() == report.chunks_added == len(ids_of(db, docs / "a.txt"))


def test_a_splitter_error_in_one_file_fails_only_that_file(tmp_path: Path) -> None:
    docs = tree(tmp_path, a_txt="Plain words. " * 5, b_txt="The word BOOM breaks this splitter. " * 5,
                c_txt="More plain words. " * 5)

    def length(text: str) -> int:
        if "BOOM" in text:
            raise ValueError("cannot measure BOOM")
        return len(text)

    db = manager(tmp_path, processor=DocumentProcessor(100, 10, length_function=length))
    report = db.ingest(docs)
    assert report.files_added == [str(docs / "a.txt"), str(docs / "c.txt")]
    assert report.files_failed == {
        str(docs / "b.txt"): "unexpected ValueError while processing the file: cannot measure BOOM"
    }


# -- FIFOs ----------------------------------------------------------------------------------


@posix_only
@pytest.mark.timeout(60)  # a guard only: ingesting a named FIFO used to hang forever
def test_a_named_fifo_fails_and_a_walked_one_is_left_out(tmp_path: Path) -> None:
    docs = tree(tmp_path, a_txt="A regular file. " * 5)
    os.mkfifo(docs / "pipe.txt")
    db = manager(tmp_path)
    walked = db.ingest(docs)
    assert walked.ok and walked.files_added == [str(docs / "a.txt")] and walked.files_seen == 1
    named = db.ingest([docs / "pipe.txt", docs / "a.txt"])
    assert named.files_failed == {
        str(docs / "pipe.txt"): "not a regular file (a FIFO); only regular files are read: "
        "save its content to a file and ingest that"
    }
    assert named.files_unchanged == [str(docs / "a.txt")]


# -- large files, streamed -------------------------------------------------------------------


def test_a_large_file_is_streamed_in_batches_and_updated_incrementally(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text(prose(120))
    processor = DocumentProcessor(200, 20, block_size=2000)
    emb = Recording()
    db = manager(tmp_path, emb, processor)
    first = db.ingest(big, batch_size=16)
    expected = {c.id for c in processor.process(big)}
    assert len(expected) > 200 and ids_of(db, big) == expected
    assert first.chunks_added == first.texts_embedded == len(expected)
    assert max(emb.calls) <= 16 and len(emb.calls) >= len(expected) // 16

    db.close()  # the merges the ingestion started: done, so that the version stays
    version, calls = db.stats()["version"], len(emb.calls)
    again = manager(tmp_path, emb, processor).ingest(big, batch_size=16)
    assert again.files_unchanged == [str(big)] and again.texts_embedded == 0
    assert len(emb.calls) == calls and db.stats()["version"] == version

    text = big.read_text()
    big.write_text(text.replace("Paragraph 60 :", "Paragraph sixty, rewritten:"))
    changed = db.ingest(big, batch_size=16)
    expected_now = {c.id for c in processor.process(big)}
    assert changed.files_updated == [str(big)]
    assert ids_of(db, big) == expected_now and db.count() == len(expected_now)
    assert 0 < changed.chunks_added < len(expected_now) // 4
    assert changed.chunks_removed == len(expected - expected_now)
