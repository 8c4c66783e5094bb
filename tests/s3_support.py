"""Test support for S3: a local moto server, a fault-injecting HTTP proxy, and a boto3 client.

Everything binds to 127.0.0.1 only; nothing here talks to real AWS.

* `moto_server()` runs moto's real HTTP server (``ThreadedMotoServer``) on a free port.
* `FaultProxy` (from `tests.fault_proxy`) is a threaded HTTP/1.1 reverse proxy in front of an
  upstream S3 endpoint that injects S3-like failures and logs every request it receives.
* `s3_client()` gives a boto3 S3 client with dummy credentials, path-style addressing and
  botocore's ``standard`` retry mode.
* `fast_retries()` scales botocore's ``standard``-mode backoff delays down (SlowDown is a
  throttling error, so botocore waits ``rand(0, 1) * 2**i`` seconds between attempts).
* `recorded_backoffs()` lists the delays botocore chose, so that a test can say a call failed
  without waiting (or how long it may wait) without measuring time.

Typical use::

    with moto_server() as moto_url, FaultProxy(moto_url, seed=1) as proxy:
        client = s3_client(proxy.url)
        proxy.faults_enabled = False
        client.create_bucket(Bucket="b")
        proxy.faults_enabled = True
        proxy.slowdown_rate = 0.3
        ...
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from tests.fault_proxy import (
    ANY,
    FAULT_DENY,
    FAULT_DROP,
    FAULT_DROP_AFTER_PUT,
    FAULT_ERROR_AFTER_PUT,
    FAULT_SLOWDOWN,
    FAULT_UPSTREAM,
    LOCALHOST,
    FaultProxy,
    ProxyRecord,
)

__all__ = [
    "ANY",
    "FAULT_DENY",
    "FAULT_DROP",
    "FAULT_DROP_AFTER_PUT",
    "FAULT_ERROR_AFTER_PUT",
    "FAULT_SLOWDOWN",
    "FAULT_UPSTREAM",
    "FaultProxy",
    "ProxyRecord",
    "fast_retries",
    "moto_server",
    "recorded_backoffs",
    "reset_moto",
    "s3_client",
]

# ---------------------------------------------------------------------------------------------
# moto server
# ---------------------------------------------------------------------------------------------


def reset_moto(url: str, *, timeout: float = 10.0) -> None:
    """Wipe all state of the moto backends behind ``url`` (``POST /moto-api/reset``).

    moto's backends are process-wide: every moto server (and ``mock_aws``) in this process
    shares them, so this resets those too.
    """
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or LOCALHOST, parts.port, timeout=timeout)
    try:
        conn.request("POST", "/moto-api/reset", body=b"")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"moto reset failed: HTTP {response.status}")
    finally:
        conn.close()


@contextlib.contextmanager
def moto_server(*, reset: bool = True, quiet: bool = True) -> Iterator[str]:
    """Run moto's HTTP server on 127.0.0.1 with a free port; yield its URL "http://127.0.0.1:N".

    With ``reset`` (the default) moto's state is wiped on entry and on exit (see `reset_moto`:
    the state is shared by every moto server in the process, so do not nest two resetting
    servers). With ``quiet`` werkzeug's per-request log lines are turned off.
    """
    from moto.server import ThreadedMotoServer

    if quiet:
        werkzeug_logger = logging.getLogger("werkzeug")
        if werkzeug_logger.level < logging.WARNING:
            werkzeug_logger.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=LOCALHOST, port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        url = f"http://{LOCALHOST}:{port}"
        if reset:
            reset_moto(url)
        yield url
        if reset:
            reset_moto(url)
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# boto3
# ---------------------------------------------------------------------------------------------


def s3_client(
    endpoint_url: str,
    *,
    max_attempts: int = 10,
    region: str = "us-east-1",
    access_key_id: str = "testing",
    secret_access_key: str = "testing",
    session_token: str | None = None,
) -> Any:
    """A boto3 S3 client for ``endpoint_url`` with dummy credentials and path-style addressing.

    Retries: botocore ``standard`` mode with ``total_max_attempts=max_attempts``; timeouts:
    connect 2 s, read 10 s. Safe to call from any thread. The credentials (a session token
    too, if given) are only sent to ``endpoint_url``.

    Each client is a new one (its own connections and event hooks), made by a session kept
    per set of credentials (`_session`): a new session loads botocore's service models again,
    which costs ~0.15 s of CPU per client; a kept one makes a client in ~5 ms.
    """
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=2,
        read_timeout=10,
    )
    with _SESSIONS_LOCK:  # a boto3 session is not thread-safe; the clients it makes are
        session = _session(access_key_id, secret_access_key, session_token, region)
        return session.client("s3", endpoint_url=endpoint_url, config=config)


_SESSIONS_LOCK = threading.Lock()


@functools.cache
def _session(
    access_key_id: str, secret_access_key: str, session_token: str | None, region: str
) -> Any:
    """The boto3 session `s3_client` makes clients with, one per set of credentials."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        region_name=region,
    )


@contextlib.contextmanager
def fast_retries(scale: float = 0.01) -> Iterator[None]:
    """Multiply every botocore ``standard``/``adaptive``-mode retry delay by ``scale``.

    Patches ``botocore.retries.standard.ExponentialBackoff.delay_amount`` process-wide for the
    duration (all clients, including ones created before). Throttling errors such as SlowDown
    otherwise back off ``rand(0, 1) * min(2**i, 20)`` seconds; other errors 0.05 * 2**i.
    """
    from botocore.retries.standard import ExponentialBackoff

    backoff_cls: Any = ExponentialBackoff
    original = backoff_cls.delay_amount

    def delay_amount(self: Any, context: Any) -> float:
        return float(original(self, context)) * scale

    backoff_cls.delay_amount = delay_amount
    try:
        yield
    finally:
        backoff_cls.delay_amount = original


@contextlib.contextmanager
def recorded_backoffs() -> Iterator[list[float]]:
    """Yield a list that receives every delay, in seconds, that botocore's ``standard`` or
    ``adaptive`` retries choose before a retry while inside (process-wide, every client; the
    waits still happen). An empty list means no call was retried after a wait."""
    from botocore.retries.standard import ExponentialBackoff

    backoff_cls: Any = ExponentialBackoff
    original = backoff_cls.delay_amount
    delays: list[float] = []

    def delay_amount(self: Any, context: Any) -> float:
        delay = float(original(self, context))
        delays.append(delay)
        return delay

    backoff_cls.delay_amount = delay_amount
    try:
        yield delays
    finally:
        backoff_cls.delay_amount = original
