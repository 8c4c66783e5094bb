"""Files for the DocumentProcessor tests (test_processing*.py): written with a fixed
modification time, PDFs made by hand, a DOCX made with python-docx, and what the processor's
ids and metadata should be."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from vectordb_manager.processing import FileResult

MTIME = 1_704_164_645  # 2024-01-02T03:04:05Z
MTIME_ISO = "2024-01-02T03:04:05+00:00"
FILE_KEYS = {"source", "file_type", "file_hash", "modified"}
CHUNK_KEYS = FILE_KEYS | {"chunk_index", "start_index", "content_hash"}


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content if isinstance(content, bytes) else content.encode(encoding)
    path.write_bytes(data)
    os.utime(path, (MTIME, MTIME))
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_id(source: str, index: int, text: str) -> str:
    return sha256(f"{source}\0{index}\0{text}".encode())[:32]


def make_pdf(pages: Sequence[Sequence[str]], title: str | None = None) -> bytes:
    """A valid PDF written by hand: one Helvetica text line per entry, one page per list."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    count = len(pages)
    font = 3 + 2 * count
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
    }
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td", *(f"({esc(x)}) Tj T*" for x in lines)]
        stream = "\n".join([*ops, "ET"]).encode("latin-1")
        objects[3 + 2 * i] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {4 + 2 * i} 0 R >>"
        ).encode()
        objects[4 + 2 * i] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    objects[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    info = ""
    if title is not None:
        objects[font + 1] = f"<< /Title ({esc(title)}) >>".encode("latin-1")
        info = f" /Info {font + 1} 0 R"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += f"trailer\n<< /Size {size} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def one(results: list[FileResult], name: str) -> FileResult:
    (found,) = [r for r in results if r.path.name == name]
    return found


def meta_without_file_keys(doc: Document) -> dict[str, Any]:
    return {k: v for k, v in doc.metadata.items() if k not in FILE_KEYS}


def make_docx(path: Path, *, core_title: str | None = None) -> Path:
    import docx

    document = docx.Document()
    if core_title is not None:
        document.core_properties.title = core_title
    document.add_heading("Quarterly Review", level=1)
    document.add_paragraph("Revenue grew.")
    document.add_paragraph("")
    document.add_heading("Details", level=2)
    document.add_paragraph("Costs fell.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Item", "Value"), ("Cost", "10")]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.add_paragraph("After the table.")
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path
