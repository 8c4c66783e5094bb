"""A fault-injecting HTTP proxy for the S3 tests (`tests.s3_support` gives it with the rest).

`FaultProxy` is a threaded HTTP/1.1 reverse proxy (stdlib only) in front of an upstream S3
endpoint that injects S3-like failures: 503 SlowDown, a 500 InternalError *after* a PUT was
applied upstream (the ambiguous failure), connections dropped before forwarding or after a PUT
was applied, and 403 AccessDenied for chosen buckets. It logs every request it receives, and
binds to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import random
import socket
import socketserver
import threading
import uuid
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

LOCALHOST = "127.0.0.1"


class _Any(enum.Enum):
    ANY = "ANY"


ANY = _Any.ANY  # "match anything" for `FaultProxy.count`

FAULT_SLOWDOWN = "slowdown"
FAULT_ERROR_AFTER_PUT = "error_after_put"
FAULT_DROP = "drop"
FAULT_DROP_AFTER_PUT = "drop_after_put"
FAULT_DENY = "deny"
FAULT_UPSTREAM = "upstream_error"  # the upstream could not be reached (the proxy answers 502)

# Connection-level headers that are not forwarded (RFC 9110 section 7.6.1) plus the framing
# headers the proxy sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "host",
        "content-length",
    }
)


class ProxyRecord(NamedTuple):
    """One request the proxy received.

    ``path`` is the raw request target (path and query string); ``status`` is the status the
    client got (None when the connection was dropped); ``body_bytes`` the request body size;
    ``fault`` one of the ``FAULT_*`` names or None; ``upstream_status`` the upstream's status
    when the request was forwarded, else None.
    """

    method: str
    path: str
    status: int | None
    body_bytes: int
    fault: str | None
    upstream_status: int | None = None


class _Upstream(NamedTuple):
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def _error_xml(code: str, message: str, request_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>"
    ).encode()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self._connections: set[socket.socket] = set()
        self.accepted = 0
        self._connections_lock = threading.Lock()
        super().__init__((LOCALHOST, 0), _ProxyHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall
        # offline; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)
            self.accepted += 1

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def close_all_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY every answer would wait
    # ~40 ms for the client's delayed ACK
    disable_nagle_algorithm = True
    timeout = 120.0  # an idle keep-alive connection is closed after this long
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- request ----------------------------------------------------------------------------

    def _read_exact(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise ConnectionError("client closed the connection in the middle of the body")
        return data

    def _read_body(self) -> bytes:
        encoding = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in encoding:
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed the connection in a chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                chunks.append(self._read_exact(size))
                self._read_exact(2)  # CRLF after the chunk
            while True:  # trailer fields: forwarded as ordinary headers
                line = self.rfile.readline(65537)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("iso-8859-1").partition(":")
                self.headers[name.strip()] = value.strip()
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        return self._read_exact(int(length))

    # -- responses --------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        reason: str | None,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        content_length: str | None,
    ) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        if content_length is not None:
            self.send_header("Content-Length", content_length)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()

    def _send_error_xml(self, status: int, code: str, message: str) -> None:
        request_id = uuid.uuid4().hex[:16].upper()
        body = _error_xml(code, message, request_id)
        headers = [
            ("Content-Type", "application/xml"),
            ("x-amz-request-id", request_id),
            ("Server", "FaultProxy"),
            ("Date", self.date_time_string()),
        ]
        # A HEAD answer carries no body (botocore then uses the status code as the error code).
        self._send(status, None, headers, body, content_length=str(len(body)))

    def _send_upstream(self, upstream: _Upstream) -> None:
        headers = [(k, v) for k, v in upstream.headers if k.lower() not in _HOP_BY_HOP]
        no_body = self.command == "HEAD" or upstream.status in (204, 304)
        if no_body:
            # keep the upstream's Content-Length (for HEAD: the size of the object) if any
            content_length = next(
                (v for k, v in upstream.headers if k.lower() == "content-length"), None
            )
        else:
            content_length = str(len(upstream.body))
        self._send(
            upstream.status, upstream.reason, headers, upstream.body, content_length=content_length
        )

    def _drop(self) -> None:
        """Close the client connection without sending any byte of a response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- dispatch ---------------------------------------------------------------------------

    def _handle(self) -> None:
        proxy = self.server.proxy
        try:
            body = self._read_body()
        except (ConnectionError, ValueError, OSError):
            self.close_connection = True
            return
        method = self.command
        target = self.path
        fault = proxy._decide(method, target)
        try:
            if fault == FAULT_DENY:
                proxy._record(ProxyRecord(method, target, 403, len(body), fault))
                self._send_error_xml(403, "AccessDenied", "Access Denied")
            elif fault == FAULT_DROP:
                proxy._record(ProxyRecord(method, target, None, len(body), fault))
                self._drop()
            elif fault == FAULT_SLOWDOWN:
                proxy._record(ProxyRecord(method, target, 503, len(body), fault))
                self._send_error_xml(503, "SlowDown", "Please reduce your request rate.")
            else:
                try:
                    upstream = proxy._forward(method, target, self.headers, body)
                except (OSError, http.client.HTTPException) as exc:
                    proxy._record(ProxyRecord(method, target, 502, len(body), FAULT_UPSTREAM))
                    self._send_error_xml(502, "BadGateway", f"Upstream failed: {exc!r}")
                    return
                if fault == FAULT_DROP_AFTER_PUT:
                    proxy._record(
                        ProxyRecord(method, target, None, len(body), fault, upstream.status)
                    )
                    self._drop()
                elif fault == FAULT_ERROR_AFTER_PUT:
                    proxy._record(
                        ProxyRecord(method, target, 500, len(body), fault, upstream.status)
                    )
                    self._send_error_xml(
                        500, "InternalError", "We encountered an internal error. Please try again."
                    )
                else:
                    status = upstream.status
                    proxy._record(ProxyRecord(method, target, status, len(body), None, status))
                    self._send_upstream(upstream)
        except OSError:  # the client went away while we answered
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class FaultProxy:
    """A threaded HTTP/1.1 reverse proxy on 127.0.0.1 in front of ``upstream`` that injects faults.

    Rates are fractions in [0, 1] and may be changed at any time (they are public attributes):

    * ``drop_rate`` / ``slowdown_rate``: a request is dropped (connection closed, no response)
      or answered 503 SlowDown, without being forwarded. One draw decides both, so the two
      rates are exact fractions of all requests (their sum must be at most 1).
    * ``drop_after_put_rate`` / ``error_after_put_rate``: a forwarded PUT (applied upstream)
      has its connection dropped, or gets 500 InternalError instead of the upstream answer.
      Again one draw, sum at most 1.

    Faults apply only while ``faults_enabled`` is true. Decisions come from
    ``random.Random(seed)`` under a lock; every request while faults are enabled consumes
    exactly two draws, so a sequential run is reproducible. Requests to a bucket in
    ``deny_buckets`` (path-style: the first path segment) always get 403 AccessDenied without
    being forwarded, whether or not faults are enabled.

    ``log`` lists a `ProxyRecord` for every request received, in the order they were decided
    (a record is appended before its response is sent).
    """

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        slowdown_rate: float = 0.0,
        error_after_put_rate: float = 0.0,
        drop_rate: float = 0.0,
        drop_after_put_rate: float = 0.0,
        upstream_timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._upstream_netloc = parts.netloc
        self.upstream_timeout = upstream_timeout
        self.slowdown_rate = slowdown_rate
        self.error_after_put_rate = error_after_put_rate
        self.drop_rate = drop_rate
        self.drop_after_put_rate = drop_after_put_rate
        self._check_rates()
        self.faults_enabled = True
        self.deny_buckets: set[str] = set()
        self.log: list[ProxyRecord] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    def _check_rates(self) -> None:
        rates = {
            "slowdown_rate": self.slowdown_rate,
            "error_after_put_rate": self.error_after_put_rate,
            "drop_rate": self.drop_rate,
            "drop_after_put_rate": self.drop_after_put_rate,
        }
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {rate}")
        if self.drop_rate + self.slowdown_rate > 1.0:
            raise ValueError("drop_rate + slowdown_rate must be at most 1")
        if self.drop_after_put_rate + self.error_after_put_rate > 1.0:
            raise ValueError("drop_after_put_rate + error_after_put_rate must be at most 1")

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's base URL, "http://127.0.0.1:PORT" (after `start`)."""
        if self._server is None:
            raise RuntimeError("FaultProxy is not started")
        return f"http://{LOCALHOST}:{self._server.server_port}"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FaultProxy is not started")
        return self._server.server_port

    @property
    def connections_accepted(self) -> int:
        """How many client connections the proxy has accepted (keep-alive reuses one)."""
        return 0 if self._server is None else self._server.accepted

    def start(self) -> FaultProxy:
        if self._server is not None:
            raise RuntimeError("FaultProxy is already started")
        self._server = _ProxyServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FaultProxy:{self._server.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- accounting -------------------------------------------------------------------------

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()

    def records(self) -> list[ProxyRecord]:
        """A snapshot of ``log``."""
        with self._lock:
            return list(self.log)

    def count(
        self,
        method: str | None = None,
        *,
        fault: str | _Any | None = ANY,
        status: int | _Any | None = ANY,
        path_prefix: str | None = None,
    ) -> int:
        """How many logged requests match.

        ``method`` None matches any method; ``fault`` and ``status`` default to `ANY`, and None
        matches records whose fault (or status) is None.
        """
        n = 0
        for rec in self.records():
            if method is not None and rec.method != method.upper():
                continue
            if fault is not ANY and rec.fault != fault:
                continue
            if status is not ANY and rec.status != status:
                continue
            if path_prefix is not None and not rec.path.startswith(path_prefix):
                continue
            n += 1
        return n

    def faults(self) -> dict[str, int]:
        """How many times each fault was injected."""
        out: dict[str, int] = {}
        for rec in self.records():
            if rec.fault is not None:
                out[rec.fault] = out.get(rec.fault, 0) + 1
        return out

    def _record(self, record: ProxyRecord) -> None:
        with self._lock:
            self.log.append(record)

    # -- decisions and forwarding -------------------------------------------------------------

    def _decide(self, method: str, target: str) -> str | None:
        path = urlsplit(target).path
        bucket = path.lstrip("/").split("/", 1)[0]
        with self._lock:
            if bucket and bucket in self.deny_buckets:
                return FAULT_DENY
            if not self.faults_enabled:
                return None
            before, after = self._rng.random(), self._rng.random()
            if before < self.drop_rate:
                return FAULT_DROP
            if before < self.drop_rate + self.slowdown_rate:
                return FAULT_SLOWDOWN
            if method == "PUT":
                if after < self.drop_after_put_rate:
                    return FAULT_DROP_AFTER_PUT
                if after < self.drop_after_put_rate + self.error_after_put_rate:
                    return FAULT_ERROR_AFTER_PUT
            return None

    def _forward(self, method: str, target: str, headers: Message, body: bytes) -> _Upstream:
        conn = http.client.HTTPConnection(
            self._upstream_host, self._upstream_port, timeout=self.upstream_timeout
        )
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", self._upstream_netloc)
            for name, value in headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    conn.putheader(name, value)
            if body or "Content-Length" in headers or method in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            response = conn.getresponse()
            data = response.read()
            return _Upstream(response.status, response.reason, response.getheaders(), data)
        finally:
            conn.close()
