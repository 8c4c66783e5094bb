"""DocumentProcessor, format by format from real files: Markdown, HTML, JSON and JSON Lines,
CSV, PDF, DOCX, and text in other encodings, binary and empty files."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from tests.processing_support import (
    make_docx,
    make_pdf,
    meta_without_file_keys,
    sha256,
    write,
)
from vectordb_manager.errors import DocumentProcessingError
from vectordb_manager.processing import DocumentProcessor, FileResult

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
