"""`VectorDBConfig`: one frozen, validated description of a store and its embedding model.

Construct it directly, or from a dict, the environment or a JSON/TOML/YAML file. Construction
validates every field and raises one :class:`ConfigurationError` naming every bad field.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vectordb_manager.engine.options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DISTANCE,
    DEFAULT_INDEX,
    DISTANCES,
    INDEX_TYPES,
    Distance,
    IndexType,
)
from vectordb_manager.errors import ConfigurationError
from vectordb_manager.storage.s3 import s3_problems

if TYPE_CHECKING:
    from vectordb_manager.engine.analyzer import Analyzer

StorageType = Literal["local", "s3", "memory"]
EmbeddingProvider = Literal["huggingface", "openai", "fake"]
SearchMode = Literal["vector", "keyword", "hybrid"]

STORAGE_TYPES = ("local", "s3", "memory")
EMBEDDING_PROVIDERS = ("huggingface", "openai", "fake")
SEARCH_MODES: tuple[str, ...] = typing.get_args(SearchMode)
"""``vector`` (similarity), ``keyword`` (BM25) and ``hybrid`` (both, fused)."""


@dataclass(frozen=True, kw_only=True)
class VectorDBConfig:
    """Where the store lives, how texts are embedded and split, and how vectors are indexed.

    Every field has a default, so ``VectorDBConfig()`` is a local store in ``./vectordb_data``
    with the offline all-MiniLM-L6-v2 model. Environment variables are the upper-cased field
    names with a prefix (``VECTORDB_CHUNK_SIZE=500``).
    """

    storage_type: StorageType = "local"
    local_path: str = "./vectordb_data"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    aws_region: str | None = None
    aws_profile: str | None = None
    s3_endpoint_url: str | None = None
    s3_sse: str | None = None
    s3_kms_key_id: str | None = None
    s3_cache_dir: str | None = None
    s3_max_attempts: int = 5
    s3_retry_mode: str = "standard"
    embedding_provider: EmbeddingProvider = "huggingface"
    embedding_model: str | None = None
    embedding_dimensions: int | None = None
    embedding_batch_size: int = DEFAULT_BATCH_SIZE
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_timeout: float | None = 60.0
    openai_max_retries: int = 2
    chunk_size: int = 1000
    chunk_overlap: int = 200
    distance_metric: Distance = DEFAULT_DISTANCE
    index_type: IndexType = DEFAULT_INDEX
    search_mode: SearchMode = "vector"
    text_language: str | None = None
    text_stemming: bool | None = None
    text_stopwords: bool | None = None

    def __post_init__(self) -> None:
        problems = [*_type_problems(self), *_value_problems(self)]
        if problems:
            raise ConfigurationError("invalid configuration: " + "; ".join(problems))

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        """The names of every configuration field."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VectorDBConfig:
        """Build a config from a mapping; unknown keys raise `ConfigurationError`."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(
                "configuration must be a mapping of field names to values, "
                f"got {type(data).__name__}"
            )
        unknown = sorted(set(data) - set(cls.field_names()), key=str)
        if unknown:
            raise ConfigurationError(
                f"unknown configuration key(s) {', '.join(map(repr, unknown))}; "
                f"valid keys are: {', '.join(cls.field_names())}"
            )
        return cls(**dict(data))

    @classmethod
    def from_env(
        cls, prefix: str = "VECTORDB_", environ: Mapping[str, str] | None = None
    ) -> VectorDBConfig:
        """Build a config from ``{prefix}{FIELD}`` environment variables, converting types."""
        return cls.from_dict(cls.env_overrides(prefix, environ))

    @classmethod
    def env_overrides(
        cls, prefix: str = "VECTORDB_", environ: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The fields set through ``{prefix}{FIELD}`` environment variables, converted."""
        env = os.environ if environ is None else environ
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name in cls.field_names():
            key = prefix + name.upper()
            if key in env:
                try:
                    values[name] = _from_string(env[key], hints[name])
                except ValueError as exc:
                    problems.append(f"{key}={env[key]!r}: {exc}")
        if problems:
            raise ConfigurationError("invalid environment: " + "; ".join(problems))
        return values

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> VectorDBConfig:
        """Build a config from a ``.json``, ``.toml``, ``.yaml`` or ``.yml`` file."""
        return cls.from_dict(load_config_file(path))

    def replace(self, **changes: Any) -> VectorDBConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def text_analyzer(self) -> Analyzer | None:
        """The keyword index's analyzer these settings choose (`ConfigurationError` if they
        are invalid): ``None`` when ``text_language``,
        ``text_stemming`` and ``text_stopwords`` are all unset (an existing store keeps the
        analyzer it records; a new one gets English, stemming, stopwords); otherwise those
        set, with the defaults for the others."""
        if (self.text_language, self.text_stemming, self.text_stopwords) == (None, None, None):
            return None
        from vectordb_manager.engine.analyzer import Analyzer

        return Analyzer(
            language=self.text_language if self.text_language is not None else "english",
            stem=self.text_stemming if self.text_stemming is not None else True,
            stopwords=self.text_stopwords if self.text_stopwords is not None else True,
        )

    def to_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """The fields as a plain dict; secrets are left out unless asked for."""
        data = dataclasses.asdict(self)
        if not include_secrets:
            data.pop("openai_api_key", None)
        return data


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON, TOML or YAML configuration file into a dict of `VectorDBConfig` fields
    (its settings at the top level or in a ``vectordb`` table; a ``server`` table, the
    settings of `vectordb serve`, is left out: see `read_config_file`)."""
    data = read_config_file(path)
    if isinstance(data.get("server"), dict):
        data.pop("server")
    if set(data) == {"vectordb"} and isinstance(data["vectordb"], dict):
        data = data["vectordb"]
    return data


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON, TOML or YAML configuration file's top-level table, as it is written."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read configuration file {p}: {exc.strerror or exc}"
        ) from exc
    suffix = p.suffix.lower()
    import yaml  # here: a command that reads no configuration file does not wait for it

    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigurationError(
                f"configuration file {p} has an unknown extension {suffix!r}; "
                "use .json, .toml, .yaml or .yml"
            )
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigurationError(
            f"configuration file {p} is not valid {suffix[1:]}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"configuration file {p} must hold a table/object of settings")
    return data


# -- validation helpers ------------------------------------------------------------------


def _type_problems(config: VectorDBConfig) -> list[str]:
    hints = typing.get_type_hints(type(config))
    problems = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not _is_instance(value, hints[f.name]):
            problems.append(f"{f.name}={value!r} should be {_describe(hints[f.name])}")
    return problems


def _value_problems(c: VectorDBConfig) -> list[str]:
    problems: list[str] = []

    def one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
        if isinstance(value, str) and value not in allowed:
            problems.append(f"{name}={value!r} must be one of {', '.join(allowed)}")

    one_of("storage_type", c.storage_type, STORAGE_TYPES)
    one_of("embedding_provider", c.embedding_provider, EMBEDDING_PROVIDERS)
    one_of("distance_metric", c.distance_metric, DISTANCES)
    one_of("index_type", c.index_type, INDEX_TYPES)
    one_of("search_mode", c.search_mode, SEARCH_MODES)
    problems += _text_problems(c)
    problems += s3_problems(
        bucket=c.s3_bucket if isinstance(c.s3_bucket, str) else "bucket-name",
        sse=c.s3_sse,
        kms_key_id=c.s3_kms_key_id,
        retry_mode=c.s3_retry_mode,
        max_attempts=c.s3_max_attempts if _is_int(c.s3_max_attempts) else 1,
        prefix="s3_",
    )
    if _is_int(c.chunk_size) and c.chunk_size <= 0:
        problems.append(f"chunk_size={c.chunk_size} must be positive")
    if _is_int(c.chunk_overlap) and c.chunk_overlap < 0:
        problems.append(f"chunk_overlap={c.chunk_overlap} must be zero or positive")
    if _is_int(c.chunk_size) and _is_int(c.chunk_overlap) and 0 < c.chunk_size <= c.chunk_overlap:
        problems.append(
            f"chunk_overlap={c.chunk_overlap} must be smaller than chunk_size={c.chunk_size}"
        )
    for name in ("embedding_batch_size", "embedding_dimensions"):
        value = getattr(c, name)
        if _is_int(value) and value <= 0:
            problems.append(f"{name}={value} must be positive")
    if _is_int(c.openai_max_retries) and c.openai_max_retries < 0:
        problems.append(f"openai_max_retries={c.openai_max_retries} must be zero or positive")
    if isinstance(c.openai_timeout, int | float) and c.openai_timeout <= 0:
        problems.append(f"openai_timeout={c.openai_timeout} must be positive")
    if c.storage_type == "s3" and not c.s3_bucket:
        problems.append("s3_bucket is required when storage_type='s3'")
    if c.storage_type == "local" and isinstance(c.local_path, str) and not c.local_path.strip():
        problems.append("local_path must not be empty when storage_type='local'")
    return problems


def _text_problems(c: VectorDBConfig) -> list[str]:
    """What is wrong with the analyzer settings (their types are checked elsewhere)."""
    if isinstance(c.text_language, str) and not c.text_language.strip():
        return ["text_language must not be empty; e.g. 'english', or leave it unset"]
    settings = ((c.text_language, str), (c.text_stemming, bool), (c.text_stopwords, bool))
    if not all(v is None or isinstance(v, t) for v, t in settings):
        return []
    try:
        c.text_analyzer()
    except ConfigurationError as exc:  # the analyzer names the bad setting and the fix
        return [f"text_language={c.text_language!r}: {exc}"]
    return []


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_instance(value: object, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return isinstance(value, str)  # the allowed values are checked separately
    if origin in (typing.Union, types.UnionType):
        return any(_is_instance(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    return {int: "an integer", str: "a string", bool: "true or false", float: "a number"}.get(
        hint, str(hint)
    )


def _from_string(raw: str, hint: Any) -> Any:
    args = (
        set(typing.get_args(hint))
        if typing.get_origin(hint)
        in (
            typing.Union,
            types.UnionType,
        )
        else {hint}
    )
    if type(None) in args and raw.strip().lower() in ("", "none", "null"):
        return None
    if bool in args:
        word = raw.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if int in args:
        try:
            return int(raw)
        except ValueError:
            raise ValueError("expected an integer") from None
    if float in args:
        try:
            return float(raw)
        except ValueError:
            raise ValueError("expected a number") from None
    return raw
