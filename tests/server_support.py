"""Test support for the HTTP service: a real `vectordb serve` process on a free local port.

`running_server` starts ``python -m vectordb_manager ROOT_ARGS serve --port 0 ...`` as a
subprocess, learns the port the system chose from the line it prints once its socket is
bound, waits until ``GET /health`` answers (polling; a process that exits first fails the
test with its log), and stops it at the end (SIGTERM, then SIGKILL if it does not stop). Its
stderr goes to ``NAME.log`` and its stdout (with uvicorn's access log) to ``NAME.out``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"vectordb serve: listening on (http://\S+)")
START_TIMEOUT = 120.0  # seconds; the CLI imports LangChain, FAISS and FastAPI first


@dataclass
class ServerProcess:
    """A running server: its URL, its process and where its log goes."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        """What the server wrote: stderr (its log), then stdout (uvicorn's access log)."""
        texts = [p.read_text(errors="replace") for p in (self.log, self.out) if p.exists()]
        return "".join(texts)

    @property
    def out(self) -> Path:
        return self.log.with_suffix(".out")

    def kill(self) -> None:
        """Kill it at once (SIGKILL): requests in flight get no answer."""
        self.process.kill()
        self.process.wait(timeout=30)


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a server process: this one's, importing this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.update(extra or {})
    return env


@contextlib.contextmanager
def running_server(
    workdir: Path,
    root_args: Sequence[str],
    serve_args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    name: str = "server",
    access_log: bool = False,
) -> Iterator[ServerProcess]:
    """A server started with ``vectordb ROOT_ARGS serve SERVE_ARGS`` (see the module
    docstring); its stderr (the access and error log) goes to ``workdir/NAME.log``."""
    log = workdir / f"{name}.log"
    command = [
        sys.executable, "-m", "vectordb_manager", *root_args,
        "serve", "--host", "127.0.0.1", "--port", "0", *serve_args,
    ]  # fmt: skip
    if not access_log:
        command.append("--no-access-log")
    with log.open("wb") as err:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, env=server_env(env), cwd=workdir
        )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(
        target=_drain, args=(process, lines, log.with_suffix(".out")), daemon=True
    )
    reader.start()
    server = ServerProcess("", process, log)
    try:
        server.url = _wait_for_url(lines, server)
        _wait_for_health(server)
        yield server
    finally:
        stop(server)


@contextlib.contextmanager
def fake_model_server(
    workdir: Path, *serve_args: str, root: Path | None = None
) -> Iterator[ServerProcess]:
    """A server over ``root`` (default ``workdir/root``) with the model-free ``fake``
    embeddings (64 dimensions), refreshing before every request, staging uploads in
    ``workdir/uploads``."""
    with running_server(
        workdir,
        ["--path", str(root or workdir / "root"), "--provider", "fake"],
        ["--refresh-interval", "0", "--upload-dir", str(workdir / "uploads"), *serve_args],
        env={"VECTORDB_EMBEDDING_DIMENSIONS": "64"},
    ) as running:
        yield running


def error_message(r: httpx.Response, status: int, code: str) -> str:
    """The response's message, after checking it is the JSON error ``code`` with ``status``
    (and that the one table of codes gives the code that status)."""
    from vectordb_manager.server.errors import ERROR_CODES

    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    assert ERROR_CODES[code] == status
    assert isinstance(body["message"], str) and len(body["message"]) > 20
    return str(body["message"])


def stop(server: ServerProcess) -> None:
    """Stop the server: SIGTERM (requests in flight finish), SIGKILL after 30 s."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()


def _drain(process: subprocess.Popen[bytes], lines: queue.Queue[str | None], out: Path) -> None:
    """Copy the server's stdout to ``out``, handing each line to the starter too."""
    assert process.stdout is not None
    with out.open("w") as copy:
        for raw in process.stdout:
            line = raw.decode(errors="replace")
            copy.write(line)
            copy.flush()
            lines.put(line)
    lines.put(None)  # the process closed its stdout: it exited


def _wait_for_url(lines: queue.Queue[str | None], server: ServerProcess) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError(f"the server did not start:\n{server.log_text()}") from None
        if line is None:
            server.process.wait(timeout=30)
            raise RuntimeError(
                f"the server exited ({server.process.returncode}):\n{server.log_text()}"
            )
        found = LISTENING.search(line)
        if found:
            return found.group(1)


def _wait_for_health(server: ServerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=server.url, timeout=10) as client:
        while True:
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server never answered /health:\n{server.log_text()}")
            time.sleep(0.05)  # between polls


class KeepAliveRace:
    """A TCP relay in front of a server that replays the keep-alive race exactly: when the
    server closes an idle connection, the relay keeps the client's side open, as if the
    server's FIN were still on its way, and closes it without a word as soon as the client
    sends its next request on it. ``connections`` counts the client connections accepted,
    ``closed`` those the server closed."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections = self.closed = 0
        self._changed = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def wait_for_close(self, count: int, timeout: float = 60.0) -> bool:
        """Wait until the server has closed ``count`` connections."""
        with self._changed:
            return self._changed.wait_for(lambda: self.closed >= count, timeout)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            upstream = socket.create_connection(self._upstream)
            gone = threading.Event()
            threading.Thread(target=self._relay, args=(client, upstream, gone), daemon=True).start()
            threading.Thread(
                target=self._answers, args=(upstream, client, gone), daemon=True
            ).start()

    def _relay(self, client: socket.socket, upstream: socket.socket, gone: threading.Event) -> None:
        """Requests to the server; once it has closed, the client's next request closes the
        client's connection instead."""
        with client:
            while data := client.recv(65536):
                if gone.is_set():
                    return
                upstream.sendall(data)

    def _answers(
        self, upstream: socket.socket, client: socket.socket, gone: threading.Event
    ) -> None:
        """Answers to the client, until the server closes the connection."""
        with upstream:
            while data := upstream.recv(65536):
                client.sendall(data)
        gone.set()
        with self._changed:
            self.closed += 1
            self._changed.notify_all()

    def close(self) -> None:
        self._listener.close()
