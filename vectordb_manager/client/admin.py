"""`VectorDBClient` and `AsyncVectorDBClient`: the admin side of a `vectordb serve` server
(collections, uploads, verify, compact, health), sync and async, over the same retrying
`Transport` as `RemoteVectorStore`. Both build each request and read each answer with the
same module functions; they differ only in the calls that wait."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx
from langchain_core.embeddings import Embeddings

from vectordb_manager.errors import IntegrityError, InvalidInputError, StoreNotFoundError

from .remote_store import RemoteVectorStore
from .transport import CollectionExistsError, Transport

UPLOAD_BATCH_BYTES = 32 << 20
"""Files are uploaded in requests of about this many bytes (a larger file goes alone)."""


class _Admin:
    """What the sync and async admin clients share: the transport, and the building of each
    request and the reading of its answer (the two differ only in the calls that wait)."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
        retries: int = 3,
    ) -> None:
        self.transport = Transport(url, api_key=api_key, timeout=timeout, retries=retries)
        self._api_key = api_key

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}({self.transport.url!r})"

    def store(self, name: str, *, embedding: Embeddings | None = None) -> RemoteVectorStore:
        """A `RemoteVectorStore` over the collection, with this client's address and key."""
        return RemoteVectorStore(
            self.transport.url, name, embedding=embedding, api_key=self._api_key
        )


class VectorDBClient(_Admin):
    """Collections, uploads and operations on the server at ``url`` (`AsyncVectorDBClient`:
    the same, async). Requests that could not be sent and 503 answers are retried
    (``retries``, tenacity, as `RemoteVectorStore`'s).

    Example:
        .. code-block:: python

            admin = VectorDBClient("http://localhost:8000", api_key="...")
            admin.create_collection("docs", distance="cosine", exist_ok=True)
            print(admin.upload("docs", ["handbook.pdf", "notes/"])["summary"])
            admin.verify("docs")                 # IntegrityError if damaged
            store = admin.store("docs")          # a RemoteVectorStore
    """

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    # -- operations --------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The server's ``/health`` answer (raises if it cannot be reached)."""
        answer: dict[str, Any] = self.transport.request("GET", "/health")
        return answer

    def ready(self) -> bool:
        """Whether the server's default embedding model is loaded (``/ready``)."""
        return _is_ready(self.transport.client.get("/ready"))

    # -- collections -------------------------------------------------------------------------
    def list_collections(self) -> list[dict[str, Any]]:
        """Every collection (this key may use), with its settings."""
        return _collections(self.transport.request("GET", "/collections"))

    def create_collection(
        self,
        name: str,
        *,
        embedding: dict[str, Any] | None = None,
        distance: str | None = None,
        index: str | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        exist_ok: bool = False,
    ) -> dict[str, Any]:
        """Create a collection (settings left out: the server's); returns its description.
        ``embedding``: ``{"provider": ..., "model": ..., "dimensions": ...}`` (provider
        ``"none"``: vectors computed elsewhere, ``dimensions`` required).

        Raises:
            CollectionExistsError: it exists and not ``exist_ok`` (then it is described).
        """
        body = _create_body(
            name,
            embedding=embedding,
            distance=distance,
            index=index,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
        )
        try:
            created: dict[str, Any] = self.transport.request("POST", "/collections", json=body)
        except CollectionExistsError:
            if not exist_ok:
                raise
            return self.describe_collection(name)
        return created

    def describe_collection(self, name: str) -> dict[str, Any]:
        """The collection's settings and ``stats`` (documents, segments, version...)."""
        answer: dict[str, Any] = self.transport.request("GET", _path(name))
        return answer

    def delete_collection(self, name: str, *, missing_ok: bool = False) -> bool:
        """Delete the collection and its documents; ``False`` if it did not exist and
        ``missing_ok`` (else `StoreNotFoundError`)."""
        try:
            self.transport.request("DELETE", _path(name))
        except StoreNotFoundError:
            if not missing_ok:
                raise
            return False
        return True

    # -- uploads and maintenance --------------------------------------------------------------
    def upload(
        self,
        name: str,
        paths: Paths,
        *,
        batch_bytes: int = UPLOAD_BATCH_BYTES,
        base: str | os.PathLike[str] | None = None,
        source_names: bool = False,
    ) -> dict[str, Any]:
        """Upload files for ingestion; returns the server's report (``ok``, ``files_added``,
        ``files_failed``: file -> why, ``summary``...), merged over the requests when the
        files needed several.

        Files are named by their path relative to ``base`` if given, else a directory's
        files by their path from the directory's parent and a file by its name (hidden
        files under a directory are left out). ``source_names``: the chunks' ``source`` is
        that name (so uploading a file again under the same name, from anywhere, replaces
        its chunks; unchanged, nothing is written) rather than the server's staged path."""
        report: dict[str, Any] = {}
        for parts, form in _uploads(paths, batch_bytes, base, source_names):
            answer = self.transport.request("POST", f"{_path(name)}/upload", files=parts, data=form)
            report = _merge(report, answer)
        return report

    def verify(self, name: str) -> dict[str, Any]:
        """Have the server re-read every file of the collection and check every checksum.

        Raises:
            IntegrityError: the collection's store is damaged (the server says what).
        """
        return _verified(self.transport.request("POST", f"{_path(name)}/verify", repeatable=True))

    def compact(self, name: str) -> bool:
        """Merge the collection's segments; ``False`` if there was nothing to gain."""
        return bool(
            self.transport.request("POST", f"{_path(name)}/compact", repeatable=True)["compacted"]
        )


