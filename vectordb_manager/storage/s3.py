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
* Reads are bounded before any byte of a body is read: a sized read checks the GetObject
  response's ``ContentLength`` (or, for a managed download, that of the ``HeadObject`` it is
  given, so s3transfer makes none of its own and its ranged GETs carry that object's ETag), an
  unsized one is refused above `MAX_MANIFEST_BYTES`; a body is never read past its bound.
* An optional local cache directory keeps what is opened with a size: by the storage protocol
  those objects are immutable (segments and index snapshots), so a cached copy never goes
  stale; objects written are cached too. A copy is only ever served to a sized open, which
  checks its length, and the engine checks its checksum like any download. The cache is a
  `LocalStorage`: it follows no link and reads only regular files; a cached copy that fails
  is dropped and downloaded again.

Errors become `StorageError` naming the bucket, the key and S3's error code. Credentials are
never logged.

The S3 rules live here once: `s3_problems` (bucket names, server-side encryption, retry
settings, asked by both `VectorDBConfig` and `S3VectorStore`) and `build_s3_client` (the
boto3 client with the package's retry and timeout settings).
"""

from __future__ import annotations

import builtins
import functools
import io
import logging
import os
import re
import threading
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any, NoReturn

from vectordb_manager.engine.limits import MAX_MANIFEST_BYTES
from vectordb_manager.errors import ConfigurationError, IntegrityError, StorageError
from vectordb_manager.storage.base import ObjectInfo, ObjectNotFound, check_length, split_name
from vectordb_manager.storage.local import LocalStorage

if TYPE_CHECKING:
    from vectordb_manager.config import VectorDBConfig

logger = logging.getLogger(__name__)

_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


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
        self.cache = LocalStorage(cache_dir) if cache_dir is not None else None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, name: str) -> str:
        split_name(name)
        return self.prefix + name

    def _where(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def _error(self, action: str, name: str, exc: Exception) -> StorageError:
        code, message = _code(exc), _message(exc)
        hint = _HINTS.get(code, "")
        return StorageError(
            f"cannot {action} {self._where(name)}: {code or type(exc).__name__}: {message}{hint}"
        )

    def _raise_read(self, name: str, exc: Exception) -> NoReturn:
        if _code(exc) in _MISSING_CODES:
            raise ObjectNotFound(name) from None
        raise self._error("read", name, exc) from exc

    # -- the protocol ------------------------------------------------------------------------
    def read(self, name: str, size: int | None = None) -> bytes:
        with self.open(name, size) as stream:
            return stream.read()

    def open(self, name: str, size: int | None = None) -> IO[bytes]:
        key = self._key(name)
        if size is None:
            return self._get(name, key, None)
        cached = self._cached(name, size)
        if cached is not None:
            return cached
        if size >= self.transfer_config.multipart_threshold:
            buf = self._managed_download(name, key, size)
        else:
            buf = self._get(name, key, size)
        with buf.getbuffer() as view:
            self._remember(name, view)
        return buf

    def _get(self, name: str, key: str, size: int | None) -> io.BytesIO:
        """One GetObject, its length checked (`check_length`) before the body is read."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            self._raise_read(name, exc)
        body = response["Body"]
        try:
            length = response.get("ContentLength")
            if length is not None:
                check_length(self._where(name), int(length), size)
                want = int(length)
            else:  # no length announced: read one byte past the bound to see it is exceeded
                want = (size if size is not None else MAX_MANIFEST_BYTES) + 1
            data = _read_up_to(body, want)
        except IntegrityError:
            raise
        except Exception as exc:
            raise self._error("read", name, exc) from exc
        finally:
            body.close()
        if length is None:
            check_length(self._where(name), len(data), size)
        elif len(data) != length:
            raise StorageError(
                f"cannot read {self._where(name)}: the connection ended after {len(data)} of "
                f"{length} bytes; try again"
            )
        logger.debug("GET %s (%d bytes)", key, len(data))
        return io.BytesIO(data)

    def _managed_download(self, name: str, key: str, size: int) -> io.BytesIO:
        """A parallel, ranged download of exactly ``size`` bytes: our HeadObject checks the
        length first and is handed to s3transfer, so the ranged GETs ask for that object."""
        from boto3.s3.transfer import create_transfer_manager

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            self._raise_read(name, exc)
        check_length(self._where(name), int(head["ContentLength"]), size)
        buf = _BoundedBuffer(size, self._where(name))
        try:
            with create_transfer_manager(self.client, self.transfer_config) as manager:
                known = _KnownObject(size, head.get("ETag"))
                manager.download(self.bucket, key, buf, subscribers=[known]).result()
        except IntegrityError:
            raise
        except Exception as exc:
            self._raise_read(name, exc)
        check_length(self._where(name), buf.seek(0, io.SEEK_END), size)
        logger.debug("GET %s (%d bytes, managed)", key, size)
        buf.seek(0)
        return buf

    def write(
        self, name: str, data: bytes | bytearray | memoryview, *, durable: bool = True
    ) -> None:
        """Create or replace the object (an S3 write is durable when it returns, whatever
        ``durable`` says)."""
        key = self._key(name)
        if isinstance(data, memoryview):  # (botocore takes bytes, bytearray or a file)
            data = data.tobytes()
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
        self._remember(name, data)

    def write_if_absent(
        self, name: str, data: bytes, *, after: Iterable[str] = (), durable: bool = True
    ) -> bool:
        """Create the object only if absent (``after`` and ``durable``: nothing to wait for,
        every write here being durable when it returns)."""
        key = self._key(name)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*", **self._put_args
            )
        except Exception as exc:
            if _code(exc) not in _CONFLICT_CODES:
                raise self._error("write", name, exc) from exc
            # taken: by another writer, or by an earlier attempt of ours whose answer was lost
            try:  # read back no more than our own bytes' length
                there = self._get(name, key, len(data)).getvalue()
            except ObjectNotFound:
                return False  # a conflicting write in flight that did not land
            except IntegrityError:
                there = None  # another length: another writer's
            if there == data:
                logger.debug("PUT-if-absent %s: already ours (an answer was lost)", key)
                return True
            logger.debug("PUT-if-absent %s: taken by another writer", key)
            return False
        logger.debug("PUT-if-absent %s (%d bytes)", key, len(data))
        return True

    def sync(self, names: Iterable[str]) -> None:
        """Nothing to wait for: every write here is durable when it returns."""

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
        self._drop_cached(name)

    def evict(self, name: str) -> bool:
        """Forget the cached copy of an object (it failed its checksum)."""
        if self.cache is None:
            return False
        self._drop_cached(name)
        logger.warning("dropped a damaged cached copy of %s", name)
        return True

    def remove_temporary(self, older_than: float) -> builtins.list[str]:
        """Abort the multipart uploads under the prefix that were started before
        ``older_than`` and never completed (their parts cost storage until then)."""
        aborted: builtins.list[str] = []
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() >= older_than:
                        continue
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted.append(upload["Key"][len(self.prefix) :])
        except Exception as exc:
            raise self._error("clean up unfinished uploads under", "", exc) from exc
        return aborted

    # -- the cache of immutable objects ------------------------------------------------------
    def _cached(self, name: str, size: int) -> IO[bytes] | None:
        """The cached copy of an immutable object; None when there is none or it is unusable
        (a wrong size, a link, not a regular file, unreadable), which is then dropped."""
        if self.cache is None:
            return None
        try:
            return self.cache.open(name, size)
        except ObjectNotFound:
            return None
        except StorageError as exc:
            logger.warning("not using the cached copy of %s: %s", name, exc)
            self._drop_cached(name)
            return None

    def _remember(self, name: str, data: bytes | bytearray | memoryview) -> None:
        if self.cache is None:
            return
        try:
            self.cache.write(name, data)
        except StorageError as exc:  # a cache that cannot be written is only slower
            logger.warning("cannot cache %s: %s", name, exc)

    def _drop_cached(self, name: str) -> None:
        if self.cache is None:
            return
        try:
            self.cache.delete(name)
        except StorageError as exc:
            logger.warning("cannot drop the cached copy of %s: %s", name, exc)


