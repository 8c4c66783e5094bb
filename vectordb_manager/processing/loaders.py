"""One small loader per file format: bytes in, unsplit LangChain documents out.

Every loader has the signature ``(data: bytes, options: LoadOptions) -> list[Document]``. It
turns the raw bytes of one file into documents carrying only what the format itself knows
(``title``, ``page``, ``headers``, ``line``, ``row``, ``record``, ``encoding`` and, for JSON,
the record's other scalar fields). The processor adds the file-level metadata (``source``,
``file_type``, hashes, ``modified``) and splits.

A loader signals a problem with the file by raising :class:`DocumentProcessingError` whose
message is the reason alone (no path): the processor adds the path. Documents whose text is
blank are dropped by the processor, so loaders need not filter them.

Text formats share :func:`decode_text`: UTF-8 with or without BOM, UTF-16 with a BOM, then the
configured legacy encodings in order; bytes never crash it. A NUL byte in the first 8 KB means
the file is binary, not text. The structured formats (JSON, JSON Lines, CSV) live in
:mod:`vectordb_manager.processing.structured`.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import MarkdownHeaderTextSplitter

from vectordb_manager.errors import DocumentProcessingError

BINARY_SNIFF_BYTES = 8192
_HEADER_LEVELS = 6
_WHITESPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """Format options shared by the loaders (validated by `DocumentProcessor`)."""

    json_text_field: str | None = None
    csv_text_columns: tuple[str, ...] | None = None
    csv_metadata_columns: tuple[str, ...] = ()
    csv_delimiter: str = ","
    encoding_fallbacks: tuple[str, ...] = ("cp1252", "latin-1")


Loader = Callable[[bytes, LoadOptions], list[Document]]


# -- text decoding ------------------------------------------------------------------------


def decode_text(data: bytes, fallbacks: Sequence[str] = ("cp1252", "latin-1")) -> tuple[str, str]:
    """Decode a text file's bytes; returns ``(text, encoding)`` with newlines normalised to ``\\n``.

    Raises `DocumentProcessingError` ("binary file, not text") when a NUL byte appears in the
    first 8 KB of a file without a UTF-16 byte-order mark.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates: list[str] = ["utf-16"]
    else:
        if b"\x00" in data[:BINARY_SNIFF_BYTES]:
            raise DocumentProcessingError(
                "binary file, not text (it contains NUL bytes); remove it, or if it is "
                "UTF-16 text without a byte-order mark, save it as UTF-8"
            )
        candidates = ["utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"]
        candidates += fallbacks
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        return _normalise_newlines(text), _canonical_encoding(encoding)
    # Every candidate failed (only strict fallbacks were configured): keep what is readable.
    return _normalise_newlines(data.decode("utf-8", errors="replace")), "utf-8 (with replacements)"


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _canonical_encoding(encoding: str) -> str:
    if encoding == "utf-8-sig":
        return "utf-8"
    try:
        return codecs.lookup(encoding).name
    except LookupError:  # pragma: no cover - validated by the processor
        return encoding


# -- plain text ---------------------------------------------------------------------------


def load_text(data: bytes, options: LoadOptions) -> list[Document]:
    """A ``.txt`` file: one document with the whole text."""
    text, encoding = decode_text(data, options.encoding_fallbacks)
    return [Document(page_content=text, metadata={"encoding": encoding})]


# -- markdown -----------------------------------------------------------------------------


def load_markdown(data: bytes, options: LoadOptions) -> list[Document]:
    """A ``.md`` file: one document per header section.

    Sections come from LangChain's `MarkdownHeaderTextSplitter` (headers inside code fences
    are ignored); each keeps its header line in the text. Metadata: ``headers`` is the header
    path (``"Intro > Setup"``), ``title`` the section's h1, or the file's first h1 for text
    before it.
    """
    text, encoding = decode_text(data, options.encoding_fallbacks)
    names = [("#" * level, f"h{level}") for level in range(1, _HEADER_LEVELS + 1)]
    splitter = MarkdownHeaderTextSplitter(names, strip_headers=False)
    # The splitter drops non-printable characters (tabs), so expand them first.
    sections = splitter.split_text(text.replace("\t", "    "))
    first_h1 = next((s.metadata["h1"] for s in sections if "h1" in s.metadata), None)
    docs = []
    for section in sections:
        path = [
            str(section.metadata[f"h{level}"])
            for level in range(1, _HEADER_LEVELS + 1)
            if f"h{level}" in section.metadata
        ]
        metadata: dict[str, Any] = {"encoding": encoding}
        title = section.metadata.get("h1", first_h1)
        if title is not None:
            metadata["title"] = str(title)
        if path:
            metadata["headers"] = " > ".join(path)
        # The splitter joins blank-line separated blocks with "  \n" (its lines are stripped,
        # so the sequence appears nowhere else): restore the paragraph breaks.
        content = section.page_content.replace("  \n", "\n\n")
        docs.append(Document(page_content=content, metadata=metadata))
    return docs


# -- HTML ---------------------------------------------------------------------------------

_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template"})
_PARAGRAPH_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "details", "dialog",
        "div", "dl", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
        "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "main", "nav", "ol", "p",
        "pre", "section", "summary", "table", "ul",
    }
)  # fmt: skip
_LINE_TAGS = frozenset({"br", "dd", "dt", "li", "option", "tr"})
_CELL_TAGS = frozenset({"td", "th"})


