"""`ServerSettings`: what `vectordb serve` needs beyond the store's `VectorDBConfig`.

The storage root, the default embedding model and the chunking come from the ordinary
`VectorDBConfig` (``--path`` or the S3 options name the root under which every collection is
a store of its own). The service's own settings come, in rising precedence, from defaults, a
``server`` table in the ``--config`` file, ``VECTORDB_SERVER_*`` environment variables and the
``serve`` command's flags::

    [server]
    host = "0.0.0.0"
    port = 8080
    refresh_interval = 1.0          # seconds between re-reads of a collection from storage
    max_body_bytes = 16777216       # a request body's limit (413 beyond it)
    max_upload_bytes = 268435456    # an upload's limit (multipart, POST .../upload)
    keep_alive = 75                 # seconds an idle client connection is kept open
    [[server.api_keys]]
    key = "a-long-random-secret"
    access = "write"                # or "read"
    collections = ["docs"]          # optional: only these collections

API keys are read from the file or ``VECTORDB_SERVER_API_KEYS`` (a JSON list of such
objects), never from flags (a command line is visible to every user of the machine), and are
never logged or shown in a ``repr``. No key configured means no authentication: anyone who
can reach the port may read and write.

This module needs nothing beyond the standard library and the package, so that a bad
setting is reported before FastAPI is even imported.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import ConfigurationError

Access = Literal["read", "write"]
ACCESS_LEVELS: tuple[str, ...] = ("read", "write")
ENV_PREFIX = "VECTORDB_SERVER_"
COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
"""A collection's name: 1-63 letters, digits, ``.``, ``_`` or ``-``, starting with a letter
or digit (it is a directory or key prefix under the root)."""


@dataclass(frozen=True)
class ApiKey:
    """One API key: its secret (never logged), read-only or read-write, and optionally the
    only collections it may use. ``name`` labels it in logs instead of the secret."""

    key: str = field(repr=False)
    access: Access = "read"
    collections: frozenset[str] | None = None
    name: str = ""

    def allows(self, collection: str | None, access: Access) -> bool:
        """Whether this key may do ``access`` on ``collection`` (``None``: no collection)."""
        if access == "write" and self.access != "write":
            return False
        return collection is None or self.collections is None or collection in self.collections

    @classmethod
    def from_json(cls, value: object, where: str) -> ApiKey:
        """A key from its configuration object; `ConfigurationError` says what is wrong."""
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                f"{where} must be an object like "
                '{"key": "SECRET", "access": "read" or "write", "collections": ["name"]}'
            )
        unknown = sorted(set(value) - {"key", "access", "collections", "name"})
        if unknown:
            raise ConfigurationError(
                f"{where} has unknown field(s) {', '.join(unknown)}; its fields are key, "
                "access, collections and name"
            )
        key, access = value.get("key"), value.get("access", "read")
        if not isinstance(key, str) or len(key) < 8 or key != key.strip():
            raise ConfigurationError(
                f"{where}.key must be a string of at least 8 characters without surrounding "
                "spaces (use a long random secret, e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        if access not in ACCESS_LEVELS:
            raise ConfigurationError(f"{where}.access={access!r} must be 'read' or 'write'")
        collections = value.get("collections")
        if collections is not None and (
            isinstance(collections, str)
            or not isinstance(collections, Sequence)
            or not all(isinstance(c, str) for c in collections)
        ):
            raise ConfigurationError(
                f"{where}.collections must be a list of collection names, or left out for all"
            )
        name = value.get("name", "")
        if not isinstance(name, str):
            raise ConfigurationError(f"{where}.name must be a string (a label for the logs)")
        return cls(
            key=key,
            access=access,
            collections=frozenset(collections) if collections is not None else None,
            name=name,
        )


DEFAULT_MAX_BODY_BYTES = 16 << 20
DEFAULT_MAX_UPLOAD_BYTES = 256 << 20
DEFAULT_KEEP_ALIVE = 75
"""Seconds an idle kept-alive connection stays open: longer than clients keep idle
connections (httpx 5 s, aiohttp 15 s, load balancers often 60 s), so that the client, not the
server, closes them; a server that closes first races the client's next request on that
connection (which then fails without an answer)."""


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """The service's settings (see the module docstring); validated on construction."""

    store: VectorDBConfig = field(default_factory=VectorDBConfig)
    host: str = "127.0.0.1"
    port: int = 8000
    refresh_interval: float = 1.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    upload_dir: str | None = None
    keep_alive: int = DEFAULT_KEEP_ALIVE
    api_keys: tuple[ApiKey, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.store.storage_type == "memory":
            problems.append(
                "storage_type='memory' cannot hold collections; serve a directory (--path) "
                "or an S3 bucket (--storage s3 --bucket ...)"
            )
        if not isinstance(self.host, str) or not self.host:
            problems.append(f"host={self.host!r} must be a host name or address")
        if not _is_int(self.port) or not 0 <= self.port <= 65535:
            problems.append(f"port={self.port!r} must be 0-65535 (0: any free port)")
        interval = self.refresh_interval
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
            problems.append(f"refresh_interval={interval!r} must be a number of seconds, 0 or more")
        if not _is_int(self.keep_alive) or self.keep_alive <= 0:
            problems.append(f"keep_alive={self.keep_alive!r} must be a positive number of seconds")
        for name in ("max_body_bytes", "max_upload_bytes"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                problems.append(f"{name}={value!r} must be a positive number of bytes")
        if self.upload_dir is not None and not isinstance(self.upload_dir, str):
            problems.append(f"upload_dir={self.upload_dir!r} must be a directory path")
        if problems:
            raise ConfigurationError("invalid server settings: " + "; ".join(problems))

    @property
    def staging_dir(self) -> Path:
        """Where uploads are staged for ingestion (``upload_dir``, else a temp folder)."""
        if self.upload_dir is not None:
            return Path(self.upload_dir).expanduser().absolute()
        return Path(tempfile.gettempdir()) / "vectordb-uploads"

    def replace(self, **changes: Any) -> ServerSettings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def from_sources(
        cls,
        store: VectorDBConfig,
        *,
        file_section: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        flags: Mapping[str, Any] | None = None,
    ) -> ServerSettings:
        """Settings from, in rising precedence, the defaults, a config file's ``server``
        table, ``VECTORDB_SERVER_*`` variables and flags (``None`` values are not given).

        Raises:
            ConfigurationError: naming every unknown or bad setting.
        """
        values: dict[str, Any] = {}
        values.update(_from_file(file_section or {}))
        values.update(_from_env(os.environ if environ is None else environ))
        values.update({k: v for k, v in (flags or {}).items() if v is not None})
        return cls(store=store, **values)


_SCALARS = {"host": str, "port": int, "refresh_interval": float, "max_body_bytes": int}
_SCALARS |= {"max_upload_bytes": int, "upload_dir": str, "keep_alive": int}
SETTING_NAMES = (*_SCALARS, "api_keys")


def _from_file(section: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(section, Mapping):
        raise ConfigurationError("the configuration file's server table must be a table")
    unknown = sorted(set(section) - set(SETTING_NAMES))
    if unknown:
        raise ConfigurationError(
            f"unknown server setting(s) {', '.join(map(repr, unknown))}; valid ones are: "
            f"{', '.join(SETTING_NAMES)}"
        )
    values = {k: v for k, v in section.items() if k != "api_keys"}
    if "api_keys" in section:
        values["api_keys"] = parse_keys(section["api_keys"], "server.api_keys")
    return values


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, kind in _SCALARS.items():
        var = ENV_PREFIX + name.upper()
        if var not in environ:
            continue
        raw = environ[var]
        try:
            values[name] = kind(raw) if kind is not str else raw
        except ValueError:
            problems.append(
                f"{var}={raw!r}: expected {'an integer' if kind is int else 'a number'}"
            )
    var = ENV_PREFIX + "API_KEYS"
    if var in environ:
        try:
            parsed = json.loads(environ[var])
        except json.JSONDecodeError as exc:
            problems.append(f"{var} is not valid JSON ({exc.msg}); give a JSON list of keys")
        else:
            values["api_keys"] = parse_keys(parsed, var)
    if problems:
        raise ConfigurationError("invalid environment: " + "; ".join(problems))
    return values


def parse_keys(value: object, where: str) -> tuple[ApiKey, ...]:
    """API keys from a list of key objects (`ApiKey.from_json`); duplicates are refused."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigurationError(
            f'{where} must be a list of key objects like [{{"key": "SECRET", "access": "write"}}]'
        )
    keys = tuple(ApiKey.from_json(item, f"{where}[{i}]") for i, item in enumerate(value))
    if len({k.key for k in keys}) != len(keys):
        raise ConfigurationError(f"{where} lists one key twice; give each key once")
    return keys


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


__all__ = [
    "ACCESS_LEVELS",
    "COLLECTION_NAME",
    "SETTING_NAMES",
    "Access",
    "ApiKey",
    "ServerSettings",
    "parse_keys",
]
