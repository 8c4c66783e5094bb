"""Each distance's map from a distance (lower is closer) to a relevance in [0, 1] (higher is
closer), defined once over arrays (`RELEVANCE_ARRAYS`, for hybrid search's candidates) and
applied one distance at a time (`RELEVANCE`, LangChain's ``_select_relevance_score_fn``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

F64 = np.ndarray[Any, np.dtype[np.float64]]

RELEVANCE_ARRAYS: dict[str, Callable[[F64], F64]] = {
    # the distance is 1 - cosine similarity (0 to 2)
    "cosine": lambda d: np.minimum(1.0, np.maximum(0.0, 1.0 - d / 2.0)),
    # the distance is the Euclidean distance (0 to infinity)
    "l2": lambda d: 1.0 / (1.0 + np.maximum(d, 0.0)),
    # the distance is -(inner product); (1 + ip) / 2 is cosine's map for normalised vectors
    "inner_product": lambda d: np.minimum(1.0, np.maximum(0.0, (1.0 - d) / 2.0)),
}
"""`RELEVANCE` over arrays of distances (hybrid search maps every candidate at once)."""


def relevance_array(
    distance: str, custom: Callable[[float], float] | None = None
) -> Callable[[F64], F64]:
    """A store's map from distances to relevances over an array of them: the distance's own
    (`RELEVANCE_ARRAYS`) unless the store was given its own function (``custom``, applied to
    each distance)."""
    if custom is None:
        return RELEVANCE_ARRAYS[distance]
    return lambda d: np.fromiter(map(custom, d.tolist()), dtype=np.float64, count=len(d))


def _one_at_a_time(over_arrays: Callable[[F64], F64]) -> Callable[[float], float]:
    return lambda distance: float(over_arrays(np.asarray(distance, dtype=np.float64)))


RELEVANCE: dict[str, Callable[[float], float]] = {
    name: _one_at_a_time(f) for name, f in RELEVANCE_ARRAYS.items()
}
"""Each distance's map from the score ``similarity_search_with_score`` returns (a distance,
lower is closer) to the relevance ``similarity_search_with_relevance_scores`` returns (in
[0, 1], higher is closer); ``relevance_score_fn=`` on the constructor replaces it.

* ``"cosine"``: the distance is ``1 - cos`` (0 to 2); relevance ``1 - d / 2`` = ``(1 + cos) / 2``.
* ``"l2"``: the distance is the Euclidean distance ``|a - b|`` (not squared; 0 to infinity);
  relevance ``1 / (1 + d)``.
* ``"inner_product"``: the distance is ``-(a . b)``; relevance ``(1 + a . b) / 2`` clamped to
  [0, 1]: the cosine mapping when the vectors are normalised (as most models' are), so an
  identical text scores 1 under every distance.
"""
