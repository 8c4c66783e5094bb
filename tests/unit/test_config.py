"""Unit tests for `vectordb_manager.config.VectorDBConfig` (its files, and `load_config_file`:
test_config_files.py)."""

from __future__ import annotations

import dataclasses
import re
import types
from typing import Any

import pytest

from vectordb_manager.config import VectorDBConfig
from vectordb_manager.errors import ConfigurationError, VectorDBError

ALL_FIELDS = [
    "storage_type",
    "local_path",
    "s3_bucket",
    "s3_prefix",
    "aws_region",
    "aws_profile",
    "s3_endpoint_url",
    "s3_sse",
    "s3_kms_key_id",
    "s3_cache_dir",
    "s3_max_attempts",
    "s3_retry_mode",
    "embedding_provider",
    "embedding_model",
    "embedding_dimensions",
    "embedding_batch_size",
    "openai_api_key",
    "openai_base_url",
    "openai_timeout",
    "openai_max_retries",
    "chunk_size",
    "chunk_overlap",
    "distance_metric",
    "index_type",
    "search_mode",
    "text_language",
    "text_stemming",
    "text_stopwords",
]


# -- construction and defaults -----------------------------------------------------------


def test_defaults_describe_a_local_huggingface_store() -> None:
    config = VectorDBConfig()
    assert config.storage_type == "local"
    assert config.local_path == "./vectordb_data"
    assert config.s3_bucket is None
    assert config.s3_prefix == ""
    assert config.s3_max_attempts == 5
    assert config.s3_retry_mode == "standard"
    assert config.embedding_provider == "huggingface"
    assert config.embedding_model is None
    assert config.embedding_dimensions is None
    assert config.embedding_batch_size == 64
    assert config.openai_api_key is None
    assert config.chunk_size == 1000
    assert config.chunk_overlap == 200
    assert config.distance_metric == "cosine"
    assert config.index_type == "flat"


def test_field_names_lists_every_field_in_declaration_order() -> None:
    assert VectorDBConfig.field_names() == ALL_FIELDS


def test_config_is_frozen() -> None:
    config = VectorDBConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.chunk_size = 10  # type: ignore[misc]
    assert config.chunk_size == 1000


def test_config_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        VectorDBConfig("memory")  # type: ignore[misc]


def test_equal_configs_compare_and_hash_equal() -> None:
    a = VectorDBConfig(storage_type="memory", chunk_size=500, chunk_overlap=50)
    b = VectorDBConfig(storage_type="memory", chunk_size=500, chunk_overlap=50)
    assert a == b
    assert hash(a) == hash(b)
    assert a != VectorDBConfig(storage_type="memory", chunk_size=501, chunk_overlap=50)


def test_valid_non_default_config_is_accepted() -> None:
    config = VectorDBConfig(
        storage_type="s3",
        s3_bucket="my-bucket",
        s3_prefix="stores/a",
        aws_region="eu-west-1",
        s3_sse="aws:kms",
        s3_kms_key_id="alias/my-key",
        s3_max_attempts=3,
        s3_retry_mode="adaptive",
        embedding_provider="fake",
        embedding_dimensions=32,
        embedding_batch_size=8,
        chunk_size=100,
        chunk_overlap=0,
        distance_metric="inner_product",
        index_type="hnsw",
    )
    assert config.storage_type == "s3"
    assert config.s3_kms_key_id == "alias/my-key"
    assert config.embedding_dimensions == 32
    assert config.index_type == "hnsw"


def test_configuration_error_is_a_value_error_and_a_vectordb_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        VectorDBConfig(chunk_size=0)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, VectorDBError)


