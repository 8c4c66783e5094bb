"""Unit tests for `VectorDBConfig.from_file` and `load_config_file`: JSON, TOML and YAML files,
a nested ``vectordb`` table, and every way a file can be wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vectordb_manager.config import VectorDBConfig, load_config_file
from vectordb_manager.errors import ConfigurationError


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_from_file_json(tmp_path: Path) -> None:
    data = {"storage_type": "memory", "chunk_size": 400, "chunk_overlap": 40, "index_type": "hnsw"}
    path = _write(tmp_path / "config.json", json.dumps(data))
    config = VectorDBConfig.from_file(path)
    assert config == VectorDBConfig(**data)  # type: ignore[arg-type]


def test_from_file_toml(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "config.toml",
        'storage_type = "s3"\ns3_bucket = "my-bucket"\nchunk_size = 700\nchunk_overlap = 70\n',
    )
    config = VectorDBConfig.from_file(path)
    assert config.storage_type == "s3"
    assert config.s3_bucket == "my-bucket"
    assert config.chunk_size == 700
    assert config.chunk_overlap == 70


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_from_file_yaml(tmp_path: Path, suffix: str) -> None:
    path = _write(
        tmp_path / f"config{suffix}",
        "embedding_provider: fake\n"
        "embedding_dimensions: 16\n"
        "distance_metric: l2\n"
        "s3_bucket: null\n",
    )
    config = VectorDBConfig.from_file(str(path))
    assert config.embedding_provider == "fake"
    assert config.embedding_dimensions == 16
    assert config.distance_metric == "l2"
    assert config.s3_bucket is None


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("nested.json", '{"vectordb": {"chunk_size": 123, "chunk_overlap": 3}}'),
        ("nested.toml", "[vectordb]\nchunk_size = 123\nchunk_overlap = 3\n"),
        ("nested.yaml", "vectordb:\n  chunk_size: 123\n  chunk_overlap: 3\n"),
    ],
)
def test_from_file_unwraps_a_nested_vectordb_table(tmp_path: Path, name: str, text: str) -> None:
    config = VectorDBConfig.from_file(_write(tmp_path / name, text))
    assert config.chunk_size == 123
    assert config.chunk_overlap == 3


def test_from_file_vectordb_table_next_to_other_keys_is_not_unwrapped(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.toml", "chunk_size = 10\nchunk_overlap = 1\n[vectordb]\nindex_type = 'hnsw'\n"
    )
    with pytest.raises(ConfigurationError, match=r"unknown configuration key\(s\) 'vectordb'"):
        VectorDBConfig.from_file(path)


def test_from_file_empty_yaml_gives_defaults(tmp_path: Path) -> None:
    assert VectorDBConfig.from_file(_write(tmp_path / "empty.yaml", "")) == VectorDBConfig()


@pytest.mark.parametrize("name", ["config.ini", "config.txt", "config"])
def test_from_file_rejects_unknown_extensions(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / name, "chunk_size = 10\n")
    suffix = Path(name).suffix
    with pytest.raises(
        ConfigurationError,
        match=re.escape(f"has an unknown extension {suffix!r}; use .json, .toml, .yaml or .yml"),
    ):
        VectorDBConfig.from_file(path)


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("bad.json", '{"chunk_size": 10,', "json"),
        ("bad.toml", "chunk_size = = 10\n", "toml"),
        ("bad.yaml", "chunk_size: [1, 2\n", "yaml"),
        ("bad.yml", "a: b: c\n", "yml"),
    ],
)
def test_from_file_reports_invalid_syntax(tmp_path: Path, name: str, text: str, kind: str) -> None:
    path = _write(tmp_path / name, text)
    with pytest.raises(
        ConfigurationError, match=re.escape(f"{name} is not valid {kind}: ")
    ) as info:
        VectorDBConfig.from_file(path)
    assert info.value.__cause__ is not None


def test_from_file_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigurationError, match=r"cannot read configuration file .*nope\.json"):
        VectorDBConfig.from_file(path)


@pytest.mark.parametrize(
    ("name", "text"),
    [("list.json", "[1, 2, 3]"), ("scalar.yaml", "just a string\n"), ("num.json", "5")],
)
def test_from_file_requires_a_table(tmp_path: Path, name: str, text: str) -> None:
    path = _write(tmp_path / name, text)
    with pytest.raises(ConfigurationError, match="must hold a table/object of settings"):
        VectorDBConfig.from_file(path)


def test_from_file_rejects_unknown_keys(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", "chunk_size: 10\nchunk_overlap: 1\nchunksize: 20\n")
    with pytest.raises(ConfigurationError, match=r"unknown configuration key\(s\) 'chunksize'"):
        VectorDBConfig.from_file(path)


def test_from_file_validates_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.json", json.dumps({"chunk_size": "10", "index_type": "lsh"}))
    with pytest.raises(ConfigurationError) as info:
        VectorDBConfig.from_file(path)
    assert "chunk_size='10' should be an integer" in str(info.value)
    assert "index_type='lsh' must be one of flat, hnsw, ivf, auto" in str(info.value)


def test_load_config_file_returns_the_raw_settings(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.toml", "[vectordb]\nchunk_size = 5\ncolour = 'red'\n")
    assert load_config_file(path) == {"chunk_size": 5, "colour": "red"}


def test_from_dict_reports_unknown_keys_of_mixed_types(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.yaml", "1: one\nbogus: two\n")
    with pytest.raises(ConfigurationError, match=r"unknown configuration key\(s\)"):
        VectorDBConfig.from_file(path)


def test_search_settings_from_a_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "c.toml",
        'search_mode = "keyword"\ntext_language = "spanish"\ntext_stemming = false\n',
    )
    config = VectorDBConfig.from_file(path)
    assert (config.search_mode, config.text_language, config.text_stemming) == (
        "keyword",
        "spanish",
        False,
    )
