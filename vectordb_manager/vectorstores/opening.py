"""Opening a store's `Engine`: the options every store takes, a local or S3 store's storage,
and the engine a `VectorDBConfig` names, without LangChain.

`LocalVectorStore` and `S3VectorStore` open their engine through these functions, and so does
``vectordb search`` (`vectordb_manager.quick_search`), which answers from the engine alone:
defining LangChain's store classes imports its retrievers, callbacks and tracers, and
langsmith with them, about a second of a fresh process that the command does not need.
`config_options` is the one mapping from a configuration to a store's keyword arguments
(`create_vector_store` passes them to the store classes, `engine_for` to these functions), so
the two open the same store the same way, with the same checks and errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.core import Engine
from vectordb_manager.engine.index import IndexParams
from vectordb_manager.engine.options import DEFAULT_BATCH_SIZE, DEFAULT_COMMIT_ATTEMPTS
from vectordb_manager.errors import ConfigurationError, StorageError
from vectordb_manager.storage.base import Storage
from vectordb_manager.storage.local import LocalStorage

if TYPE_CHECKING:
    from vectordb_manager.config import VectorDBConfig
    from vectordb_manager.storage.s3 import S3Storage

_INDEX_OPTIONS = tuple(IndexParams.__dataclass_fields__)


@dataclass(frozen=True)
class StoreOptions:
    """The keyword options every store takes besides ``distance`` and ``index``, checked once
    (`from_kwargs`); the index's tuning (`IndexParams`) is given by its field names."""

    batch_size: int = DEFAULT_BATCH_SIZE
    commit_attempts: int = DEFAULT_COMMIT_ATTEMPTS
    check_embedding_model: bool = True
    create: bool = True
    compaction: CompactionPolicy | None = None
    params: IndexParams = field(default_factory=IndexParams)
    index_options: Mapping[str, Any] = field(default_factory=dict)  # those the caller chose
    relevance_score_fn: Callable[[float], float] | None = None
    analyzer: Analyzer | None = None  # None: the store's own (a new store's: Analyzer())
    keyword_index: bool = True
    keyword_process: bool = True  # large batches' postings built in a helper process

    @classmethod
    def from_kwargs(cls, options: Mapping[str, Any]) -> StoreOptions:
        """Options from a store's keyword arguments; `ConfigurationError` names a bad one."""
        unknown = sorted(set(options) - set(STORE_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(map(repr, unknown))}; valid options are: "
                f"{', '.join(STORE_OPTIONS)}"
            )
        index_options = {k: v for k, v in options.items() if k in _INDEX_OPTIONS}
        try:
            params = IndexParams(**index_options)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from exc
        try:
            params.check()
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        compaction = options.get("compaction")
        if isinstance(compaction, Mapping):
            compaction = CompactionPolicy(**compaction)
        if compaction is not None and not isinstance(compaction, CompactionPolicy):
            raise ConfigurationError(
                "compaction must be a CompactionPolicy or a dict of its fields"
            )
        relevance = options.get("relevance_score_fn")
        if relevance is not None and not callable(relevance):
            raise ConfigurationError(
                f"relevance_score_fn={relevance!r} must be a function from a distance (as "
                "similarity_search_with_score returns it) to a relevance in [0, 1]"
            )
        analyzer = analyzer_option(options.get("analyzer"))
        plain = {k: options[k] for k in _PLAIN_OPTIONS if k in options}
        for name, value in plain.items():
            default = getattr(cls, name)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigurationError(f"{name}={value!r} must be True or False")
            elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name}={value!r} must be a positive integer")
        return cls(
            compaction=compaction,
            params=params,
            index_options=index_options,
            relevance_score_fn=relevance,
            analyzer=analyzer,
            **plain,
        )

    def engine_kwargs(self) -> dict[str, Any]:
        """The `Engine`'s keyword arguments for these options (the text index's only where
        they differ from the engine's defaults)."""
        text: dict[str, Any] = {"analyzer": self.analyzer} if self.analyzer is not None else {}
        if not self.keyword_index:
            text["keyword_index"] = False
        if not self.keyword_process:
            text["keyword_process"] = False
        return {
            "params": self.index_options,  # the rest from the store, or the defaults
            "compaction": self.compaction,
            "commit_attempts": self.commit_attempts,
            "check_model": self.check_embedding_model,
            "create": self.create,
            **text,
        }


