"""`DocumentProcessor`: files and directories in, annotated LangChain chunks out.

Processing one file is: open it (regular files only, never blocking:
:mod:`~vectordb_manager.processing.reading`), hand it to the loader or streamer for its
extension (:mod:`~vectordb_manager.processing.loaders`,
:mod:`~vectordb_manager.processing.markdown`, :mod:`~vectordb_manager.processing.structured`),
stamp file-level metadata on what comes out, then split each piece with LangChain's
`RecursiveCharacterTextSplitter` and stamp chunk-level metadata and a deterministic id.

Text formats (plain text, markdown, JSON Lines, CSV) are streamed: a first pass hashes the
file and settles its encoding, a second decodes and splits it a block (``block_size``
characters, cut at a paragraph or line boundary) or a row at a time, so memory does not grow
with the file. :meth:`DocumentProcessor.iter_files` does this one file at a time and reports
every file as a :class:`FileResult` (chunks, or why it failed or was skipped), so one bad file
never stops the rest; with ``lazy=True`` a file's chunks are produced only as the caller takes
them from :meth:`FileResult.iter_chunks`.

Every chunk's metadata holds JSON values only:

``source``        absolute path of the file (str)
``file_type``     the extension without the dot, lower-cased (``"pdf"``, ``"md"``)
``file_hash``     SHA-256 (hex) of the file's bytes
``modified``      the file's modification time, ISO 8601 in UTC
``title``         where the format knows one (markdown h1, HTML ``<title>``, PDF/DOCX title)
``page``          PDF page, 1-based; ``headers``: markdown header path; ``line`` (JSON Lines),
                  ``row`` (CSV), ``record`` (JSON list) — all 1-based
``chunk_index``   0-based position of the chunk within its file
``start_index``   offset of the chunk in the loaded document's text (the page for a PDF,
                  the section for markdown, the record for JSON/CSV), across blocks
``content_hash``  SHA-256 (hex) of the chunk's text

``Document.id`` is ``sha256(f"{source}\\0{chunk_index}\\0{text}")`` in hex, first 32 characters
(strings encoded as UTF-8, lone surrogates, as a file name that is not UTF-8 holds them, with
``surrogatepass``): processing an unchanged file again gives the same ids. A file that fits in
one block gives the chunks its whole text would.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from vectordb_manager.errors import ConfigurationError, DocumentProcessingError
from vectordb_manager.processing.files import (
    FileResult,
    PathInput,
    Target,
    absolute,
    expand,
    raise_failures,
    walk,
)
from vectordb_manager.processing.loaders import (
    Loader,
    LoadOptions,
    Section,
    Streamer,
    TextInput,
    load_docx,
    load_html,
    load_pdf,
    stream_text,
)
from vectordb_manager.processing.markdown import stream_markdown
from vectordb_manager.processing.options import (
    require_block_size,
    require_chunking,
    require_columns,
    require_delimiter,
    require_encodings,
    require_json_field,
)
from vectordb_manager.processing.reading import (
    iter_text,
    open_regular,
    scan_text,
)
from vectordb_manager.processing.structured import load_json, stream_csv, stream_jsonl

if TYPE_CHECKING:
    from vectordb_manager.config import VectorDBConfig

logger = logging.getLogger(__name__)

LOADERS: dict[str, Loader] = {
    ".docx": load_docx,
    ".htm": load_html,
    ".html": load_html,
    ".json": load_json,
    ".pdf": load_pdf,
}
"""Formats read whole."""
STREAMERS: dict[str, Streamer] = {
    ".csv": stream_csv,
    ".jsonl": stream_jsonl,
    ".markdown": stream_markdown,
    ".md": stream_markdown,
    ".txt": stream_text,
}
"""Text formats, streamed."""
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(sorted({*LOADERS, *STREAMERS}))
"""The file extensions the processor reads (lower-case, with the dot)."""

DEFAULT_BLOCK_SIZE = 2 << 20
"""Characters of a text file read and split at a time (about 2 MB of ASCII text)."""

EMPTY_FILE = "empty file"
NO_TEXT = "no text found"
NO_PDF_TEXT = "no extractable text (a scanned PDF needs OCR before it can be indexed)"

Sections = Generator[Section, None, None]


@dataclass
class _Loaded:
    sections: Sections | None = None  # stamped with file metadata, blank ones left out
    file_hash: str | None = None
    skipped: str | None = None
    error: str | None = None
    cause: Exception | None = None  # what made it fail, chained by load_file


class DocumentProcessor:
    """Loads files of many formats and splits them into annotated, deterministic chunks.

    Setup:
        Formats: ``.txt .md .markdown .html .htm .json .jsonl .csv .pdf .docx`` (PDF needs the
        ``pdf`` extra, DOCX the ``docx`` extra).

    Instantiate:
        .. code-block:: python

            from vectordb_manager.processing import DocumentProcessor

            processor = DocumentProcessor(chunk_size=500, chunk_overlap=50,
                                          json_text_field="body.text",
                                          csv_text_columns=["question", "answer"],
                                          csv_metadata_columns=["id"])

    Process:
        .. code-block:: python

            chunks = processor.process(["docs/", "notes.md"])    # raises if any file failed
            for result in processor.iter_files("docs/", progress=True):  # never raises
                print(result.path, len(result.chunks), result.error or result.skipped or "")
            for result in processor.iter_files("big/", lazy=True):  # a block at a time
                for chunk in result.iter_chunks():  # DocumentProcessingError if it fails
                    ...

    Args:
        chunk_size: the most characters in one chunk (positive).
        chunk_overlap: characters shared by neighbouring chunks (0 <= overlap < chunk_size).
        json_text_field: the field holding the text in JSON/JSON Lines records, dotted for
            nested fields (``"body.text"``); default: ``text``, ``content``, ``page_content``
            or ``body``, else the whole record.
        csv_text_columns: the CSV columns whose values make the text; default: every column
            as ``"column: value"`` lines.
        csv_metadata_columns: CSV columns copied into metadata.
        encoding_fallbacks: encodings tried in order when a text file is not UTF-8.
        csv_delimiter: the CSV field separator.
        block_size: characters of a text file split at a time (at least ``chunk_size``);
            a larger file is read and split one block at a time, cut at a paragraph or line
            boundary.
        **kwargs: passed to `RecursiveCharacterTextSplitter` (``separators``,
            ``keep_separator``, ``length_function``, ...).

    Raises:
        ConfigurationError: a bad option.
    """

    def __init__(
        self,
        chunk_size: int = 1000,
        chunk_overlap: int = 200,
        *,
        json_text_field: str | None = None,
        csv_text_columns: Sequence[str] | None = None,
        csv_metadata_columns: Sequence[str] | None = None,
        encoding_fallbacks: Sequence[str] = ("cp1252", "latin-1"),
        csv_delimiter: str = ",",
        block_size: int = DEFAULT_BLOCK_SIZE,
        **kwargs: Any,
    ) -> None:
        self.chunk_size, self.chunk_overlap = require_chunking(chunk_size, chunk_overlap)
        self.block_size = require_block_size(block_size, self.chunk_size)
        self.options = LoadOptions(
            json_text_field=require_json_field(json_text_field),
            csv_text_columns=require_columns("csv_text_columns", csv_text_columns) or None,
            csv_metadata_columns=require_columns("csv_metadata_columns", csv_metadata_columns),
            csv_delimiter=require_delimiter(csv_delimiter),
            encoding_fallbacks=require_encodings(encoding_fallbacks),
        )
        if "add_start_index" in kwargs:
            raise ConfigurationError(
                "add_start_index cannot be changed: every chunk gets a start_index; "
                "remove the argument"
            )
        try:
            self._splitter = RecursiveCharacterTextSplitter(
                chunk_size=self.chunk_size,
                chunk_overlap=self.chunk_overlap,
                add_start_index=True,
                **kwargs,
            )
        except TypeError as exc:
            raise ConfigurationError(
                f"unknown DocumentProcessor option(s) {', '.join(map(repr, sorted(kwargs)))}: "
                f"{exc}; extra options go to RecursiveCharacterTextSplitter"
            ) from exc

    @classmethod
    def from_config(cls, config: VectorDBConfig, **kwargs: Any) -> DocumentProcessor:
        """A processor with the config's ``chunk_size`` and ``chunk_overlap``."""
        return cls(config.chunk_size, config.chunk_overlap, **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(chunk_size={self.chunk_size}, "
            f"chunk_overlap={self.chunk_overlap})"
        )

    # -- loading ---------------------------------------------------------------------------

    def load_file(self, path: PathInput) -> list[Document]:
        """Load one file into unsplit documents carrying file-level metadata.

        An empty file (or one with no text) gives ``[]``. A text file is one document (a
        markdown file one per section), however large.

        Raises:
            DocumentProcessingError: the file is missing, not a regular file, unreadable, of
                an unsupported type (the message lists the supported extensions) or damaged.
        """
        target = Target(absolute(path), in_directory=False)
        docs, error, cause = self._documents(target)
        if error is not None:
            raise DocumentProcessingError(f"cannot load {target.path}: {error}") from cause
        return docs

    def load_directory(self, path: PathInput, glob: str = "**/*") -> list[Document]:
        """Load every supported file under a directory (sorted), unsplit.

        Hidden files and directories are left out; unsupported extensions and anything that
        is not a regular file are skipped.

        Raises:
            DocumentProcessingError: ``path`` is not a directory, or files failed (all of them
                are named, after every other file was loaded).
        """
        root = absolute(path)
        if not root.is_dir():
            raise DocumentProcessingError(
                f"{root} is not a directory; check the path, or use load_file for a file"
            )
        docs: list[Document] = []
        failed: list[FileResult] = []
        for target in walk(root, glob):
            if _unsupported(target) is not None:
                continue
            loaded, error, _ = self._documents(target)
            if error is not None:
                failed.append(FileResult(target.path, error=error))
            docs.extend(loaded)
        raise_failures(failed)
        return docs

    def _documents(self, target: Target) -> tuple[list[Document], str | None, Exception | None]:
        """A file's documents, whole (not in blocks), or why it failed."""
        loaded = self._load(target, block_size=None)
        if loaded.sections is None:
            return [], loaded.error, loaded.cause
        try:
            docs = [Document(page_content=s.text, metadata=s.metadata) for s in loaded.sections]
        except DocumentProcessingError as exc:
            return [], str(exc), exc
        except Exception as exc:  # a parser bug must not stop the other files
            return [], _unexpected(exc, "reading"), exc
        return docs, None, None

    # -- splitting -------------------------------------------------------------------------

    def split_documents(self, docs: Iterable[Document]) -> list[Document]:
        """Split documents into chunks with ``chunk_index``, ``start_index``, ``content_hash``.

        ``chunk_index`` counts per ``source`` across the documents given (so pass all of a
        file's documents in one call), and each chunk's ``id`` is deterministic.
        """
        counters: dict[str, int] = {}
        chunks: list[Document] = []
        for doc in docs:
            source = str(doc.metadata.get("source", ""))
            for text, start in self._split_text(doc.page_content):
                index = counters.get(source, 0)
                counters[source] = index + 1
                chunks.append(_chunk(source, index, text, start, copy.deepcopy(doc.metadata)))
        return chunks

    def _split_text(self, text: str) -> Iterator[tuple[str, int]]:
        """The splitter's chunks with their offsets in ``text``: LangChain's own
        ``create_documents`` with ``add_start_index``; where it finds no offset (-1, possible
        with a ``length_function`` other than ``len``), the chunk is looked for after the
        previous one."""
        previous = 0
        for doc in self._splitter.create_documents([text]):
            chunk, start = doc.page_content, int(doc.metadata["start_index"])
            if start < 0:
                start = text.find(chunk, previous)
                start = start if start >= 0 else text.find(chunk)
            previous = max(start, 0)
            yield chunk, start

    # -- processing ------------------------------------------------------------------------

    def process(
        self, paths: PathInput | Iterable[PathInput], *, progress: bool = False
    ) -> list[Document]:
        """Load and split files and directories (walked recursively, sorted) into chunks.

        Raises:
            DocumentProcessingError: some files failed; every one is named with its reason,
                after all the others were processed. Use `iter_files` to keep the chunks of
                the files that worked.
        """
        chunks: list[Document] = []
        failed: list[FileResult] = []
        for result in self.iter_files(paths, progress=progress):
            if result.error is not None:
                failed.append(result)
            chunks.extend(result.chunks)
        raise_failures(failed)
        return chunks

    def iter_files(
        self,
        paths: PathInput | Iterable[PathInput],
        *,
        progress: bool = False,
        glob: str = "**/*",
        lazy: bool = False,
        sources: Mapping[PathInput, str] | None = None,
    ) -> Iterator[FileResult]:
        """Process files one at a time, yielding a `FileResult` for each; never raises for a file.

        Directories are walked (``glob``, sorted, hidden entries and anything that is not a
        regular file left out); unsupported extensions found there are yielded as skipped,
        while a file named directly with one is an error, as is a path that does not exist or
        is not a regular file (a FIFO, socket or device is never opened for reading).
        ``progress=True`` shows a tqdm bar.

        ``lazy=True``: each result's chunks are produced as they are taken from
        `FileResult.iter_chunks` (a large text file a block at a time: the file is read again
        then, and fails if it changed since); ``chunks`` stays empty.

        ``sources``: the ``source`` to record for some files (path -> name) instead of their
        absolute path, e.g. a stable name for a file staged at a temporary path; the chunk
        ids derive from it, so a file given the same name again is recognised.
        """
        named = {absolute(p): name for p, name in (sources or {}).items()}
        targets = [replace(t, source=named.get(t.path, t.source)) for t in expand(paths, glob)]
        yield from self.iter_targets(targets, progress=progress, lazy=lazy)

    def iter_targets(
        self, targets: Sequence[Target], *, progress: bool = False, lazy: bool = False
    ) -> Iterator[FileResult]:
        """`iter_files` over targets already listed (`expand`): each a file with whether it
        was found by walking a directory (an unsupported type is then skipped, not an
        error). A listing made once can so be processed in parts, anywhere."""
        from tqdm.auto import tqdm

        bar = tqdm(targets, desc="Processing files", unit="file", disable=not progress)
        try:
            for target in bar:
                result, stream = self._start(target)
                if stream is not None and not lazy:
                    try:
                        result.chunks = list(stream)
                    except DocumentProcessingError:
                        result.chunks = []
                elif stream is not None:
                    result._stream = stream
                yield result
        finally:
            bar.close()

    # -- one file --------------------------------------------------------------------------

    def _start(self, target: Target) -> tuple[FileResult, Generator[Document, None, None] | None]:
        """A file's result and the generator of its chunks (None when it has none to give)."""
        skipped = _unsupported(target)
        if skipped is not None:
            return FileResult(target.path, skipped=skipped, source_name=target.source), None
        loaded = self._load(target, self.block_size)
        if loaded.error is not None:
            logger.debug("cannot process %r: %s", target.path, loaded.error)
        result = FileResult(
            target.path,
            error=loaded.error,
            skipped=loaded.skipped,
            file_hash=loaded.file_hash,
            source_name=target.source,
        )
        if loaded.sections is None:
            return result, None
        sections = loaded.sections
        if target.source is not None:
            sections = _sourced(sections, target.source)
        return result, self._chunks(result, sections)

    def _chunks(self, result: FileResult, sections: Sections) -> Generator[Document, None, None]:
        """Split a file's sections as they come; a failure is recorded on ``result``."""
        source = result.source
        index = 0
        try:
            for section in sections:
                for text, start in self._split_text(section.text):
                    metadata = dict(section.metadata)
                    yield _chunk(source, index, text, section.offset + start, metadata)
                    index += 1
        except DocumentProcessingError as exc:
            result.error = str(exc)
            raise
        except Exception as exc:  # a parser bug must not stop the other files
            logger.debug("unexpected error while processing %r", result.path, exc_info=True)
            result.error = _unexpected(exc, "processing")
            raise DocumentProcessingError(result.error) from exc
        finally:
            sections.close()
        if not index:
            result.skipped = NO_TEXT

    def _load(self, target: Target, block_size: int | None) -> _Loaded:
        """Open one file and start reading it; a problem is returned as the bare reason.

        A text file is scanned (hashed, its encoding settled) and its sections come lazily,
        ``block_size`` characters at a time; other formats are read and parsed whole here.
        """
        path = target.path
        suffix = path.suffix.lower()
        try:
            with open_regular(path, lambda: _require_supported(suffix)) as file:
                if suffix not in STREAMERS:
                    return self._parse(target, suffix, file.read_all(), file.mtime)
                scan, mtime = scan_text(file, self.options.encoding_fallbacks), file.mtime
        except DocumentProcessingError as exc:
            return _Loaded(error=str(exc), cause=exc)
        if scan.error is not None:
            return _Loaded(file_hash=scan.file_hash, error=scan.error)
        if not scan.size:
            return _Loaded(file_hash=scan.file_hash, skipped=EMPTY_FILE)
        source = TextInput(lambda: iter_text(path, scan), scan.label, block_size)
        sections = STREAMERS[suffix](source, self.options)
        stamp = _file_metadata(target, scan.file_hash, mtime)
        return _Loaded(_stamped(sections, stamp), scan.file_hash)

    def _parse(self, target: Target, suffix: str, data: bytes, mtime: float) -> _Loaded:
        """A whole-file format: its documents, parsed now."""
        path = target.path
        file_hash = _sha256(data)
        if not data:
            return _Loaded(file_hash=file_hash, skipped=EMPTY_FILE)
        try:
            docs = LOADERS[suffix](data, self.options)
        except DocumentProcessingError as exc:
            return _Loaded(file_hash=file_hash, error=str(exc), cause=exc)
        except Exception as exc:  # a parser bug must not stop the other files
            logger.debug("unexpected error while loading %r", path, exc_info=True)
            return _Loaded(file_hash=file_hash, error=_unexpected(exc, "reading"), cause=exc)
        sections = [Section(doc.page_content, doc.metadata) for doc in docs]
        if not any(_has_text(section) for section in sections):
            skipped = NO_PDF_TEXT if suffix == ".pdf" else NO_TEXT
            return _Loaded(file_hash=file_hash, skipped=skipped)
        stamp = _file_metadata(target, file_hash, mtime)
        return _Loaded(_stamped(iter(sections), stamp), file_hash)


def _require_supported(suffix: str) -> None:
    if suffix not in LOADERS and suffix not in STREAMERS:
        raise DocumentProcessingError(
            f"unsupported file type {suffix or '(no extension)'}; supported extensions: "
            f"{', '.join(SUPPORTED_EXTENSIONS)}; convert the file or leave it out"
        )


def _unsupported(target: Target) -> str | None:
    """Why a file found in a directory walk is skipped without being opened, if it is."""
    suffix = target.path.suffix.lower()
    if target.in_directory and suffix not in LOADERS and suffix not in STREAMERS:
        return f"unsupported file type {suffix or '(no extension)'}"
    return None


def _file_metadata(target: Target, file_hash: str, mtime: float) -> dict[str, Any]:
    path = target.path
    return {
        "source": target.source if target.source is not None else str(path),
        "file_type": path.suffix.lower()[1:],
        "file_hash": file_hash,
        "modified": datetime.fromtimestamp(mtime, UTC).isoformat(),
    }


def _sourced(sections: Sections, source: str) -> Sections:
    """The sections with their ``source`` metadata replaced by the caller's name."""
    try:
        for section in sections:
            yield Section(section.text, {**section.metadata, "source": source}, section.offset)
    finally:
        sections.close()


def _stamped(sections: Iterator[Section], stamp: dict[str, Any]) -> Sections:
    """The sections with text, file metadata added."""
    for section in sections:
        if _has_text(section):
            yield Section(section.text, {**section.metadata, **stamp}, section.offset)


def _has_text(section: Section) -> bool:
    return bool(section.text) and not section.text.isspace()


def _unexpected(exc: Exception, doing: str) -> str:
    return f"unexpected {type(exc).__name__} while {doing} the file: {exc}"


# -- ids and hashes -----------------------------------------------------------------------


def chunk_id(source: str, chunk_index: int, text: str) -> str:
    """The deterministic id of a chunk: SHA-256 of source, index and text, 32 hex digits."""
    return _sha256(_utf8(f"{source}\0{chunk_index}\0{text}"))[:32]


def _chunk(source: str, index: int, text: str, start: int, metadata: dict[str, Any]) -> Document:
    """A chunk: ``metadata`` (the caller's copy) gets its chunk-level fields."""
    metadata.update(chunk_index=index, start_index=start, content_hash=_sha256(_utf8(text)))
    return Document(id=chunk_id(source, index, text), page_content=text, metadata=metadata)


def _utf8(text: str) -> bytes:
    """UTF-8, with lone surrogates (a non-UTF-8 file name, a JSON escape) encoded as is."""
    return text.encode("utf-8", "surrogatepass")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
