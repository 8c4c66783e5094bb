"""Reading and splitting a large text file takes memory bounded by a block, not by the file.

A child process generates ~32 MB of prose and takes every chunk from
``DocumentProcessor.iter_files(..., lazy=True)`` as ``VectorDatabaseManager.ingest`` does;
its peak resident set size (``ru_maxrss``) may grow by well under the file's size. Reading the
file whole (its bytes, its text, the splitter's lists and every chunk at once) took about three
times the file. The store's own memory is measured by ``benchmarks/bench_ingest_memory.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, random, resource, sys
from vectordb_manager import DocumentProcessor

path = sys.argv[1]
rng = random.Random(7)
words = ("river market harbour winter measure careful engineer quiet bridge ancient "
         "the a of and to in is was for on with as by at from that this which it").split()
size = 0
with open(path, "w", encoding="utf-8") as out:
    while size < 32_000_000:
        paragraph = " ".join(rng.choices(words, k=rng.randint(40, 160))) + ".\\n\\n"
        out.write(paragraph)
        size += len(paragraph)
del out, paragraph
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
chunks = characters = 0
for result in DocumentProcessor().iter_files([path], lazy=True):
    for chunk in result.iter_chunks():
        chunks += 1
        characters += len(chunk.page_content)
    assert result.ok and result.skipped is None, (result.error, result.skipped)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"size": size, "growth": after - before, "chunks": chunks,
                  "characters": characters}))
"""


def test_streaming_a_large_text_file_keeps_memory_bounded(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "big.txt")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["size"] >= 32_000_000
    assert figures["chunks"] > 30_000 and figures["characters"] >= figures["size"] * 0.95
    assert figures["growth"] < figures["size"], figures  # measured: half; whole-file reading: 3x
