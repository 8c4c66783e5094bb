"""A helper process that builds large batches' keyword postings while the writer goes on.

Building a batch's postings (`Postings.build`: cutting texts into terms, counting them) is
Python work, and while it runs it holds the interpreter lock: a writer streaming durable
batches of 1,000 texts spent about a quarter of its time on it, and the merges on the upkeep
thread waited for the lock meanwhile (a second core sat idle). So a store's write of at least
`MIN_TEXTS` texts hands them to a helper process first (`Engine.postings_ahead`, then
`submit`), embeds them or checks their vectors, prepares its commit, and only when it lays
out the segment waits for the postings' section (a pipe read, which releases the lock),
decoded by `Postings.decode`, which believes nothing. When the helper is not there yet (it
starts in the background on the first large write, and is not waited for), has gone, or
answers with an error, the writer builds the postings itself, as before: they are the same
either way (the helper runs the same code on the same texts, with the store's analyzer sent
along as JSON). A commit that keeps only some of the rows sent (the others unchanged), or
holds several writes (a group commit), gathers its rows' postings from the helper's replies
(`FromHelper`, `Postings.gather`); if one of those writes has none, the writer builds them.

The helper is ``sys.executable`` running this module with the parent's ``sys.path``, so it
imports the same code; it is not started in frozen applications or where ``sys.executable``
is not a Python interpreter. One helper serves every store of a process. It exits when its
input closes: at the parent's exit (waited for), when the parent dies, or after `IDLE_SECONDS`
without a request (the next large batch starts a new one). After a ``fork``, the child
process forgets its parent's helper and starts its own.

The pipe carries frames, not pickles. A request is a header (`_REQUEST`: the analyzer's JSON
size, the number of texts, the texts' size), the analyzer's JSON, each text's length in code
points (int64), then the texts, concatenated, UTF-8 with lone surrogates kept
(``surrogatepass``). A reply is a header (`_REPLY`: its kind and size) then the postings
section, or an error message. The helper's first reply says it is ready.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import IO

import numpy as np

try:
    import fcntl
except ImportError:  # (Windows)
    fcntl = None  # type: ignore[assignment]

from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.postings import Postings

logger = logging.getLogger(__name__)

PIPE_BYTES = 1 << 20  # a pipe's room, where it can be set (Linux's default limit for it)
MIN_TEXTS = 256  # smaller batches are built in the writer (the round trip would not pay)
IDLE_SECONDS = 60.0  # the helper exits after this long without a request

_REQUEST = struct.Struct("<QQQ")
_REPLY = struct.Struct("<BQ")
_READY, _OK, _FAILED = 0, 1, 2
_BOOT = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from vectordb_manager.engine.postings_process import main; main(float(sys.argv[2]))"
)


@dataclass(frozen=True)
class Ahead:
    """Postings on their way from the helper: of ``count`` texts, by ``analyzer``."""

    future: Future[bytes]
    analyzer: Analyzer
    count: int

    def result(self, analyzer: Analyzer, rows: int) -> Postings | None:
        """The postings, decoded and checked, when they are those of ``rows`` texts by
        ``analyzer``; ``None`` when the helper could not give them (the writer builds them)."""
        if rows != self.count or analyzer != self.analyzer:
            return None
        try:
            return Postings.decode(self.future.result(), rows, "the postings helper's reply")
        except Exception as exc:  # (gone, failed, or a reply that does not decode)
            logger.debug("postings built in the writer instead: %s", exc)
            return None


@dataclass(frozen=True)
class FromHelper:
    """Where a commit's rows' postings are on their way from: row ``j`` is row
    ``picks[j][1]`` of the texts sent as ``sources[picks[j][0]]`` (``picks`` ``None``: every
    row of the one source, in order). A commit that keeps some rows of a write (others
    unchanged) or holds several writes (a group commit) gathers its rows' postings."""

    sources: Sequence[Ahead | None]
    picks: Sequence[tuple[int, int]] | None = None

    def postings(self, analyzer: Analyzer, rows: int) -> Postings | None:
        """The postings of the ``rows`` rows, or ``None`` where a source could not give
        them."""
        if self.picks is None:
            (ahead,) = self.sources
            return ahead.result(analyzer, rows) if ahead is not None else None
        if len(self.picks) != rows:
            return None
        parts: dict[int, Postings] = {}
        for w in sorted({w for w, _ in self.picks}):
            ahead = self.sources[w]
            got = ahead.result(analyzer, ahead.count) if ahead is not None else None
            if got is None:
                return None
            parts[w] = got
        return Postings.gather(parts, self.picks)

    def kept(self, keep: Sequence[int]) -> FromHelper:
        """These rows' sources, of only the rows at ``keep``, in that order."""
        if self.picks is None:
            return FromHelper(self.sources, [(0, i) for i in keep])
        return FromHelper(self.sources, [self.picks[i] for i in keep])


