"""Which files to process, and what came of each.

:func:`expand` turns the paths a caller names into targets: directories walked (sorted, hidden
entries and anything that is not a regular file left out), duplicates dropped. A
:class:`FileResult` reports one file's outcome.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.documents import Document

from vectordb_manager.errors import ConfigurationError, DocumentProcessingError

PathInput = str | os.PathLike[str]


@dataclass
class FileResult:
    """What processing one file gave: its chunks, or why it failed or was skipped.

    ``ok`` is true unless the file failed; a skipped file (empty, or an unsupported type found
    while walking a directory) is ok, with no chunks and ``skipped`` saying why.

    A result from ``iter_files(..., lazy=True)`` leaves ``chunks`` empty: its chunks come from
    `iter_chunks`, read from the file as they are taken, and ``error`` or ``skipped`` may be
    set only once they have all been taken.
    """

    path: Path
    chunks: list[Document] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    file_hash: str | None = None  # SHA-256 (hex) of the file's bytes, when it was read
    source_name: str | None = None  # its chunks' source if not its path (a caller's name, a URL)
    _stream: Iterator[Document] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True unless the file failed."""
        return self.error is None

    @property
    def source(self) -> str:
        """The ``source`` metadata of the file's chunks: the name the caller gave the file
        (``iter_files(sources=...)``) or the name of what it is a copy of (an S3 object's
        URL), else its absolute path."""
        return self.source_name if self.source_name is not None else str(self.path)

    def iter_chunks(self) -> Iterator[Document]:
        """The file's chunks, in order; a lazy result's can be taken once.

        Raises:
            DocumentProcessingError: a lazy result's file failed while being read (``error``
                says why; drop the chunks already taken, they are not the whole file).
        """
        stream, self._stream = self._stream, None
        yield from self.chunks if stream is None else stream


@dataclass(frozen=True)
class Target:
    path: Path
    in_directory: bool  # found by walking a directory rather than named by the caller
    source: str | None = None  # its chunks' source when not the path (a caller's name, a URL)


# -- paths --------------------------------------------------------------------------------


def absolute(path: PathInput) -> Path:
    return Path(os.path.abspath(os.fspath(path)))


def expand(paths: PathInput | Iterable[PathInput], glob: str) -> Iterator[Target]:
    """The files to process, in order: directories walked, duplicates dropped."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    seen: set[Path] = set()
    for item in items:
        root = absolute(item)
        targets = walk(root, glob) if root.is_dir() else iter([Target(root, False)])
        for target in targets:
            if target.path not in seen:
                seen.add(target.path)
                yield target


def walk(root: Path, glob: str) -> Iterator[Target]:
    """Regular files under ``root`` matching ``glob``, sorted, hidden entries left out.

    FIFOs, sockets, devices and links to them are not regular files: they are left out.
    """
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
            yield Target(path, in_directory=True)


ALL_FILES = "**/*"


def walk_after(root: Path, glob: str, after: Path | None) -> Iterator[Target]:
    """What `walk` gives, from the first file after ``after`` on (in `walk`'s order: paths
    compared as `Path` objects; ``after`` need not exist any more).

    With the default ``glob`` (`ALL_FILES`) the directories before ``after`` are not read:
    the walk goes down the tree in order (entries sorted by name, which is the order of
    sorted paths), entering real directories (not links to them, as `Path.glob` does not)
    and skipping hidden entries, from ``after``'s place. Another pattern walks the whole
    tree and drops what comes before ``after``. A directory that vanishes meanwhile is empty.
    """
    if glob != ALL_FILES:
        return (t for t in walk(root, glob) if after is None or t.path > after)
    parts = after.relative_to(root).parts if after is not None else ()
    return (Target(path, in_directory=True) for path in _files_after(root, parts))


def _files_after(directory: Path, after: tuple[str, ...]) -> Iterator[Path]:
    """The regular files under ``directory`` in order, after the relative path ``after``."""
    try:
        with os.scandir(directory) as entries:
            found = sorted(entries, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for entry in found:
        name = entry.name
        if name.startswith(".") or (after and name < after[0]):
            continue
        path = directory / name
        rest = after[1:] if after and name == after[0] else ()
        if _is_real_directory(entry):
            yield from _files_after(path, rest)
        elif not (after and name == after[0]) and _is_file(entry):
            yield path


def _is_real_directory(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir() and not entry.is_symlink()
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def raise_failures(failed: list[FileResult]) -> None:
    if not failed:
        return
    lines = "\n".join(f"  {result.path}: {result.error}" for result in failed)
    raise DocumentProcessingError(
        f"{len(failed)} file(s) could not be processed:\n{lines}\n"
        "fix or remove them, or use DocumentProcessor.iter_files to keep the files that worked"
    )
