"""DocumentProcessor: its configuration, plain text and file metadata, chunk ids, sizes and
offsets, and many files at once (each format: test_processing_formats.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document

from tests.processing_support import (
    CHUNK_KEYS,
    MTIME,
    MTIME_ISO,
    expected_id,
    make_docx,
    make_pdf,
    one,
    sha256,
    write,
)
from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import ConfigurationError, DocumentProcessingError
from vectordb_manager.processing import SUPPORTED_EXTENSIONS, DocumentProcessor

# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "overlap", "message"),
    [
        (100, 100, "chunk_overlap=100 must be smaller than chunk_size=100"),
        (100, 150, "chunk_overlap=150 must be smaller than chunk_size=100"),
        (0, 0, "chunk_size=0 must be positive"),
        (100, -1, "chunk_overlap=-1 must be zero or positive"),
        (True, 0, "must be integers"),
        ("100", 10, "must be integers"),
    ],
)
def test_bad_chunking_is_a_configuration_error(size: Any, overlap: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        DocumentProcessor(size, overlap)
    assert isinstance(info.value, ValueError)


def test_other_bad_options() -> None:
    with pytest.raises(ConfigurationError, match="unknown encoding 'no-such-codec'"):
        DocumentProcessor(encoding_fallbacks=("cp1252", "no-such-codec"))
    with pytest.raises(ConfigurationError, match="unknown DocumentProcessor option"):
        DocumentProcessor(chunk_sise=10)
    with pytest.raises(ConfigurationError, match="add_start_index cannot be changed"):
        DocumentProcessor(add_start_index=False)
    with pytest.raises(ConfigurationError, match="json_text_field=''"):
        DocumentProcessor(json_text_field="")
    with pytest.raises(ConfigurationError, match="csv_text_columns"):
        DocumentProcessor(csv_text_columns=["a", 3])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="csv_delimiter"):
        DocumentProcessor(csv_delimiter=";;")


def test_from_config_takes_chunking() -> None:
    processor = DocumentProcessor.from_config(VectorDBConfig(chunk_size=321, chunk_overlap=12))
    assert (processor.chunk_size, processor.chunk_overlap) == (321, 12)
    assert repr(processor) == "DocumentProcessor(chunk_size=321, chunk_overlap=12)"


def test_supported_extensions() -> None:
    assert set(SUPPORTED_EXTENSIONS) == {
        ".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".csv", ".pdf", ".docx",
    }  # fmt: skip


def test_splitter_options_pass_through(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "one|two|three")
    chunks = DocumentProcessor(5, 0, separators=["|"], keep_separator=False).process(path)
    assert [c.page_content for c in chunks] == ["one", "two", "three"]
    assert [c.metadata["start_index"] for c in chunks] == [0, 4, 8]


# -- plain text and file metadata ---------------------------------------------------------


def test_text_file_metadata(tmp_path: Path, processor: DocumentProcessor) -> None:
    data = b"Hello world.\nSecond line.\n"
    path = write(tmp_path / "Note.TXT", data)
    (doc,) = processor.load_file(path)
    assert doc.page_content == "Hello world.\nSecond line.\n"
    assert doc.metadata == {
        "encoding": "utf-8",
        "source": str(path),
        "file_type": "txt",
        "file_hash": sha256(data),
        "modified": MTIME_ISO,
    }
    (chunk,) = processor.split_documents([doc])
    assert chunk.page_content == "Hello world.\nSecond line."
    assert chunk.metadata == {
        **doc.metadata,
        "chunk_index": 0,
        "start_index": 0,
        "content_hash": sha256(b"Hello world.\nSecond line."),
    }
    assert chunk.id == expected_id(str(path), 0, chunk.page_content)


def test_relative_path_becomes_absolute_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processor: DocumentProcessor
) -> None:
    write(tmp_path / "sub" / "a.txt", "text")
    monkeypatch.chdir(tmp_path)
    (chunk,) = processor.process("sub/../sub/a.txt")
    assert chunk.metadata["source"] == str(tmp_path / "sub" / "a.txt")


def test_windows_newlines_are_normalised(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(tmp_path / "a.txt", b"one\r\ntwo\rthree")
    assert processor.load_file(path)[0].page_content == "one\ntwo\nthree"


# -- chunks: ids, sizes, offsets ----------------------------------------------------------

PROSE = "\n\n".join(
    " ".join(f"Paragraph {p} sentence {s} has some words in it." for s in range(6))
    for p in range(8)
)


def test_chunk_sizes_and_start_index(tmp_path: Path) -> None:
    path = write(tmp_path / "prose.txt", PROSE)
    processor = DocumentProcessor(chunk_size=120, chunk_overlap=30)
    chunks = processor.process(path)
    assert len(chunks) == 24
    assert all(0 < len(c.page_content) <= 120 for c in chunks)
    starts = [c.metadata["start_index"] for c in chunks]
    assert starts == sorted(starts)
    assert starts[0] == 0
    for chunk in chunks:
        start = chunk.metadata["start_index"]
        assert PROSE[start : start + len(chunk.page_content)] == chunk.page_content
        assert chunk.metadata["content_hash"] == sha256(chunk.page_content.encode())
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(24))
    # The last chunk ends where the text ends.
    last = chunks[-1]
    assert last.metadata["start_index"] + len(last.page_content) == len(PROSE)


def test_start_index_with_repeated_text(tmp_path: Path) -> None:
    text = "same words again " * 40
    path = write(tmp_path / "rep.txt", text)
    chunks = DocumentProcessor(50, 10).process(path)
    starts = [c.metadata["start_index"] for c in chunks]
    assert starts == sorted(set(starts))  # strictly increasing: no chunk placed at an earlier copy
    for chunk, start in zip(chunks, starts, strict=True):
        assert text[start : start + len(chunk.page_content)] == chunk.page_content
    assert starts[-1] + len(chunks[-1].page_content) == len(text.rstrip())


def test_ids_are_deterministic(tmp_path: Path) -> None:
    path = write(tmp_path / "prose.txt", PROSE)
    first = DocumentProcessor(120, 30).process(path)
    again = DocumentProcessor(120, 30).process([path])
    assert [c.id for c in first] == [c.id for c in again]
    assert [c.metadata for c in first] == [c.metadata for c in again]
    assert len({c.id for c in first}) == len(first)
    for index, chunk in enumerate(first):
        assert chunk.id == expected_id(str(path), index, chunk.page_content)
        assert chunk.id is not None and len(chunk.id) == 32
    write(path, PROSE.replace("Paragraph 7 sentence 5", "Changed"))
    changed = DocumentProcessor(120, 30).process(path)
    assert len(changed) == len(first) == 24
    assert [c.id for c in changed][:23] == [c.id for c in first][:23]
    assert changed[23].id != first[23].id
    assert changed[0].metadata["file_hash"] != first[0].metadata["file_hash"]


def test_split_documents_counts_per_source() -> None:
    processor = DocumentProcessor(20, 0)
    docs = [
        Document(page_content="alpha beta gamma delta epsilon", metadata={"source": "a"}),
        Document(page_content="zeta eta", metadata={"source": "b"}),
        Document(page_content="theta iota", metadata={"source": "a"}),
        Document(page_content="no source at all"),
    ]
    chunks = processor.split_documents(docs)
    assert [
        (c.metadata.get("source"), c.metadata["chunk_index"], c.page_content) for c in chunks
    ] == [
        ("a", 0, "alpha beta gamma"),
        ("a", 1, "delta epsilon"),
        ("b", 0, "zeta eta"),
        ("a", 2, "theta iota"),
        (None, 0, "no source at all"),
    ]
    assert chunks[4].id == expected_id("", 0, "no source at all")
    assert docs[0].metadata == {"source": "a"}  # inputs are not modified


def test_metadata_is_json_only(tmp_path: Path) -> None:
    build_tree(tmp_path)
    results = list(DocumentProcessor(80, 10).iter_files(tmp_path / "docs"))
    chunks = [c for r in results for c in r.chunks]
    assert {c.metadata["file_type"] for c in chunks} == {
        "txt", "md", "html", "json", "jsonl", "csv", "pdf", "docx",
    }  # fmt: skip
    for chunk in chunks:
        assert json.loads(json.dumps(chunk.metadata, allow_nan=False)) == chunk.metadata
        assert set(chunk.metadata) >= CHUNK_KEYS
        assert chunk.metadata["modified"] == MTIME_ISO
        assert Path(chunk.metadata["source"]).is_absolute()


# -- many files ---------------------------------------------------------------------------


def build_tree(root: Path) -> Path:
    docs = root / "docs"
    write(docs / "a.txt", "Alpha text file.")
    write(docs / "b.md", "# Title B\n\nMarkdown body.")
    write(docs / "c.html", "<title>C</title><p>Html body.</p>")
    write(docs / "d.json", json.dumps({"text": "Json body.", "kind": "note"}))
    write(docs / "e.jsonl", '{"text": "Line one."}\n{"text": "Line two."}\n')
    write(docs / "f.csv", "k,v\nx,Csv body.\n")
    write(docs / "g.pdf", make_pdf([["Pdf page one."], ["Pdf page two."]]))
    make_docx(docs / "h.docx")
    os.utime(docs / "h.docx", (MTIME, MTIME))
    write(docs / "nested" / "deep.txt", "Deep text.")
    return docs


def test_directory_with_good_and_bad_files(tmp_path: Path) -> None:
    docs = build_tree(tmp_path)
    write(docs / "bad.jsonl", '{"text": "fine"}\nnot json\n')
    write(docs / "broken.pdf", b"%PDF-1.4\ngarbage")
    write(docs / "image.txt", b"\x00\x01\x02binary")
    write(docs / "empty.txt", b"")
    write(docs / "notes.xyz", "unknown type")
    write(docs / "README", "no extension")
    write(docs / ".hidden.txt", "hidden file")
    write(docs / ".git" / "config.txt", "hidden dir")
    processor = DocumentProcessor(200, 20)

    results = list(processor.iter_files(docs))
    assert [str(r.path.relative_to(docs)) for r in results] == [
        "README", "a.txt", "b.md", "bad.jsonl", "broken.pdf", "c.html", "d.json", "e.jsonl",
        "empty.txt", "f.csv", "g.pdf", "h.docx", "image.txt", "nested/deep.txt", "notes.xyz",
    ]  # fmt: skip
    status = {
        str(r.path.relative_to(docs)): r.error.split(";")[0].split(" (")[0]
        if r.error
        else r.skipped or len(r.chunks)
        for r in results
    }
    assert status == {
        "README": "unsupported file type (no extension)",
        "a.txt": 1,
        "b.md": 1,
        "bad.jsonl": "line 2 is not valid JSON",
        "broken.pdf": "not a readable PDF",
        "c.html": 1,
        "d.json": 1,
        "e.jsonl": 2,
        "empty.txt": "empty file",
        "f.csv": 1,
        "g.pdf": 2,
        "h.docx": 1,
        "image.txt": "binary file, not text",
        "nested/deep.txt": 1,
        "notes.xyz": "unsupported file type .xyz",
    }
    assert [r.path.name for r in results if not r.ok] == ["bad.jsonl", "broken.pdf", "image.txt"]
    read = [r for r in results if r.skipped is None or r.skipped == "empty file"]
    assert len(read) == len(status) - 2  # all but the two of unsupported types
    assert all(r.file_hash == sha256(r.path.read_bytes()) for r in read)
    assert one(results, "notes.xyz").file_hash is None

    with pytest.raises(DocumentProcessingError) as info:
        processor.process(docs)
    message = str(info.value)
    assert message.startswith("3 file(s) could not be processed:\n")
    for name in ("bad.jsonl", "broken.pdf", "image.txt"):
        assert f"  {docs / name}: " in message
    for name in ("notes.xyz", "README", "empty.txt", "a.txt"):
        assert str(docs / name) not in message

    with pytest.raises(DocumentProcessingError, match="3 file"):
        processor.load_directory(docs)


def test_load_directory_and_process_of_a_clean_tree(tmp_path: Path) -> None:
    docs = build_tree(tmp_path)
    write(docs / "skip.xyz", "unknown")
    processor = DocumentProcessor(200, 20)
    loaded = processor.load_directory(docs)
    assert [Path(d.metadata["source"]).name for d in loaded] == [
        "a.txt", "b.md", "c.html", "d.json", "e.jsonl", "e.jsonl", "f.csv", "g.pdf", "g.pdf",
        "h.docx", "deep.txt",
    ]  # fmt: skip
    assert all("chunk_index" not in d.metadata for d in loaded)
    assert [Path(d.metadata["source"]).name for d in processor.load_directory(docs, "*.md")] == [
        "b.md"
    ]
    chunks = processor.process([docs, docs / "a.txt"])  # a.txt named twice: processed once
    assert len(chunks) == 11
    assert [c.page_content for c in chunks][:3] == ["Alpha text file.", "# Title B\n\nMarkdown body.",
                                                    "Html body."]  # fmt: skip
    with pytest.raises(DocumentProcessingError, match="is not a directory"):
        processor.load_directory(docs / "a.txt")


def test_unknown_extension_file_vs_directory(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(tmp_path / "dir" / "notes.rtf", "{\\rtf1 hello}")
    with pytest.raises(DocumentProcessingError) as info:
        processor.load_file(path)
    assert str(info.value) == (
        f"cannot load {path}: unsupported file type .rtf; supported extensions: "
        ".csv, .docx, .htm, .html, .json, .jsonl, .markdown, .md, .pdf, .txt; "
        "convert the file or leave it out"
    )
    (named,) = processor.iter_files(path)
    assert not named.ok
    assert named.error is not None
    assert named.error.startswith("unsupported file type .rtf; supported extensions: .csv")
    (walked,) = processor.iter_files(tmp_path / "dir")
    assert (walked.ok, walked.skipped, walked.error) == (True, "unsupported file type .rtf", None)
    assert processor.load_directory(tmp_path / "dir") == []


def test_missing_path(tmp_path: Path, processor: DocumentProcessor) -> None:
    missing = tmp_path / "nope.txt"
    good = write(tmp_path / "good.txt", "good")
    results = list(processor.iter_files([missing, good]))
    assert [(r.path, r.ok, r.error) for r in results] == [
        (missing, False, "no such file or directory; check the path"),
        (good, True, None),
    ]
    with pytest.raises(DocumentProcessingError, match=f"cannot load {missing}: no such file"):
        processor.load_file(missing)
    with pytest.raises(DocumentProcessingError, match="is a directory; use load_directory"):
        processor.load_file(tmp_path)


def test_iter_files_reads_one_file_at_a_time(tmp_path: Path, processor: DocumentProcessor) -> None:
    write(tmp_path / "1.txt", "first")
    second = write(tmp_path / "2.txt", "second")
    stream = processor.iter_files(tmp_path)
    assert [c.page_content for c in next(stream).chunks] == ["first"]
    write(second, "changed after the first file was yielded")
    assert [c.page_content for c in next(stream).chunks] == [
        "changed after the first file was yielded"
    ]
    assert next(stream, None) is None


def test_progress_bar(
    tmp_path: Path, processor: DocumentProcessor, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "a.txt", "a")
    write(tmp_path / "b.txt", "b")
    assert len(list(processor.iter_files(tmp_path, progress=True))) == 2
    assert "Processing files" in capsys.readouterr().err
    assert len(list(processor.iter_files(tmp_path))) == 2
    assert capsys.readouterr().err == ""


def test_bad_glob(tmp_path: Path, processor: DocumentProcessor) -> None:
    write(tmp_path / "a.txt", "a")
    with pytest.raises(ConfigurationError, match="glob='/abs/\\*' is not a usable pattern"):
        list(processor.iter_files(tmp_path, glob="/abs/*"))
    with pytest.raises(ConfigurationError, match="glob='' is not a usable pattern"):
        processor.load_directory(tmp_path, glob="")
    assert [r.path.name for r in processor.iter_files(tmp_path, glob="*.txt")] == ["a.txt"]


@pytest.mark.parametrize("suffix", [".txt", ".json"])  # a streamed format and a parsed one
def test_files_given_a_source_name_are_the_same_file_wherever_they_are(
    tmp_path: Path, suffix: str
) -> None:
    content = '{"text": "one two three four five six"}' if suffix == ".json" else "one two " * 40
    here = write(tmp_path / "a" / f"copy{suffix}", content)
    there = write(tmp_path / "b" / f"other{suffix}", content)
    processor = DocumentProcessor(chunk_size=30, chunk_overlap=0)
    named = {here: "docs/same", os.fspath(there): "docs/same"}
    results = list(processor.iter_files([here, there], sources=named))
    assert [r.source for r in results] == ["docs/same", "docs/same"]
    first, second = (r.chunks for r in results)
    assert first and [c.id for c in first] == [c.id for c in second]
    assert {c.metadata["source"] for c in first + second} == {"docs/same"}
    unnamed = next(processor.iter_files([here]))
    assert unnamed.source == str(here) and unnamed.chunks[0].metadata["source"] == str(here)
    assert unnamed.chunks[0].id != first[0].id
