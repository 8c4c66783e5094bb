"""Buffers written once come on small pages (vectordb_manager/engine/pages.py and the storage's
writes): a segment laid out past NumPy's huge-page size is a mapping the kernel marks
``nohugepage`` (read back from ``/proc/self/smaps``), and a local file is written a chunk of
at most `WRITE_CHUNK` bytes at a time, whole and exact."""

from __future__ import annotations

import mmap
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from vectordb_manager.engine import format as format_module
from vectordb_manager.engine.pages import NUMPY_HUGE, scratch
from vectordb_manager.storage import local as local_module
from vectordb_manager.storage.local import WRITE_CHUNK, LocalStorage


def vm_flags(address: int) -> list[str]:
    """The kernel's flags of the mapping holding ``address`` (Linux's smaps ``VmFlags``)."""
    lines = Path("/proc/self/smaps").read_text().splitlines()
    inside = False
    for line in lines:
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            start, end = (int(x, 16) for x in head.split("-"))
            inside = start <= address < end
        elif inside and head == "VmFlags:":
            return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_NOHUGEPAGE"),
    reason="pages are advised on Linux",
)
def test_a_large_buffer_is_a_mapping_on_small_pages_and_a_small_one_an_ordinary_array() -> None:
    big = scratch(NUMPY_HUGE + 12345)
    assert big.dtype == np.uint8 and big.shape == (NUMPY_HUGE + 12345,) and big.flags.writeable
    big[:] = 7  # every page written
    assert int(big[-1]) == 7 and "nh" in vm_flags(big.ctypes.data)
    small = scratch(NUMPY_HUGE - 1)
    small[:] = 1
    assert small.shape == (NUMPY_HUGE - 1,) and "nh" not in vm_flags(small.ctypes.data)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pages are advised on Linux")
def test_a_segment_past_the_size_is_laid_out_on_small_pages() -> None:
    piece = np.arange(NUMPY_HUGE // 4, dtype=np.float32).tobytes()
    view = format_module.pack_sections({"ids": b"[]", "vectors": [piece, b"tail"]})
    flags = vm_flags(np.frombuffer(view, np.uint8).ctypes.data)
    assert "nh" in flags
    table = format_module.unpack_sections(view, "x.seg")
    assert bytes(table["vectors"]) == piece + b"tail" and bytes(table["ids"]) == b"[]"


def test_a_file_is_written_a_chunk_at_a_time_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``write`` of a whole large file gets page-cache folios of up to 2 MiB on Linux 6.x,
    whose fresh blocks can wait on a VM's host; chunks of `WRITE_CHUNK` do not."""
    sizes: list[int] = []
    real = os.write

    def write(fd: int, data: memoryview) -> int:
        sizes.append(len(data))
        return real(fd, data[: len(data) // 2 + 1])  # (a short write, as the kernel may do)

    data = np.random.default_rng(0).integers(0, 256, 3 * WRITE_CHUNK + 17, np.uint8)
    monkeypatch.setattr(local_module.os, "write", write)
    LocalStorage(tmp_path).write("segments/a.seg", memoryview(data))
    monkeypatch.undo()
    assert max(sizes) == WRITE_CHUNK and len(sizes) > 4
    assert (tmp_path / "segments" / "a.seg").read_bytes() == data.tobytes()
