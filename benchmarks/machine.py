"""The machine and the processes a benchmark part runs on: the facts a report gives (CPU,
memory, versions), other processes' CPU while it runs, its own memory, child processes, and
profiles. `benchmarks.common` gives all of it with the rest."""

from __future__ import annotations

import cProfile
import io
import json
import os
import platform
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


# -- machine ---------------------------------------------------------------------------------
def _version(dist: str) -> str:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return "not installed"


def machine_facts() -> dict[str, str]:
    """The machine and the versions that matter, as short strings."""
    import faiss

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        ram = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        ram = "?"
    git = "not a git checkout"
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "vectordb_manager"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        git = f"git {rev}" + (
            " + uncommitted changes in vectordb_manager/" if dirty else " (vectordb_manager/ clean)"
        )
    except (OSError, subprocess.CalledProcessError):
        pass
    versions = {
        name: _version(name)
        for name in (
            "numpy",
            "faiss-cpu",
            "langchain-core",
            "langchain-community",
            "boto3",
            "moto",
            "sentence-transformers",
            "torch",
        )
    }
    return {
        "cores": f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)",
        "cpu": cpu,
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "faiss_threads": str(faiss.omp_get_max_threads()),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "vectordb_manager": f"{_version('vectordb-manager')}, {git}",
    }


def machine_lines(facts: dict[str, str]) -> list[str]:
    return [
        f"- Machine: {facts['cores']}, {facts['cpu']}, {facts['ram']} RAM, {facts['os']}",
        f"- Python {facts['python']}; {facts['versions']}; faiss uses "
        f"{facts['faiss_threads']} OpenMP threads",
        f"- vectordb-manager {facts['vectordb_manager']}",
    ]


class CpuWatch:
    """CPU time other processes used since creation (from /proc/stat; Linux only).

    Our own CPU includes children that have been waited for, so a suite that runs its parts
    as child processes measures everyone else."""

    def __init__(self) -> None:
        self.start = self.sample()

    @staticmethod
    def sample() -> tuple[float, float, float] | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        ticks = [int(f) for f in fields]
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # not idle
        t = os.times()
        return busy, t.user + t.system + t.children_user + t.children_system, time.monotonic()

    def share(self) -> tuple[float, float, float] | None:
        """(CPU seconds other processes used, wall seconds, their share of the machine)."""
        end = self.sample()
        if self.start is None or end is None:
            return None
        others = max(0.0, (end[0] - self.start[0]) - (end[1] - self.start[1]))
        wall = max(end[2] - self.start[2], 1e-9)
        return others, wall, others / (wall * (os.cpu_count() or 1))

    def report(self) -> str:
        got = self.share()
        if got is None:
            return "unknown"
        others, wall, share = got
        warn = "; WARNING: the machine was shared, timings are inflated" if share > 0.1 else ""
        return f"{share:.0%} ({others:.1f} CPU-s in {wall:.0f} s){warn}"


def flush_disk() -> str:
    """Write out the page cache's dirty data (``sync``) and say how much there was. Just after
    ``make bench`` installs its environment, gigabytes wait for writeback, and on ext4 an
    fsync can wait for them too: 100 durable batches took 1.99 s with 2.3 GB dirty against
    1.50 s without (the peer, which never syncs, 1.45 s either way)."""
    dirty = meminfo_kib("Dirty")
    t0 = time.monotonic()
    os.sync()
    if dirty is None:
        return f"synced the disks in {time.monotonic() - t0:.1f} s"
    return f"wrote out {dirty / 1024:,.0f} MB of dirty pages in {time.monotonic() - t0:.1f} s"


