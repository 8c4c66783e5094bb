"""`BodyLimit`: refuse request bodies over the configured size with a JSON 413, before
reading them whole.

A body announced larger than the limit (``Content-Length``) is refused before the
application reads any of it; a body sent without a length (chunked) is counted as it streams
in and refused as soon as it passes the limit, so a request never costs more memory than the
limit. Uploads (``POST /collections/NAME/upload``) have their own, larger limit. Once the 413
is sent, the rest of the body is read and discarded (up to `DRAIN_BYTES`) before the answer
ends and the connection closes: a client that sends its whole body before reading the answer
(most do) then gets the 413 instead of a reset connection.

Starlette's own `RequestBodyLimitMiddleware` (FastAPI's ``max_body_size``) does the same
counting, but answers a body announced too large with a plain-text 413 that replaces any
response, which would break the service's rule that every error is JSON with a ``code``.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATH = re.compile(r"/collections/[^/]+/upload/?")
DRAIN_BYTES = 64 << 20
"""How much of a refused body is read and discarded so that the client sees the 413."""


class _TooLarge(Exception):
    """Raised into the application when the streamed body passes the limit."""


class BodyLimit:
    """ASGI middleware: at most ``max_body_bytes`` per request body, ``max_upload_bytes``
    for uploads."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    def limit_for(self, path: str) -> int:
        return self.max_upload_bytes if UPLOAD_PATH.fullmatch(path) else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = _content_length(scope)
        if length is not None and length > limit:
            await _refuse(send, receive, limit, uploads=limit == self.max_upload_bytes)
            return
        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the application's answer to the aborted read; ours goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _refuse(send, receive, limit, uploads=limit == self.max_upload_bytes)


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of the body, up to `DRAIN_BYTES`."""
    seen = 0
    while seen <= DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, receive: Receive, limit: int, *, uploads: bool) -> None:
    """Answer 413: the status and the body at once, the end of the answer (which closes the
    connection) once the rest of the request body is drained."""
    setting = "max_upload_bytes" if uploads else "max_body_bytes"
    advice = (
        "upload fewer or smaller files per request"
        if uploads
        else ("send fewer documents per request")
    )
    body = json.dumps(
        {
            "code": "payload_too_large",
            "message": f"the request body is larger than this server accepts ({limit} bytes); "
            f"{advice}, or raise the server's {setting}",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await _drain(receive)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


__all__ = ["UPLOAD_PATH", "BodyLimit"]
