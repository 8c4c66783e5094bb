"""`VectorDBClient`: the admin side of a `vectordb serve` server (collections, uploads,
verify, compact, health), over the same retrying `Transport` as `RemoteVectorStore`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from langchain_core.embeddings import Embeddings

from vectordb_manager.errors import IntegrityError, InvalidInputError, StoreNotFoundError

from .remote_store import RemoteVectorStore
from .transport import CollectionExistsError, Transport

UPLOAD_BATCH_BYTES = 32 << 20
"""Files are uploaded in requests of about this many bytes (a larger file goes alone)."""


class VectorDBClient:
    """Collections, uploads and operations on the server at ``url``.

    Example:
        .. code-block:: python

            admin = VectorDBClient("http://localhost:8000", api_key="...")
            admin.create_collection("docs", distance="cosine", exist_ok=True)
            print(admin.upload("docs", ["handbook.pdf", "notes/"])["summary"])
            admin.verify("docs")                 # IntegrityError if damaged
            store = admin.store("docs")          # a RemoteVectorStore
    """

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

    def __repr__(self) -> str:
        return f"VectorDBClient({self.transport.url!r})"

    def __enter__(self) -> VectorDBClient:
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
        answer = self.transport.client.get("/ready")
        return answer.status_code == 200 and bool(answer.json().get("ready"))

    # -- collections -------------------------------------------------------------------------
    def list_collections(self) -> list[dict[str, Any]]:
        """Every collection (this key may use), with its settings."""
        collections: list[dict[str, Any]] = self.transport.request("GET", "/collections")[
            "collections"
        ]
        return collections

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
        ``embedding``: ``{"provider": ..., "model": ..., "dimensions": ...}``.

        Raises:
            CollectionExistsError: it exists and not ``exist_ok`` (then it is described).
        """
        body: dict[str, Any] = {"name": name}
        options = {
            "embedding": embedding,
            "distance": distance,
            "index": index,
            "chunk_size": chunk_size,
            "chunk_overlap": chunk_overlap,
        }
        body |= {k: v for k, v in options.items() if v is not None}
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

    def store(self, name: str, *, embedding: Embeddings | None = None) -> RemoteVectorStore:
        """A `RemoteVectorStore` over the collection, with this client's address and key."""
        return RemoteVectorStore(
            self.transport.url, name, embedding=embedding, api_key=self._api_key
        )

    # -- uploads and maintenance --------------------------------------------------------------
    def upload(
        self,
        name: str,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        batch_bytes: int = UPLOAD_BATCH_BYTES,
    ) -> dict[str, Any]:
        """Upload files (directories: every file beneath, hidden ones left out, named by
        their path from the directory's parent) for ingestion; returns the server's report
        (``ok``, ``files_added``, ``files_failed``: file -> why, ``summary``...), merged over
        the requests when the files needed several."""
        files = list(_files([paths] if isinstance(paths, str | os.PathLike) else paths))
        if not files:
            raise InvalidInputError(f"no files to upload in {paths!r}")
        report: dict[str, Any] | None = None
        for batch in _batches(files, batch_bytes):

            def parts(batch: list[tuple[str, Path]] = batch) -> list[Any]:
                return [("files", (shown, path.read_bytes())) for shown, path in batch]

            answer = self.transport.request("POST", f"{_path(name)}/upload", files=parts)
            report = answer if report is None else _merge(report, answer)
        assert report is not None
        return report

    def verify(self, name: str) -> dict[str, Any]:
        """Have the server re-read every file of the collection and check every checksum.

        Raises:
            IntegrityError: the collection's store is damaged (the server says what).
        """
        answer = self.transport.request("POST", f"{_path(name)}/verify")
        if not answer["ok"]:
            raise IntegrityError(str(answer.get("problem")))
        report: dict[str, Any] = answer["report"]
        return report

    def compact(self, name: str) -> bool:
        """Merge the collection's segments; ``False`` if there was nothing to gain."""
        return bool(self.transport.request("POST", f"{_path(name)}/compact")["compacted"])


def _path(name: str) -> str:
    return f"/collections/{quote(name, safe='')}"


def _files(paths: Sequence[str | os.PathLike[str]]) -> Iterator[tuple[str, Path]]:
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                rel = found.relative_to(path)
                if found.is_file() and not any(p.startswith(".") for p in rel.parts):
                    yield (Path(path.name) / rel).as_posix(), found
        elif path.is_file():
            yield path.name, path
        else:
            raise InvalidInputError(f"{path} is not a file or directory; check the path")


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


__all__ = ["VectorDBClient"]
