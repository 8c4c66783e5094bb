"""Reading files safely, whole or as decoded text in bounded blocks.

:func:`open_regular` opens only regular files, so that opening can never block or touch a
device: it checks the path with ``stat`` first (a FIFO, socket or device named directly is
refused without being opened), opens with ``O_NONBLOCK`` (a FIFO swapped in after the check
cannot make ``open`` wait for a writer), then checks the descriptor with ``fstat``.

Text is decoded as :func:`decode_text` describes: UTF-8 with or without BOM, UTF-16 with a BOM,
then the configured legacy encodings in order, newlines normalised to ``\\n``. For a large file
this happens in two passes, each holding one block at a time: :func:`scan_text` hashes the
bytes and finds the first encoding that decodes the whole file; :func:`iter_text` then opens
the file again, decodes it piece by piece and checks that the bytes still hash the same (else
the file changed while it was read). :func:`iter_blocks` and :func:`iter_lines` regroup
the pieces into blocks cut at a boundary of the caller's choosing, or into lines.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import stat
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vectordb_manager.errors import DocumentProcessingError

BINARY_SNIFF_BYTES = 8192
READ_BYTES = 1 << 20
"""Bytes read from a file at a time."""

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO or device never makes open() wait
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
CHANGED = (
    "the file changed while it was being read; ingest it again once it is no longer being written"
)


# -- opening ------------------------------------------------------------------------------


class RegularFile:
    """An open regular file (from `open_regular`): its size and modification time, read whole
    or in blocks."""

    def __init__(self, handle: io.FileIO, info: os.stat_result) -> None:
        self._handle = handle
        self.size = info.st_size
        self.mtime = info.st_mtime

    def read_all(self) -> bytes:
        """The file's bytes, from the start."""
        return b"".join(self.blocks())

    def blocks(self, size: int = READ_BYTES) -> Iterator[bytes]:
        """The file's bytes from the start, ``size`` at a time."""
        try:
            self._handle.seek(0)
            while block := self._handle.read(size):
                yield block
        except OSError as exc:
            raise DocumentProcessingError(_cannot_read(exc)) from exc



@contextmanager
def open_regular(path: Path, check: Callable[[], None] | None = None) -> Iterator[RegularFile]:
    """Open a regular file for reading (closed on leaving the ``with`` block); anything else is
    refused with the bare reason.

    ``check`` runs once the path is known to be a regular file, before it is opened (the
    processor refuses unsupported extensions there).

    Raises:
        DocumentProcessingError: missing, a directory, not a regular file (FIFO, socket,
            device: never opened, so never read), or unreadable.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DocumentProcessingError("no such file or directory; check the path") from None
    except OSError as exc:
        raise DocumentProcessingError(_cannot_read(exc)) from exc
    _require_regular(info)
    if check is not None:
        check()
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise DocumentProcessingError(_cannot_read(exc)) from exc
    with io.FileIO(fd, "rb", closefd=True) as handle:
        info = os.fstat(fd)
        _require_regular(info)  # replaced between stat and open
        yield RegularFile(handle, info)


def _require_regular(info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise DocumentProcessingError("is a directory; use load_directory or process")
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a file")
        raise DocumentProcessingError(
            f"not a regular file ({kind}); only regular files are read: save its content to "
            "a file and ingest that"
        )


def _cannot_read(exc: OSError) -> str:
    return f"cannot read the file: {exc.strerror or exc}"


# -- decoding -----------------------------------------------------------------------------


def candidates(head: bytes, fallbacks: Sequence[str]) -> list[str]:
    """The encodings to try, in order, for a file starting with ``head`` (8 KB or more).

    Raises `DocumentProcessingError` ("binary file, not text") when a NUL byte appears in the
    first 8 KB of a file without a UTF-16 byte-order mark.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ["utf-16"]
    if b"\x00" in head[:BINARY_SNIFF_BYTES]:
        raise DocumentProcessingError(
            "binary file, not text (it contains NUL bytes); remove it, or if it is "
            "UTF-16 text without a byte-order mark, save it as UTF-8"
        )
    return ["utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8", *fallbacks]


REPLACED = "utf-8 (with replacements)"
"""The label of text decoded as UTF-8 with replacements (every candidate failed)."""


def decode_text(data: bytes, fallbacks: Sequence[str] = ("cp1252", "latin-1")) -> tuple[str, str]:
    """Decode a text file's bytes; returns ``(text, encoding)`` with newlines normalised to ``\\n``.

    Raises `DocumentProcessingError` ("binary file, not text") as :func:`candidates` says.
    """
    for encoding in candidates(data[:BINARY_SNIFF_BYTES], fallbacks):
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        return normalise_newlines(text), label(encoding)
    # Every candidate failed (only strict fallbacks were configured): keep what is readable.
    return normalise_newlines(data.decode("utf-8", errors="replace")), REPLACED


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def label(encoding: str) -> str:
    """The name recorded in metadata for text decoded with ``encoding``."""
    if encoding == "utf-8-sig":
        return "utf-8"
    try:
        return codecs.lookup(encoding).name
    except LookupError:  # pragma: no cover - validated by the processor
        return encoding


