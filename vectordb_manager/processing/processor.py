"""`DocumentProcessor`: files and directories in, annotated LangChain chunks out.

Processing one file is: read its bytes once (hashed), hand them to the loader for its
extension (:mod:`~vectordb_manager.processing.loaders`,
:mod:`~vectordb_manager.processing.structured`), stamp file-level metadata on the documents,
then split each with LangChain's `RecursiveCharacterTextSplitter` and stamp chunk-level
metadata and a deterministic id. :meth:`DocumentProcessor.iter_files` does this one file at a
time and reports every file as a :class:`FileResult` (chunks, or why it failed or was skipped),
so a large tree is processed in bounded memory and one bad file never stops the rest.

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
                  the section for markdown, the record for JSON/CSV)
``content_hash``  SHA-256 (hex) of the chunk's text

``Document.id`` is ``sha256(f"{source}\\0{chunk_index}\\0{text}")`` in hex, first 32 characters:
processing an unchanged file again gives the same ids.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from vectordb_manager.errors import ConfigurationError, DocumentProcessingError
from vectordb_manager.processing.loaders import (
    Loader,
    LoadOptions,
    load_docx,
    load_html,
    load_markdown,
    load_pdf,
    load_text,
)
from vectordb_manager.processing.options import (
    require_chunking,
    require_columns,
    require_delimiter,
    require_encodings,
    require_json_field,
)
from vectordb_manager.processing.structured import load_csv, load_json, load_jsonl

if TYPE_CHECKING:
    from vectordb_manager.config import VectorDBConfig

logger = logging.getLogger(__name__)

PathInput = str | os.PathLike[str]

LOADERS: dict[str, Loader] = {
    ".csv": load_csv,
    ".docx": load_docx,
    ".htm": load_html,
    ".html": load_html,
    ".json": load_json,
    ".jsonl": load_jsonl,
    ".markdown": load_markdown,
    ".md": load_markdown,
    ".pdf": load_pdf,
    ".txt": load_text,
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(LOADERS)
"""The file extensions the processor reads (lower-case, with the dot)."""

EMPTY_FILE = "empty file"
NO_TEXT = "no text found"
NO_PDF_TEXT = "no extractable text (a scanned PDF needs OCR before it can be indexed)"


@dataclass
class FileResult:
    """What processing one file gave: its chunks, or why it failed or was skipped.

    ``ok`` is true unless the file failed; a skipped file (empty, or an unsupported type found
    while walking a directory) is ok, with no chunks and ``skipped`` saying why.
    """

    path: Path
    chunks: list[Document] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    file_hash: str | None = None  # SHA-256 (hex) of the file's bytes, when it was read

    @property
    def ok(self) -> bool:
        """True unless the file failed."""
        return self.error is None


@dataclass
class _Loaded:
    docs: list[Document]
    file_hash: str | None = None
    skipped: str | None = None
    error: str | None = None
    cause: Exception | None = None  # what made it fail, chained by load_file


@dataclass(frozen=True)
class _Target:
    path: Path
    in_directory: bool  # found by walking a directory rather than named by the caller


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
        **kwargs: Any,
    ) -> None:
        self.chunk_size, self.chunk_overlap = require_chunking(chunk_size, chunk_overlap)
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

        An empty file (or one with no text) gives ``[]``.

        Raises:
            DocumentProcessingError: the file is missing, unreadable, of an unsupported type
                (the message lists the supported extensions) or damaged.
        """
        target = _Target(_absolute(path), in_directory=False)
        loaded = self._load(target)
        if loaded.error is not None:
            raise DocumentProcessingError(
                f"cannot load {target.path}: {loaded.error}"
            ) from loaded.cause
        return loaded.docs

    def load_directory(self, path: PathInput, glob: str = "**/*") -> list[Document]:
        """Load every supported file under a directory (sorted), unsplit.

        Hidden files and directories are left out; unsupported extensions are skipped.

        Raises:
            DocumentProcessingError: ``path`` is not a directory, or files failed (all of them
                are named, after every other file was loaded).
        """
        root = _absolute(path)
        if not root.is_dir():
            raise DocumentProcessingError(
                f"{root} is not a directory; check the path, or use load_file for a file"
            )
        docs: list[Document] = []
        failed: list[FileResult] = []
        for target in _walk(root, glob):
            result, loaded = self._outcome(target)
            if result.error is not None:
                failed.append(result)
            docs.extend(loaded)
        _raise_failures(failed)
        return docs

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
                metadata = copy.deepcopy(doc.metadata)
                metadata.update(
                    chunk_index=index, start_index=start, content_hash=_sha256(text.encode())
                )
                chunks.append(
                    Document(id=chunk_id(source, index, text), page_content=text, metadata=metadata)
                )
        return chunks

    def _split_text(self, text: str) -> Iterator[tuple[str, int]]:
        """The splitter's chunks with their offsets in ``text`` (LangChain's search, made safe)."""
        start, previous_length = 0, 0
        for number, chunk in enumerate(self._splitter.split_text(text)):
            found = text.find(chunk, max(0, start + previous_length - self.chunk_overlap))
            if found < 0:  # a length_function other than len can overshoot the estimate
                found = text.find(chunk, start + 1 if number else 0)
            start, previous_length = (found if found >= 0 else text.find(chunk)), len(chunk)
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
        _raise_failures(failed)
        return chunks

    def iter_files(
        self,
        paths: PathInput | Iterable[PathInput],
        *,
        progress: bool = False,
        glob: str = "**/*",
    ) -> Iterator[FileResult]:
        """Process files one at a time, yielding a `FileResult` for each; never raises for a file.

        Directories are walked (``glob``, sorted, hidden entries left out); unsupported
        extensions found there are yielded as skipped, while a file named directly with one
        is an error, as is a path that does not exist. ``progress=True`` shows a tqdm bar.
        """
        targets = list(_expand(paths, glob))
        from tqdm.auto import tqdm

        bar = tqdm(targets, desc="Processing files", unit="file", disable=not progress)
        try:
            for target in bar:
                result, docs = self._outcome(target)
                if docs:
                    result.chunks = self.split_documents(docs)
                yield result
        finally:
            bar.close()

    # -- one file --------------------------------------------------------------------------

    def _outcome(self, target: _Target) -> tuple[FileResult, list[Document]]:
        """A file's result (without chunks) and loaded documents; problems go in the result."""
        if target.in_directory and target.path.suffix.lower() not in LOADERS:
            skipped = f"unsupported file type {target.path.suffix.lower() or '(no extension)'}"
            return FileResult(target.path, skipped=skipped), []
        loaded = self._load(target)
        if loaded.error is not None:
            logger.debug("cannot process %s: %s", target.path, loaded.error)
        result = FileResult(
            target.path, error=loaded.error, skipped=loaded.skipped, file_hash=loaded.file_hash
        )
        return result, loaded.docs

    def _load(self, target: _Target) -> _Loaded:
        """Read and parse one file; a problem is returned as the bare reason, never raised."""
        path = target.path
        suffix = path.suffix.lower()
        try:
            data, mtime = _read(path, suffix)
        except DocumentProcessingError as exc:
            return _Loaded([], error=str(exc), cause=exc)
        file_hash = _sha256(data)
        if not data:
            return _Loaded([], file_hash, skipped=EMPTY_FILE)
        try:
            docs = LOADERS[suffix](data, self.options)
        except DocumentProcessingError as exc:
            return _Loaded([], file_hash, error=str(exc), cause=exc)
        except Exception as exc:  # a parser bug must not stop the other files
            logger.debug("unexpected error while loading %s", path, exc_info=True)
            error = f"unexpected {type(exc).__name__} while reading the file: {exc}"
            return _Loaded([], file_hash, error=error, cause=exc)
        file_metadata = {
            "source": str(path),
            "file_type": suffix[1:],
            "file_hash": file_hash,
            "modified": datetime.fromtimestamp(mtime, UTC).isoformat(),
        }
        kept = [
            Document(page_content=doc.page_content, metadata={**doc.metadata, **file_metadata})
            for doc in docs
            if doc.page_content.strip()
        ]
        if not kept:
            return _Loaded([], file_hash, skipped=NO_PDF_TEXT if suffix == ".pdf" else NO_TEXT)
        return _Loaded(kept, file_hash)


