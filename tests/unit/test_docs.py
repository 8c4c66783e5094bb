"""The documentation keeps up with the code: every option is documented."""

from __future__ import annotations

from pathlib import Path

from vectordb_manager import VectorDBConfig
from vectordb_manager.vectorstores.engine_store import STORE_OPTIONS
from vectordb_manager.vectorstores.s3 import S3_OPTIONS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_config_field_is_documented_with_its_environment_variable() -> None:
    text = (DOCS / "configuration.md").read_text()
    names = VectorDBConfig.field_names()
    assert {"local_path", "s3_bucket", "chunk_size"} <= set(names)
    for name in names:
        assert f"`{name}`" in text, name
        assert f"`VECTORDB_{name.upper()}`" in text, name


def test_every_store_option_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    assert STORE_OPTIONS and S3_OPTIONS
    for name in (*STORE_OPTIONS, *S3_OPTIONS):
        assert f"`{name}`" in text, name


def test_format_spec_names_every_section() -> None:
    from vectordb_manager.engine.format import SECTIONS

    text = (DOCS / "format.md").read_text()
    for name in SECTIONS:
        assert f"`{name}`" in text, name
