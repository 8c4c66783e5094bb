"""DocumentProcessor: every format from real files, encodings, chunk metadata, many files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import ConfigurationError, DocumentProcessingError
from vectordb_manager.processing import SUPPORTED_EXTENSIONS, DocumentProcessor, FileResult

MTIME = 1_704_164_645  # 2024-01-02T03:04:05Z
MTIME_ISO = "2024-01-02T03:04:05+00:00"
FILE_KEYS = {"source", "file_type", "file_hash", "modified"}
CHUNK_KEYS = FILE_KEYS | {"chunk_index", "start_index", "content_hash"}


# -- helpers ------------------------------------------------------------------------------


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content if isinstance(content, bytes) else content.encode(encoding)
    path.write_bytes(data)
    os.utime(path, (MTIME, MTIME))
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_id(source: str, index: int, text: str) -> str:
    return sha256(f"{source}\0{index}\0{text}".encode())[:32]


def make_pdf(pages: Sequence[Sequence[str]], title: str | None = None) -> bytes:
    """A valid PDF written by hand: one Helvetica text line per entry, one page per list."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    count = len(pages)
    font = 3 + 2 * count
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
    }
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td", *(f"({esc(x)}) Tj T*" for x in lines)]
        stream = "\n".join([*ops, "ET"]).encode("latin-1")
        objects[3 + 2 * i] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {4 + 2 * i} 0 R >>"
        ).encode()
        objects[4 + 2 * i] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    objects[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    info = ""
    if title is not None:
        objects[font + 1] = f"<< /Title ({esc(title)}) >>".encode("latin-1")
        info = f" /Info {font + 1} 0 R"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += f"trailer\n<< /Size {size} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def one(results: list[FileResult], name: str) -> FileResult:
    (found,) = [r for r in results if r.path.name == name]
    return found


def meta_without_file_keys(doc: Document) -> dict[str, Any]:
    return {k: v for k, v in doc.metadata.items() if k not in FILE_KEYS}


@pytest.fixture
def processor() -> DocumentProcessor:
    return DocumentProcessor(chunk_size=200, chunk_overlap=20)


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


# -- markdown -----------------------------------------------------------------------------

MARKDOWN = """Preface before any header.

# Intro

Intro paragraph one.
Still paragraph one.

Intro paragraph two.

## Setup

Install it.

```bash
# not a header, a shell comment
pip install thing
```

### Linux

Use\tapt.

## Usage

Run it.

# Appendix

The end.
"""


def test_markdown_sections_keep_header_path(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(tmp_path / "guide.md", MARKDOWN)
    docs = processor.load_file(path)
    assert [(d.page_content, meta_without_file_keys(d)) for d in docs] == [
        ("Preface before any header.", {"encoding": "utf-8", "title": "Intro"}),
        (
            "# Intro\n\nIntro paragraph one.\nStill paragraph one.\n\nIntro paragraph two.",
            {"encoding": "utf-8", "title": "Intro", "headers": "Intro"},
        ),
        (
            "## Setup\n\nInstall it.\n\n```bash\n# not a header, a shell comment\n"
            "pip install thing\n```",
            {"encoding": "utf-8", "title": "Intro", "headers": "Intro > Setup"},
        ),
        (
            "### Linux\n\nUse    apt.",
            {"encoding": "utf-8", "title": "Intro", "headers": "Intro > Setup > Linux"},
        ),
        (
            "## Usage\n\nRun it.",
            {"encoding": "utf-8", "title": "Intro", "headers": "Intro > Usage"},
        ),
        (
            "# Appendix\n\nThe end.",
            {"encoding": "utf-8", "title": "Appendix", "headers": "Appendix"},
        ),
    ]
    assert {d.metadata["file_type"] for d in docs} == {"md"}


def test_long_markdown_section_is_split_further(tmp_path: Path) -> None:
    body = " ".join(f"word{i}" for i in range(60))
    path = write(tmp_path / "long.markdown", f"# Big\n\n## Part\n\n{body}\n")
    processor = DocumentProcessor(100, 10)
    (section_doc,) = processor.load_file(path)
    section = "# Big\n\n## Part\n\n" + body  # a header with no text joins its subsection
    assert section_doc.page_content == section
    chunks = processor.process(path)
    assert len(chunks) == 6
    assert all(len(c.page_content) <= 100 for c in chunks)
    assert {c.metadata["headers"] for c in chunks} == {"Big > Part"}
    assert {c.metadata["file_type"] for c in chunks} == {"markdown"}
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        start = chunk.metadata["start_index"]
        assert section[start : start + len(chunk.page_content)] == chunk.page_content


# -- HTML ---------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head>
  <title>  Caf&eacute;   &amp; Bar </title>
  <style>body { color: red; } p::after { content: "STYLE"; }</style>
  <script>var s = "<p>SCRIPT</p>"; if (a < b) { alert("x"); }</script>
  <meta charset="utf-8">
</head>
<body>
  <noscript><p>NOSCRIPT please enable</p></noscript>
  <h1>Main   heading</h1>
  <p>Price: 5&nbsp;&euro; &lt;cheap&gt; &#8212; <b>bold</b>&#x21;</p>
  <ul><li>first</li><li>second</li></ul>
  <div>line one<br>line two</div>
  <table><tr><th>k</th><td>v</td></tr></table>
  <!-- COMMENT -->
  <pre>keep   this</pre>
  <template><p>TEMPLATE</p></template>
</body></html>
"""


def test_html_visible_text_only(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(tmp_path / "page.html", HTML)
    (doc,) = processor.load_file(path)
    assert doc.page_content == (
        "Main heading\n\n"
        "Price: 5 € <cheap> — bold!\n\n"
        "first\nsecond\n\n"
        "line one\nline two\n\n"
        "k v\n\n"
        "keep   this"
    )
    assert meta_without_file_keys(doc) == {"encoding": "utf-8", "title": "Café & Bar"}
    for hidden in ("SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "COMMENT", "color", "<p>", "alert"):
        assert hidden not in doc.page_content


def test_html_without_title_uses_h1(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(tmp_path / "p.htm", "<body><h1>The <i>Heading</i></h1><p>text</p><h1>Two</h1>")
    (doc,) = processor.load_file(path)
    assert doc.page_content == "The Heading\n\ntext\n\nTwo"
    assert doc.metadata["title"] == "The Heading"
    assert doc.metadata["file_type"] == "htm"


def test_html_with_only_markup_is_skipped(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(tmp_path / "empty.html", "<html><script>x()</script><div> </div></html>")
    (result,) = processor.iter_files(path)
    assert (result.ok, result.skipped, result.chunks) == (True, "no text found", [])


# -- JSON and JSON Lines ------------------------------------------------------------------


def test_json_list_with_nested_text_field(tmp_path: Path) -> None:
    records = [
        {"id": 1, "title": "First", "score": 0.5, "ok": True, "none": None,
         "body": {"text": "alpha text", "lang": "en"}, "tags": ["a", "b"]},
        {"id": 2, "title": "Second", "body": {"text": "beta text"}},
    ]  # fmt: skip
    path = write(tmp_path / "items.json", json.dumps(records))
    docs = DocumentProcessor(json_text_field="body.text").load_file(path)
    assert [(d.page_content, meta_without_file_keys(d)) for d in docs] == [
        ("alpha text", {"id": 1, "title": "First", "score": 0.5, "ok": True, "none": None,
                        "record": 1}),
        ("beta text", {"id": 2, "title": "Second", "record": 2}),
    ]  # fmt: skip


def test_json_list_index_in_field_path(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", json.dumps({"items": [{"text": "x"}, {"text": "y"}]}))
    (doc,) = DocumentProcessor(json_text_field="items.1.text").load_file(path)
    assert doc.page_content == "y"


def test_json_default_text_keys_and_whole_record(
    tmp_path: Path, processor: DocumentProcessor
) -> None:
    path = write(
        tmp_path / "mixed.json",
        json.dumps([{"content": "from content", "n": 1}, {"a": 1, "b": {"c": "é"}}, "plain", 7]),
    )
    docs = processor.load_file(path)
    assert [d.page_content for d in docs] == [
        "from content",
        '{\n  "a": 1,\n  "b": {\n    "c": "é"\n  }\n}',
        "plain",
        "7",
    ]
    assert [meta_without_file_keys(d) for d in docs] == [
        {"n": 1, "record": 1},
        {"a": 1, "record": 2},
        {"record": 3},
        {"record": 4},
    ]


def test_json_single_object_prefers_text_key(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(tmp_path / "one.json", json.dumps({"body": "B", "text": "T", "source": "web"}))
    (doc,) = processor.load_file(path)
    assert doc.page_content == "T"
    assert doc.metadata["body"] == "B"
    assert doc.metadata["source"] == str(path)  # the file's path wins over a record field


def test_json_missing_field_and_invalid_json(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", json.dumps([{"body": {"text": "ok"}}, {"title": "no body"}]))
    with pytest.raises(DocumentProcessingError) as info:
        DocumentProcessor(json_text_field="body.text").load_file(path)
    assert str(info.value) == (
        f"cannot load {path}: record 2 has no field 'body.text' (no 'body'); its top-level "
        "fields are: title; set json_text_field to the field holding the text"
    )
    bad = write(tmp_path / "bad.json", '{"a": 1,}')
    with pytest.raises(DocumentProcessingError, match=r"not valid JSON \(Expecting property"):
        DocumentProcessor().load_file(bad)


def test_jsonl_one_document_per_line(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(
        tmp_path / "log.jsonl",
        '{"text": "first", "level": "info"}\n\n{"text": "third", "level": "warn"}\n"bare"\n',
    )
    docs = processor.load_file(path)
    assert [(d.page_content, meta_without_file_keys(d)) for d in docs] == [
        ("first", {"level": "info", "line": 1}),
        ("third", {"level": "warn", "line": 3}),
        ("bare", {"line": 4}),
    ]


def test_jsonl_malformed_line_fails_the_file(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(tmp_path / "bad.jsonl", '{"text": "a"}\n{"text": "b"}\n{"text": oops}\n')
    with pytest.raises(DocumentProcessingError) as info:
        processor.load_file(path)
    assert str(info.value) == (
        f"cannot load {path}: line 3 is not valid JSON (Expecting value at column 10); "
        "fix or remove that line"
    )
    (result,) = processor.iter_files(path)
    assert not result.ok
    assert result.chunks == []
    assert result.error is not None
    assert result.error.startswith("line 3 is not valid JSON")


# -- CSV ----------------------------------------------------------------------------------

CSV = 'id,question,answer,lang\n1,What is it?,"A tool, really.",en\n2,Why?,"Because\nit works.",fr\n3,,,de\n'


def test_csv_chosen_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "faq.csv", CSV)
    processor = DocumentProcessor(
        csv_text_columns=["question", "answer"], csv_metadata_columns=["id", "lang"]
    )
    docs = processor.load_file(path)
    assert [(d.page_content, meta_without_file_keys(d)) for d in docs] == [
        ("What is it?\nA tool, really.", {"id": "1", "lang": "en", "row": 1}),
        ("Why?\nBecause\nit works.", {"id": "2", "lang": "fr", "row": 2}),
    ]  # row 3 has no text in the chosen columns


def test_csv_all_columns_by_default(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(tmp_path / "faq.csv", CSV)
    docs = processor.load_file(path)
    assert [d.page_content for d in docs] == [
        "id: 1\nquestion: What is it?\nanswer: A tool, really.\nlang: en",
        "id: 2\nquestion: Why?\nanswer: Because\nit works.\nlang: fr",
        "id: 3\nlang: de",
    ]
    assert [d.metadata["row"] for d in docs] == [1, 2, 3]


def test_csv_unknown_column(tmp_path: Path) -> None:
    path = write(tmp_path / "faq.csv", CSV)
    with pytest.raises(DocumentProcessingError, match=r"column\(s\) 'body' not in the CSV header"):
        DocumentProcessor(csv_text_columns=["body"]).load_file(path)


def test_csv_other_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path / "semi.csv", "a;b\nx;y\n")
    (doc,) = DocumentProcessor(csv_delimiter=";", csv_text_columns="b").load_file(path)
    assert doc.page_content == "y"


# -- PDF ----------------------------------------------------------------------------------


def test_two_page_pdf(tmp_path: Path, processor: DocumentProcessor) -> None:
    data = make_pdf(
        [["Page one, line one.", "Line two (with parens)."], ["Second page."]], "Report"
    )
    path = write(tmp_path / "report.pdf", data)
    docs = processor.load_file(path)
    assert [d.page_content.strip() for d in docs] == [
        "Page one, line one.\nLine two (with parens).",
        "Second page.",
    ]
    assert [meta_without_file_keys(d) for d in docs] == [
        {"page": 1, "title": "Report"},
        {"page": 2, "title": "Report"},
    ]
    chunks = processor.split_documents(docs)
    assert [(c.metadata["page"], c.metadata["chunk_index"]) for c in chunks] == [(1, 0), (2, 1)]
    assert chunks[0].metadata["file_hash"] == sha256(data)


def test_pdf_blank_page_dropped_and_scanned_pdf_skipped(
    tmp_path: Path, processor: DocumentProcessor
) -> None:
    path = write(tmp_path / "gap.pdf", make_pdf([[], ["Only text."]]))
    assert [(d.page_content.strip(), d.metadata["page"]) for d in processor.load_file(path)] == [
        ("Only text.", 2)
    ]
    scanned = write(tmp_path / "scan.pdf", make_pdf([[], []]))
    (result,) = processor.iter_files(scanned)
    assert result.ok
    assert result.skipped == (
        "no extractable text (a scanned PDF needs OCR before it can be indexed)"
    )


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\nthis is not really a pdf", make_pdf([["text"]])[:70], b"hello"],
    ids=["garbage", "truncated", "not-pdf"],
)
def test_broken_pdf(tmp_path: Path, processor: DocumentProcessor, data: bytes) -> None:
    path = write(tmp_path / "broken.pdf", data)
    with pytest.raises(DocumentProcessingError) as info:
        processor.load_file(path)
    message = str(info.value)
    assert message.startswith(f"cannot load {path}: not a readable PDF (")
    assert message.endswith("check that the file is a complete, valid PDF")


def encrypted_pdf(user_password: str) -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf([["Secret."]]))))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_encrypted_pdf(tmp_path: Path, processor: DocumentProcessor) -> None:
    locked = write(tmp_path / "locked.pdf", encrypted_pdf("secret"))
    with pytest.raises(DocumentProcessingError, match="the PDF is encrypted with a password"):
        processor.load_file(locked)
    # Only an owner password ("protected" PDF): readable with the empty user password.
    protected = write(tmp_path / "protected.pdf", encrypted_pdf(""))
    assert [d.page_content.strip() for d in processor.load_file(protected)] == ["Secret."]


def test_pdf_without_pypdf(
    tmp_path: Path, processor: DocumentProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "a.pdf", make_pdf([["x"]]))
    monkeypatch.setitem(sys.modules, "pypdf", None)
    with pytest.raises(DocumentProcessingError, match=r"install the pdf extra"):
        processor.load_file(path)


# -- DOCX ---------------------------------------------------------------------------------


def make_docx(path: Path, *, core_title: str | None = None) -> Path:
    import docx

    document = docx.Document()
    if core_title is not None:
        document.core_properties.title = core_title
    document.add_heading("Quarterly Review", level=1)
    document.add_paragraph("Revenue grew.")
    document.add_paragraph("")
    document.add_heading("Details", level=2)
    document.add_paragraph("Costs fell.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Item", "Value"), ("Cost", "10")]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.add_paragraph("After the table.")
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def test_docx(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = make_docx(tmp_path / "review.docx")
    (doc,) = processor.load_file(path)
    assert doc.page_content == (
        "Quarterly Review\n\nRevenue grew.\n\nDetails\n\nCosts fell.\n\n"
        "Item | Value\n\nCost | 10\n\nAfter the table."
    )
    assert meta_without_file_keys(doc) == {"title": "Quarterly Review"}
    assert doc.metadata["file_type"] == "docx"
    titled = make_docx(tmp_path / "titled.docx", core_title="Official")
    assert processor.load_file(titled)[0].metadata["title"] == "Official"


def test_docx_errors(
    tmp_path: Path, processor: DocumentProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = write(tmp_path / "old.docx", b"\xd0\xcf\x11\xe0 an old binary .doc file")
    with pytest.raises(DocumentProcessingError, match=r"not a valid \.docx file"):
        processor.load_file(fake)
    path = make_docx(tmp_path / "ok.docx")
    monkeypatch.setitem(sys.modules, "docx", None)
    with pytest.raises(DocumentProcessingError) as info:
        processor.load_file(path)
    assert "install the docx extra: pip install 'vectordb-manager[docx]'" in str(info.value)


# -- encodings, binary and empty files ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text", "encoding"),
    [
        ("café naïve".encode("latin-1"), "café naïve", "cp1252"),
        (
            "\u201cquoted\u201d \u2013 5\u20ac".encode("cp1252"),
            "\u201cquoted\u201d \u2013 5\u20ac",
            "cp1252",
        ),
        (b"caf\xe9 \x81", "café \x81", "iso8859-1"),  # 0x81 is undefined in cp1252
        (b"\xef\xbb\xbfbom caf\xc3\xa9", "bom café", "utf-8"),
        ("plain ünïcode".encode(), "plain ünïcode", "utf-8"),
        ("utf-16 text".encode("utf-16"), "utf-16 text", "utf-16"),
    ],
    ids=["latin-1", "cp1252", "latin-1-only", "utf-8-bom", "utf-8", "utf-16-bom"],
)
def test_encodings(
    tmp_path: Path, processor: DocumentProcessor, data: bytes, text: str, encoding: str
) -> None:
    path = write(tmp_path / "t.txt", data)
    (doc,) = processor.load_file(path)
    assert doc.page_content == text
    assert doc.metadata["encoding"] == encoding


def test_bom_does_not_reach_csv_header(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.csv", "\ufeffname,note\nx,y\n")
    (doc,) = DocumentProcessor(csv_metadata_columns=["name"]).load_file(path)
    assert doc.metadata["name"] == "x"


def test_no_fallbacks_still_never_crashes(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", b"caf\xe9")
    (doc,) = DocumentProcessor(encoding_fallbacks=()).load_file(path)
    assert doc.page_content == "caf\ufffd"
    assert doc.metadata["encoding"] == "utf-8 (with replacements)"


@pytest.mark.parametrize("name", ["data.txt", "data.md", "data.json", "data.csv", "data.html"])
def test_binary_file_is_reported(tmp_path: Path, processor: DocumentProcessor, name: str) -> None:
    path = write(tmp_path / name, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(DocumentProcessingError, match="binary file, not text"):
        processor.load_file(path)
    (result,) = processor.iter_files(path)
    assert result.error is not None
    assert result.error.startswith("binary file, not text")


def test_empty_file_is_skipped(tmp_path: Path, processor: DocumentProcessor) -> None:
    path = write(tmp_path / "empty.md", b"")
    assert processor.load_file(path) == []
    assert processor.process(path) == []
    (result,) = processor.iter_files(path)
    assert result == FileResult(path, [], error=None, skipped="empty file", file_hash=sha256(b""))
    assert result.ok


def test_whitespace_file_has_no_text(tmp_path: Path, processor: DocumentProcessor) -> None:
    (result,) = processor.iter_files(write(tmp_path / "blank.txt", " \n\t\n"))
    assert (result.ok, result.skipped) == (True, "no text found")


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
