"""Profiling tools of the S3 benchmark (``bench_s3.py --profile``): an all-thread stack
sampler, a recorder of the storage and engine calls with their timings, and `profiled`, which
runs a call under both and cProfile. Their reports go to stderr, next to the progress."""

from __future__ import annotations

import collections
import cProfile
import gc
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks import machine
from benchmarks.common import REPO_ROOT


def out(msg: str = "") -> None:
    """Profiles and timelines: on stderr, next to the progress."""
    print(msg, file=sys.stderr, flush=True)


class StackSampler:
    """Samples every thread's stack every ``interval`` s (cProfile sees one thread only).

    Threads are grouped by role (found from their stacks: moto, proxy, engine/boto pool, main,
    writers). Idle threads (waiting for work) are left out. Per group it reports the share of
    the group's samples whose innermost frame is each function ("own") and the share that have
    a function of vectordb_manager, botocore, s3transfer or moto on the stack ("incl").
    """

    _IDLE = frozenset({"wait", "select", "poll", "_worker", "serve_forever", "get", "acquire"})
    _INCL = re.compile(r"vectordb_manager/|botocore/|s3transfer/|moto/|s3_support")

    def __init__(self, interval: float = 0.004) -> None:
        self.interval = interval
        self.ticks = 0
        self.own: collections.Counter[tuple[str, str]] = collections.Counter()
        self.incl: collections.Counter[tuple[str, str]] = collections.Counter()
        self.samples: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    @staticmethod
    def _label(code: Any) -> str:
        path = code.co_filename
        for marker in ("site-packages/", str(REPO_ROOT) + "/", "lib/python3.11/"):
            if marker in path:
                path = path.split(marker, 1)[1]
                break
        return f"{path}:{code.co_firstlineno}({code.co_name})"

    def _group(self, name: str, labels: list[str]) -> str:
        text = " ".join(labels)
        if "moto/" in text or "werkzeug/" in text:
            return "moto server threads"
        if "s3_support" in text:
            return "proxy threads"
        if name.startswith("ThreadPoolExecutor") or "s3transfer/" in text:
            return "engine/boto pool threads"
        if "process_request" in name:
            return "server connection threads (outside handlers)"
        return re.sub(r"[-_ ]?\d+$", "", name) + " thread"

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            self.ticks += 1
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                labels: list[str] = []
                f: Any = frame
                while f is not None:
                    labels.append(self._label(f.f_code))
                    f = f.f_back
                leaf = frame.f_code.co_name
                busy = [x for x in labels if self._INCL.search(x)]
                idle = leaf in self._IDLE and not any("vectordb_manager" in x for x in busy)
                if idle and (len(busy) < 2 or leaf in ("serve_forever", "_worker", "select")):
                    continue  # waiting for work
                if leaf == "readinto" and len(labels) > 1 and "handle_one_request" in labels[1]:
                    continue  # a server thread waiting for the next request on a connection
                group = self._group(names.get(ident, "?"), labels)
                self.samples[group] += 1
                self.own[(group, labels[0])] += 1
                for label in dict.fromkeys(busy):
                    self.incl[(group, label)] += 1

    def __enter__(self) -> StackSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, top: int = 10) -> str:
        lines = [f"  {self.ticks} ticks; per group: thread-samples (average busy threads)"]
        for group, n in self.samples.most_common():
            if n < 3:
                continue
            lines.append(f"  [{group}] {n} samples ({n / max(self.ticks, 1):.2f} threads)")
            own = [(k[1], c) for k, c in self.own.most_common() if k[0] == group][:top]
            for label, c in own:
                lines.append(f"      own  {c / n:6.1%}  {label}")
            incl = [(k[1], c) for k, c in self.incl.most_common() if k[0] == group][:top]
            for label, c in incl:
                lines.append(f"      incl {c / n:6.1%}  {label}")
        return "\n".join(lines)


