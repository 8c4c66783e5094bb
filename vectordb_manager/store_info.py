"""A persisted store's counts and settings from its newest manifest alone.

`VectorDatabaseManager.stats` answers from a store opened in memory: every segment read,
checked and indexed (a third of a second for 100,000 documents) after LangChain, FAISS and the
embedding model's wrapper were imported. Everything ``stats`` reports is in the newest
manifest, though (the live count, the rows that make the tombstones, the dimension, distance,
index type and tuning, the embedding model), so `read_stats` reads that one small file and
imports neither LangChain's stores nor a model: ``vectordb stats`` starts and answers in well
under half a second.

It refuses the settings that opening the store refuses, through the same checks
(`engine.settings`): a chosen distance other than the store's, a chosen text analyzer that
differs, recorded index tuning that is not valid. It does not check the embedding model: the
stats describe the store whichever model the configuration names (they are how one finds out
which model a store was built with); the commands that embed check it. Where there is no
manifest to read (no store, a LangChain FAISS folder, a store in memory) it opens the store
as the manager does, so that the answer or the error is the manager's. It does not read the
segments: ``verify`` checks those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.engine.commit_log import CommitLog
from vectordb_manager.engine.manifest import Manifest
from vectordb_manager.engine.options import chosen
from vectordb_manager.errors import ConfigurationError
from vectordb_manager.storage.base import Storage
from vectordb_manager.storage.local import LocalStorage


def read_stats(config: VectorDBConfig) -> dict[str, Any]:
    """What ``VectorDatabaseManager(config, create=False).stats()`` returns, from the newest
    manifest of the store ``config`` names (no segment is read, no model loaded).

    Raises:
        StoreNotFoundError: no store is there (nothing is created).
        ConfigurationError: ``config`` chooses a distance or text analyzer the store was not
            built with.
        IntegrityError, StorageError: the manifest is damaged, or the storage cannot be read.
    """
    storage = _storage(config)
    if storage is not None:
        log = CommitLog(storage)
        versions = log.versions()
        if versions:
            return _from_manifest(config, log.read_latest(versions), storage)
    from vectordb_manager.manager import VectorDatabaseManager  # its answer, or its error

    return VectorDatabaseManager(config, create=False).stats()


def _storage(config: VectorDBConfig) -> Storage | None:
    """The storage the store of ``config`` lives in (``None`` for a store in memory)."""
    if config.storage_type == "local":
        return LocalStorage(Path(config.local_path).expanduser())
    if config.storage_type != "s3":
        return None
    from vectordb_manager.storage.s3 import S3Storage, config_s3_client, s3_problems

    if not config.s3_bucket:
        raise ConfigurationError("storage_type='s3' needs s3_bucket")
    problems = s3_problems(
        bucket=config.s3_bucket, sse=config.s3_sse, kms_key_id=config.s3_kms_key_id
    )
    if problems:
        raise ConfigurationError("; ".join(problems))
    client = config_s3_client(config)
    return S3Storage(
        client,
        config.s3_bucket,
        config.s3_prefix,
        sse=config.s3_sse,
        kms_key_id=config.s3_kms_key_id,
        cache_dir=config.s3_cache_dir,
    )


def _from_manifest(config: VectorDBConfig, manifest: Manifest, storage: Storage) -> dict[str, Any]:
    """The engine's stats of ``manifest``'s store opened with ``config`` (`Engine.stats`),
    after the checks `Engine` makes when it opens it."""
    from vectordb_manager.engine import settings
    from vectordb_manager.engine.index import IndexParams

    where = storage.describe()
    choices = settings.Choices(
        config.distance_metric if chosen(config.distance_metric) else None,
        config.index_type if chosen(config.index_type) else None,
        None,
    )
    # the model is not checked: stats describes the store whichever model ``config`` names
    # (the commands that embed check it)
    settings.check(
        manifest, choices, dimension=None, embedding_model=None, check_model=False, where=where
    )
    requested = settings.Settings(config.distance_metric, config.index_type, IndexParams())
    distance, index_type, params = settings.adopt(manifest, choices, requested, where)
    analyzer = config.text_analyzer()
    if analyzer is not None:  # else the store's own is used, as recorded
        settings.adopt_analyzer(manifest, analyzer, where)
    live = manifest.live_count
    if index_type == "auto":
        kind = "hnsw" if live >= params.auto_threshold else "flat"
    else:
        kind = index_type
    return {
        "documents": live,
        "tombstones": sum(segment.rows for segment in manifest.segments) - live,
        "dimension": manifest.dimension,
        "distance": distance,
        "index": kind,
        "requested_index": index_type,
        "version": manifest.version,
        "segments": len(manifest.segments),
        "embedding_model": manifest.embedding_model,
        "location": where,
        "storage_type": config.storage_type,
    }
