"""The package and its subpackages import their public names on first use (PEP 562): importing
them loads none of LangChain, FAISS or NumPy, and every public name is still there (``from
vectordb_manager import X``, attribute access, ``dir()``), the very object its module defines.
What a fresh interpreter imports is checked in a subprocess."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib import metadata

import pytest

import vectordb_manager

HEAVY = ("langchain_core", "langsmith", "faiss", "numpy", "torch", "transformers", "boto3",
         "temporalio")
# (importing temporalio is safe here: only its runtime's threads, started by a client or a
# worker, trouble an interpreter's exit; see tests/temporal_support.py)
PACKAGES = ("vectordb_manager", "vectordb_manager.vectorstores", "vectordb_manager.processing",
            "vectordb_manager.workflows")


def loaded_after(code: str) -> list[str]:
    """The heavy top-level packages a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, check=True)
    modules = json.loads(result.stdout.splitlines()[-1])
    return [m for m in modules if m in HEAVY]


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_loads_nothing_heavy(package: str) -> None:
    assert loaded_after(f"import {package}") == []


def test_the_configuration_and_errors_load_nothing_heavy() -> None:
    code = "from vectordb_manager import VectorDBConfig, VectorDBError, StorageError\nVectorDBConfig()"
    assert loaded_after(code) == []


def test_a_store_name_loads_what_the_store_needs() -> None:
    assert {"langchain_core", "faiss", "numpy"} <= set(
        loaded_after("from vectordb_manager import LocalVectorStore")
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_importable_listed_and_the_defining_object(package: str) -> None:
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert set(names) <= set(dir(module))
    for name in names:
        value = getattr(module, name)
        namespace: dict[str, object] = {}
        exec(f"from {package} import {name} as imported", namespace)
        assert namespace["imported"] is value
        defined_in = getattr(value, "__module__", None)
        if defined_in is not None and defined_in.startswith("vectordb_manager"):
            home = importlib.import_module(defined_in)
            assert getattr(home, name) is value, (package, name)


def test_the_root_exposes_exactly_the_documented_names() -> None:
    fresh = subprocess.run(
        [sys.executable, "-c", "import json, vectordb_manager as v\n"
         "print(json.dumps([sorted(v.__all__), [n for n in v.__all__ if n not in dir(v)]]))"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    listed, missing_from_dir = json.loads(fresh.stdout)
    assert missing_from_dir == [] and "VectorDatabaseManager" in listed and "LocalVectorStore" in listed


@pytest.mark.parametrize("package", PACKAGES)
def test_an_unknown_name_is_an_attribute_error(package: str) -> None:
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'NoSuchName'"):
        module.NoSuchName  # noqa: B018
    with pytest.raises(ImportError, match="NoSuchName"):
        exec(f"from {package} import NoSuchName")


def test_version_is_the_installed_distributions() -> None:
    assert vectordb_manager.__version__ == metadata.version("vectordb-manager")