def analyzer_option(value: object) -> Analyzer | None:
    """The ``analyzer=`` option as an `Analyzer`: one, a dict of its fields (``language``,
    ``stem``, ``stopwords``), or the dict its ``to_json`` gives; `ConfigurationError` says
    what is wrong."""
    if value is None or isinstance(value, Analyzer):
        return value
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"analyzer must be an Analyzer or a dict of its fields, got {type(value).__name__}"
        )
    if "tokenizer" in value:
        return Analyzer.from_json(dict(value))
    try:
        return Analyzer(**value)
    except TypeError:
        raise ConfigurationError(
            f"analyzer={dict(value)!r} is not a valid analyzer: its fields are language, stem "
            "and stopwords, e.g. {'language': 'english', 'stem': True, 'stopwords': True}"
        ) from None


_PLAIN_OPTIONS = (
    "batch_size",
    "commit_attempts",
    "check_embedding_model",
    "create",
    "keyword_index",
    "keyword_process",
)
STORE_OPTIONS = (
    *_INDEX_OPTIONS,
    *_PLAIN_OPTIONS,
    "compaction",
    "relevance_score_fn",
    "analyzer",
)


S3_OPTIONS = (
    "profile_name",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "sse",
    "kms_key_id",
    "max_attempts",
    "retry_mode",
    "connect_timeout",
    "read_timeout",
    "cache_dir",
    "transfer_config",
)
"""`S3VectorStore`'s own keyword options (the client's and the storage's)."""


def open_engine(
    storage: Storage | None,
    *,
    distance: str,
    index: str,
    options: StoreOptions,
    dimension: int | None,
    embedding_model: str | None,
) -> Engine:
    """The engine of the store in ``storage`` (``None``: in memory), opened for a model of
    ``dimension`` named ``embedding_model`` (each ``None`` when unknown)."""
    return Engine(
        storage,
        distance=distance,
        index=index,
        dimension=dimension,
        embedding_model=embedding_model,
        **options.engine_kwargs(),
    )


def local_storage(path: str | os.PathLike[str] | None) -> tuple[Path | None, LocalStorage | None]:
    """A local store's directory and its storage (both ``None`` for a store in memory).

    Raises:
        ConfigurationError: ``path`` is empty.
        StorageError: the directory is a file or cannot be read, or holds a LangChain FAISS
            store (which is imported, never opened: see the message).
    """
    if path is None:
        return None, None
    if not os.fspath(path):
        raise ConfigurationError(
            "path='' names no directory; give the store's directory, or path=None for a "
            "store in memory"
        )
    where = Path(path).expanduser()
    storage = LocalStorage(where)
    names = storage.entries()  # a StorageError naming the directory if it cannot be read
    if "manifests" not in names and names & {"index.pkl", "index.faiss"}:
        raise StorageError(
            f"{where} holds a LangChain FAISS store (index.faiss + index.pkl), which is not "
            "opened here (loading index.pkl would unpickle code); import it, safely, into "
            "another directory: "
            f"LocalVectorStore.from_langchain_faiss({str(where)!r}, embedding, path=NEW_DIR) "
            f"or `vectordb --path NEW_DIR import-faiss {where}`"
        )
    return where, storage