# -- validation of single fields ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"storage_type": "ftp"}, "storage_type='ftp' must be one of local, s3, memory"),
        (
            {"embedding_provider": "cohere"},
            "embedding_provider='cohere' must be one of huggingface, openai, fake",
        ),
        (
            {"distance_metric": "dot"},
            "distance_metric='dot' must be one of cosine, l2, inner_product",
        ),
        ({"index_type": "lsh"}, "index_type='lsh' must be one of flat, hnsw, ivf, auto"),
        ({"s3_retry_mode": "legacy"}, "s3_retry_mode='legacy' must be one of standard, adaptive"),
        ({"s3_sse": "aes"}, "s3_sse='aes' must be one of AES256, aws:kms"),
        ({"chunk_size": 0}, "chunk_size=0 must be positive"),
        ({"chunk_size": -10}, "chunk_size=-10 must be positive"),
        ({"chunk_overlap": -1}, "chunk_overlap=-1 must be zero or positive"),
        (
            {"chunk_size": 100, "chunk_overlap": 100},
            "chunk_overlap=100 must be smaller than chunk_size=100",
        ),
        (
            {"chunk_size": 100, "chunk_overlap": 150},
            "chunk_overlap=150 must be smaller than chunk_size=100",
        ),
        ({"embedding_batch_size": 0}, "embedding_batch_size=0 must be positive"),
        ({"s3_max_attempts": -2}, "s3_max_attempts=-2 must be positive"),
        ({"embedding_dimensions": 0}, "embedding_dimensions=0 must be positive"),
        ({"storage_type": "s3"}, "s3_bucket is required when storage_type='s3'"),
        ({"s3_bucket": "ab"}, "s3_bucket='ab' must be 3 to 63 characters long"),
        ({"s3_bucket": "b" * 64}, "must be 3 to 63 characters long"),
        ({"local_path": "   "}, "local_path must not be empty when storage_type='local'"),
        (
            {"s3_kms_key_id": "alias/k"},
            "s3_kms_key_id is set but s3_sse is not 'aws:kms'",
        ),
        (
            {"s3_kms_key_id": "alias/k", "s3_sse": "AES256"},
            "s3_kms_key_id is set but s3_sse is not 'aws:kms'",
        ),
        # type errors
        ({"chunk_size": "1000"}, "chunk_size='1000' should be an integer"),
        ({"chunk_size": 10.0}, "chunk_size=10.0 should be an integer"),
        ({"embedding_batch_size": True}, "embedding_batch_size=True should be an integer"),
        ({"s3_bucket": 123}, "s3_bucket=123 should be a string or null"),
        ({"embedding_dimensions": "64"}, "embedding_dimensions='64' should be an integer or null"),
        ({"storage_type": 3}, "storage_type=3 should be one of local, s3, memory"),
        ({"local_path": None}, "local_path=None should be a string"),
    ],
)
def test_each_invalid_field_is_rejected_with_a_precise_message(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)) as info:
        VectorDBConfig(**kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith("invalid configuration: ")


def test_every_bad_field_is_named_in_one_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        VectorDBConfig(
            storage_type="ftp",
            chunk_size=0,
            chunk_overlap=-1,
            embedding_batch_size=0,
            distance_metric=3,  # type: ignore[arg-type]
            index_type="lsh",
            s3_bucket="ab",
            s3_max_attempts="many",  # type: ignore[arg-type]
        )
    message = str(info.value)
    expected = [
        "storage_type='ftp' must be one of",
        "chunk_size=0 must be positive",
        "chunk_overlap=-1 must be zero or positive",
        "embedding_batch_size=0 must be positive",
        "distance_metric=3 should be one of cosine, l2, inner_product",
        "index_type='lsh' must be one of",
        "s3_bucket='ab' must be 3 to 63 characters long",
        "s3_max_attempts='many' should be an integer",
    ]
    for fragment in expected:
        assert fragment in message, fragment
    # the problems are joined into a single message, one "; "-separated entry each
    assert message.count("; ") >= len(expected) - 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"s3_bucket": "abc"},
        {"s3_bucket": "b" * 63},
        {"chunk_size": 100, "chunk_overlap": 99},
        {"chunk_size": 1, "chunk_overlap": 0},
        {"storage_type": "memory", "local_path": ""},
        {"storage_type": "s3", "s3_bucket": "bucket", "local_path": ""},
        {"s3_sse": "AES256"},
        {"s3_sse": "aws:kms", "s3_kms_key_id": "arn:aws:kms:key"},
        {"embedding_dimensions": 1},
        {"index_type": "auto", "distance_metric": "l2"},
    ],
)
def test_boundary_values_are_accepted(kwargs: dict[str, object]) -> None:
    config = VectorDBConfig(**kwargs)  # type: ignore[arg-type]
    for name, value in kwargs.items():
        assert getattr(config, name) == value


