"""Vectors coming in: rows to store and query vectors, checked and shaped for the index.

For ``cosine`` stores, vectors are stored and searched L2-normalised (inner product of unit
vectors), so an all-zero vector, which has no direction, is refused. Every vector must be
finite and of the store's dimension, at most `MAX_DIMENSION`.
"""

from __future__ import annotations

import array
import math
from collections.abc import Sequence

import numpy as np

from vectordb_manager.engine.format import Vectors
from vectordb_manager.engine.limits import MAX_DIMENSION
from vectordb_manager.errors import DimensionMismatchError, InvalidInputError


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


def prepare_query(
    vector: Sequence[float] | Vectors, distance: str, known: int | None, *, checked: bool = False
) -> Vectors | None:
    """A query vector as shape (1, d), normalised for ``cosine``; ``None`` if the store has no
    dimension yet (it is empty). ``checked``: it comes from the embedding service, which has
    already checked that it is a finite float32 vector."""
    try:
        if type(vector) is list:  # the usual query: a list of floats, converted in C
            q = np.frombuffer(array.array("f", vector), dtype=np.float32)
        else:
            q = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(
            f"a query vector must be a flat list of numbers ({exc}); embed the query "
            "with the store's embedding model"
        ) from None
    if q.ndim != 1 or q.size == 0:
        raise InvalidInputError(
            f"a query vector must be a flat list of floats, got shape {q.shape}"
        )
    if not checked and not np.isfinite(q).all():
        raise InvalidInputError("the query vector contains NaN or infinite values")
    if known is None:
        return None
    if q.shape[0] != known:
        raise DimensionMismatchError(
            f"the query vector has dimension {q.shape[0]} but the store's is {known}; "
            "embed the query with the model the store was built with"
        )
    if distance == "cosine":
        norm = math.sqrt(float(np.dot(q, q)))
        if norm == 0.0:
            raise InvalidInputError(
                "the query vector is all zeros; cosine distance needs a direction"
            )
        q = q / norm
    return q.reshape(1, -1)
