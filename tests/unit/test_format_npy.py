"""Hostile stores: the .npy header of a segment's vectors. Every header NumPy writes is read,
every malformed one (dtype, order, shape, syntax, prefix, length) is refused with the
package's IntegrityError naming the segment, only after the checksum, and without `ast` or
NumPy's own header readers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.segment_support import DIM, A, read_bytes, sample_parts, sample_segment
from vectordb_manager import IntegrityError, LocalVectorStore
from vectordb_manager.embeddings import HashingEmbeddings
from vectordb_manager.engine.format import pack_sections


def _npy(header: str, *, version: int = 1, rows: int = 3, data: bytes | None = None) -> bytes:
    raw = header.encode("latin-1")
    prefix = b"\x93NUMPY" + bytes([version, 0])
    prefix += len(raw).to_bytes(2 if version == 1 else 4, "little")
    return prefix + raw + (data if data is not None else np.ones((rows, DIM), "<f4").tobytes())


def _with_vectors(vectors: bytes) -> bytes:
    parts = sample_parts(sample_segment())
    parts["vectors"] = vectors
    return pack_sections(parts)


GOOD_NPY = [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 16), }" + " " * 60 + "\n",
    '{"descr": "<f4", "fortran_order": False, "shape": (3, 16)}\n',
    "{'shape': (3, 16,), 'fortran_order': False, 'descr': '<f4'}   \n",
    "{'descr':'<f4','fortran_order':False,'shape':(3,16)}\n",
]


@pytest.mark.parametrize("header", GOOD_NPY)
@pytest.mark.parametrize("version", [1, 2])
def test_npy_headers_as_numpy_writes_them_are_accepted(header: str, version: int) -> None:
    seg = read_bytes(_with_vectors(_npy(header, version=version)))
    assert seg.vectors.shape == (3, DIM) and float(seg.vectors.sum()) == 3 * DIM


def _header(descr: str = "'<f4'", fortran: str = "False", shape: str = "(3, 16)") -> str:
    return f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}\n"


_CUT = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 16"
BAD_NPY = [
    *(_header("'<f8'", shape="(3, 8)"), _header("'|O'"), _header("'>f4'"), _header("'<f\u00e94'")),
    *(_header(fortran="True"), _header(fortran="0"), _header(descr="True")),
    *(_header(shape=shape) for shape in ("(16, 3)", "(48,)", "(3, 16, 1)", "(03, 16)", "(3)")),
    *(_header(shape=shape) for shape in ("(1000000000000, 16)", "[3, 16]", "(3, 16,,)")),
    *(_header(shape="(3, 16" + "(" * 3000), _header(shape="(3, 16), 'x': 1")),
    *(_CUT + "\n", _CUT + "), '''\n"),  # tokenize.TokenError in NumPy's reader
    *(_header()[:-1], _header().replace("}", "} x"), _header().replace("}", "},")),
    *(
        _header().replace("'shape': (3, 16), ", ""),
        _header().replace("'<f4', ", "'<f4', 'descr': 1, "),
    ),
    "",
]


@pytest.mark.parametrize("header", BAD_NPY)
def test_a_malformed_npy_header_is_integrity_error(header: str) -> None:
    with pytest.raises(IntegrityError, match=f"segments/{A}.seg"):
        read_bytes(_with_vectors(_npy(header)))


@pytest.mark.parametrize(
    "vectors",
    [
        b"\x93NUMPY\x03\x00" + _npy("{}\n")[8:],  # version 3
        b"\x93NUMPZ" + _npy("{}\n")[6:],
        b"\x93NUMPY\x01\x00\xff\xff" + b" " * 100,  # header length past the section
        b"\x93NUMPY\x02\x00" + (2**31).to_bytes(4, "little") + b" " * 100,
        b"\x93NUMPY",
    ],
    ids=["v3", "magic", "header-past-section", "header-too-long", "cut"],
)
def test_a_malformed_npy_prefix_is_integrity_error(vectors: bytes) -> None:
    with pytest.raises(IntegrityError, match=f"segments/{A}.seg"):
        read_bytes(_with_vectors(vectors))


def test_the_npy_header_is_parsed_only_after_the_checksum() -> None:
    data = _with_vectors(_npy("{'descr': '|O', 'fortran_order': False, 'shape': (3, 16)}\n"))
    with pytest.raises(IntegrityError, match="checksum"):
        read_bytes(data, digest="f" * 64)


def test_the_sink_gets_the_manifests_shape_never_the_files() -> None:
    claims = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 16)}\n"
    asked: list[tuple[int, int]] = []

    def sink(rows: int, dim: int) -> np.ndarray:
        asked.append((rows, dim))
        return np.empty((rows, dim), np.float32)

    with pytest.raises(IntegrityError, match="shape"):
        read_bytes(_with_vectors(_npy(claims)), sink=sink)
    assert asked == [(3, DIM)]


def test_an_unknown_dimension_follows_from_the_section_length() -> None:
    seg = read_bytes(pack_sections(sample_parts(sample_segment())), dim=None)
    assert seg.vectors.shape == (3, DIM)
    odd = _npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 16)}\n", data=b"\0" * 190)
    with pytest.raises(IntegrityError, match="size"):
        read_bytes(_with_vectors(odd), dim=None)


def test_reading_never_uses_ast_or_numpys_header_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ast

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("ast / numpy's header reader was called")

    monkeypatch.setattr(ast, "literal_eval", forbidden)
    for name in ("read_array_header_1_0", "read_array_header_2_0", "read_magic"):
        monkeypatch.setattr(np.lib.format, name, forbidden)
    LocalVectorStore(HashingEmbeddings(DIM), tmp_path).add_texts(["alpha", "beta"], ids=["a", "b"])
    reopened = LocalVectorStore(HashingEmbeddings(DIM), tmp_path)
    assert [d.page_content for d in reopened.get_by_ids(["a", "b"])] == ["alpha", "beta"]
    reopened.verify()