# -- replace / to_dict / secrets --------------------------------------------------------


def test_replace_returns_a_changed_copy_and_keeps_the_original() -> None:
    original = VectorDBConfig(chunk_size=500, chunk_overlap=100)
    changed = original.replace(chunk_size=800, index_type="hnsw")
    assert changed.chunk_size == 800
    assert changed.index_type == "hnsw"
    assert changed.chunk_overlap == 100
    assert original.chunk_size == 500
    assert original.index_type == "flat"


def test_replace_validates_again() -> None:
    config = VectorDBConfig(chunk_size=500, chunk_overlap=100)
    with pytest.raises(
        ConfigurationError, match="chunk_overlap=100 must be smaller than chunk_size=50"
    ):
        config.replace(chunk_size=50)


def test_replace_rejects_unknown_fields() -> None:
    with pytest.raises(TypeError):
        VectorDBConfig().replace(colour="red")


def test_secret_is_not_in_repr_or_str() -> None:
    config = VectorDBConfig(embedding_provider="openai", openai_api_key="sk-very-secret-123")
    assert "sk-very-secret-123" not in repr(config)
    assert "sk-very-secret-123" not in str(config)
    assert "openai_api_key" not in repr(config)
    # the other fields are still shown
    assert "embedding_provider='openai'" in repr(config)
    assert config.openai_api_key == "sk-very-secret-123"


def test_to_dict_leaves_secrets_out_unless_asked() -> None:
    config = VectorDBConfig(openai_api_key="sk-secret", chunk_size=300, chunk_overlap=30)
    public = config.to_dict()
    assert "openai_api_key" not in public
    assert public["chunk_size"] == 300
    assert set(public) == set(ALL_FIELDS) - {"openai_api_key"}
    full = config.to_dict(include_secrets=True)
    assert full["openai_api_key"] == "sk-secret"
    assert set(full) == set(ALL_FIELDS)


def test_to_dict_round_trips_through_from_dict() -> None:
    config = VectorDBConfig(
        storage_type="s3", s3_bucket="bucket", openai_api_key="sk-x", chunk_size=10, chunk_overlap=2
    )
    assert VectorDBConfig.from_dict(config.to_dict(include_secrets=True)) == config
    without_secret = VectorDBConfig.from_dict(config.to_dict())
    assert without_secret.openai_api_key is None
    assert without_secret == config.replace(openai_api_key=None)


# -- from_dict --------------------------------------------------------------------------


def test_from_dict_builds_a_config() -> None:
    config = VectorDBConfig.from_dict(
        {"storage_type": "memory", "chunk_size": 256, "chunk_overlap": 0}
    )
    assert config == VectorDBConfig(storage_type="memory", chunk_size=256, chunk_overlap=0)


def test_from_dict_empty_gives_defaults() -> None:
    assert VectorDBConfig.from_dict({}) == VectorDBConfig()


def test_from_dict_accepts_any_mapping() -> None:
    data = types.MappingProxyType({"index_type": "ivf"})
    assert VectorDBConfig.from_dict(data).index_type == "ivf"


def test_from_dict_rejects_unknown_keys_and_lists_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        VectorDBConfig.from_dict(
            {"chunk_size": 10, "chunk_overlap": 1, "colour": "red", "bogus": 1}
        )
    message = str(info.value)
    assert "unknown configuration key(s) 'bogus', 'colour';" in message
    assert "valid keys are: " + ", ".join(ALL_FIELDS) in message


