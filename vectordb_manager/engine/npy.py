"""The ``.npy`` array in a segment's ``vectors`` section: its prefix and a strict header parser.

A segment stores its vectors in NumPy's ``.npy`` format, version 1.0 or 2.0, as NumPy writes
it: the magic ``\\x93NUMPY``, the version's two bytes, the header's length (uint16 for 1.0,
uint32 for 2.0, little-endian), then the header: an ASCII Python dict literal with the keys
``descr``, ``fortran_order`` and ``shape``, padded with spaces and ending in ``\\n``; the data
follow.

NumPy parses that header with ``ast.literal_eval``, which is not safe to call from reader
threads (it has raised ``SystemError: AST constructor recursion depth mismatch`` while a
store opened) and raises ``tokenize.TokenError`` on some damaged headers. Here the header is
parsed by a small grammar of its own (`parse_header`), never by ``ast``, and only after the
whole file's checksum has been verified: while streaming, a reader needs only the fixed
prefix (`header_size`) to find where the data start, and takes the array's shape from the
manifest.
"""

from __future__ import annotations

import re

from vectordb_manager.engine.records import damaged
from vectordb_manager.errors import IntegrityError

MAGIC = b"\x93NUMPY"
PREFIX_BYTES = 12
"""Enough bytes to hold the fixed prefix of either version (10 for 1.0, 12 for 2.0)."""
MAX_HEADER_BYTES = 1 << 16
"""The longest header a reader accepts (NumPy writes about 128 bytes for a matrix)."""
DTYPE = "<f4"

# One token of the header: a quoted string (printable ASCII, no escapes), a non-negative
# integer (no leading zeros), True/False, or one punctuation mark; spaces between them.
_TOKEN = re.compile(
    r" *(?:'(?P<sq>[ -&(-\[\]-~]*)'"
    r'|"(?P<dq>[ !#-\[\]-~]*)"'
    r"|(?P<int>0|[1-9][0-9]{0,18})(?![0-9A-Za-z_])"
    r"|(?P<word>True|False)(?![0-9A-Za-z_])"
    r"|(?P<punct>[{}():,]))"
)
_KEYS = frozenset(("descr", "fortran_order", "shape"))
Value = str | bool | tuple[int, ...]


def encode_header(shape: tuple[int, int]) -> bytes:
    """The ``.npy`` 1.0 header of a C-order little-endian float32 array of ``shape``, as
    NumPy writes it (padded with spaces and a newline to a multiple of 64 bytes, so that
    the data start aligned)."""
    text = f"{{'descr': '{DTYPE}', 'fortran_order': False, 'shape': ({shape[0]}, {shape[1]}), }}"
    size = 10 + len(text) + 1
    padded = text + " " * (-size % 64) + "\n"
    return MAGIC + b"\x01\x00" + len(padded).to_bytes(2, "little") + padded.encode("ascii")


def header_size(prefix: bytes, length: int, path: str) -> int:
    """Where the data start in a ``.npy`` array of ``length`` bytes whose first bytes are
    ``prefix`` (at least `PREFIX_BYTES` of them when the array is that long)."""
    if len(prefix) < 10 or prefix[:6] != MAGIC or prefix[6] not in (1, 2) or prefix[7] != 0:
        raise damaged(path, "does not hold a valid .npy array (version 1.0 or 2.0) of vectors")
    if prefix[6] == 1:
        size = 10 + int.from_bytes(prefix[8:10], "little")
    elif len(prefix) < 12:
        raise damaged(path, "does not hold a valid .npy array of vectors")
    else:
        size = 12 + int.from_bytes(prefix[8:12], "little")
    if size - len(prefix) > MAX_HEADER_BYTES or size > length:
        raise damaged(path, f"has a .npy header of {size} bytes in a section of {length}")
    return size


