"""One small loader per file format, and what they share.

Formats read whole have a *loader* ``(data: bytes, options: LoadOptions) -> list[Document]``:
HTML, PDF and Word here, JSON in :mod:`~vectordb_manager.processing.structured`. Text formats
have a *streamer* ``(source: TextInput, options: LoadOptions) -> Iterator[Section]`` that reads
the decoded text a piece at a time and yields sections in file order as it goes, so a large
file never sits in memory whole: plain text here (blocks cut at paragraph breaks), markdown in
:mod:`~vectordb_manager.processing.markdown`, JSON Lines and CSV in
:mod:`~vectordb_manager.processing.structured`.

Both carry only what the format itself knows (``title``, ``page``, ``headers``, ``line``,
``row``, ``record``, ``encoding`` and, for JSON, the record's other scalar fields). The
processor adds the file-level metadata (``source``, ``file_type``, hashes, ``modified``) and
splits. Either signals a problem with the file by raising :class:`DocumentProcessingError`
whose message is the reason alone (no path): the processor adds the path. Blank documents and
sections are dropped by the processor, so neither needs to filter them.

Text is decoded by :mod:`~vectordb_manager.processing.reading`: UTF-8 with or without BOM,
UTF-16 with a BOM, then the configured legacy encodings in order; bytes never crash it. A NUL
byte in the first 8 KB means the file is binary, not text.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, NamedTuple

from langchain_core.documents import Document

from vectordb_manager.errors import DocumentProcessingError
from vectordb_manager.processing.reading import cut_at_paragraph, decode_text, iter_blocks

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


@dataclass(frozen=True)
class TextInput:
    """A text file for a streamer: its decoded text, as many times as the streamer asks."""

    read: Callable[[], Generator[str, None, None]]  # a new pass over the text, in pieces
    encoding: str  # as recorded in metadata
    block_size: int | None  # characters split at a time; None: the whole text at once


class Section(NamedTuple):
    """A piece of a file's text with its format metadata.

    ``offset`` is where ``text`` starts in the document that ``start_index`` counts in (the
    whole text for plain text, the header section for markdown, the record for JSON Lines and
    CSV): a document read in several blocks continues its offsets across them.
    """

    text: str
    metadata: dict[str, Any]
    offset: int = 0


Streamer = Callable[[TextInput, LoadOptions], Iterator[Section]]


# -- plain text ---------------------------------------------------------------------------


def stream_text(source: TextInput, options: LoadOptions) -> Iterator[Section]:
    """A ``.txt`` file: its text, in blocks cut at paragraph breaks (one block when small)."""
    offset = 0
    for block in iter_blocks(source.read(), source.block_size, cut_at_paragraph):
        yield Section(block, {"encoding": source.encoding}, offset)
        offset += len(block)


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
