"""The settings a store is opened with, named once: distances, index types and defaults.

The engine, the stores, `VectorDBConfig` and the command line all take their choices and
defaults from here (this module imports nothing heavy, so the configuration can use it).
"""

from __future__ import annotations

from typing import Literal, get_args

Distance = Literal["cosine", "l2", "inner_product"]
IndexType = Literal["flat", "hnsw", "ivf", "auto"]

DISTANCES: tuple[str, ...] = get_args(Distance)
"""``cosine`` (vectors normalised, inner product), ``l2`` (Euclidean), ``inner_product``."""

INDEX_TYPES: tuple[str, ...] = get_args(IndexType)
"""``flat`` (exact), ``hnsw`` (graph), ``ivf`` (inverted lists), ``auto`` (flat, then HNSW)."""

DEFAULT_DISTANCE: Distance = "cosine"
DEFAULT_INDEX: IndexType = "flat"
DEFAULT_BATCH_SIZE = 64
"""Texts per call to the embedding model."""
DEFAULT_COMMIT_ATTEMPTS = 32
"""Manifest versions a writer may lose to other writers before giving up."""