class AsyncVectorDBClient(_Admin):
    """`VectorDBClient`, async (httpx's ``AsyncClient``, tenacity's async retries): the same
    methods, awaited.

    Example:
        .. code-block:: python

            async with AsyncVectorDBClient("http://localhost:8000", api_key="...") as admin:
                await admin.create_collection("docs", exist_ok=True)
                report = await admin.upload("docs", ["notes/"], source_names=True)
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close this event loop's connections."""
        await self.transport.aclose()

    async def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self.transport.arequest("GET", "/health")
        return answer

    async def ready(self) -> bool:
        return _is_ready(await self.transport.async_client().get("/ready"))

    async def list_collections(self) -> list[dict[str, Any]]:
        return _collections(await self.transport.arequest("GET", "/collections"))

    async def create_collection(
        self,
        name: str,
        *,
        embedding: dict[str, Any] | None = None,
        distance: str | None = None,
        index: str | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        exist_ok: bool = False,
    ) -> dict[str, Any]:
        body = _create_body(
            name,
            embedding=embedding,
            distance=distance,
            index=index,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
        )
        try:
            created: dict[str, Any] = await self.transport.arequest(
                "POST", "/collections", json=body
            )
        except CollectionExistsError:
            if not exist_ok:
                raise
            return await self.describe_collection(name)
        return created

    async def describe_collection(self, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self.transport.arequest("GET", _path(name))
        return answer

    async def delete_collection(self, name: str, *, missing_ok: bool = False) -> bool:
        try:
            await self.transport.arequest("DELETE", _path(name))
        except StoreNotFoundError:
            if not missing_ok:
                raise
            return False
        return True

    async def upload(
        self,
        name: str,
        paths: Paths,
        *,
        batch_bytes: int = UPLOAD_BATCH_BYTES,
        base: str | os.PathLike[str] | None = None,
        source_names: bool = False,
    ) -> dict[str, Any]:
        report: dict[str, Any] = {}
        for parts, form in _uploads(paths, batch_bytes, base, source_names):
            answer = await self.transport.arequest(
                "POST", f"{_path(name)}/upload", files=parts, data=form
            )
            report = _merge(report, answer)
        return report

    async def verify(self, name: str) -> dict[str, Any]:
        return _verified(
            await self.transport.arequest("POST", f"{_path(name)}/verify", repeatable=True)
        )

    async def compact(self, name: str) -> bool:
        answer = await self.transport.arequest("POST", f"{_path(name)}/compact", repeatable=True)
        return bool(answer["compacted"])


# -- requests and answers, for both clients ---------------------------------------------------
Paths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
Upload = tuple[Callable[[], list[Any]], dict[str, str]]


def _is_ready(answer: httpx.Response) -> bool:
    return answer.status_code == 200 and bool(answer.json().get("ready"))


def _collections(answer: dict[str, Any]) -> list[dict[str, Any]]:
    collections: list[dict[str, Any]] = answer["collections"]
    return collections


def _create_body(name: str, **options: Any) -> dict[str, Any]:
    """A create request: the name, and the settings given (the others: the server's)."""
    return {"name": name, **{k: v for k, v in options.items() if v is not None}}


def _verified(answer: dict[str, Any]) -> dict[str, Any]:
    if not answer["ok"]:
        raise IntegrityError(str(answer.get("problem")))
    report: dict[str, Any] = answer["report"]
    return report


def _uploads(
    paths: Paths, batch_bytes: int, base: str | os.PathLike[str] | None, source_names: bool
) -> list[Upload]:
    """The upload requests: for each batch, a function giving its multipart files (read
    afresh for each attempt) and the form fields."""
    files = list(_files([paths] if isinstance(paths, str | os.PathLike) else paths, base))
    if not files:
        raise InvalidInputError(f"no files to upload in {paths!r}")
    form = {"source_names": "true" if source_names else "false"}
    out: list[Upload] = []
    for batch in _batches(files, batch_bytes):

        def parts(batch: list[tuple[str, Path]] = batch) -> list[Any]:
            return [("files", (shown, path.read_bytes())) for shown, path in batch]

        out.append((parts, form))
    return out


def _path(name: str) -> str:
    return f"/collections/{quote(name, safe='')}"


def _files(
    paths: Sequence[str | os.PathLike[str]], base: str | os.PathLike[str] | None
) -> Iterator[tuple[str, Path]]:
    """Each file with the name it is uploaded under (see `VectorDBClient.upload`)."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                rel = found.relative_to(path)
                if found.is_file() and not any(p.startswith(".") for p in rel.parts):
                    yield _name(found, base, (Path(path.name) / rel).as_posix()), found
        elif path.is_file():
            yield _name(path, base, path.name), path
        else:
            raise InvalidInputError(f"{path} is not a file or directory; check the path")


def _name(path: Path, base: str | os.PathLike[str] | None, default: str) -> str:
    if base is None:
        return default
    try:
        return path.resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        raise InvalidInputError(
            f"{path} is not under base={os.fspath(base)!r}; upload files beneath it, or "
            "choose another base"
        ) from None


def _batches(files: list[tuple[str, Path]], limit: int) -> Iterator[list[tuple[str, Path]]]:
    batch: list[tuple[str, Path]] = []
    size = 0
    for item in files:
        length = item[1].stat().st_size if item[1].exists() else 0
        if batch and size + length > limit:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += length
    if batch:
        yield batch


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two upload reports as one."""
    if not a:
        return b
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, bool):
            out[key] = bool(out.get(key, True)) and value
        elif isinstance(value, int | float):
            out[key] = out.get(key, 0) + value
        elif isinstance(value, list):
            out[key] = [*out.get(key, []), *value]
        elif isinstance(value, dict):
            out[key] = {**out.get(key, {}), **value}
        elif isinstance(value, str):
            out[key] = f"{out[key]}\n{value}" if out.get(key) else value
    return out


__all__ = ["AsyncVectorDBClient", "VectorDBClient"]
