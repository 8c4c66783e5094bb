"""API keys: who may read or write which collections.

A request names its key in the ``X-API-Key`` header or as ``Authorization: Bearer KEY``.
Keys come from the configuration (`settings.ApiKey`): each is read-only or read-write, and
optionally limited to some collections. The presented key is compared with every configured
key in constant time (`hmac.compare_digest` over SHA-256 digests, so neither the keys' lengths
nor where they differ show in the timing), and no key is ever logged: logs name a key by its
``name`` label.

Without configured keys the service is open: every request may read and write.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence

from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from vectordb_manager.server.errors import ApiError
from vectordb_manager.server.settings import Access, ApiKey

logger = logging.getLogger(__name__)

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from the server's configuration"
)
BEARER = HTTPBearer(auto_error=False, description="An API key, as Authorization: Bearer KEY")
OPEN = ApiKey(key="(no authentication)", access="write", name="anonymous")
"""The identity of every request when no key is configured."""


class KeyRing:
    """The configured keys, and the check of a request's key against them."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._keys = [(_digest(k.key), k) for k in keys]

    @property
    def open(self) -> bool:
        """Whether no key is configured (no authentication)."""
        return not self._keys

    def identify(self, presented: str) -> ApiKey | None:
        """The key matching ``presented``, compared with every key in constant time."""
        given = _digest(presented)
        found: ApiKey | None = None
        for digest, key in self._keys:  # no early exit: every key costs the same
            if hmac.compare_digest(given, digest) and found is None:
                found = key
        return found

    def authorize(
        self,
        presented: str | None,
        access: Access,
        collection: str | None = None,
    ) -> ApiKey:
        """The key of a request allowed ``access`` to ``collection``.

        Raises:
            ApiError: ``missing_key``, ``invalid_key`` (401), ``read_only_key`` or
                ``collection_not_allowed`` (403).
        """
        if self.open:
            return OPEN
        challenge = {"WWW-Authenticate": "Bearer"}
        if not presented:
            raise ApiError(
                "missing_key",
                "this server needs an API key: send it in the X-API-Key header or as "
                "Authorization: Bearer KEY",
                headers=challenge,
            )
        key = self.identify(presented)
        if key is None:
            raise ApiError(
                "invalid_key",
                "the API key is not one this server knows; check it, or ask the server's "
                "operator for one",
                headers=challenge,
            )
        if access == "write" and key.access != "write":
            raise ApiError(
                "read_only_key",
                "this API key may only read; use a read-write key to change anything",
            )
        if not key.allows(collection, access):
            raise ApiError(
                "collection_not_allowed",
                f"this API key may not use collection {collection!r}; use a key for it",
            )
        return key


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def presented_key(
    header: str | None,
    bearer: HTTPAuthorizationCredentials | None,
) -> str | None:
    """The key a request presents (``X-API-Key`` first, then a bearer token)."""
    if header:
        return header
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return None


__all__ = ["API_KEY_HEADER", "BEARER", "OPEN", "KeyRing", "presented_key"]
