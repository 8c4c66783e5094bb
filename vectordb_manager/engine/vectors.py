"""Vectors coming in: rows to store and query vectors, checked and shaped for the index.

For ``cosine`` stores, vectors are stored and searched L2-normalised (inner product of unit
vectors), so an all-zero vector, which has no direction, is refused. Every vector must be
finite and of the store's dimension, at most `MAX_DIMENSION`. `check_vectors` checks what an
embedding model returned (count, one dimension, finite numbers), for the embedding service
and for ``vectordb search``, which embeds its query without LangChain.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from vectordb_manager.engine.format import Vectors
from vectordb_manager.engine.limits import MAX_DIMENSION
from vectordb_manager.errors import DimensionMismatchError, EmbeddingError, InvalidInputError


def prepare_rows(vectors: Vectors, distance: str) -> Vectors:
    """Rows to store: C-contiguous float32, normalised for ``cosine``."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if distance == "cosine" and len(vectors):
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(norms > 0):
            bad = int(np.argmin(norms[:, 0]))
            raise InvalidInputError(
                f"vector {bad} is all zeros, which has no direction for cosine distance; "
                "check the embedding model's output or use distance='l2'"
            )
        vectors = vectors / norms
    return vectors


def check_dimension(dim: int, known: int | None) -> None:
    """`DimensionMismatchError` unless vectors of ``dim`` fit a store of dimension ``known``."""
    if dim > MAX_DIMENSION:
        raise DimensionMismatchError(
            f"vectors have dimension {dim}; a store holds at most {MAX_DIMENSION} "
            "dimensions. Use an embedding model with fewer dimensions"
        )
    if known is not None and dim != known:
        raise DimensionMismatchError(
            f"vectors have dimension {dim} but the store's is {known}; "
            "use the embedding model the store was built with"
        )


@functools.lru_cache(maxsize=8)
def _packer(length: int) -> struct.Struct:
    """Packs ``length`` floats as float32 (`OverflowError` past float32's range)."""
    return struct.Struct(f"={length}f")


def prepare_query(
    vector: Sequence[float] | Vectors, distance: str, known: int | None, *, checked: bool = False
) -> Vectors | None:
    """A query vector as shape (1, d), normalised for ``cosine``; ``None`` if the store has no
    dimension yet (it is empty). ``checked``: it comes from the embedding service, which has
    already checked that it is a finite float32 vector."""
    try:
        if type(vector) is list:  # the usual query: a list of floats, packed in C (flat)
            size = len(vector)
            shape: tuple[int, ...] = (size,)
            q = np.empty((1, size), np.float32)
            _packer(size).pack_into(q, 0, *vector)  # type: ignore[arg-type]  # (a buffer)
            own = True  # (a new array: normalised in place)
        else:
            q = np.asarray(vector, dtype=np.float32)
            shape, size = q.shape, q.size if q.ndim == 1 else 0
            q = np.ascontiguousarray(q.reshape(1, -1))  # (a strided view: FAISS reads it whole)
            own = False  # (perhaps the caller's own array)
    except (TypeError, ValueError, OverflowError, struct.error) as exc:
        raise InvalidInputError(
            f"a query vector must be a flat list of numbers ({exc}); embed the query "
            "with the store's embedding model"
        ) from None
    if size == 0:
        raise InvalidInputError(
            f"a query vector must be a flat list of floats, got shape {shape}"
        )
    norms = _NORMS or _faiss_norms()
    at = norms.pointer(q)
    square = norms.square(at, size)  # (NaN or infinity makes it so)
    if not checked and not math.isfinite(square) and not np.isfinite(q).all():
        raise InvalidInputError("the query vector contains NaN or infinite values")
    if known is None:
        return None
    if size != known:
        raise DimensionMismatchError(
            f"the query vector has dimension {size} but the store's is {known}; "
            "embed the query with the model the store was built with"
        )
    if distance == "cosine":
        if square == 0.0:
            raise InvalidInputError(
                "the query vector is all zeros; cosine distance needs a direction"
            )
        if square != 1.0:  # (a model's unit vector, often: dividing by 1.0 changes nothing)
            if not own:
                q = q.copy()
                at = norms.pointer(q)
            norms.normalize(size, 1, at)
    return q


class _Norms(NamedTuple):
    """FAISS's own functions for one query's squared norm and its normalisation in place,
    called with the array's address: with cold caches (a search after the query's embedding)
    NumPy's ``vdot`` and a division took 10 us of a 200 us search over 2,000 vectors, these
    two calls 2 us. The module's raw functions where it has them, else their wrappers."""

    pointer: Any  # swig_ptr
    square: Any  # fvec_norm_L2sqr(x, d)
    normalize: Any  # fvec_renorm_L2(d, n, x)


_NORMS: _Norms | None = None  # found on first use (this module is imported without FAISS)


def _faiss_norms() -> _Norms:
    global _NORMS  # noqa: PLW0603 (set once; read without a call on every query)
    from vectordb_manager.engine.rows import raw_function

    _NORMS = _Norms(*map(raw_function, ("swig_ptr", "fvec_norm_L2sqr", "fvec_renorm_L2")))
    return _NORMS


_VECTOR_TYPES = frozenset((list, tuple, np.ndarray))


def check_vectors(
    vectors: Any,
    expected: int,
    dimension: int | None,
    source: str | None = None,
    learn: Any = None,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Validate vectors into a float32 array: count, one dimension, finite values."""
    who = f"embedding model {source!r}" if source else "the vectors"
    try:
        count = len(vectors)
    except TypeError:
        raise EmbeddingError(
            f"{who} returned {type(vectors).__name__}, not a list of vectors"
        ) from None
    if count != expected:
        raise EmbeddingError(f"{who} returned {count} vectors for {expected} texts")
    if count == 0:
        return np.zeros((0, dimension or 0), dtype=np.float32)
    if not _VECTOR_TYPES.issuperset(map(type, vectors)) and any(  # (the common case in C)
        isinstance(v, str | bytes) or not hasattr(v, "__len__") for v in vectors
    ):
        raise EmbeddingError(f"{who} returned items that are not vectors (lists of floats)")
    lengths = set(map(len, vectors))
    if len(lengths) > 1:
        raise DimensionMismatchError(
            f"{who} returned vectors of different lengths {sorted(lengths)}; "
            "every vector must have the same dimension"
        )
    (dim,) = lengths
    if dimension is not None and dim != dimension:
        if source:
            raise DimensionMismatchError(
                f"{who} returned {dim}-dimensional vectors but {dimension} were expected; "
                "use the model the store was built with"
            )
        raise DimensionMismatchError(
            f"the vectors have dimension {dim} but the store's is {dimension}; "
            "use the embedding model the store was built with"
        )
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbeddingError(f"{who} returned values that are not numbers: {exc}") from exc
    if array.ndim != 2 or dim == 0:
        raise EmbeddingError(f"{who} returned empty vectors")
    if not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array))[0][0])
        raise EmbeddingError(
            f"{who} returned NaN or infinite values (first in vector {bad}); "
            "check the model and the input text"
        )
    if learn is not None and dimension is None:
        learn(dim)
    return array


def model_failure(model: str | None, exc: Exception) -> str:
    """The message of an `EmbeddingError` for ``exc``, raised by the model named ``model``."""
    return f"embedding model {model!r} failed: {type(exc).__name__}: {exc}"
