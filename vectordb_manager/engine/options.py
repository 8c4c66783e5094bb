"""The settings a store is opened with, named once: distances, index types and defaults.

The engine, the stores, `VectorDBConfig` and the command line all take their choices and
defaults from here (this module imports nothing heavy, so the configuration can use it).
"""

from __future__ import annotations

from typing import Literal, cast, get_args

Distance = Literal["cosine", "l2", "inner_product"]
IndexType = Literal["flat", "hnsw", "ivf", "auto"]

DISTANCES: tuple[str, ...] = get_args(Distance)
"""``cosine`` (vectors normalised, inner product), ``l2`` (Euclidean), ``inner_product``."""

INDEX_TYPES: tuple[str, ...] = get_args(IndexType)
"""``flat`` (exact), ``hnsw`` (graph), ``ivf`` (inverted lists), ``auto`` (flat, then HNSW)."""



class Unchosen(str):
    """A default the caller did not choose. It equals its plain value everywhere, but a store
    opened with it takes the setting recorded in the store instead; a value the caller chose
    (a plain ``str``) must match the store's."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(str(self))


def chosen(value: str) -> bool:
    """Whether the caller chose ``value`` (rather than leaving the default in place)."""
    return not isinstance(value, Unchosen)


DEFAULT_DISTANCE: Distance = cast(Distance, Unchosen("cosine"))
"""``cosine`` for a new store; an existing store keeps the distance it records."""
DEFAULT_INDEX: IndexType = cast(IndexType, Unchosen("flat"))
"""``flat`` for a new store; an existing store keeps the index type it records."""
DEFAULT_BATCH_SIZE = 64
"""Texts per call to the embedding model."""
DEFAULT_COMMIT_ATTEMPTS = 32
"""Manifest versions a writer may lose to other writers before giving up."""