def meminfo_kib(field_name: str) -> int | None:
    """A field of /proc/meminfo (Linux), in KiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def fsync_ms(folder: str | None = None, probes: int = 10) -> float:
    """The median time of ``probes`` fsyncs of a small new file in ``folder`` (the temp
    folder, where the parts make their stores), in ms."""
    times: list[float] = []
    with tempfile.TemporaryDirectory(dir=folder, prefix="fsync_probe_") as where:
        for i in range(probes):
            with open(Path(where) / f"p{i}", "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                t0 = time.perf_counter()
                os.fsync(f.fileno())
                times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def wait_disk_settled(max_wait: float) -> str:
    """Wait (up to ``max_wait`` s) until an fsync stops getting quicker: the disk may still be
    writing out what came before (on this VM, after `make bench`'s install, fsyncs took ~2.5
    ms for minutes, against 0.16 ms when quiet, and 100 durable batches ~2.1 against ~1.5 s)."""
    t0 = time.monotonic()
    best = latest = fsync_ms()
    while time.monotonic() - t0 < max_wait:
        time.sleep(1.0)
        latest = fsync_ms()
        if latest >= 0.8 * best:  # (no longer falling by a fifth)
            break
        best = latest
    return f"fsync {latest:.2f} ms after {time.monotonic() - t0:.0f} s"


def wait_quiet(max_wait: float, threshold: float = 0.1) -> str:
    """Write out dirty pages (`flush_disk`), wait for fsyncs to settle (`wait_disk_settled`),
    then wait (up to ``max_wait`` s in all) until other processes use < ``threshold`` of
    the machine."""
    flushed = flush_disk()
    t0 = time.monotonic()
    flushed += "; " + wait_disk_settled(max_wait)
    share = 0.0
    while True:
        watch = CpuWatch()
        time.sleep(2.0)
        got = watch.share()
        share = got[2] if got else 0.0
        if share < threshold or time.monotonic() - t0 >= max_wait:
            break
    return (
        f"{flushed}; waited {time.monotonic() - t0:.0f} s; others used {share:.0%} when it started"
    )


# -- memory ----------------------------------------------------------------------------------
def proc_status_bytes(field_name: str) -> int | None:
    """A ``kB`` field of /proc/self/status (Linux), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def peak_rss_bytes() -> int:
    """This process's peak RSS.

    ``VmHWM`` is per address space, so it starts from zero at ``exec``; ``ru_maxrss`` does
    not (Linux carries the forking parent's high-water mark over), hence only a fallback.
    """
    hwm = proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def rss_bytes() -> int:
    return proc_status_bytes("VmRSS") or 0


# -- children --------------------------------------------------------------------------------
@dataclass
class ChildResult:
    returncode: int
    stdout: str
    stderr_tail: list[str]

    def json(self) -> dict[str, Any]:
        """The JSON object on the last line of stdout."""
        if self.returncode != 0:
            raise RuntimeError("child failed:\n" + "\n".join(self.stderr_tail))
        data: dict[str, Any] = json.loads(self.stdout.strip().splitlines()[-1])
        return data


def run_child(
    script: Path,
    argv: Sequence[str],
    *,
    echo_stderr: bool = False,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    tail: int = 40,
) -> ChildResult:
    """Run ``python script argv`` in a fresh process (clean memory figures).

    stdout is captured; stderr is kept (its last ``tail`` lines) and, with ``echo_stderr``,
    passed on line by line as it comes.
    """
    cmd = [sys.executable, str(script), *argv]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT
    )
    last: deque[str] = deque(maxlen=tail)
    chunks: list[str] = []

    def pump_out() -> None:
        assert proc.stdout is not None
        chunks.append(proc.stdout.read())

    def pump_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            last.append(line.rstrip("\n"))
            if echo_stderr:
                sys.stderr.write(line)
                sys.stderr.flush()

    threads = [threading.Thread(target=pump_out), threading.Thread(target=pump_err)]
    for th in threads:
        th.start()
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        returncode = proc.wait()
        last.append(f"killed after {timeout:.0f} s (timeout)")
    for th in threads:
        th.join()
    return ChildResult(returncode, "".join(chunks), list(last))


# -- profiling -------------------------------------------------------------------------------
def stats_text(prof: cProfile.Profile, key: str, top: int, only: str | None = None) -> str:
    """The top ``top`` functions of a profile by ``key``, optionally only paths under ``only``."""
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    if only is None:
        stats.strip_dirs().sort_stats(key).print_stats(top)
    else:
        stats.sort_stats(key).print_stats(re.escape(only), top)
    body = out.getvalue()
    start = body.find("   ncalls")
    body = body[start:] if start >= 0 else body
    if only is not None:
        body = body.replace(only, "")
    return body.rstrip()
