"""Sources of an ingestion: local paths, and objects under an S3 prefix (``s3://bucket/prefix``).

The listing is read a page at a time (`list_page`), each page starting after the last source
of the one before, so that no payload of the workflow holds every file. A prefix is listed
like a directory (keys in order, hidden parts such as ``.git/`` left out,
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
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import InvalidInputError
from vectordb_manager.processing.files import Target, absolute, expand, walk_after
from vectordb_manager.storage.s3 import config_s3_client
from vectordb_manager.workflows.types import ListCursor, ListPage, SourceFile

S3_SCHEME = "s3://"
PAGE_BYTES = 1_000_000
"""The JSON bytes of sources a page holds at most, whatever its ``limit``."""


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


def ordered_roots(paths: Iterable[str]) -> list[str]:
    """The roots of a listing, in its order: the local paths as given, then the S3 prefixes
    (`ListCursor.root` indexes this list)."""
    items = list(paths)
    return [p for p in items if not is_s3(p)] + [p for p in items if is_s3(p)]


def list_page(
    paths: Iterable[str],
    glob: str,
    client: Any | None,
    cursor: ListCursor,
    limit: int | None = None,
) -> ListPage:
    """The sources after ``cursor``, in order, at most ``limit`` of them (and at most
    `PAGE_BYTES` of JSON), and where the next page starts.

    The order is ``ingest``'s: each local root walked as `expand` walks it, then the objects
    under each S3 prefix in key order; a source listed by an earlier root is not listed
    again. A page starts from the cursor's place, not from a count, so files created or
    deleted between pages shift nothing: a page lists what exists when it is read, after
    the cursor (S3: ``StartAfter``; a local directory is walked from that place on).
    ``client``: needed when there is an S3 prefix.
    """
    roots = ordered_roots(paths)
    sources: list[SourceFile] = []
    size = 0
    for index in range(cursor.root, len(roots)):
        after = cursor.after if index == cursor.root else None
        for source in _after(roots, index, glob, client, after):
            if (limit is not None and len(sources) >= limit) or size >= PAGE_BYTES:
                last = sources[-1]
                return ListPage(sources, ListCursor(last.root, last.path))
            sources.append(source)
            size += len(json.dumps(source.path)) + 40
    return ListPage(sources, None)


def count_sources(paths: Iterable[str], glob: str, client: Any | None) -> int:
    """How many sources the listing has now (what `list_page` would give in all)."""
    roots = ordered_roots(paths)
    return sum(
        sum(1 for _ in _after(roots, index, glob, client, None)) for index in range(len(roots))
    )


def _after(
    roots: list[str], index: int, glob: str, client: Any, after: str | None
) -> Iterator[SourceFile]:
    """The sources of the ``index``-th root after ``after``, but those an earlier root lists."""
    root = roots[index]
    if is_s3(root):
        earlier = [r for r in roots[:index] if is_s3(r)]
        for source in _list_prefix(client, root, after, index):
            if all(_prefix_lists(r, source.path) is None for r in earlier):
                yield source
        return
    path = absolute(root)
    found: Iterable[Target]
    if path.is_dir():
        found = walk_after(path, glob, Path(after) if after is not None else None)
    else:
        found = [Target(path, False)] if after is None else []
    listed_before = _listed_before(roots[:index], path, glob)
    for target in found:
        if target.path not in listed_before:
            yield SourceFile(str(target.path), target.in_directory, index)


def _listed_before(earlier: list[str], root: Path, glob: str) -> set[Path]:
    """What the earlier local roots that overlap ``root`` list (`expand` lists a file once,
    under the first root that has it; roots rarely overlap, so this is usually empty)."""
    overlapping = [
        absolute(r)
        for r in earlier
        if not is_s3(r)
        and (absolute(r) == root or root in absolute(r).parents or absolute(r) in root.parents)
    ]
    return {t.path for t in expand(overlapping, glob)} if overlapping else set()


def _list_prefix(
    client: Any, url: str, after: str | None = None, root: int = 0
) -> Iterator[SourceFile]:
    """The objects under the prefix ``url`` in key order, after the object ``after`` (its
    URL), read from the bucket a page at a time."""
    bucket, prefix = split_s3(url)
    options = {"Bucket": bucket, "Prefix": prefix}
    if after is not None:
        options["StartAfter"] = split_s3(after)[1]
    for page in client.get_paginator("list_objects_v2").paginate(**options):
        for item in page.get("Contents", []):
            source = f"{S3_SCHEME}{bucket}/{item['Key']}"
            listed = _prefix_lists(url, source)
            if listed is not None:
                yield SourceFile(source, in_directory=listed, root=root)


def _prefix_lists(url: str, source: str) -> bool | None:
    """Whether the prefix ``url`` lists the object ``source``: ``None`` if not, else whether
    it is found "in a directory" (it is not when the prefix names the object itself)."""
    bucket, prefix = split_s3(url)
    if not source.startswith(f"{S3_SCHEME}{bucket}/"):
        return None
    key = source[len(S3_SCHEME) + len(bucket) + 1 :]
    if key == prefix:
        return False
    folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    if not key.startswith(folder) or key.endswith("/"):
        return None
    parts = PurePosixPath(key[len(folder) :]).parts
    return None if any(part.startswith(".") for part in parts) else True


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
    present = {f.path for url in roots for f in _list_prefix(client, url)}  # (in memory)

    def gone(source: str) -> bool:
        return source not in present and any(
            source == p or (p.endswith("/") and source.startswith(p)) for p in prefixes
        )

    return gone
