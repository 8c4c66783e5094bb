"""Incremental ingestion: files in, a store's chunks kept in step with them.

`ingest` walks the files with a `DocumentProcessor` (one file at a time, large text files a
block at a time) and compares each file's chunk ids, which are derived from the file and the
chunk's content, with those the store holds for its ``source``: an unchanged file embeds and
writes nothing; a changed file's new chunks are added and its stale ones deleted.

Writes go through the store's public `apply`, ``batch_size`` chunks at a time across files;
a file's stale chunks are deleted in the same commit as its last new chunks, so a crash never
leaves both versions of a file that fits in one batch. When the store refuses a batch
(`InvalidInputError`: a metadata value it cannot keep, say), its files are written one at a
time so that only the guilty ones fail, and a failed file's writes of this run are undone.
Other errors (storage, the model) propagate: they are not a file's fault, and running the
ingest again completes it.

Every file found is counted once in the `IngestReport`: added, updated, unchanged, skipped or
failed (a file that had chunks and now has no text is updated: its chunks are removed). With
``progress``, one bar counts the files (its total is the report's ``files_seen``) and another
the chunks as the model embeds them, with the rate: the store's model is wrapped in
`ReportingEmbeddings`, which tells the ingest running in the same context how many texts each
call embedded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from vectordb_manager.errors import DocumentProcessingError, InvalidInputError
from vectordb_manager.processing import DocumentProcessor, FileResult
from vectordb_manager.processing.files import PathInput
from vectordb_manager.vectorstores.engine_store import EngineVectorStore

logger = logging.getLogger(__name__)
Cleanup = Literal["incremental", "full"]


@dataclass
class IngestReport:
    """What one `VectorDatabaseManager.ingest` call did, file by file.

    ``files_seen`` counts every file found, each once in exactly one of ``files_added``,
    ``files_updated``, ``files_unchanged``, ``files_skipped`` and ``files_failed``;
    ``files_removed`` are files no longer there (``cleanup="full"``), not among those found.
    """

    files_seen: int = 0
    files_added: list[str] = field(default_factory=list)
    files_updated: list[str] = field(default_factory=list)
    files_unchanged: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    files_skipped: dict[str, str] = field(default_factory=dict)
    files_failed: dict[str, str] = field(default_factory=dict)
    chunks_added: int = 0
    chunks_removed: int = 0
    texts_embedded: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.files_failed

    def count(self, kind: str) -> int:
        """How many files of ``kind`` (``"files_added"``, ``"files_failed"``...) there were
        (a report from a workflow may name only the first of them)."""
        return len(getattr(self, kind))

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``vectordb ingest --json`` prints)."""
        return {**dataclasses.asdict(self), "ok": self.ok}

    def __str__(self) -> str:
        gone = self.count("files_removed")
        lines = [
            f"{self.files_seen} files: {self.count('files_added')} added, "
            f"{self.count('files_updated')} updated, {self.count('files_unchanged')} unchanged, "
            f"{self.count('files_skipped')} skipped, {self.count('files_failed')} failed; "
            f"{gone} gone file{'' if gone == 1 else 's'} removed; {self.chunks_added} chunks "
            f"added, {self.chunks_removed} removed, {self.texts_embedded} texts embedded "
            f"in {self.seconds:.1f} s"
        ]
        lines += [f"  failed  {path}: {why}" for path, why in self.files_failed.items()]
        lines += [f"  skipped {path}: {why}" for path, why in self.files_skipped.items()]
        return _printable("\n".join(lines))

    def __repr__(self) -> str:
        failed = ", ".join(f"{p!r}: {w!r}" for p, w in self.files_failed.items())
        return (
            f"IngestReport(files_seen={self.files_seen}, "
            f"added={self.count('files_added')}, updated={self.count('files_updated')}, "
            f"unchanged={self.count('files_unchanged')}, removed={self.count('files_removed')}, "
            f"skipped={self.count('files_skipped')}, "
            f"chunks_added={self.chunks_added}, chunks_removed={self.chunks_removed}, "
            f"texts_embedded={self.texts_embedded}, failed={{{failed}}})"
        )