class _BoundedBuffer(io.BytesIO):
    """The managed download's target: refuses any byte past ``limit``, so an object that grows
    after its length was checked can never make the download hold more."""

    def __init__(self, limit: int, where: str) -> None:
        super().__init__()
        self.limit = limit
        self.where = where

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > self.limit:
            raise IntegrityError(
                f"{self.where} sent more than the {self.limit} bytes the manifest says; it was "
                "replaced. Restore it from a backup."
            )
        return super().write(data)


class _KnownObject:
    """An s3transfer subscriber that gives the transfer the size and ETag of the HeadObject
    already made, so the transfer makes none and its ranged GETs carry ``If-Match``."""

    def __init__(self, size: int, etag: str | None) -> None:
        self.size = size
        self.etag = etag

    def on_queued(self, future: Any, **_: Any) -> None:
        future.meta.provide_transfer_size(self.size)
        if self.etag:
            future.meta.provide_object_etag(self.etag)


def _read_up_to(body: Any, want: int) -> bytes:
    """Up to ``want`` bytes of a response body (fewer only if it ends first)."""
    parts: builtins.list[bytes] = []
    while want > 0:
        chunk = body.read(want)
        if not chunk:
            break
        parts.append(chunk)
        want -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


SSE_MODES = ("AES256", "aws:kms")
RETRY_MODES = ("standard", "adaptive")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def s3_problems(
    *,
    bucket: object = "bucket-name",
    sse: object = None,
    kms_key_id: object = None,
    retry_mode: object = "standard",
    max_attempts: object = 1,
    prefix: str = "",
) -> list[str]:
    """What is wrong with S3 settings (nothing: ``[]``), one sentence each, naming the setting
    as ``prefix`` + its name (the configuration's fields are ``s3_bucket``, ``s3_sse``...).

    The one place the S3 rules live: `VectorDBConfig` and `S3VectorStore` both ask here."""
    problems = []
    if isinstance(bucket, str) and not _BUCKET.match(bucket):
        problems.append(
            f"{prefix}bucket={bucket!r} must be 3 to 63 characters long, of lowercase letters, "
            "digits, dots and hyphens, beginning and ending with a letter or digit: not a "
            "valid S3 bucket name"
        )
    elif not isinstance(bucket, str):
        problems.append(f"{prefix}bucket={bucket!r} must be a bucket name (a string)")
    if sse is not None and sse not in SSE_MODES:
        problems.append(f"{prefix}sse={sse!r} must be one of {', '.join(SSE_MODES)}")
    if kms_key_id is not None and sse != "aws:kms":
        problems.append(
            f"{prefix}kms_key_id is set but {prefix}sse is not 'aws:kms'; it needs "
            f"{prefix}sse='aws:kms'"
        )
    if retry_mode not in RETRY_MODES:
        modes = ", ".join(RETRY_MODES)
        problems.append(f"{prefix}retry_mode={retry_mode!r} must be one of {modes}")
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        problems.append(f"{prefix}max_attempts={max_attempts!r} must be positive (a count)")
    return problems


