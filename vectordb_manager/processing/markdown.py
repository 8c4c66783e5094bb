"""Markdown files: one document per header section, a block of the file at a time.

Sections come from LangChain's `MarkdownHeaderTextSplitter` (headers inside code fences are
ignored); each keeps its header line in the text. Metadata: ``headers`` is the header path
(``"Intro > Setup"``), ``title`` the section's h1, or the file's first h1 for text before it.

A large file is split a block (a few MB of text) at a time. Blocks end at a line boundary,
preferably after a blank line outside code fences that does not follow a header, so that the
sections are those the whole text would give. What the splitter cannot know about text before
its block is carried over: the header stack (a section's headers are the carried ones above the
shallowest header the block has shown so far, plus the block's own), an open code fence (its
opening line is put back in front of the block, then taken out of the text), and the offset of
a section continued from the previous block (so ``start_index`` counts within the section).
A file that fits in one block is split exactly as a whole.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import MarkdownHeaderTextSplitter

from vectordb_manager.processing.loaders import LoadOptions, Section, TextInput

_LEVELS = range(1, 7)
_NAMES = [("#" * level, f"h{level}") for level in _LEVELS]
_FENCE_LINE = re.compile(r"^.*(?:```|~~~).*$", re.MULTILINE)


@dataclass(frozen=True)
class _Block:
    text: str  # what the splitter reads (a reopened code fence first, when there is one)
    fence: str  # the opening line of the code fence the block starts inside, or ""
    joiner: int  # characters between the previous block's last section and this one's first
    last: bool  # no block follows


def stream_markdown(source: TextInput, options: LoadOptions) -> Iterator[Section]:
    """A ``.md`` file's header sections, in order, a block of the file at a time."""
    splitter = MarkdownHeaderTextSplitter(_NAMES, strip_headers=False)
    carried: dict[str, str] = {}  # the header stack where the previous block ended
    tail: tuple[int, int] | None = None  # (offset, length) of the previous block's last section
    first_h1: list[str | None] = []  # the file's first h1, once looked for
    for block in _blocks(source.read(), source.block_size):
        sections = []
        for number, part in enumerate(splitter.split_text(block.text)):
            own = {key: str(value) for key, value in part.metadata.items()}
            content = part.page_content
            if number == 0 and block.fence:
                content = content.removeprefix(block.fence).removeprefix("\n")
            offset = 0
            if number == 0 and not own and tail is not None:  # the section goes on
                offset = tail[0] + tail[1] + block.joiner
            shallowest = min((int(key[1:]) for key in own), default=len(_LEVELS) + 1)
            above = {key: value for key, value in carried.items() if int(key[1:]) < shallowest}
            # The splitter joins blank-line separated blocks with "  \n" (its lines are
            # stripped, so the sequence appears nowhere else): restore the paragraph breaks.
            sections.append((content.replace("  \n", "\n\n"), above | own, offset))
        if not sections:
            continue
        if not first_h1 and any("h1" not in headers for _, headers, _ in sections):
            found = next((h["h1"] for _, h, _ in sections if "h1" in h), None)
            if found is None and not block.last:
                found = _first_h1(source, splitter)
            first_h1.append(found)
        for content, headers, offset in sections:
            yield Section(content, _metadata(source.encoding, headers, first_h1), offset)
        content, carried, offset = sections[-1]
        tail = (offset, len(content))


def _metadata(encoding: str, headers: dict[str, str], first_h1: list[str | None]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"encoding": encoding}
    title = headers.get("h1", first_h1[0] if first_h1 else None)
    if title is not None:
        metadata["title"] = title
    path = [headers[f"h{level}"] for level in _LEVELS if f"h{level}" in headers]
    if path:
        metadata["headers"] = " > ".join(path)
    return metadata


def _first_h1(source: TextInput, splitter: MarkdownHeaderTextSplitter) -> str | None:
    """The file's first h1 header, read ahead from the start (only for text before it)."""
    pieces = source.read()
    try:
        for block in _blocks(pieces, source.block_size):
            for part in splitter.split_text(block.text):
                if "h1" in part.metadata:
                    return str(part.metadata["h1"])
    finally:
        pieces.close()  # the file is closed now, not when the reader is collected
    return None


# -- blocks -------------------------------------------------------------------------------