def postings_of(texts: Sequence[str], analyzer: Analyzer, helped: FromHelper | None) -> Postings:
    """The postings of these texts: the helper's, when it was sent them and gave them, else
    built here."""
    got = helped.postings(analyzer, len(texts)) if helped is not None else None
    return got if got is not None else Postings.build(texts, analyzer)


class HelperGone(RuntimeError):
    """The helper process ended (or failed a request) before it answered."""


class Helper:
    """One helper process, and the futures of its requests: a thread sends the requests
    queued (so a writer never waits on the pipe, which would let other threads take the
    interpreter for a while), another reads the replies and answers the futures in order (so
    a large reply never waits for a writer, nor a request for a reply)."""

    def __init__(self, idle_seconds: float | None = None) -> None:
        idle = IDLE_SECONDS if idle_seconds is None else idle_seconds
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, json.dumps(sys.path), repr(idle)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in: IO[bytes] = self.process.stdin
        self._out: IO[bytes] = self.process.stdout
        for pipe in (self._in, self._out):  # (room for a request or a reply: fewer waits)
            _widen(pipe)
        self.started = threading.Event()  # set once it is ready, or gone
        self.ready = False
        self.gone = False
        self.answered = 0  # requests answered with postings
        self._lock = threading.Lock()  # the queues and the flags
        self._waiting: deque[Future[bytes]] = deque()  # sent or to send, in order
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()  # (None: the end)
        self._threads = [
            threading.Thread(target=self._read, name="vectordb-postings-reader", daemon=True),
            threading.Thread(target=self._send, name="vectordb-postings-sender", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, texts: Sequence[str], analyzer: Analyzer) -> Ahead | None:
        """These texts' postings on their way; ``None`` when the helper is not ready yet,
        or gone."""
        if not self.ready or self.gone:
            return None
        try:
            request = _request(texts, analyzer)
        except (TypeError, ValueError):  # (not strings: the writer's checks say what is wrong)
            return None
        future: Future[bytes] = Future()
        with self._lock:  # (queued in the order of `_waiting`)
            if self.gone:
                return None
            self._waiting.append(future)
            self._outbox.put(request)
        return Ahead(future, analyzer, len(texts))

    def stop(self) -> None:
        """Close its input once every request queued is sent, and wait for it to exit (it
        answers them first)."""
        self._outbox.put(None)
        self.process.wait()
        for thread in self._threads:
            thread.join()

    def forget(self) -> None:
        """In a forked child: close this process's copies of the pipes (the helper is the
        parent's; it must see its input close when the parent closes it)."""
        for stream in (self._in, self._out):
            with contextlib.suppress(OSError, ValueError):
                os.close(stream.fileno())

    def _send(self) -> None:
        while (request := self._outbox.get()) is not None:
            try:
                self._in.write(request)
                self._in.flush()
            except (OSError, ValueError) as exc:  # (it is gone: its requests fail)
                self._end(f"could not be sent a request: {exc}")
        with contextlib.suppress(OSError):
            self._in.close()

    def _read(self) -> None:
        reason = "exited"
        try:
            while True:
                head = _read_exactly(self._out, _REPLY.size)
                if head is None:
                    break
                kind, size = _REPLY.unpack(head)
                body = _read_exactly(self._out, size)
                if body is None:
                    break
                if kind == _READY:
                    with self._lock:
                        self.ready = True
                    self.started.set()
                    continue
                with self._lock:
                    future = self._waiting.popleft() if self._waiting else None
                if future is None:
                    reason = "answered a request it was not sent"
                    break
                if kind == _OK:
                    self.answered += 1
                    _settle(future, body, None)
                else:
                    message = body.decode("utf-8", "replace")
                    _settle(future, None, HelperGone(f"postings helper failed: {message}"))
        except (OSError, ValueError) as exc:
            reason = f"could not be read: {exc}"
        self._end(reason)

    def _end(self, reason: str) -> None:
        """Gone: every request waiting fails (its writer builds the postings itself)."""
        with self._lock:
            if not self.gone:
                logger.debug("postings helper (pid %d) %s", self.process.pid, reason)
            self.gone = True
            waiting, self._waiting = list(self._waiting), deque()
        for future in waiting:
            _settle(future, None, HelperGone(f"postings helper {reason}"))
        self.started.set()
        with contextlib.suppress(OSError, ValueError):
            self._out.close()


# -- the process's one helper ----------------------------------------------------------------
class _Slot:
    """The process's helper, if one runs; ``disabled`` once one ended without answering
    anything (it is not started again)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.helper: Helper | None = None
        self.disabled = False


_slot = _Slot()


def available() -> bool:
    """Whether this process can run a helper (a Python interpreter, not frozen)."""
    if _slot.disabled or getattr(sys, "frozen", False) or not sys.executable:
        return False
    name = os.path.basename(sys.executable).lower()
    return name.startswith(("python", "pypy"))


def submit(texts: Sequence[str], analyzer: Analyzer) -> Ahead | None:
    """These texts' postings on their way from the helper (started now if there is none:
    this batch is then built by the writer); ``None``: the writer builds them."""
    if len(texts) < MIN_TEXTS or not available():
        return None
    with _slot.lock:
        helper = _slot.helper
        if helper is not None and helper.gone:
            _slot.helper = None
            if not helper.answered:  # (it never worked: do not start another)
                _slot.disabled = True
                logger.info(
                    "the keyword postings helper process ended without answering; postings "
                    "are built in the writing thread from now on"
                )
                return None
            helper = None
        if helper is None:
            try:
                _slot.helper = Helper()
            except OSError as exc:
                _slot.disabled = True
                logger.info("could not start the keyword postings helper process: %s", exc)
            return None
    return helper.submit(texts, analyzer)


def shutdown() -> None:
    """Stop the process's helper, if any (at exit; tests)."""
    with _slot.lock:
        helper, _slot.helper = _slot.helper, None
    if helper is not None:
        helper.stop()