@dataclass(frozen=True)
class TextScan:
    """What a first pass over a text file found: its hash and how to decode it."""

    file_hash: str  # SHA-256 (hex) of the bytes
    size: int  # bytes read
    encoding: str  # the codec to decode with
    errors: str  # "strict", or "replace" when no candidate decoded the whole file
    error: str | None = None  # why the file is not text (binary), if it is not

    @property
    def label(self) -> str:
        """The encoding as recorded in metadata."""
        return REPLACED if self.errors == "replace" else label(self.encoding)


def scan_text(file: RegularFile, fallbacks: Sequence[str]) -> TextScan:
    """Hash a text file and find the first candidate encoding that decodes all of it.

    Reads the file once for the hash and the first candidate (UTF-8, the usual answer); a
    file that is not UTF-8 is read again for each fallback tried. Memory: one block at a time.
    A binary file is hashed too, and ``error`` says why it is not text.

    Raises:
        DocumentProcessingError: the file cannot be read.
    """
    digest = hashlib.sha256()
    size = 0
    blocks = file.blocks()
    head = b""
    for block in blocks:  # the sniff window: the first 8 KB, or the whole of a smaller file
        digest.update(block)
        head += block
        if len(head) >= BINARY_SNIFF_BYTES:
            break
    try:
        order = candidates(head, fallbacks)
    except DocumentProcessingError as exc:
        order, error = [], str(exc)
    feed = _strict_decoder(order[0] if order else "")
    decodes = bool(order) and feed(head)
    size = len(head)
    for block in blocks:
        digest.update(block)
        size += len(block)
        decodes = decodes and feed(block)
    file_hash = digest.hexdigest()
    if not order:
        return TextScan(file_hash, size, "utf-8", "strict", error)
    if decodes and feed(b"", True):
        return TextScan(file_hash, size, order[0], "strict")
    for encoding in order[1:]:
        feed = _strict_decoder(encoding)
        if all(map(feed, file.blocks())) and feed(b"", True):
            return TextScan(file_hash, size, encoding, "strict")
    return TextScan(file_hash, size, "utf-8", "replace")


def _strict_decoder(encoding: str) -> Callable[..., bool]:
    """A function feeding bytes to a strict incremental decoder: False once they fail."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)("strict")
    except LookupError:
        return lambda data, final=False: False

    def feed(data: bytes, final: bool = False) -> bool:
        try:
            decoder.decode(data, final)
        except UnicodeDecodeError:
            return False
        return True

    return feed


def iter_text(path: Path, scan: TextScan) -> Generator[str, None, None]:
    """The file's text, decoded as ``scan`` says, newlines normalised, a piece at a time.

    The file is opened again (as `open_regular` does) when the iteration starts and closed
    when it ends, so passes are independent and nothing is held open in between.

    Raises:
        DocumentProcessingError: the bytes no longer hash as ``scan`` found (the file changed
            since), or the file can no longer be opened or read.
    """
    decoder = codecs.getincrementaldecoder(scan.encoding)(scan.errors)
    digest = hashlib.sha256()
    carry = ""  # a trailing "\r" waits for the next piece: it may be half of "\r\n"
    with open_regular(path) as file:
        try:
            for block in file.blocks():
                digest.update(block)
                text = carry + decoder.decode(block)
                carry = text[-1:] if text.endswith("\r") else ""
                if text := text[: len(text) - len(carry)]:
                    yield normalise_newlines(text)
            text = carry + decoder.decode(b"", True)
        except UnicodeDecodeError as exc:
            raise DocumentProcessingError(CHANGED) from exc
    if digest.hexdigest() != scan.file_hash:
        raise DocumentProcessingError(CHANGED)
    if text:
        yield normalise_newlines(text)


# -- regrouping ---------------------------------------------------------------------------

Cut = Callable[[str, int], int]
"""``cut(buffer, limit)``: where to end the next block of ``buffer`` (``0 < end <= len``),
given that it should hold at most about ``limit`` characters."""


def iter_blocks(pieces: Iterable[str], size: int | None, cut: Cut) -> Iterator[str]:
    """The text of ``pieces`` regrouped into blocks of about ``size`` characters, each ended
    where ``cut`` says; ``size=None``: the whole text as one block."""
    if size is None:
        if text := "".join(pieces):
            yield text
        return
    buffer = ""
    for piece in pieces:
        buffer += piece
        while len(buffer) > size:
            end = cut(buffer, size)
            yield buffer[:end]
            buffer = buffer[end:]
    if buffer:
        yield buffer


def cut_at_paragraph(buffer: str, limit: int) -> int:
    """The end of the last paragraph (blank line), else line, else word within ``limit``
    characters; at ``limit`` when the text has none of them."""
    for separator in ("\n\n", "\n", " "):
        at = buffer.rfind(separator, 0, limit)
        if at > 0:
            return at + len(separator)
    return limit


def iter_lines(pieces: Iterable[str]) -> Iterator[str]:
    """The text of ``pieces`` as lines, each with its ``\\n`` (the last may have none)."""
    rest = ""
    for piece in pieces:
        lines = (rest + piece).split("\n")
        rest = lines.pop()
        for line in lines:
            yield line + "\n"
    if rest:
        yield rest