class Recorder:
    """Times calls of chosen package functions (patched for the duration; nothing is edited).

    Records (label, thread, start, end, detail) relative to the moment it was entered.
    """

    def __init__(self) -> None:
        import vectordb_manager.engine.format as fmt
        import vectordb_manager.storage.s3 as storage_s3
        import vectordb_manager.vectorstores.s3 as stores_s3
        from vectordb_manager.engine import core, index, state

        self.targets: list[tuple[Any, str, str]] = [
            (stores_s3, "build_s3_client", "build client"),
            (storage_s3.S3Storage, "list", "LIST"),
            (storage_s3.S3Storage, "read", "read"),
            (storage_s3.S3Storage, "write", "write"),
            (storage_s3.S3Storage, "write_if_absent", "write_if_absent"),
            (storage_s3.S3Storage, "delete", "delete"),
            (fmt.FileRef, "check", "sha256 check"),
            (index.VectorIndex, "reserve", "index reserve"),
            (core, "read_segment", "read"),
            (state.StoreState, "apply", "apply"),
            (core.Engine, "_refresh_locked", "refresh (total)"),
            (core.Engine, "_maybe_compact_locked", "compaction (total)"),
        ]
        self.events: list[tuple[str, str, float, float, str]] = []
        self._saved: list[tuple[Any, str, Any]] = []
        self._t0 = 0.0
        self._lock = threading.Lock()

    def _wrap(self, label: str, fn: Any) -> Any:
        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                end = time.perf_counter()
                detail = a[1] if label == "read" and len(a) > 1 else ""
                with self._lock:
                    self.events.append(
                        (
                            label,
                            threading.current_thread().name,
                            t - self._t0,
                            end - self._t0,
                            str(detail),
                        )
                    )

        return timed

    def __enter__(self) -> Recorder:
        for obj, attr, label in self.targets:
            fn = obj.__dict__.get(attr)
            if fn is None:  # renamed or removed in the package: time the others
                continue
            self._saved.append((obj, attr, fn))
            setattr(obj, attr, self._wrap(label, fn))
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        for obj, attr, fn in self._saved:
            setattr(obj, attr, fn)
        self._saved.clear()

    def timeline(self) -> str:
        out = []
        for label, thread, a, b, detail in sorted(self.events, key=lambda e: e[2]):
            short = detail.rsplit("/", 1)[-1][-16:]
            out.append(
                f"  {a * 1e3:7.1f} -> {b * 1e3:7.1f} ms ({(b - a) * 1e3:6.1f} ms)  "
                f"{label:15s} {thread[-22:]:22s} {short}"
            )
        return "\n".join(out)

    def totals(self) -> str:
        acc: dict[str, list[float]] = collections.defaultdict(list)
        for label, _, a, b, _ in self.events:
            acc[label].append(b - a)
        out = []
        for label, values in sorted(acc.items(), key=lambda kv: -sum(kv[1])):
            out.append(
                f"  {label:18s} n={len(values):4d}  total {sum(values) * 1e3:8.1f} ms  "
                f"mean {statistics.mean(values) * 1e3:6.1f} ms  max {max(values) * 1e3:6.1f} ms"
            )
        return "\n".join(out)


def profiled(title: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` under cProfile (this thread) and the all-thread sampler; print both."""
    gc.collect()
    prof = cProfile.Profile()
    with StackSampler() as sampler:
        t0 = time.perf_counter()
        result = prof.runcall(fn)
        wall = time.perf_counter() - t0
    out(f"\n#### profile: {title} ({wall:.3f} s under the profilers)\n")
    out("```")
    out("-- cProfile, calling thread, by cumulative time:")
    out(machine.stats_text(prof, "cumulative", 25))
    out("-- cProfile, calling thread, by own time:")
    out(machine.stats_text(prof, "tottime", 12))
    out("-- all threads, sampled every 4 ms:")
    out(sampler.report())
    out("```")
    return result