def current() -> Helper | None:
    """The process's helper, if one runs (tests, diagnostics)."""
    return _slot.helper


def _after_fork_in_child() -> None:
    helper, _slot.helper = _slot.helper, None
    _slot.lock = threading.Lock()  # (another thread may have held it at the fork)
    if helper is not None:
        helper.forget()


atexit.register(shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _settle(future: Future[bytes], result: bytes | None, error: BaseException | None) -> None:
    try:
        if error is None:
            future.set_result(result or b"")
        else:
            future.set_exception(error)
    except InvalidStateError:  # (already settled)
        pass


def _request(texts: Sequence[str], analyzer: Analyzer) -> bytes:
    """The request for these texts' postings (see the module docstring)."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)).tobytes()
    blob = "".join(texts).encode("utf-8", "surrogatepass")
    spec = json.dumps(analyzer.to_json(), sort_keys=True).encode("utf-8")
    return b"".join((_REQUEST.pack(len(spec), len(texts), len(blob)), spec, lengths, blob))


def _widen(pipe: IO[bytes]) -> None:
    """Give a pipe `PIPE_BYTES` of room where the system allows it (Linux; best effort)."""
    setting = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setting is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), setting, PIPE_BYTES)


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    """``size`` bytes, or ``None`` at the end of the stream."""
    data = stream.read(size) if size else b""
    return data if len(data) == size else None


# -- the helper's side -----------------------------------------------------------------------
def main(idle_seconds: float = IDLE_SECONDS) -> None:
    """Answer requests on stdin until it closes (or nothing comes for ``idle_seconds``)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # (nothing printed may land among the replies)
    analyzers: dict[bytes, Analyzer] = {}
    activity = [time.monotonic(), False]  # last request's end, whether one is in hand

    def watch() -> None:
        while True:
            time.sleep(idle_seconds / 4)
            if not activity[1] and time.monotonic() - float(activity[0]) > idle_seconds:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    _reply(stdout, _READY, b"")
    while (head := _read_exactly(stdin, _REQUEST.size)) is not None:
        activity[1] = True
        spec_size, count, size = _REQUEST.unpack(head)
        spec = _read_exactly(stdin, spec_size)
        lengths = _read_exactly(stdin, 8 * count)
        blob = _read_exactly(stdin, size)
        if spec is None or lengths is None or blob is None:
            return
        try:
            analyzer = analyzers.get(spec)
            if analyzer is None:
                analyzer = analyzers[spec] = Analyzer.from_json(json.loads(spec))
            _reply(stdout, _OK, Postings.build(_cut(blob, lengths), analyzer).encode())
        except Exception as exc:
            _reply(stdout, _FAILED, f"{type(exc).__name__}: {exc}".encode())
        activity[0], activity[1] = time.monotonic(), False


def _cut(blob: bytes, lengths: bytes) -> list[str]:
    """The texts of a request."""
    text = blob.decode("utf-8", "surrogatepass")
    ends = np.cumsum(np.frombuffer(lengths, dtype=np.int64)).tolist()
    if (ends[-1] if ends else 0) != len(text):
        raise ValueError("the texts' lengths do not add up to their size")
    return [text[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def _reply(stream: IO[bytes], kind: int, body: bytes) -> None:
    stream.write(_REPLY.pack(kind, len(body)))
    stream.write(body)
    stream.flush()


__all__ = [
    "MIN_TEXTS",
    "Ahead",
    "FromHelper",
    "Helper",
    "HelperGone",
    "available",
    "postings_of",
    "shutdown",
    "submit",
]
