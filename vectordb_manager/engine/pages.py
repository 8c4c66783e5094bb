"""Memory for the engine's large buffers on small pages, asked for where NumPy would ask for
huge ones.

NumPy advises transparent huge pages (``MADV_HUGEPAGE``, Linux) for every array of its own of
`NUMPY_HUGE` bytes or more. A fresh huge page is a free 2 MiB block, and on a VM that hands
freed memory back to its host (a balloon's free page reporting, as on the machines this was
measured on) its first write waits for the host: writing 150 MB into a new NumPy array took
1.0-1.7 s here, against 80 ms on small pages. Buffers written once, such as a segment file
laid out before it is written, gain nothing from huge pages, so they come from here (see
`engine.rows` for the vectors' own storage).
"""

from __future__ import annotations

import contextlib
import mmap
import platform
import sys
from typing import Any

import numpy as np

NUMPY_HUGE = 4 << 20  # bytes: NumPy advises huge pages for arrays of its own this large
SMALL = getattr(mmap, "MADV_NOHUGEPAGE", None)  # (Linux only)
PRIVATE = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
# (mmap.MAP_NORESERVE where this Python's mmap has it; else its value on Linux where that is
# the generic one, as on x86-64 and arm64)
_GENERIC = ("x86_64", "aarch64") if sys.platform.startswith("linux") else ()
NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if platform.machine() in _GENERIC else 0)


def small_mapping(size: int, *, reserve: bool = False) -> mmap.mmap | None:
    """A private anonymous mapping of ``size`` bytes advised for small pages, which are asked
    for, not left to the system: NumPy itself advises huge pages for an array of its own of
    `NUMPY_HUGE` bytes or more. ``reserve``: ``MAP_NORESERVE``. ``None`` where it fails."""
    try:
        area = mmap.mmap(-1, size, flags=PRIVATE | (NORESERVE if reserve else 0))
    except (OSError, ValueError, OverflowError):
        return None
    if SMALL is not None:
        with contextlib.suppress(OSError):
            area.madvise(SMALL, 0, size)
    return area


def scratch(nbytes: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """``nbytes`` writable bytes (their contents undefined), for a buffer written once and
    then read once, such as a segment file laid out before it is written: from `NUMPY_HUGE`
    bytes on, on small pages. NumPy would advise huge pages for it, and a fresh huge page
    is what waits for the host on a VM that hands freed memory back (see the module's
    docstring): laying out 150 MB took 1.0-1.7 s on them here, against 80 ms on small
    pages, and a merge lays out its whole file."""
    if nbytes >= NUMPY_HUGE and SMALL is not None and PRIVATE:
        area = small_mapping(nbytes)
        if area is not None:  # (the array holds the mapping: unmapped with its last view)
            return np.frombuffer(area, dtype=np.uint8)
    return np.empty(nbytes, dtype=np.uint8)