def _printable(text: str) -> str:
    """``text`` writable to any UTF-8 stream: lone surrogates escaped. A file name that is not
    UTF-8 shows its bytes (``caf\\xe9.txt``: Python holds byte 0xE9 as U+DCE9); any other
    surrogate shows its code point (``\\ud800``)."""
    return _SURROGATE.sub(_escape_surrogate, text)


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def ingest(
    store: EngineVectorStore,
    processor: DocumentProcessor,
    roots: Sequence[Path],
    *,
    cleanup: Cleanup | None = None,
    batch_size: int = 256,
    progress: bool = False,
    sources: Mapping[PathInput, str] | None = None,
) -> IngestReport:
    """Bring ``store`` in step with the files under ``roots`` (see the module docstring;
    ``sources``: `DocumentProcessor.iter_files`'s)."""
    require_ingest_options(cleanup, batch_size)
    start = time.perf_counter()
    with _chunk_progress(progress):
        results = processor.iter_files(roots, progress=progress, lazy=True, sources=sources)
        report, seen = ingest_results(store, results, batch_size=batch_size)
    if cleanup == "full":
        remove_missing(store, roots, seen, report)
    report.seconds = time.perf_counter() - start
    logger.info("ingest: %s", str(report).splitlines()[0])
    return report


def require_ingest_options(cleanup: object, batch_size: object) -> None:
    """`InvalidInputError` unless ``cleanup`` and ``batch_size`` are valid for `ingest`."""
    if cleanup not in (None, "incremental", "full"):
        raise InvalidInputError(f"cleanup={cleanup!r} must be None, 'incremental' or 'full'")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise InvalidInputError(f"batch_size={batch_size!r} must be a positive integer")


def ingest_results(
    store: EngineVectorStore, results: Iterable[FileResult], *, batch_size: int = 256
) -> tuple[IngestReport, set[str]]:
    """The ingestion of the files ``results`` give (`DocumentProcessor.iter_files` or
    ``iter_targets``, lazy or not), all of `ingest` but the cleanup of vanished files: its
    report and the sources seen (what `remove_missing` keeps). The durable workflows
    (`vectordb_manager.workflows`) call it on each batch of a listing."""
    report = IngestReport()
    run = _IngestRun(store, report, batch_size)
    seen: set[str] = set()
    for result in results:
        _ingest_file(result, run, seen)
    run.flush()
    return report, seen


@contextlib.contextmanager
def embedded_callback(tell: Callable[[int], object]) -> Iterator[None]:
    """While inside, ``tell(count)`` after each embedding call of a store whose model is
    wrapped in `ReportingEmbeddings`, made in this context (thread or task)."""
    token = _EMBEDDED.set(tell)
    try:
        yield
    finally:
        _EMBEDDED.reset(token)


_EMBEDDED: ContextVar[Callable[[int], object] | None] = ContextVar(
    "vectordb_manager_embedded", default=None
)
"""Told how many texts each embedding call of the ingest running in this context embedded."""


class ReportingEmbeddings(Embeddings):
    """A store's model, telling the ingest running in the same context (if any, with
    progress) how many texts each call embedded. It is seen through as the model itself
    (``underlying_embeddings``): its name and dimension are the model's."""

    def __init__(self, embeddings: Embeddings) -> None:
        self.underlying_embeddings = embeddings

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.underlying_embeddings.embed_documents(texts)
        _report_embedded(len(texts))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.underlying_embeddings.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = await self.underlying_embeddings.aembed_documents(texts)
        _report_embedded(len(texts))
        return vectors

    async def aembed_query(self, text: str) -> list[float]:
        return await self.underlying_embeddings.aembed_query(text)


def _report_embedded(count: int) -> None:
    tell = _EMBEDDED.get()
    if tell is not None:
        tell(count)


@contextlib.contextmanager
def _chunk_progress(progress: bool) -> Iterator[None]:
    """With ``progress``, a bar of the chunks embedded (and their rate) while the ingest runs,
    below the processor's bar of files."""
    if not progress:
        yield
        return
    from tqdm.auto import tqdm

    with tqdm(desc="Embedded", unit=" chunks", position=1) as bar, embedded_callback(bar.update):
        yield


