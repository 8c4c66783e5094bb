"""Debug logging that never shows credentials.

At DEBUG level botocore's own loggers print every request it signs: the headers, with the
session token (``X-Amz-Security-Token``) and the ``Authorization`` header's credential and
signature, the canonical request and the signature it computed, and response bodies, which for
STS or the instance metadata service hold secret access keys and session tokens. urllib3 logs
each request line, which for a presigned URL carries ``X-Amz-Signature`` and friends.

`RedactingFilter` rewrites a record before it is written: it formats the message with its
arguments (botocore passes headers as a dict argument), replaces every secret it recognises
with ``***`` and stores the result as the record's message with no arguments; tracebacks and
stack information are redacted the same way. `configure_debug_logging` puts one handler with
that filter on the loggers of this package and of the AWS SDK. The filter is on the handler,
not on the loggers: a handler's filters see every record that reaches it, including those
propagated from child loggers such as ``botocore.endpoint``; a logger's filters do not.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import IO

__all__ = ["DEBUG_LOGGERS", "RedactingFilter", "configure_debug_logging", "redact"]

DEBUG_LOGGERS = ("vectordb_manager", "botocore", "boto3", "s3transfer", "urllib3")
MASK = "***"

# A secret's value: up to a quote, a separator or the end of a header or parameter.
_VALUE = r"[^\s'\"&,;<>}\]\\]+"
_NAMES = (
    r"x-amz-security-token|x-amz-signature|x-amz-credential|secretaccesskey|secret_access_key"
    r"|aws_secret_access_key|secret_key|sessiontoken|session_token|aws_session_token|token"
    r"|awsaccesskeyid"
)
_PATTERNS = [
    # Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...
    re.compile(r"(\b(?:Credential|Signature)=)" + _VALUE, re.IGNORECASE),
    # SigV2 "Authorization: AWS AKID:signature"
    re.compile(r"(\bAWS [A-Z0-9]{16,128}:)" + _VALUE),
    # name=value (query strings), name: value (headers, canonical requests), 'name': b'value'
    # (header dicts), "name": "value" (JSON), name='value' (keyword arguments)
    re.compile(
        r"((?<![A-Za-z0-9])(?:" + _NAMES + r")['\"]?\s*[:=]\s*b?['\"]?)" + _VALUE,
        re.IGNORECASE,
    ),
    # <SecretAccessKey>...</SecretAccessKey>, <SessionToken>...</SessionToken> (XML bodies)
    re.compile(r"(<(SecretAccessKey|SessionToken|Token)>)[^<]*(?=</\2>)", re.IGNORECASE),
    # botocore.auth logs the signature alone: "Signature:\n<hex>"
    re.compile(r"(\bSignature:\s*)[0-9a-fA-F]{16,}"),
]


def redact(text: str) -> str:
    """``text`` with every credential this module recognises replaced by ``***``."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (formatted with its arguments), traceback and stack
    information without credentials; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: show it and its arguments, redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _DebugHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_debug_logging` installs (so a second call replaces it)."""


def configure_debug_logging(stream: IO[str] | None = None) -> logging.Handler:
    """Send DEBUG logs of this package, botocore, boto3, s3transfer and urllib3 to ``stream``
    (standard error by default) with credentials redacted; returns the handler.

    Calling it again replaces the handler installed before. Remove the returned handler from
    the loggers in `DEBUG_LOGGERS` to undo it.
    """
    handler = _DebugHandler(stream if stream is not None else sys.stderr)
    handler.setLevel(logging.DEBUG)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in DEBUG_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _DebugHandler)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    return handler
