"""Sources of an ingestion: local paths, and objects under an S3 prefix (``s3://bucket/prefix``).

A prefix is listed like a directory (keys in order, hidden parts such as ``.git/`` left out,
a key ending in ``/`` too); each object found is a file "found in a directory" (an
unsupported type is skipped). A batch downloads its objects to a temporary directory, each
under its own name with the object's last-modified time, and processes the copies with
``source`` set to the object's URL: the chunks, their ids and the report name the object,
and re-ingesting an unchanged object embeds nothing, as with a file. With
``cleanup="full"``, the chunks of objects no longer under the prefix are removed.

The S3 client is the worker's (`storage.s3.build_s3_client`: its credentials, botocore's
retries), with the endpoint, region and profile of the store's configuration.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import InvalidInputError
from vectordb_manager.processing.files import Target, expand
from vectordb_manager.storage.s3 import config_s3_client
from vectordb_manager.workflows.types import SourceFile

S3_SCHEME = "s3://"


def is_s3(path: str) -> bool:
    """Whether ``path`` names objects under an S3 prefix rather than local files."""
    return path.startswith(S3_SCHEME)


def split_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as ``(bucket, prefix)``; `InvalidInputError` without a bucket."""
    bucket, _, prefix = url[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise InvalidInputError(f"{url!r} names no bucket; use s3://BUCKET/PREFIX")
    return bucket, prefix


def s3_client(config: VectorDBConfig) -> Any:
    """The worker's S3 client, with the store configuration's endpoint, region and profile."""
    return config_s3_client(config)


def list_sources(paths: Iterable[str], glob: str, client: Any | None) -> list[SourceFile]:
    """Every file to ingest, in order: local paths as ``ingest`` walks them, then the objects
    under each S3 prefix (``client``: needed when there is one)."""
    items = list(paths)
    local = [p for p in items if not is_s3(p)]
    found = [SourceFile(str(t.path), t.in_directory) for t in expand(local, glob)]
    seen = {f.path for f in found}
    for url in (p for p in items if is_s3(p)):
        for source in _list_prefix(client, url):
            if source.path not in seen:
                seen.add(source.path)
                found.append(source)
    return found


def _list_prefix(client: Any, url: str) -> Iterator[SourceFile]:
    bucket, prefix = split_s3(url)
    folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    for key in sorted(keys):
        if key == prefix:  # the prefix names one object
            yield SourceFile(f"{S3_SCHEME}{bucket}/{key}", in_directory=False)
        elif key.startswith(folder) and not key.endswith("/"):
            parts = PurePosixPath(key[len(folder) :]).parts
            if not any(part.startswith(".") for part in parts):
                yield SourceFile(f"{S3_SCHEME}{bucket}/{key}", in_directory=True)


@contextlib.contextmanager
def local_targets(
    files: list[SourceFile], client: Any | None, fetched: Callable[[], object] = lambda: None
) -> Iterator[list[Target]]:
    """The batch's files as processor targets; objects are downloaded to a temporary
    directory that lives as long as the context (an object gone since the listing gives a
    target that does not exist: the file fails, as a vanished file does); ``fetched`` is
    called after each download."""
    if not any(is_s3(f.path) for f in files):
        yield [Target(Path(f.path), f.in_directory) for f in files]
        return
    with tempfile.TemporaryDirectory(prefix="vectordb-s3-") as tmp:
        targets = []
        for i, f in enumerate(files):
            if not is_s3(f.path):
                targets.append(Target(Path(f.path), f.in_directory))
                continue
            local = Path(tmp) / str(i) / PurePosixPath(f.path).name
            local.parent.mkdir()
            _download(client, f.path, local)
            fetched()
            targets.append(Target(local, f.in_directory, source=f.path))
        yield targets


def _download(client: Any, url: str, local: Path) -> None:
    from botocore.exceptions import ClientError

    bucket, key = split_s3(url)
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return  # gone since the listing: the missing copy fails as a vanished file
        raise
    with local.open("wb") as out:
        for chunk in response["Body"].iter_chunks(1 << 20):
            out.write(chunk)
    modified = response["LastModified"].timestamp()
    os.utime(local, (modified, modified))


def gone_objects(client: Any, roots: Iterable[str]) -> Any:
    """A test of sources: true for an object's URL under one of the S3 ``roots`` that is no
    longer listed there."""
    prefixes = [url.rstrip("/") + "/" for url in roots] + list(roots)
    present = {f.path for url in roots for f in _list_prefix(client, url)}

    def gone(source: str) -> bool:
        return source not in present and any(
            source == p or (p.endswith("/") and source.startswith(p)) for p in prefixes
        )

    return gone
