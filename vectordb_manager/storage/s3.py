"""`S3Storage`: the storage protocol over an S3 bucket and prefix, through boto3.

Retries are botocore's (``standard`` or ``adaptive`` mode with ``total_max_attempts``); this
module adds only what botocore cannot know:

* ``write_if_absent`` is a conditional ``PutObject`` (``If-None-Match: *``). When S3 answers
  412, the object may be *ours*: an earlier attempt may have succeeded with its answer lost
  (a 500 or a dropped connection after the write), and botocore's retry then met our own
  object. So on 412 the object is read back and compared: identical bytes mean the write was
  ours. (Manifests carry their creation time and contents, so another writer's manifest is
  never byte-identical.)
* Objects above ``transfer_config.multipart_threshold`` go through boto3's managed transfer
  (multipart upload, parallel ranged download); smaller ones take one request.
* An optional local cache directory keeps downloaded segments and index snapshots: they are
  immutable, so a cached copy never goes stale (and is checked against the manifest's
  checksum like any download).

Errors become `StorageError` naming the bucket, the key and S3's error code. Credentials are
never logged.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import logging
import os
import uuid
from pathlib import Path
from typing import IO, Any

from vectordb_manager.errors import StorageError
from vectordb_manager.storage.base import ObjectInfo, ObjectNotFound

logger = logging.getLogger(__name__)

_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_CACHED_PREFIXES = ("segments/", "indexes/")


class S3Storage:
    """Objects under ``s3://bucket/prefix``; names are relative to the prefix."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        *,
        sse: str | None = None,
        kms_key_id: str | None = None,
        transfer_config: Any = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        self.client = client
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.transfer_config = transfer_config or TransferConfig(
            multipart_threshold=128 << 20, multipart_chunksize=16 << 20, max_concurrency=8
        )
        self._put_args: dict[str, str] = {}
        if sse:
            self._put_args["ServerSideEncryption"] = sse
        if kms_key_id:
            self._put_args["SSEKMSKeyId"] = kms_key_id
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, name: str) -> str:
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid object name {name!r}")
        return self.prefix + name

    def _error(self, action: str, name: str, exc: Exception) -> StorageError:
        code, message = _code(exc), _message(exc)
        hint = _HINTS.get(code, "")
        where = f"s3://{self.bucket}/{self.prefix}{name}"
        return StorageError(
            f"cannot {action} {where}: {code or type(exc).__name__}: {message}{hint}"
        )

    # -- the protocol ------------------------------------------------------------------------
    def read(self, name: str, size: int | None = None) -> bytes:
        with self.open(name, size) as stream:
            return stream.read()

    def open(self, name: str, size: int | None = None) -> IO[bytes]:
        if self.cache_dir is not None and name.startswith(_CACHED_PREFIXES):
            with contextlib.suppress(OSError):
                return builtins.open(self.cache_dir / name, "rb")
        key = self._key(name)
        try:
            if size is not None and size >= self.transfer_config.multipart_threshold:
                buf = io.BytesIO()  # a parallel, ranged download
                self.client.download_fileobj(self.bucket, key, buf, Config=self.transfer_config)
                buf.seek(0)
            else:
                buf = io.BytesIO(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as exc:
            if _code(exc) in _MISSING_CODES:
                raise ObjectNotFound(name) from None
            raise self._error("read", name, exc) from exc
        with buf.getbuffer() as view:
            logger.debug("GET %s (%d bytes)", key, len(view))
            self._cache(name, view)
        return buf

    def write(self, name: str, data: bytes) -> None:
        key = self._key(name)
        try:
            if len(data) >= self.transfer_config.multipart_threshold:
                self.client.upload_fileobj(
                    io.BytesIO(data),
                    self.bucket,
                    key,
                    ExtraArgs=dict(self._put_args),
                    Config=self.transfer_config,
                )
            else:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **self._put_args)
        except Exception as exc:
            raise self._error("write", name, exc) from exc
        logger.debug("PUT %s (%d bytes)", key, len(data))
        self._cache(name, data)

    def write_if_absent(self, name: str, data: bytes) -> bool:
        key = self._key(name)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*", **self._put_args
            )
        except Exception as exc:
            if _code(exc) not in _CONFLICT_CODES:
                raise self._error("write", name, exc) from exc
            # taken: by another writer, or by an earlier attempt of ours whose answer was lost
            try:
                there = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except Exception as read_exc:
                if _code(read_exc) in _MISSING_CODES:
                    return False  # a conflicting write in flight that did not land
                raise self._error("read", name, read_exc) from read_exc
            if there == data:
                logger.debug("PUT-if-absent %s: already ours (an answer was lost)", key)
                return True
            logger.debug("PUT-if-absent %s: taken by another writer", key)
            return False
        logger.debug("PUT-if-absent %s (%d bytes)", key, len(data))
        return True

    def list(self, prefix: str, start_after: str | None = None) -> builtins.list[ObjectInfo]:
        out: builtins.list[ObjectInfo] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if start_after is not None:
            kwargs["StartAfter"] = self.prefix + start_after
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                for obj in page.get("Contents", ()):
                    name = obj["Key"][len(self.prefix) :]
                    out.append(ObjectInfo(name, int(obj["Size"]), obj["LastModified"].timestamp()))
        except Exception as exc:
            raise self._error("list", prefix, exc) from exc
        logger.debug("LIST %s%s: %d objects", self.prefix, prefix, len(out))
        return sorted(out, key=lambda o: o.name)

    def delete(self, name: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))
        except Exception as exc:
            if _code(exc) not in _MISSING_CODES:
                raise self._error("delete", name, exc) from exc
        if self.cache_dir is not None:
            with contextlib.suppress(OSError):
                (self.cache_dir / name).unlink()

    def evict(self, name: str) -> None:
        """Forget the cached copy of an object (it failed its checksum)."""
        if self.cache_dir is not None:
            with contextlib.suppress(OSError):
                (self.cache_dir / name).unlink()
            logger.warning("dropped a damaged cached copy of %s", name)

    # -- the cache of immutable objects ------------------------------------------------------
    def _cache(self, name: str, data: bytes | memoryview) -> None:
        if self.cache_dir is None or not name.startswith(_CACHED_PREFIXES):
            return
        path = self.cache_dir / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".tmp-{uuid.uuid4().hex}"
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:  # a cache that cannot be written is only slower
            logger.warning("cannot cache %s in %s: %s", name, self.cache_dir, exc)


def normalize_prefix(prefix: str) -> str:
    """``"a/b"`` -> ``"a/b/"``; ``""`` stays empty. Rejects prefixes that escape the bucket."""
    cleaned = prefix.strip("/")
    if not cleaned:
        return ""
    if any(p in ("", ".", "..") for p in cleaned.split("/")):
        raise StorageError(f"invalid S3 prefix {prefix!r}: no empty, '.' or '..' parts")
    return cleaned + "/"


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return ""


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        message = response.get("Error", {}).get("Message")
        if message:
            return str(message)
    return str(exc)


_HINTS = {
    "NoSuchBucket": "; create the bucket or fix the bucket name",
    "AccessDenied": "; check the credentials' permissions on this bucket and prefix",
    "403": "; check the credentials' permissions on this bucket and prefix",
    "InvalidAccessKeyId": "; check the AWS access key id",
    "SignatureDoesNotMatch": "; check the AWS secret access key",
    "ExpiredToken": "; refresh the session credentials",
}