def test_from_dict_rejects_a_non_mapping() -> None:
    with pytest.raises(
        ConfigurationError, match="must be a mapping of field names to values, got list"
    ):
        VectorDBConfig.from_dict([("chunk_size", 10)])  # type: ignore[arg-type]


def test_from_dict_validates_values() -> None:
    with pytest.raises(ConfigurationError, match="chunk_size='big' should be an integer"):
        VectorDBConfig.from_dict({"chunk_size": "big"})


# -- from_env ---------------------------------------------------------------------------


def test_from_env_reads_prefixed_variables_and_converts_ints() -> None:
    env = {
        "VECTORDB_STORAGE_TYPE": "memory",
        "VECTORDB_CHUNK_SIZE": "500",
        "VECTORDB_CHUNK_OVERLAP": " 50 ",
        "VECTORDB_EMBEDDING_DIMENSIONS": "128",
        "VECTORDB_EMBEDDING_PROVIDER": "fake",
        "VECTORDB_S3_MAX_ATTEMPTS": "7",
        "UNRELATED": "x",
        "OTHER_CHUNK_SIZE": "1",
    }
    config = VectorDBConfig.from_env(environ=env)
    assert config.storage_type == "memory"
    assert config.chunk_size == 500
    assert isinstance(config.chunk_size, int)
    assert config.chunk_overlap == 50
    assert config.embedding_dimensions == 128
    assert config.embedding_provider == "fake"
    assert config.s3_max_attempts == 7
    assert config.index_type == "flat"  # untouched default


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_FIELDS:
        monkeypatch.delenv("VECTORDB_" + name.upper(), raising=False)
    monkeypatch.setenv("VECTORDB_CHUNK_SIZE", "321")
    monkeypatch.setenv("VECTORDB_CHUNK_OVERLAP", "21")
    monkeypatch.setenv("VECTORDB_OPENAI_API_KEY", "sk-env")
    config = VectorDBConfig.from_env()
    assert config.chunk_size == 321
    assert config.chunk_overlap == 21
    assert config.openai_api_key == "sk-env"


def test_from_env_with_no_variables_gives_defaults() -> None:
    assert VectorDBConfig.from_env(environ={}) == VectorDBConfig()


def test_from_env_custom_prefix() -> None:
    env = {"MYAPP_INDEX_TYPE": "hnsw", "VECTORDB_INDEX_TYPE": "ivf"}
    assert VectorDBConfig.from_env(prefix="MYAPP_", environ=env).index_type == "hnsw"
    assert VectorDBConfig.from_env(environ=env).index_type == "ivf"


@pytest.mark.parametrize("raw", ["", "none", "None", "NULL", "  null "])
def test_from_env_optional_fields_accept_null_spellings(raw: str) -> None:
    env = {"VECTORDB_EMBEDDING_DIMENSIONS": raw, "VECTORDB_S3_BUCKET": raw}
    config = VectorDBConfig.from_env(environ=env)
    assert config.embedding_dimensions is None
    assert config.s3_bucket is None


def test_from_env_non_optional_strings_stay_strings() -> None:
    env = {"VECTORDB_S3_PREFIX": "", "VECTORDB_LOCAL_PATH": "/data/none"}
    config = VectorDBConfig.from_env(environ=env)
    assert config.s3_prefix == ""
    assert config.local_path == "/data/none"


def test_env_overrides_returns_only_the_set_fields() -> None:
    env = {
        "VECTORDB_CHUNK_SIZE": "42",
        "VECTORDB_S3_BUCKET": "bucket",
        "VECTORDB_AWS_REGION": "null",
    }
    assert VectorDBConfig.env_overrides(environ=env) == {
        "chunk_size": 42,
        "s3_bucket": "bucket",
        "aws_region": None,
    }


