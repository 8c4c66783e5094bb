"""Segments made and read back from bytes, for the tests of the segment format (hostile
headers, sections, records and .npy headers)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from vectordb_manager.engine.format import (
    FileRef,
    SegmentData,
    SegmentRef,
    canonical_json,
    content_hash,
    encode_segment,
    read_segment,
    unpack_sections,
)
from vectordb_manager.engine.manifest import sha256

A = "a" * 32  # the segment's name
DIM = 16


def sample_segment(
    metas: list[dict[str, Any]] | None = None, deletes: tuple[str, ...] = ()
) -> SegmentData:
    """Three records (or one per metadata given), with their vectors and ``deletes``."""
    metas = metas if metas is not None else [{"i": i} for i in range(3)]
    ids, texts = [f"id{i}" for i in range(len(metas))], [f"text {i}" for i in range(len(metas))]
    hashes = [content_hash(t, canonical_json(m)) for t, m in zip(texts, metas, strict=True)]
    times = ["2026-01-01T00:00:00+00:00"] * len(metas)
    vectors = np.arange(len(metas) * DIM, dtype=np.float32).reshape(-1, DIM)
    return SegmentData(ids, texts, metas, hashes, times, times, vectors, list(deletes))


def sample_parts(seg: SegmentData) -> dict[str, bytes]:
    ref, blobs = encode_segment(A, seg)
    return {k: bytes(v) for k, v in unpack_sections(blobs[ref.file.path], "seg").items()}


def read_bytes(
    data: bytes,
    rows: int = 3,
    deletes: int = 0,
    *,
    dim: int | None = DIM,
    lazy: bool = True,
    where: Path | None = None,
    digest: str | None = None,
    sink: Any = None,
) -> SegmentData:
    """`read_segment` over ``data`` (from a real file when ``where`` is given, so records are
    mapped), with a manifest entry that matches it unless ``digest`` says otherwise."""
    ref = SegmentRef(
        A, rows, deletes, FileRef(f"segments/{A}.seg", len(data), digest or sha256(data))
    )
    if where is None:
        return read_segment(ref, io.BytesIO(data), dim, sink, lazy=lazy)
    where.write_bytes(data)
    with where.open("rb") as stream:
        seg = read_segment(ref, stream, dim, sink, lazy=lazy)
        if seg.raw is not None:  # decode while the file is open, as a store would later
            seg.raw.rows()
        return seg