def _blocks(pieces: Iterable[str], size: int | None) -> Iterator[_Block]:
    """The text in blocks of about ``size`` characters (all of it when None), tabs expanded
    (the splitter drops non-printable characters)."""
    buffer, fence, joiner, cut = "", "", 0, False
    for piece in pieces:
        buffer += piece.replace("\t", "    ")
        while size is not None and len(buffer) > size:
            end, start, after, next_joiner = _cut(buffer, size, fence)
            yield _Block(_reopen(fence) + buffer[:end], fence, joiner, last=False)
            buffer, fence, joiner, cut = buffer[start:], after, next_joiner, True
    if buffer or not cut:
        yield _Block(_reopen(fence) + buffer, fence, joiner, last=True)


def _reopen(fence: str) -> str:
    return fence + "\n" if fence else ""


def _cut(buffer: str, size: int, fence: str) -> tuple[int, int, str, int]:
    """Where to end the next block: ``(end, start of the rest, fence open there, joiner)``.

    The rest starts at a line within ``size``, chosen in this order: after a blank line outside
    a code fence that does not follow a header (a paragraph break), at any line outside a
    fence, at any line. The block ends before the newline that ends its last line. The
    joiner is what the whole text's section holds between the two parts: a paragraph break
    (2: a blank line outside a fence next to the cut) or a newline (1). A single line longer
    than the block is cut within it (`_cut_line`).
    """
    starts, states = _fence_states(buffer, size, fence)
    fallback: tuple[int, str] | None = None
    end = buffer.rfind("\n", 0, size)
    while end > 0:
        at = end + 1  # a line starts here
        state = states[bisect.bisect_right(starts, at) - 1]
        previous = buffer.rfind("\n", 0, end) + 1  # the line before the cut
        blank = not state and _is_blank(buffer[previous:end])
        if blank and previous > 0:
            line = buffer[buffer.rfind("\n", 0, previous - 1) + 1 : previous - 1]
            if not _is_blank(line) and not _is_header(line):
                return end, at, state, 2
        if fallback is None or (fallback[1] and not state):
            fallback = (at, state)
        if at <= size // 2:
            break
        end = buffer.rfind("\n", 0, end)
    if fallback is not None:
        at, state = fallback
        line_end = buffer.find("\n", at)
        before = buffer[buffer.rfind("\n", 0, at - 1) + 1 : at - 1]
        after = buffer[at : line_end if line_end >= 0 else len(buffer)]
        # a blank line on either side of the cut puts a paragraph break between the parts
        blank = not state and (_is_blank(before) or _is_blank(after))
        return at - 1, at, state, 2 if blank else 1
    return _cut_line(buffer, size, states[-1])


def _cut_line(buffer: str, size: int, fence: str) -> tuple[int, int, str, int]:
    """A line longer than the block, cut as `_cut` says: at a space if it has one (the
    splitter strips the spaces around the cut from both parts: the joiner counts them)."""
    at = buffer.rfind(" ", size // 2, size)
    if at < 0:
        return size, size, fence, 0
    start, end = at, at + 1
    while start > 0 and buffer[start - 1] == " ":
        start -= 1
    while end < len(buffer) and buffer[end] == " ":
        end += 1
    return at, at, fence, 0 if fence else end - start


def _fence_states(buffer: str, size: int, fence: str) -> tuple[list[int], list[str]]:
    """Where code fences open and close in ``buffer[:size]``, with the splitter's rules:
    ``starts[i]`` is a line start, ``states[i]`` the open fence ("" for none) from there."""
    starts, states = [0], [fence]
    for match in _FENCE_LINE.finditer(buffer, 0, size):
        line = _stripped(match.group())
        if not fence:
            if line.startswith("```") and line.count("```") == 1:
                fence = "```"
            elif line.startswith("~~~"):
                fence = "~~~"
            else:
                continue
        elif line.startswith(fence):
            fence = ""
        else:
            continue
        starts.append(match.end() + 1)
        states.append(fence)
    return starts, states


def _stripped(line: str) -> str:
    """The line as the splitter sees it."""
    return "".join(filter(str.isprintable, line.strip()))


def _is_blank(line: str) -> bool:
    return not _stripped(line)


def _is_header(line: str) -> bool:
    text = _stripped(line)
    return any(
        text.startswith(sep) and (len(text) == len(sep) or text[len(sep)] == " ")
        for sep, _ in _NAMES
    )