def normalize_prefix(prefix: str) -> str:
    """``"a/b"`` -> ``"a/b/"``; ``""`` stays empty. Rejects prefixes that escape the bucket."""
    cleaned = prefix.strip("/")
    if not cleaned:
        return ""
    if any(p in ("", ".", "..") for p in cleaned.split("/")):
        raise StorageError(f"invalid S3 prefix {prefix!r}: no empty, '.' or '..' parts")
    return cleaned + "/"


def _code(exc: Exception) -> str:
    """The error code S3 answered a failed request with (its HTTP status when the answer had
    no body, as for HEAD), or ``""`` when there was no answer (a connection failure)."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return ""
    code = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(code or status or "")


def _message(exc: Exception) -> str:
    """What S3 said about a failed request, or the exception's own text."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Message"):
        return str(exc.response["Error"]["Message"])
    return str(exc)


_HINTS = {
    "NoSuchBucket": "; create the bucket or fix the bucket name",
    "AccessDenied": "; check the credentials' permissions on this bucket and prefix",
    "403": "; check the credentials' permissions on this bucket and prefix",
    "InvalidAccessKeyId": "; check the AWS access key id",
    "SignatureDoesNotMatch": "; check the AWS secret access key",
    "ExpiredToken": "; refresh the session credentials",
}


