"""Reading the pickle LangChain's FAISS store writes (``index.pkl``) without running code.

``FAISS.save_local`` pickles ``(docstore, index_to_docstore_id)``: an ``InMemoryDocstore``
of ``Document``s and a dict from index position to docstore id. Unpickling can import and
call anything the file names, so `SafeUnpickler` admits only what such a pickle needs and
refuses everything else from ``find_class``, *before* it is imported, so no ``__reduce__``
payload ever runs:

- ``InMemoryDocstore`` and ``Document`` (under their current and past module paths) become
  inert stand-ins that keep the state the pickle gives them; no LangChain code runs. Pydantic
  (v1 and v2) pickles a model as its plain state, so no pydantic name appears;
- ``datetime``'s date and time classes, ``set``/``frozenset`` and ``OrderedDict`` are the
  real ones: building them runs no user code; so is ``object``, for
  ``copyreg._reconstructor`` (how protocols 0 and 1 build objects), which builds stand-ins
  only.

``trusted`` (``allow_dangerous_deserialization=True``) means the caller trusts the file, as
LangChain's own ``load_local`` demands: names outside that list are then imported and called
as the pickle asks.
"""

from __future__ import annotations

import datetime
import io
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

from vectordb_manager.errors import InvalidInputError, UnsafePickleError

__all__ = [
    "ALLOWED",
    "PickledDocstore",
    "PickledDocument",
    "SafeUnpickler",
    "UnsafePickleError",
    "load_docstore",
]

_DANGEROUS_HINT = (
    "If you wrote this file yourself and trust it, pass allow_dangerous_deserialization=True "
    "(command line: --allow-dangerous-deserialization), which lets the pickle import and run "
    "what it names, as LangChain's FAISS.load_local does"
)


class _Pickled:
    """An inert stand-in for a class the pickle names: it keeps the state it is given."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class PickledDocstore(_Pickled):
    """Stands in for LangChain's ``InMemoryDocstore`` (state: ``{"_dict": {id: Document}}``)."""

    __slots__ = ()


class PickledDocument(_Pickled):
    """Stands in for LangChain's ``Document``; pydantic (v1 and v2) pickles its fields as
    ``{"__dict__": {"page_content": ..., "metadata": ..., "id": ...}, ...}``."""

    __slots__ = ()


_DOCSTORE_MODULES = ("langchain_community.docstore.in_memory", "langchain.docstore.in_memory")
_DOCUMENT_MODULES = (
    "langchain_core.documents.base",  # langchain-core (what FAISS.save_local writes today)
    "langchain_core.documents",
    "langchain.schema.document",  # langchain < 0.1
    "langchain.schema",  # langchain < 0.0.300
    "langchain.docstore.document",
)


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` (how protocols 0 and 1 build objects), for stand-ins only."""
    if not (isinstance(cls, type) and issubclass(cls, _Pickled)) or base is not object:
        raise UnsafePickleError(
            f"copyreg._reconstructor is asked to build {cls!r} from {base!r}; only LangChain's "
            f"docstore and document classes may be built. {_DANGEROUS_HINT}"
        )
    return cls.__new__(cls)


ALLOWED: dict[tuple[str, str], Any] = {
    **{(m, "InMemoryDocstore"): PickledDocstore for m in _DOCSTORE_MODULES},
    **{(m, "Document"): PickledDocument for m in _DOCUMENT_MODULES},
    **{
        ("datetime", c.__name__): c
        for c in (
            datetime.datetime,
            datetime.date,
            datetime.time,
            datetime.timedelta,
            datetime.timezone,
        )
    },
    # protocol 2 writes sets through their constructor, under Python 2's module name
    **{(m, c.__name__): c for m in ("builtins", "__builtin__") for c in (set, frozenset)},
    ("collections", "OrderedDict"): OrderedDict,
    # protocols 0 and 1 build objects with copyreg._reconstructor(cls, object, None)
    **{(m, "_reconstructor"): _reconstructor for m in ("copyreg", "copy_reg")},
    **{(m, "object"): object for m in ("builtins", "__builtin__")},
}
"""What a LangChain docstore pickle may name: ``(module, name)`` to what it is loaded as."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that loads only `ALLOWED` names (unless ``trusted``) and no persistent ids.

    A refused name raises `UnsafePickleError` from ``find_class``, before anything is imported
    or called, so a ``__reduce__`` payload never runs.
    """

    def __init__(self, file: IO[bytes], *, source: str, trusted: bool = False) -> None:
        super().__init__(file)
        self.source = source
        self.trusted = trusted

    def find_class(self, module: str, name: str) -> Any:
        allowed = ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        if self.trusted:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self.source} names {module}.{name}, which a LangChain FAISS docstore does not "
            f"need; it was not loaded (loading it could run code). {_DANGEROUS_HINT}"
        )


def load_docstore(data: bytes, path: Path, *, trusted: bool = False) -> tuple[Any, Any]:
    """``(docstore, index_to_docstore_id)`` from the pickle ``data`` read from ``path``.

    Raises:
        UnsafePickleError: it names something outside `ALLOWED` (and not ``trusted``).
        InvalidInputError: it is damaged, or not such a pair.
    """
    try:
        loaded = SafeUnpickler(io.BytesIO(data), source=str(path), trusted=trusted).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # a damaged pickle fails in many ways; all mean the same
        raise InvalidInputError(
            f"cannot read {path}: {type(exc).__name__}: {str(exc)[:200]}; the file is damaged "
            "or was not written by LangChain's FAISS.save_local"
        ) from None
    if not isinstance(loaded, tuple) or len(loaded) != 2:
        raise InvalidInputError(
            f"{path} holds {type(loaded).__name__}, not the (docstore, index_to_docstore_id) "
            "pair FAISS.save_local writes; is it a LangChain FAISS directory?"
        )
    return loaded[0], loaded[1]