def split_s3_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take `S3_OPTIONS` out of a store's keyword arguments ``kwargs`` (changed) and return
    them."""
    return {k: kwargs.pop(k) for k in list(kwargs) if k in S3_OPTIONS}


def s3_storage(
    bucket: str,
    prefix: str,
    s3_options: Mapping[str, Any],
    *,
    client: Any = None,
    region_name: str | None = None,
    endpoint_url: str | None = None,
) -> tuple[Any, S3Storage]:
    """An S3 store's client (``client`` as given, else one built from the options and the
    standard AWS credential chain) and its storage.

    Raises:
        ConfigurationError: a bad bucket name, encryption setting or profile.
    """
    from vectordb_manager.storage.s3 import S3Storage, build_s3_client, s3_problems

    sse = s3_options.get("sse")
    problems = s3_problems(bucket=bucket, sse=sse, kms_key_id=s3_options.get("kms_key_id"))
    if problems:
        raise ConfigurationError("; ".join(problems))
    if client is None:
        client = build_s3_client(
            region_name=region_name,
            endpoint_url=endpoint_url,
            **{
                k: v
                for k, v in s3_options.items()
                if k not in ("sse", "kms_key_id", "cache_dir", "transfer_config")
            },
        )
    storage = S3Storage(
        client,
        bucket,
        prefix,
        sse=sse,
        kms_key_id=s3_options.get("kms_key_id"),
        transfer_config=s3_options.get("transfer_config"),
        cache_dir=s3_options.get("cache_dir"),
    )
    return client, storage


def config_options(config: VectorDBConfig, *, create: bool = True) -> dict[str, Any]:
    """The keyword arguments a store for ``config`` is given (an S3 store's own included),
    besides the embedding and its location; ``create=False``: open an existing store only."""
    options: dict[str, Any] = {
        "distance": config.distance_metric,
        "index": config.index_type,
        "batch_size": config.embedding_batch_size,
    }
    analyzer = config.text_analyzer()
    if analyzer is not None:  # else: the store's own (a new store's: the default)
        options["analyzer"] = analyzer
    if config.storage_type != "memory":
        options["create"] = create
    if config.storage_type == "s3":
        options.update(
            region_name=config.aws_region,
            endpoint_url=config.s3_endpoint_url,
            profile_name=config.aws_profile,
            sse=config.s3_sse,
            kms_key_id=config.s3_kms_key_id,
            max_attempts=config.s3_max_attempts,
            retry_mode=config.s3_retry_mode,
            cache_dir=config.s3_cache_dir,
        )
    return options


def engine_for(
    config: VectorDBConfig,
    *,
    dimension: int | None,
    embedding_model: str | None,
    create: bool = True,
) -> Engine:
    """The engine of the persisted store ``config`` names (``local`` or ``s3``), opened as
    `create_vector_store` opens its store for a model of ``dimension`` named
    ``embedding_model``: the same checks, the same errors.

    Raises:
        ConfigurationError: the configuration cannot make such a store (``memory`` included).
        StoreNotFoundError, StorageError, IntegrityError, DimensionMismatchError: as the
            store classes raise them.
    """
    kwargs = config_options(config, create=create)
    distance, index = kwargs.pop("distance"), kwargs.pop("index")
    storage: Storage | None
    if config.storage_type == "local":
        options = StoreOptions.from_kwargs(kwargs)
        _, storage = local_storage(config.local_path)
    elif config.storage_type == "s3":
        if not config.s3_bucket:
            raise ConfigurationError("storage_type='s3' needs s3_bucket")
        region_name, endpoint_url = kwargs.pop("region_name"), kwargs.pop("endpoint_url")
        s3_options = split_s3_options(kwargs)
        options = StoreOptions.from_kwargs(kwargs)
        _, storage = s3_storage(
            config.s3_bucket,
            config.s3_prefix,
            s3_options,
            region_name=region_name,
            endpoint_url=endpoint_url,
        )
    else:
        raise ConfigurationError(f"storage_type={config.storage_type!r} has no engine to open")
    return open_engine(
        storage,
        distance=distance,
        index=index,
        options=options,
        dimension=dimension,
        embedding_model=embedding_model,
    )