def _read(path: Path, suffix: str) -> tuple[bytes, float]:
    """A supported file's bytes and modification time; raises with the bare reason."""
    if not path.exists():
        raise DocumentProcessingError("no such file or directory; check the path")
    if path.is_dir():
        raise DocumentProcessingError("is a directory; use load_directory or process")
    if suffix not in LOADERS:
        raise DocumentProcessingError(
            f"unsupported file type {suffix or '(no extension)'}; supported extensions: "
            f"{', '.join(SUPPORTED_EXTENSIONS)}; convert the file or leave it out"
        )
    try:
        return path.read_bytes(), path.stat().st_mtime
    except OSError as exc:
        raise DocumentProcessingError(f"cannot read the file: {exc.strerror or exc}") from exc


# -- ids and hashes -----------------------------------------------------------------------


def chunk_id(source: str, chunk_index: int, text: str) -> str:
    """The deterministic id of a chunk: SHA-256 of source, index and text, 32 hex digits."""
    return _sha256(f"{source}\0{chunk_index}\0{text}".encode())[:32]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- paths --------------------------------------------------------------------------------


def _absolute(path: PathInput) -> Path:
    return Path(os.path.abspath(os.fspath(path)))


def _expand(paths: PathInput | Iterable[PathInput], glob: str) -> Iterator[_Target]:
    """The files to process, in order: directories walked, duplicates dropped."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    seen: set[Path] = set()
    for item in items:
        root = _absolute(item)
        targets = _walk(root, glob) if root.is_dir() else iter([_Target(root, False)])
        for target in targets:
            if target.path not in seen:
                seen.add(target.path)
                yield target


def _walk(root: Path, glob: str) -> Iterator[_Target]:
    """Regular files under ``root`` matching ``glob``, sorted, hidden entries left out."""
    try:
        paths = sorted(root.glob(glob))
    except (ValueError, NotImplementedError) as exc:
        raise ConfigurationError(
            f"glob={glob!r} is not a usable pattern ({exc}); use a relative pattern such as "
            "'**/*' or '**/*.md'"
        ) from exc
    for path in paths:
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_file():
            yield _Target(path, in_directory=True)


def _raise_failures(failed: list[FileResult]) -> None:
    if not failed:
        return
    lines = "\n".join(f"  {result.path}: {result.error}" for result in failed)
    raise DocumentProcessingError(
        f"{len(failed)} file(s) could not be processed:\n{lines}\n"
        "fix or remove them, or use DocumentProcessor.iter_files to keep the files that worked"
    )