@functools.lru_cache(maxsize=32)
def build_s3_client(
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    profile_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    max_attempts: int = 5,
    retry_mode: str = "standard",
    connect_timeout: float = 5.0,
    read_timeout: float = 60.0,
) -> Any:
    """A boto3 S3 client with the package's retry settings (botocore's ``standard`` mode).

    Each client has a session of its own (its credentials, region and settings); the service
    models botocore parses for the first are shared with the next ones (`_botocore_session`):
    a first client costs ~0.1 s of CPU, the next ones ~15 ms (a store opened per collection
    or per request, a notebook's reopened store).

    Credentials come from the arguments or the standard AWS chain (environment, profile,
    instance role). With ``endpoint_url`` (MinIO, LocalStack, moto) path-style addressing is used.
    """
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        raise ConfigurationError(
            "S3 storage needs the extra: pip install 'vectordb-manager[s3]'"
        ) from exc
    problems = s3_problems(retry_mode=retry_mode, max_attempts=max_attempts)
    if problems:
        raise ConfigurationError("; ".join(problems))
    config = Config(
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=16,
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    try:
        with _LOADER_LOCK:  # (a session is not thread-safe, nor is sharing its loader)
            core = _botocore_session()
            session = boto3.session.Session(
                profile_name=profile_name,
                aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                aws_session_token=aws_session_token,
                region_name=region_name,
                botocore_session=core,
            )
            _keep_loader(core)
            return session.client("s3", endpoint_url=endpoint_url, config=config)
    except BotoCoreError as exc:
        raise ConfigurationError(f"cannot configure the S3 client: {exc}") from exc


_LOADER_LOCK = threading.Lock()
_LOADERS: list[Any] = []  # the data loader the sessions share (at most one)


def _botocore_session() -> Any:
    """A new botocore session (its own credentials, profile and settings) that shares the
    data loader of the ones made before it: the loader holds the parsed service models, which
    a new one reads and parses again (~0.1 s of CPU per client; ~0.015 s shared)."""
    import botocore.session

    session = botocore.session.get_session()
    if _LOADERS:
        session.register_component("data_loader", _LOADERS[0])
    else:  # (the first: its loader, kept by `_keep_loader`, parses with orjson)
        session.get_component("data_loader").file_loader = _orjson_file_loader()
    return session


def _orjson_file_loader() -> Any:
    """botocore's model file loader (``Loader(file_loader=...)``), parsing with orjson: S3's
    models and endpoint rules (~3.6 MB of JSON) in ~36 ms, where ``json`` building
    ``OrderedDict``s took ~80 ms of a fresh process's first client (botocore uses them as
    plain mappings)."""
    import gzip

    import orjson
    from botocore.loaders import JSONFileLoader

    class OrjsonFileLoader(JSONFileLoader):  # type: ignore[misc]
        def load_file(self, file_path: str) -> Any:
            for ext, opener in ((".json", open), (".json.gz", gzip.open)):
                if os.path.isfile(file_path + ext):
                    with opener(file_path + ext, "rb") as fp:
                        return orjson.loads(fp.read())
            return None

    return OrjsonFileLoader()


def _keep_loader(core: Any) -> None:
    """Keep the first botocore session's loader for the next ones (each boto3 session made on
    one adds its own data folder to the loader's search path: kept once)."""
    loader = core.get_component("data_loader")
    paths = loader.search_paths
    paths[:] = list(dict.fromkeys(paths))
    if not _LOADERS:
        _LOADERS.append(loader)


def config_s3_client(config: VectorDBConfig) -> Any:
    """`build_s3_client` with a configuration's endpoint, region, profile and retries."""
    return build_s3_client(
        region_name=config.aws_region,
        endpoint_url=config.s3_endpoint_url,
        profile_name=config.aws_profile,
        max_attempts=config.s3_max_attempts,
        retry_mode=config.s3_retry_mode,
    )
