"""`Transport`: HTTP to a `vectordb serve` server, sync and async (httpx), with retries
(tenacity) and the server's JSON errors turned back into the package's exceptions.

Retries: a request that could not be sent (connection refused or timed out while
connecting) or that the server answered 503 (busy, storage unavailable, not ready) or 429
(a rate limit, such as a reverse proxy in front of the server applies) is tried
again, up to ``retries`` more times, waiting with exponential backoff and jitter. A
*repeatable* request (``repeatable=True``: one that may be applied twice with the same
result; by default those whose method is GET, HEAD or OPTIONS) is also tried again when the
connection was closed or reset before its answer arrived (`REPEATABLE_RETRYABLE`): the
classic case is a kept-alive connection the server closes, idle, just as the client sends
on it, so the server never saw the request. The SDK's queries, gets, adds (every add names
its ids) and deletes by id are repeatable; creating or deleting a collection and uploads are
not: lost mid-request, they may have been applied. A timeout while waiting for the answer is
never retried (the server is slow: asking again would add load). Each retry is logged at
DEBUG level on this module's logger.

Errors: an error response ``{"code", "message"}`` raises the package's exception for the code
(`ERRORS`, from `vectordb_manager.wire_errors`, the table the server's codes come from:
``invalid_input`` is an `InvalidInputError`, ``collection_not_found`` a `StoreNotFoundError`,
...), or a `ServiceError` for codes without one (keys, conflicts); each carries the
``status`` and ``code`` it came from.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from vectordb_manager.errors import ConfigurationError
from vectordb_manager.wire_errors import (
    RAISES,
    AccessDeniedError,
    CollectionExistsError,
    ServiceError,
)

logger = logging.getLogger(__name__)

ERRORS: Mapping[str, type[Exception]] = RAISES
"""The exception each error ``code`` raises (others: `ServiceError`); the one table the
server's codes come from too (`vectordb_manager.wire_errors.CODES`)."""


class _Unavailable(Exception):
    """A 503 or 429 answer, raised to be retried."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, _Unavailable)
"""What is retried: requests that were not sent, and `RETRY_STATUSES` answers."""
RETRY_STATUSES = frozenset({429, 503})
REPEATABLE_RETRYABLE = (*RETRYABLE, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
"""What is retried for a repeatable request: also a connection closed or reset before the
answer (httpx: "Server disconnected without sending a response", a reset while reading or
writing)."""
REPEATABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def error_from(response: httpx.Response) -> Exception:
    """The exception an error response stands for (see the module docstring)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        code, message = body["code"], str(body.get("message", ""))
    else:
        code, message = "", f"HTTP {response.status_code}: {response.text[:200]}"
    kind = ERRORS.get(code, ServiceError)
    if issubclass(kind, ServiceError):
        return kind(message, status=response.status_code, code=code)
    error = kind(message)
    error.status = response.status_code  # type: ignore[attr-defined]
    error.code = code  # type: ignore[attr-defined]
    return error


class Transport:
    """Requests to one server: ``url`` (``http://host:port``), the API key (sent as
    ``X-API-Key``; never logged), a timeout in seconds and the retries (see the module
    docstring). The sync client is made on first use; an async one per event loop."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        max_wait: float = 2.0,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"url={url!r} must be the server's address, like 'http://localhost:8000'"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigurationError(f"retries={retries!r} must be an integer, 0 or more")
        self.url = url.rstrip("/")
        self._headers = {"X-API-Key": api_key} if api_key else {}
        self._timeout = timeout
        self._retries = retries
        self._max_wait = max_wait
        self._client: httpx.Client | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:  # never the key
        return f"Transport({self.url!r})"

    def _policy(self, method: str, repeatable: bool | None) -> dict[str, Any]:
        if repeatable is None:
            repeatable = method.upper() in REPEATABLE_METHODS
        return {
            "stop": stop_after_attempt(self._retries + 1),
            "wait": wait_exponential(multiplier=0.05, max=self._max_wait) + wait_random(0, 0.05),
            "retry": retry_if_exception_type(REPEATABLE_RETRYABLE if repeatable else RETRYABLE),
            "before_sleep": before_sleep_log(logger, logging.DEBUG),
            "reraise": True,
        }

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.url, headers=self._headers, timeout=self._timeout
            )
        return self._client

    def async_client(self) -> httpx.AsyncClient:
        """This event loop's async client (made on first use)."""
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = httpx.AsyncClient(
                base_url=self.url, headers=self._headers, timeout=self._timeout
            )
            self._async[loop] = client
        return client

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Callable[[], Any] | None = None,
        data: Mapping[str, Any] | None = None,
        repeatable: bool | None = None,
    ) -> Any:
        """Send a request (``files``: a function giving httpx's ``files``, called for each
        attempt; ``data``: form fields sent with them; ``repeatable``: see the module
        docstring) and return the decoded JSON answer; an error answer raises."""
        try:
            for attempt in Retrying(**self._policy(method, repeatable)):
                with attempt:
                    response = self.client.request(
                        method, path, **_arguments(json, params, files, data)
                    )
                    if response.status_code in RETRY_STATUSES:
                        raise _Unavailable(response)
        except _Unavailable as exc:
            raise error_from(exc.response) from None
        except httpx.TransportError as exc:
            raise _unreachable(self.url, exc) from exc
        return _decoded(response)

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Callable[[], Any] | None = None,
        data: Mapping[str, Any] | None = None,
        repeatable: bool | None = None,
    ) -> Any:
        """`request`, async."""
        client = self.async_client()
        try:
            async for attempt in AsyncRetrying(**self._policy(method, repeatable)):
                with attempt:
                    response = await client.request(
                        method, path, **_arguments(json, params, files, data)
                    )
                    if response.status_code in RETRY_STATUSES:
                        raise _Unavailable(response)
        except _Unavailable as exc:
            raise error_from(exc.response) from None
        except httpx.TransportError as exc:
            raise _unreachable(self.url, exc) from exc
        return _decoded(response)

    def close(self) -> None:
        """Close the sync client (async ones close with `aclose`, in their loop)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close this event loop's async client."""
        loop = asyncio.get_running_loop()
        client = self._async.pop(loop, None)
        if client is not None:
            await client.aclose()


def _arguments(
    json: Any,
    params: Mapping[str, Any] | None,
    files: Callable[[], Any] | None,
    data: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """httpx's arguments for one attempt (the files read afresh)."""
    return {
        "json": json,
        "params": params,
        "files": files() if files is not None else None,
        "data": data,
    }


def _decoded(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise error_from(response)
    return response.json()


def _unreachable(url: str, exc: httpx.TransportError) -> ServiceError:
    return ServiceError(
        f"cannot reach the vectordb server at {url}: {type(exc).__name__}: {exc}; check that "
        "it runs (vectordb serve) and the address",
        code="unreachable",
    )


__all__ = [
    "ERRORS",
    "AccessDeniedError",
    "CollectionExistsError",
    "ServiceError",
    "Transport",
    "error_from",
]
