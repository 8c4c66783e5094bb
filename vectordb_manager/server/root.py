"""The storage root: where the collections live, a local directory or an S3 bucket/prefix.

Each collection ``NAME`` is an ordinary store at ``ROOT/NAME/`` (``s3://bucket/prefix/NAME/``),
which the CLI and the library can open as they open any store, plus one object of the
service's own beside its manifests: ``collection.json`` (`DESCRIPTOR`), the collection's
settings. It is created with the storage's create-only write, so of two servers creating one
name at once exactly one succeeds; a collection exists while its descriptor does.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import StorageError
from vectordb_manager.storage.base import Storage
from vectordb_manager.storage.local import LocalStorage
from vectordb_manager.storage.s3 import S3Storage, config_s3_client, normalize_prefix

DESCRIPTOR = "collection.json"
"""The object naming a directory (or prefix) under the root a collection."""


@dataclass(frozen=True)
class StorageRoot:
    """The root that ``config`` (a `VectorDBConfig` of storage ``local`` or ``s3``) names:
    its ``local_path`` or ``s3_bucket``/``s3_prefix`` holds one store per collection."""

    config: VectorDBConfig

    @property
    def is_s3(self) -> bool:
        return self.config.storage_type == "s3"

    def describe(self) -> str:
        """Where the root is, for messages (never credentials)."""
        if self.is_s3:
            return f"s3://{self.config.s3_bucket}/{self._prefix()}"
        return str(self._directory())

    def _directory(self) -> Path:
        return Path(self.config.local_path).expanduser().absolute()

    def _prefix(self) -> str:
        return normalize_prefix(self.config.s3_prefix)

    def _client(self) -> Any:
        return config_s3_client(self.config)

    def storage(self, name: str) -> Storage:
        """The storage of collection ``name`` (its store's directory or prefix)."""
        if self.is_s3:
            assert self.config.s3_bucket is not None  # VectorDBConfig checks it
            return S3Storage(
                self._client(),
                self.config.s3_bucket,
                self._prefix() + name,
                sse=self.config.s3_sse,
                kms_key_id=self.config.s3_kms_key_id,
            )
        return LocalStorage(self._directory() / name)

    def store_config(self, name: str, **settings: Any) -> VectorDBConfig:
        """The configuration of collection ``name``'s store: the root's, located at the
        collection, with the collection's ``settings`` (model, distance, chunking...)."""
        if self.is_s3:
            return self.config.replace(s3_prefix=self._prefix() + name, **settings)
        return self.config.replace(local_path=str(self._directory() / name), **settings)

    def candidates(self) -> list[str]:
        """The names under the root that may be collections (each still to be checked for
        its descriptor), sorted."""
        if self.is_s3:
            return self._s3_candidates()
        try:
            with os.scandir(self._directory()) as entries:
                return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(
                f"cannot list the collections in {self.describe()}: {exc.strerror or exc}"
            ) from exc

    def _s3_candidates(self) -> list[str]:
        prefix = self._prefix()
        names: list[str] = []
        try:
            pages = (
                self._client()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.config.s3_bucket, Prefix=prefix, Delimiter="/")
            )
            for page in pages:
                for common in page.get("CommonPrefixes", ()):
                    names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        except Exception as exc:
            raise StorageError(f"cannot list the collections in {self.describe()}: {exc}") from exc
        return sorted(names)

    def remove(self, name: str, storage: Storage, *, keep: str | None = None) -> int:
        """Delete every object of collection ``name`` (its descriptor must be gone first)
        but ``keep``; returns how many. A local directory's emptied folders are removed
        too."""
        objects = [info for info in storage.list("") if info.name != keep]
        for info in objects:
            storage.delete(info.name)
        if not self.is_s3:
            _remove_empty_folders(self._directory() / name)
        return len(objects)


def _remove_empty_folders(top: Path) -> None:
    """Remove ``top`` and the folders beneath it that are empty (never following links)."""
    if top.is_symlink() or not top.is_dir():
        return
    for folder, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):  # not empty: a writer came back; leave it
            os.rmdir(folder)


__all__ = ["DESCRIPTOR", "StorageRoot"]
