"""Errors as JSON: every failure the service answers, with a stable ``code``, in one place.

Every error response has the body ``{"code": "...", "message": "..."}`` (plus ``details``
for request validation): ``code`` is stable and meant for programs, ``message`` for people
and says what to do. `ERROR_CODES` lists every code with its HTTP status; `PACKAGE_ERRORS`
maps the package's exception hierarchy (`vectordb_manager.errors`) to them, most specific
first (both from the one table the client reads too, `vectordb_manager.wire_errors`), and
`install` registers the handlers that apply both. Bad input is a 4xx, never a
500: the stores check their arguments before they change anything, so a failed request
leaves everything as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from vectordb_manager.errors import VectorDBError
from vectordb_manager.wire_errors import CAUGHT, STATUS

logger = logging.getLogger(__name__)

ERROR_CODES: Mapping[str, int] = STATUS
"""Every ``code`` an error response may carry, with its HTTP status
(`vectordb_manager.wire_errors.CODES`, which the client reads too)."""

PACKAGE_ERRORS: Sequence[tuple[type[BaseException], str, str]] = CAUGHT
"""The package's exceptions (and LangChain's ``ValueError`` for bad arguments) in the order
they are matched, with their code and what to do when the message does not say
(`vectordb_manager.wire_errors.CODES`)."""

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class ApiError(Exception):
    """An error response: ``code`` (from `ERROR_CODES`, which gives the status) and a
    message saying what to do."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = ERROR_CODES[code]
        self.message = message
        self.headers = headers


def error_response(
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON response of an error."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    status = ERROR_CODES[code]
    if status == 503:
        headers = {"Retry-After": "1", **(headers or {})}
    return JSONResponse(body, status_code=status, headers=headers)


def classify(exc: BaseException) -> tuple[str, str]:
    """The code and message of a package exception (see `PACKAGE_ERRORS`)."""
    for kind, code, hint in PACKAGE_ERRORS:
        if isinstance(exc, kind):
            message = " ".join(str(exc).split()) or type(exc).__name__
            if ERROR_CODES[code] >= 500 or not message.rstrip(".").strip():
                message = f"{message}; {hint}"
            return code, message
    return "internal_error", "unexpected error; report this to the server's operator"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an error response."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.code, exc.message, headers=exc.headers)

    async def on_package_error(request: Request, exc: Exception) -> JSONResponse:
        code, message = classify(exc)
        if ERROR_CODES[code] >= 500:
            logger.warning("%s %s failed: %s", request.method, request.url.path, message)
        return error_response(code, message)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            where = next(e for e in errors if e.get("type") == "json_invalid")
            problem = (where.get("ctx") or {}).get("error", "not valid JSON")
            return error_response(
                "malformed_body",
                f"the request body is not valid JSON ({problem} at character "
                f"{where['loc'][-1]}); send a JSON object with Content-Type: application/json",
            )
        details = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in errors
        ]
        summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
        return error_response(
            "validation_error",
            f"the request does not match the endpoint's schema: {summary}; see /docs",
            details=details,
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 413:
            return error_response(
                "payload_too_large",
                "the request body is larger than this server accepts; send fewer documents "
                "per request (or a smaller file), or raise the server's max_body_bytes "
                "(max_upload_bytes for uploads)",
                headers={"Connection": "close"},
            )
        code = _HTTP_CODES.get(exc.status_code)
        if code is None:
            code = "malformed_body" if exc.status_code == 400 else "internal_error"
        message = {
            "not_found": f"no endpoint at {request.url.path}; see /docs for the API",
            "method_not_allowed": f"{request.method} is not allowed on {request.url.path}; "
            "see /docs for the API",
        }.get(code, f"{exc.detail}; check the request's body and Content-Type")
        return error_response(code, message, headers=getattr(exc, "headers", None))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed unexpectedly", request.method, request.url.path)
        return error_response(
            "internal_error", "unexpected error; report this to the server's operator"
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(VectorDBError, on_package_error)
    app.add_exception_handler(ValueError, on_package_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


__all__ = ["ERROR_CODES", "PACKAGE_ERRORS", "ApiError", "classify", "error_response", "install"]