@pytest.mark.parametrize("raw", ["abc", "5.0", "1e3", ""])
def test_from_env_names_the_variable_that_is_not_an_integer(raw: str) -> None:
    env = {"VECTORDB_CHUNK_SIZE": raw}
    expected = f"invalid environment: VECTORDB_CHUNK_SIZE={raw!r}: expected an integer"
    with pytest.raises(ConfigurationError, match=re.escape(expected)):
        VectorDBConfig.from_env(environ=env)


def test_from_env_names_every_bad_variable_at_once() -> None:
    env = {
        "VECTORDB_CHUNK_SIZE": "big",
        "VECTORDB_EMBEDDING_BATCH_SIZE": "lots",
        "VECTORDB_INDEX_TYPE": "hnsw",
    }
    with pytest.raises(ConfigurationError) as info:
        VectorDBConfig.from_env(environ=env)
    message = str(info.value)
    assert "VECTORDB_CHUNK_SIZE='big': expected an integer" in message
    assert "VECTORDB_EMBEDDING_BATCH_SIZE='lots': expected an integer" in message
    assert "INDEX_TYPE" not in message


def test_from_env_uses_the_custom_prefix_in_errors() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("APP_CHUNK_OVERLAP='x'")):
        VectorDBConfig.from_env(prefix="APP_", environ={"APP_CHUNK_OVERLAP": "x"})


def test_from_env_converted_values_are_still_validated() -> None:
    env = {"VECTORDB_CHUNK_SIZE": "-5", "VECTORDB_STORAGE_TYPE": "ftp"}
    with pytest.raises(ConfigurationError) as info:
        VectorDBConfig.from_env(environ=env)
    assert "chunk_size=-5 must be positive" in str(info.value)
    assert "storage_type='ftp' must be one of local, s3, memory" in str(info.value)


# -- keyword and hybrid search settings ------------------------------------------------------
def test_search_mode_and_analyzer_defaults() -> None:
    config = VectorDBConfig()
    assert config.search_mode == "vector"
    assert config.text_analyzer() is None  # the store's own analyzer


def test_setting_one_text_field_chooses_an_analyzer_with_defaults_for_the_rest() -> None:
    from vectordb_manager.engine.analyzer import Analyzer

    assert VectorDBConfig(text_stemming=False).text_analyzer() == Analyzer("english", False, True)
    assert VectorDBConfig(text_language="german", text_stopwords=False).text_analyzer() == (
        Analyzer("german", True, False)
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"search_mode": "semantic"}, "search_mode='semantic' must be one of vector, keyword, hybrid"),
        ({"text_language": "klingon"}, "text_language='klingon': unknown analyzer language"),
        ({"text_language": "  "}, "text_language must not be empty"),
        ({"text_stemming": "no"}, "text_stemming='no' should be true or false or null"),
        ({"text_stopwords": 1}, "text_stopwords=1 should be true or false or null"),
    ],
)
def test_bad_search_settings_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        VectorDBConfig(**changes)


def test_bad_search_settings_are_named_together() -> None:
    with pytest.raises(ConfigurationError) as info:
        VectorDBConfig(search_mode="x", text_language="klingon", chunk_size=0)
    assert all(name in str(info.value) for name in ("search_mode", "text_language", "chunk_size"))


def test_search_settings_from_the_environment() -> None:
    config = VectorDBConfig.from_env(
        environ={
            "VECTORDB_SEARCH_MODE": "hybrid",
            "VECTORDB_TEXT_LANGUAGE": "french",
            "VECTORDB_TEXT_STEMMING": "false",
            "VECTORDB_TEXT_STOPWORDS": "Yes",
        }
    )
    assert (config.search_mode, config.text_language) == ("hybrid", "french")
    assert (config.text_stemming, config.text_stopwords) == (False, True)
    assert VectorDBConfig.from_env(environ={"VECTORDB_TEXT_STEMMING": "none"}).text_stemming is None
    with pytest.raises(ConfigurationError, match="VECTORDB_TEXT_STEMMING='maybe': expected true or false"):
        VectorDBConfig.from_env(environ={"VECTORDB_TEXT_STEMMING": "maybe"})