class _IngestRun:
    """The writes of one ingest call (see the module docstring)."""

    def __init__(self, store: EngineVectorStore, report: IngestReport, batch_size: int) -> None:
        self.store, self.report, self.batch_size = store, report, batch_size
        self.pending: list[tuple[str, Document]] = []  # (file, chunk), files in order
        self.added: dict[str, list[str]] = {}  # per file, the ids this run added for it
        self.stale: dict[str, list[str]] = {}  # per finished file, the ids to delete

    def add(self, path: str, chunk: Document) -> None:
        self.pending.append((path, chunk))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def finish(self, path: str, stale: list[str]) -> None:
        """``path`` gave all its chunks; delete ``stale`` with the last of them."""
        self.stale[path] = stale

    def fail(self, path: str, reason: str) -> None:
        """Record the file's failure and undo what this run wrote for it."""
        self.report.files_failed[path] = reason  # and in no other category
        for done in (self.report.files_added, self.report.files_updated):
            if path in done:
                done.remove(path)
        self.report.files_skipped.pop(path, None)
        self.pending = [item for item in self.pending if item[0] != path]
        self.stale.pop(path, None)
        added = self.added.pop(path, [])
        if added:
            self.store.delete(added)
            self.report.chunks_added -= len(added)

    def flush(self) -> None:
        """Write the pending chunks and the stale ids of finished files: one commit."""
        batch, self.pending = self.pending, []
        finished, self.stale = self.stale, {}
        try:
            self._write(batch, finished)
        except InvalidInputError:
            # one file at a time, each with its own stale ids; then the other finished files
            for path, group in itertools.groupby(batch, key=itemgetter(0)):
                try:
                    self._write(list(group), {path: finished.pop(path, [])})
                except InvalidInputError as exc:
                    self.fail(path, f"the store refused its chunks: {exc}")
            self._write([], finished)

    def _write(self, batch: list[tuple[str, Document]], finished: dict[str, list[str]]) -> None:
        stale = [doc_id for ids in finished.values() for doc_id in ids]
        if not batch and not stale:
            return
        self.store.apply([chunk for _, chunk in batch], delete=stale)
        self.report.texts_embedded += len(batch)
        self.report.chunks_added += len(batch)
        self.report.chunks_removed += len(stale)
        for path, chunk in batch:
            self.added.setdefault(path, []).append(str(chunk.id))
        for path in finished:
            self.added.pop(path, None)  # done: no longer undone if another file fails


def _ingest_file(result: FileResult, run: _IngestRun, seen: set[str]) -> None:
    """Bring the store in step with one file; the file is counted once, in one category
    (a later batch the store refuses may still move it to ``files_failed``: `_IngestRun.fail`)."""
    report = run.report
    path = result.source  # the file's absolute path (or the name of what it is a copy of)
    report.files_seen += 1
    if result.error is not None:
        report.files_failed[path] = result.error
        return
    source = result.source
    if result.skipped is not None and result.file_hash is None:  # never read
        report.files_skipped[path] = result.skipped
        return
    seen.add(source)
    try:
        existing = set(run.store.get_ids({"source": source}))
        had_chunks, new = bool(existing), 0
        for chunk in result.iter_chunks():
            if chunk.id in existing:
                existing.discard(chunk.id)  # what stays in ``existing`` is stale
                continue
            new += 1
            run.add(path, chunk)
            if path in report.files_failed:  # the store refused its chunks
                return
    except (DocumentProcessingError, InvalidInputError) as exc:
        run.fail(path, result.error or str(exc))
        return
    if result.skipped is not None:  # read, but no text (now): drop what it used to hold
        if had_chunks:  # its chunks change: updated (to none), and counted there only
            logger.info("%s: %s; its %d chunks are removed", path, result.skipped, len(existing))
            report.files_updated.append(path)
            run.finish(path, sorted(existing))
        else:
            report.files_skipped[path] = result.skipped
        return
    if not new and not existing:
        report.files_unchanged.append(path)
        return
    (report.files_updated if had_chunks else report.files_added).append(path)
    run.finish(path, sorted(existing))


def remove_missing(
    store: EngineVectorStore, roots: Sequence[Path], seen: set[str], report: IngestReport
) -> None:
    """Delete, in one commit, the chunks of every file under ``roots`` that no longer exists
    (the sources come from the value index of ``source``: no record is decoded)."""
    resolved = [r.absolute() for r in roots]

    def gone(source: str) -> bool:
        if source in seen:
            return False
        path = Path(source)
        return any(path == r or r in path.parents for r in resolved) and not path.exists()

    remove_sources(store, gone, report)


def remove_sources(
    store: EngineVectorStore, gone: Callable[[str], bool], report: IngestReport
) -> None:
    """Delete, in one commit, the chunks of every ``source`` for which ``gone(source)``;
    each is added to the report's ``files_removed``."""
    found: dict[str, list[str]] = {}
    for source, ids in store.ids_by_value("source"):
        if isinstance(source, str) and gone(source):
            found[source] = ids
    if found:
        store.apply(delete=[doc_id for ids in found.values() for doc_id in ids])
    for source, ids in sorted(found.items()):
        report.files_removed.append(source)
        report.chunks_removed += len(ids)