def check_header(header: bytes, shape: tuple[int, int] | None, path: str) -> None:
    """Raise `IntegrityError` unless a whole ``.npy`` header (prefix included) describes a
    C-order little-endian float32 array of exactly ``shape`` (``None``: of two dimensions)."""
    start = 10 if header[6:7] == b"\x01" else 12
    fields = parse_header(header[start:], path)
    found = fields["shape"]
    wrong = [f"{k} {repr(fields[k])[:40]}" for k in ("descr", "fortran_order", "shape")]
    right = (
        fields["descr"] == DTYPE,
        fields["fortran_order"] is False,
        found == shape if shape is not None else type(found) is tuple and len(found) == 2,
    )
    wrong = [w for w, ok in zip(wrong, right, strict=True) if not ok]
    if wrong:
        raise damaged(
            path,
            f"holds a .npy array with {', '.join(wrong)}; expected descr {DTYPE!r}, "
            f"fortran_order False and shape {shape or '(rows, dimension)'}. Anything else "
            "(such as a pickled object array) is refused, never loaded",
        )


def parse_header(text: bytes, path: str) -> dict[str, Value]:
    """The dict of a ``.npy`` header (what follows the length): ``{`` key ``:`` value, ...
    ``}`` with an optional trailing comma, then spaces and ``\\n``. Keys are strings; values
    are strings, ``True``/``False`` or tuples of integers (Python's tuple syntax: ``()``,
    ``(3,)``, ``(3, 4)``). Each of the keys ``descr``, ``fortran_order`` and ``shape`` appears
    exactly once and no other."""
    tokens = _Tokens(text, path)
    result: dict[str, Value] = {}
    tokens.expect("{")
    while not tokens.take("}"):
        key = tokens.string()
        tokens.expect(":")
        if key in result or key not in _KEYS:
            raise tokens.fail(f"unexpected or repeated key {key[:40]!r}")
        result[key] = tokens.value()
        if not tokens.take(","):
            tokens.expect("}")
            break
    if not tokens.done():
        raise tokens.fail("text after the closing '}'")
    if set(result) != _KEYS:
        raise tokens.fail(f"it lacks {sorted(_KEYS - set(result))}")
    return result


class _Tokens:
    """The tokens of a header, consumed front to back."""

    def __init__(self, text: bytes, path: str) -> None:
        self.path = path
        if not text.endswith(b"\n"):
            raise self.fail("it does not end with a newline")
        try:
            body = text[:-1].decode("ascii").rstrip(" ")
        except UnicodeDecodeError:
            raise self.fail("it is not ASCII") from None
        self.items: list[tuple[str, str]] = []
        at = 0
        while at < len(body):
            m = _TOKEN.match(body, at)
            if m is None or m.lastgroup is None:
                raise self.fail(f"unexpected text at byte {at}")
            self.items.append((m.lastgroup, m.group(m.lastgroup)))
            at = m.end()
        self.pos = 0

    def fail(self, why: str) -> IntegrityError:
        return damaged(self.path, f"holds a malformed .npy header: {why}")

    def done(self) -> bool:
        return self.pos == len(self.items)

    def take(self, mark: str) -> bool:
        """Consume the punctuation ``mark`` if it comes next."""
        if self.items[self.pos : self.pos + 1] == [("punct", mark)]:
            self.pos += 1
            return True
        return False

    def expect(self, mark: str) -> None:
        if not self.take(mark):
            raise self.fail(f"expected {mark!r}")

    def _next(self, what: str) -> tuple[str, str]:
        if self.done():
            raise self.fail(f"it ends where {what} should be")
        self.pos += 1
        return self.items[self.pos - 1]

    def string(self) -> str:
        kind, text = self._next("a key")
        if kind not in ("sq", "dq"):
            raise self.fail("expected a quoted key")
        return text

    def value(self) -> Value:
        kind, text = self._next("a value")
        if kind in ("sq", "dq"):
            return text
        if kind == "word":
            return text == "True"
        if (kind, text) != ("punct", "("):
            raise self.fail("expected a string, True, False or a tuple")
        items: list[int] = []
        comma = False
        while not self.take(")"):
            kind, text = self._next("an integer")
            if kind != "int":
                raise self.fail("expected an integer in the shape")
            items.append(int(text))
            comma = self.take(",")
            if not comma:
                self.expect(")")
                break
        if len(items) == 1 and not comma:
            raise self.fail("a shape of one dimension needs a trailing comma, as in (3,)")
        return tuple(items)


__all__ = [
    "DTYPE",
    "MAGIC",
    "MAX_HEADER_BYTES",
    "PREFIX_BYTES",
    "check_header",
    "header_size",
    "parse_header",
]
