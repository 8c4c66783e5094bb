"""Public names imported on first use (PEP 562), for the package and its subpackages.

``import vectordb_manager`` would otherwise load LangChain's tracing, FAISS and NumPy before
the first line of a script runs (two thirds of a second), although a command such as
``vectordb --version`` or a script that only builds a `VectorDBConfig` needs none of them.
A package lists its public names with the module defining each; `attach` returns the
module-level ``__getattr__`` and ``__dir__`` that import a name's module the first time the
name is looked up (``from vectordb_manager import X`` included) and keep it in the package,
so later look-ups cost nothing. Type checkers see the same names through ``if
TYPE_CHECKING:`` imports in the package; the package defines ``__getattr__`` only when not
type checking, so that a misspelt name is still an error to them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def attach(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose lazy public ``names`` map each
    name to the module that defines it."""
    table = dict(names)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # found directly from now on
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *table})

    return __getattr__, __dir__