class _VisibleText(HTMLParser):
    """Collects the visible text of a page, its ``<title>`` and its first ``<h1>``.

    Block elements ask for a break (a line, or a blank line between paragraphs); the break
    is written once, before the next visible text, so nested blocks do not pile up lines.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self.h1_done = False
        self._skip_depth = 0
        self._pre_depth = 0
        self._in_title = False
        self._in_h1 = False
        self._pending_newlines = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "h1" and not self.h1_done:
            self._in_h1 = True
        elif tag == "pre":
            self._pre_depth += 1
        elif tag in _CELL_TAGS:
            self.parts.append(" ")
        self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag == "title":
            self._in_title = False
        elif tag == "h1" and self._in_h1:
            self._in_h1 = False
            self.h1_done = True
        elif tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
        self._break(tag)

    def _break(self, tag: str) -> None:
        if tag in _PARAGRAPH_TAGS:
            self._pending_newlines = 2
        elif tag in _LINE_TAGS:
            self._pending_newlines = max(self._pending_newlines, 1)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._in_h1:
            self.h1_parts.append(data)
        text = data if self._pre_depth else _WHITESPACE.sub(" ", data)
        if not text.strip() and not self._pre_depth:
            if not self._pending_newlines:
                self.parts.append(" ")  # whitespace between inline elements
            return
        if self._pending_newlines:
            self.parts.append("\n" * self._pending_newlines)
            self._pending_newlines = 0
        self.parts.append(text)

    def text(self) -> str:
        lines = (line.strip() for line in "".join(self.parts).split("\n"))
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def load_html(data: bytes, options: LoadOptions) -> list[Document]:
    """An ``.html`` page: its visible text, block elements as line breaks, entities decoded.

    ``script``, ``style``, ``noscript`` and ``template`` contents and all markup are dropped.
    ``title`` is the page's ``<title>``, else its first ``<h1>``.
    """
    text, encoding = decode_text(data, options.encoding_fallbacks)
    parser = _VisibleText()
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser is lenient; this is a last resort
        raise DocumentProcessingError(f"cannot parse the HTML: {exc}") from exc
    metadata: dict[str, Any] = {"encoding": encoding}
    title = _WHITESPACE.sub(" ", "".join(parser.title_parts)).strip()
    if not title:
        title = _WHITESPACE.sub(" ", "".join(parser.h1_parts)).strip()
    if title:
        metadata["title"] = title
    return [Document(page_content=parser.text(), metadata=metadata)]


# -- PDF ----------------------------------------------------------------------------------


def load_pdf(data: bytes, options: LoadOptions) -> list[Document]:
    """A ``.pdf`` file through pypdf: one document per page, ``page`` 1-based.

    A PDF encrypted with an empty user password (only an owner password, common for
    "protected" PDFs) is opened; one that needs a password is an error, as is a broken file.
    """
    try:
        import pypdf
    except ImportError as exc:
        raise DocumentProcessingError(
            "reading PDF files needs pypdf; install the pdf extra: "
            "pip install 'vectordb-manager[pdf]'"
        ) from exc
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentProcessingError(
                "the PDF is encrypted with a password; decrypt it first "
                "(for example: qpdf --decrypt --password=PASSWORD in.pdf out.pdf)"
            )
        title = _pdf_title(reader)
        docs = []
        for number, page in enumerate(reader.pages, start=1):
            metadata: dict[str, Any] = {"page": number}
            if title:
                metadata["title"] = title
            docs.append(Document(page_content=page.extract_text() or "", metadata=metadata))
    except DocumentProcessingError:
        raise
    except pypdf.errors.DependencyError as exc:
        raise DocumentProcessingError(
            f"the PDF needs an optional pypdf dependency: {exc}; "
            "install it (pip install 'pypdf[crypto]') or decrypt the file first"
        ) from exc
    except pypdf.errors.FileNotDecryptedError as exc:
        raise DocumentProcessingError(
            f"the PDF is encrypted and could not be decrypted: {exc}; decrypt it first"
        ) from exc
    except Exception as exc:  # pypdf raises many types on damaged files
        raise DocumentProcessingError(
            f"not a readable PDF ({type(exc).__name__}: {exc}); "
            "check that the file is a complete, valid PDF"
        ) from exc
    return docs


def _pdf_title(reader: Any) -> str | None:
    try:
        info = reader.metadata
        title = info.title if info is not None else None
    except Exception:  # a damaged info dictionary must not lose the pages
        return None
    if not title:
        return None
    return str(title).strip() or None


# -- Word ---------------------------------------------------------------------------------


def load_docx(data: bytes, options: LoadOptions) -> list[Document]:
    """A ``.docx`` file through python-docx: paragraphs and tables in order, one document.

    ``title`` is the document's core "title" property, else its first paragraph styled
    "Title", else its first "Heading 1".
    """
    try:
        import docx
    except ImportError as exc:
        raise DocumentProcessingError(
            "reading .docx files needs python-docx; install the docx extra: "
            "pip install 'vectordb-manager[docx]'"
        ) from exc
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise DocumentProcessingError(
            f"not a valid .docx file ({type(exc).__name__}: {exc}); old binary .doc files "
            "are not supported: save the file as .docx"
        ) from exc
    from docx.table import Table

    blocks: list[str] = []
    headings: dict[str, str] = {}
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                cells = [cell.text.strip() for cell in row.cells]
                if any(cells):
                    blocks.append(" | ".join(cells))
            continue
        text = item.text.strip()
        if not text:
            continue
        style = item.style.name if item.style is not None else ""
        if style in ("Title", "Heading 1") and style not in headings:
            headings[style] = text
        blocks.append(text)
    metadata: dict[str, Any] = {}
    title = (document.core_properties.title or "").strip()
    title = title or headings.get("Title") or headings.get("Heading 1", "")
    if title:
        metadata["title"] = title
    return [Document(page_content="\n\n".join(blocks), metadata=metadata)]
