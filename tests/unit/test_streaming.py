"""DocumentProcessor on hostile and large inputs: file names that are not UTF-8, FIFOs,
sockets and devices, and text files read and split a block at a time."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
from pathlib import Path

import pytest
from langchain_core.documents import Document

from vectordb_manager.errors import DocumentProcessingError
from vectordb_manager.processing import DocumentProcessor
from vectordb_manager.processing.reading import READ_BYTES

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_id(source: str, index: int, text: str) -> str:
    return sha256(f"{source}\0{index}\0{text}".encode("utf-8", "surrogatepass"))[:32]


def non_utf8_name(directory: Path, stem: bytes = b"caf\xe9") -> Path:
    """A path whose name is not UTF-8 (``caf\\xe9.txt``), as Python holds it; skips the test
    where the file system refuses such names."""
    raw = os.path.join(os.fsencode(directory), stem + b".txt")
    try:
        with open(raw, "wb"):
            pass
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    return Path(os.fsdecode(raw))


def prose(paragraphs: int, seed: int = 0) -> str:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]
    out = []
    for p in range(paragraphs):
        sentence = " ".join(words[(p * 7 + i * 3 + seed) % len(words)] for i in range(40))
        out.append(f"Paragraph {p}. {sentence}.\nSecond line of paragraph {p}, {sentence}.")
    return "\n\n".join(out) + "\n"


def spans_cover(text: str, chunks: list[Document]) -> None:
    """Every chunk is where its start_index says, and together they cover every word."""
    covered = bytearray(len(text))
    for chunk in chunks:
        start = chunk.metadata["start_index"]
        assert text[start : start + len(chunk.page_content)] == chunk.page_content
        covered[start : start + len(chunk.page_content)] = b"\x01" * len(chunk.page_content)
    missing = [i for i, c in enumerate(text) if not covered[i] and not c.isspace()]
    assert not missing, f"text not in any chunk at {missing[:5]}"


# -- file names that are not UTF-8 --------------------------------------------------------


def test_a_name_that_is_not_utf8_gets_ids_and_source(tmp_path: Path) -> None:
    path = non_utf8_name(tmp_path)
    path.write_text("Coffee and croissants. " * 30)
    chunks = DocumentProcessor(200, 20).process(tmp_path)
    assert len(chunks) > 1
    for index, chunk in enumerate(chunks):
        assert chunk.metadata["source"] == str(path) and "\udce9" in chunk.metadata["source"]
        assert chunk.id == expected_id(str(path), index, chunk.page_content)
    (result,) = DocumentProcessor(200, 20).iter_files(path)
    assert result.ok and result.source == str(path)


# -- FIFOs, sockets, devices --------------------------------------------------------------


@posix_only
@pytest.mark.timeout(60)  # a guard only: opening a FIFO for reading used to block forever
def test_a_named_fifo_is_refused_and_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    # Keep data waiting in the FIFO: if the processor read it, it would be gone.
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(fd, b"data nobody should read")
        good = tmp_path / "good.txt"
        good.write_text("good text")
        processor = DocumentProcessor()
        failed, ok = processor.iter_files([fifo, good])
        assert failed.error == (
            "not a regular file (a FIFO); only regular files are read: save its content to "
            "a file and ingest that"
        )
        assert failed.chunks == [] and failed.file_hash is None
        assert [c.page_content for c in ok.chunks] == ["good text"]
        with pytest.raises(DocumentProcessingError, match=r"pipe\.txt: not a regular file \(a FIFO\)"):
            processor.load_file(fifo)
        assert os.read(fd, 100) == b"data nobody should read"
    finally:
        os.close(fd)


@posix_only
def test_a_link_to_a_device_named_explicitly_is_refused(tmp_path: Path) -> None:
    zero = tmp_path / "zero.txt"
    zero.symlink_to("/dev/zero")  # reading it would never end
    (result,) = DocumentProcessor().iter_files(zero)
    assert result.error is not None
    assert result.error.startswith("not a regular file (a character device)")


@posix_only
def test_directory_walks_leave_out_fifos_sockets_and_devices(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.txt").write_text("regular file")
    os.mkfifo(root / "pipe.txt")
    (root / "zero.txt").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "sock.txt"))
        processor = DocumentProcessor()
        results = list(processor.iter_files(root))
        assert [(r.path.name, r.ok, [c.page_content for c in r.chunks]) for r in results] == [
            ("a.txt", True, ["regular file"])
        ]
        assert [d.page_content for d in processor.load_directory(root)] == ["regular file"]
    finally:
        sock.close()


# -- text read and split a block at a time ------------------------------------------------


def test_a_text_file_in_blocks_keeps_offsets_indexes_ids_and_hash(tmp_path: Path) -> None:
    text = prose(60)
    path = tmp_path / "big.txt"
    path.write_text(text)
    whole = DocumentProcessor(300, 60).process(path)
    streamed = DocumentProcessor(300, 60, block_size=2000).process(path)
    assert len(text) > 10 * 2000
    assert [c.metadata["chunk_index"] for c in streamed] == list(range(len(streamed)))
    spans_cover(text, streamed)
    starts = [c.metadata["start_index"] for c in streamed]
    assert starts == sorted(set(starts))
    for index, chunk in enumerate(streamed):
        assert chunk.id == expected_id(str(path), index, chunk.page_content)
        assert chunk.metadata["file_hash"] == sha256(path.read_bytes())
        assert chunk.metadata["content_hash"] == sha256(chunk.page_content.encode())
        assert set(chunk.metadata) == set(whole[0].metadata)
    # Blocks end at paragraph breaks, so most chunks are those of the whole text.
    assert len({c.id for c in streamed} & {c.id for c in whole}) > len(whole) // 2


def test_a_small_file_is_one_block(tmp_path: Path) -> None:
    path = tmp_path / "small.txt"
    path.write_text(prose(5))
    one = DocumentProcessor(300, 60).process(path)
    assert [c.metadata for c in DocumentProcessor(300, 60, block_size=len(prose(5))).process(path)] == [
        c.metadata for c in one
    ]


def test_lazy_results_give_the_same_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text(prose(40))
    processor = DocumentProcessor(300, 60, block_size=2000)
    (eager,) = processor.iter_files(path)
    (lazy,) = processor.iter_files(path, lazy=True)
    assert lazy.chunks == [] and lazy.file_hash == eager.file_hash
    assert list(lazy.iter_chunks()) == eager.chunks
    assert list(lazy.iter_chunks()) == []  # taken once


def test_crlf_split_between_reads_is_one_newline(tmp_path: Path) -> None:
    data = b"a" * (READ_BYTES - 1) + b"\r\n" + b"b" * 10 + b"\r" + b"c"
    path = tmp_path / "crlf.txt"
    path.write_bytes(data)
    (doc,) = DocumentProcessor().load_file(path)
    assert doc.page_content == "a" * (READ_BYTES - 1) + "\n" + "b" * 10 + "\nc"
    assert doc.metadata["file_hash"] == sha256(data)


def test_a_late_non_utf8_byte_decodes_the_whole_file_as_legacy(tmp_path: Path) -> None:
    data = b"plain ascii words. " * (READ_BYTES // 10) + b"caf\xe9"
    path = tmp_path / "legacy.txt"
    path.write_bytes(data)
    chunks = DocumentProcessor(1000, 0, block_size=100_000).process(path)
    assert chunks[-1].page_content.endswith("café")
    assert {c.metadata["encoding"] for c in chunks} == {"cp1252"}
    assert {c.metadata["file_hash"] for c in chunks} == {sha256(data)}


def test_a_binary_file_is_refused_with_its_hash(tmp_path: Path) -> None:
    data = b"\x00\x01binary" * 5000
    path = tmp_path / "blob.txt"
    path.write_bytes(data)
    (result,) = DocumentProcessor().iter_files(path)
    assert result.error is not None and result.error.startswith("binary file, not text")
    assert result.file_hash == sha256(data)


def test_a_file_that_changes_while_read_fails(tmp_path: Path) -> None:
    path = tmp_path / "live.txt"
    path.write_text(prose(40))
    (result,) = DocumentProcessor(300, 60, block_size=2000).iter_files(path, lazy=True)
    assert result.file_hash == sha256(path.read_bytes())
    with path.open("r+b") as out:  # a writer rewrites it in place after the first pass
        out.write(b"CHANGED")
    with pytest.raises(DocumentProcessingError, match="changed while it was being read"):
        list(result.iter_chunks())
    assert result.error is not None and result.error.startswith("the file changed")


def test_a_whitespace_file_is_skipped_once_read(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(" \n\t\n" * 1000)
    (result,) = DocumentProcessor(100, 0, block_size=500).iter_files(path, lazy=True)
    assert result.skipped is None
    assert list(result.iter_chunks()) == []
    assert (result.ok, result.skipped) == (True, "no text found")


# -- markdown in blocks --------------------------------------------------------------------


def markdown() -> str:
    para = "Words in a paragraph that goes on for a while. " * 4
    code = "\n".join(f"# shell comment {i}, not a header\necho {i}" for i in range(40))
    parts = [
        *(f"Preface paragraph {i}. {para}" for i in range(12)),
        "# First Title",
        *(f"Intro {i}. {para}" for i in range(6)),
        "## Setup",
        f"Before the code. {para}",
        f"```bash\n{code}\n```",
        f"After the code. {para}",
        "### Linux",
        *(f"Linux {i}. {para}" for i in range(8)),
        "# Second Title",
        *(f"Second {i}. {para}" for i in range(8)),
        "~~~\n# still code\n" + "\n".join(f"line {i}" for i in range(60)) + "\n~~~",
        "## Tail",
        "The end.",
    ]
    return "\n\n".join(parts) + "\n"


def test_markdown_in_blocks_keeps_headers_titles_fences_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(markdown())
    whole = DocumentProcessor(400, 40).load_file(path)  # one document per section
    sections = {(d.metadata.get("headers"), d.metadata.get("title")): d for d in whole}
    assert len(sections) == len(whole) == 6
    streamed = DocumentProcessor(400, 40, block_size=800).process(path)
    assert len(markdown()) > 10 * 800
    assert [c.metadata["chunk_index"] for c in streamed] == list(range(len(streamed)))
    found = set()
    for chunk in streamed:
        key = (chunk.metadata.get("headers"), chunk.metadata.get("title"))
        assert key in sections, f"{key} for {chunk.page_content[:60]!r}"
        section = sections[key].page_content
        start = chunk.metadata["start_index"]
        assert section[start : start + len(chunk.page_content)] == chunk.page_content
        found.add(key)
    assert found == set(sections)
    # the preface, read before any h1, takes the file's first h1 as its title
    assert (None, "First Title") in found
    # nothing of the text is lost
    for key, doc in sections.items():
        spans_cover(doc.page_content, [c for c in streamed if (c.metadata.get("headers"), c.metadata.get("title")) == key])


def test_markdown_without_any_h1_in_blocks(tmp_path: Path) -> None:
    text = "\n\n".join(f"Paragraph {i} with some words to read." for i in range(200))
    path = tmp_path / "notitle.md"
    path.write_text(text)
    streamed = DocumentProcessor(200, 0, block_size=1000).process(path)
    assert streamed and all("title" not in c.metadata for c in streamed)
    spans_cover(text, streamed)


def test_markdown_code_fence_longer_than_a_block(tmp_path: Path) -> None:
    code = "\n".join(f"# not a header {i}" for i in range(300))
    text = f"# Top\n\nIntro.\n\n```\n{code}\n```\n\n## After\n\nDone."
    path = tmp_path / "fence.md"
    path.write_text(text)
    (whole_top, whole_after) = DocumentProcessor(500, 0).load_file(path)
    streamed = DocumentProcessor(500, 0, block_size=1000).process(path)
    assert {c.metadata["headers"] for c in streamed} == {"Top", "Top > After"}
    top = [c for c in streamed if c.metadata["headers"] == "Top"]
    spans_cover(whole_top.page_content, top)
    assert whole_after.page_content == "## After\n\nDone."


def test_markdown_blocks_put_every_chunk_where_its_start_index_says(tmp_path: Path) -> None:
    table = "\n".join(f"| `call_{i}()` | does thing {i} |" for i in range(12))
    long_line = " ".join(f"word{i}" + " " * (i % 3) for i in range(150))  # longer than a block
    fence = "```\n" + "\n\n".join(f"# code {i}" for i in range(10)) + "\n```"
    parts = ["# Title", "Intro text here.", "## Table", "| Method | Does |\n|---|---|", table,
             "Text after the table.", long_line, "### Deeper", fence, "Closing words.",
             "## Last", table, "The end."]
    text = "\n\n".join(parts) + "\n"
    path = tmp_path / "cuts.md"
    path.write_text(text)
    sections: dict[tuple[object, object], str] = {
        (d.metadata.get("headers"), d.metadata.get("title")): d.page_content
        for d in DocumentProcessor(120, 0).load_file(path)
    }
    for block_size in range(150, 600):  # cuts land on every kind of line, at every offset
        chunks = DocumentProcessor(120, 0, block_size=block_size).process(path)
        assert {(c.metadata.get("headers"), c.metadata.get("title")) for c in chunks} == set(
            sections
        ), block_size
        for chunk in chunks:
            section = sections[(chunk.metadata.get("headers"), chunk.metadata.get("title"))]
            start = chunk.metadata["start_index"]
            assert section[start : start + len(chunk.page_content)] == chunk.page_content, (
                block_size, start, chunk.page_content[:40])


# -- JSON Lines and CSV, a line at a time --------------------------------------------------


def test_jsonl_and_csv_stream_rows(tmp_path: Path) -> None:
    lines = [json.dumps({"text": f"record {i} " * 20, "n": i}) for i in range(300)]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    chunks = DocumentProcessor(100, 0, block_size=1000).process(jsonl)
    assert [c.metadata["line"] for c in chunks if c.metadata["start_index"] == 0] == list(range(1, 301))
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    csv = tmp_path / "r.csv"
    csv.write_text("q,a\n" + "".join(f'q{i},"multi\nline {i}"\n' for i in range(300)))
    rows = DocumentProcessor(1000, 0).process(csv)
    assert [r.page_content for r in rows[:2]] == ["q: q0\na: multi\nline 0", "q: q1\na: multi\nline 1"]
    assert [r.metadata["row"] for r in rows] == list(range(1, 301))
