"""Peak memory of ingesting one large text file, next to the file's size.

    .venv/bin/python benchmarks/bench_ingest_memory.py [--mb 200] [--suffix .txt] [--keep DIR]

Writes a file of realistic prose (paragraphs of sentences drawn from a fixed vocabulary with a
seeded random generator, so every run ingests the same bytes), then ingests it in a child
process through ``VectorDatabaseManager(VectorDBConfig(local_path=..., embedding_provider=
"fake")).ingest([...])`` and reads the child's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) before and after the ingest. A second ingest
of the unchanged file is measured too (it embeds and writes nothing, but still reads, hashes
and splits the whole file). Standalone: not part of ``suite.py``.

The figure that matters is the growth of the peak during ingest divided by the file's size.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

VOCABULARY = (
    "the a of and to in is was for on with as by at from that this which it be are were has "
    "have had not but or an their its they we our you your he she his her them more most "
    "system data model store index vector search query file document chunk text memory disk "
    "river mountain valley forest ocean city village market harbour bridge tower garden "
    "history science music language travel weather season winter summer autumn spring "
    "quickly slowly carefully rarely often always never together alone early late "
    "build measure compare explain describe remember forget follow carry gather divide "
    "bright quiet heavy narrow ancient modern simple careful curious patient honest "
    "engineer teacher farmer sailor merchant painter doctor student traveller neighbour"
)
WORDS = VOCABULARY.split()

CHILD = """
import json, resource, sys, time
from vectordb_manager import VectorDatabaseManager, VectorDBConfig

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

path, store = sys.argv[1], sys.argv[2]
db = VectorDatabaseManager(VectorDBConfig(local_path=store, embedding_provider="fake"))
before = peak_mb()
start = time.perf_counter()
report = db.ingest([path])
seconds = time.perf_counter() - start
assert report.ok, str(report)
print(json.dumps({"before_mb": before, "peak_mb": peak_mb(), "seconds": seconds,
                  "chunks": report.chunks_added, "embedded": report.texts_embedded,
                  "unchanged": len(report.files_unchanged)}))
"""


def write_prose(path: Path, megabytes: float, seed: int = 42) -> int:
    """Write about ``megabytes`` MB of paragraphs; returns the file's size in bytes."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    size = 0
    with path.open("w", encoding="utf-8") as out:
        while size < target:
            sentences = []
            for _ in range(rng.randint(3, 9)):
                words = rng.choices(WORDS, k=rng.randint(6, 22))
                sentences.append(" ".join(words).capitalize() + ".")
            paragraph = " ".join(sentences) + "\n\n"
            out.write(paragraph)
            size += len(paragraph.encode())
    return size


def run_child(path: Path, store: Path, code: Path = REPO_ROOT) -> dict[str, float]:
    """Ingest ``path`` into ``store`` in a fresh interpreter running the package in ``code``;
    its JSON line of figures."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(store)],
        cwd=code,
        env={"PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=200.0, help="file size in MB (default 200)")
    parser.add_argument("--suffix", default=".txt", help="file extension (.txt, .md)")
    parser.add_argument("--keep", help="work in this directory and keep it")
    parser.add_argument(
        "--code", type=Path, default=REPO_ROOT,
        help="the checkout whose vectordb_manager to measure (default: this one)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        path = work / f"prose{args.suffix}"
        size = write_prose(path, args.mb)
        size_mb = size / 1024 / 1024
        print(f"file: {path.name}, {size_mb:.1f} MiB")
        for label in ("first ingest", "unchanged re-ingest"):
            fig = run_child(path, work / "store", args.code)
            growth = fig["peak_mb"] - fig["before_mb"]
            print(
                f"{label}: peak {fig['peak_mb']:.0f} MiB (before ingest {fig['before_mb']:.0f} "
                f"MiB), growth {growth:.0f} MiB = {growth / size_mb:.2f}x the file, "
                f"peak/file {fig['peak_mb'] / size_mb:.2f}x, {fig['chunks']:.0f} chunks added, "
                f"{fig['embedded']:.0f} embedded, {fig['seconds']:.1f} s"
            )


if __name__ == "__main__":
    main()
