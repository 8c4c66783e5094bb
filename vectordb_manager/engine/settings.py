"""The settings a store is opened with, met with the ones its manifest records.

A caller chooses a distance, an index type and index tuning, or leaves them at their defaults
(`options.chosen` tells which). Opening an existing store takes the recorded value of each
setting the caller left alone; a chosen distance must equal the store's (vectors of another
metric would not be comparable), while a chosen index type or tuning value replaces the
recorded one from the next commit on. The embedding model's dimension and name must match the
store's. Recorded tuning is bounded (`IndexParams.check`) before FAISS sees it. The text
analyzer of the keyword index is the recorded one; a chosen one must equal it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from vectordb_manager.engine.analyzer import Analyzer
from vectordb_manager.engine.index import IndexParams
from vectordb_manager.engine.manifest import Manifest
from vectordb_manager.errors import ConfigurationError, DimensionMismatchError, IntegrityError


class Choices(NamedTuple):
    """The settings the caller chose (``None``: left at the default, the store's is taken);
    ``params``: a whole `IndexParams`, or a mapping of the fields chosen."""

    distance: str | None
    index_type: str | None
    params: IndexParams | Mapping[str, Any] | None


class Settings(NamedTuple):
    """The settings a store is opened with."""

    distance: str
    index_type: str
    params: IndexParams


def adopt(manifest: Manifest, chosen: Choices, current: Settings, where: str) -> Settings:
    """The settings to open ``manifest``'s store with: the recorded ones where the caller
    chose none. `IntegrityError` if the recorded tuning is not valid."""
    params = current.params
    if not isinstance(chosen.params, IndexParams):
        try:
            params = IndexParams.from_json({**manifest.index_params, **(chosen.params or {})})
            params.check()
        except (TypeError, ValueError) as exc:
            raise IntegrityError(
                f"the store at {where} records index tuning that is not valid ({exc}); the "
                "manifest is damaged or was not written by vectordb-manager"
            ) from None
    index_type = manifest.index if chosen.index_type is None else current.index_type
    return Settings(manifest.distance, index_type, params)


def check(
    manifest: Manifest,
    chosen: Choices,
    *,
    dimension: int | None,
    embedding_model: str | None,
    check_model: bool,
    where: str,
) -> None:
    """Refuse to open ``manifest``'s store with a chosen distance, a dimension or (when
    ``check_model``) an embedding model other than its own."""
    if chosen.distance is not None and manifest.distance != chosen.distance:
        raise ConfigurationError(
            f"the store at {where} uses distance={manifest.distance!r}; open it with "
            f"distance={manifest.distance!r}, or without a distance (it was given "
            f"{chosen.distance!r})"
        )
    if dimension is not None and manifest.dimension is not None and dimension != manifest.dimension:
        raise DimensionMismatchError(
            f"the embedding model gives {dimension}-dimensional vectors but the store at "
            f"{where} holds {manifest.dimension}-dimensional ones "
            f"(model {manifest.embedding_model!r}); open it with the model it was built with"
        )
    stored = manifest.embedding_model
    if check_model and stored and embedding_model not in (None, stored):
        raise ConfigurationError(
            f"the store at {where} was built with embedding model {stored!r} but is "
            f"being opened with {embedding_model!r}; open it with the model it was "
            "built with, or rebuild it for the new model with VectorDatabaseManager.reembed()"
        )


def adopt_analyzer(manifest: Manifest, chosen: Analyzer | None, where: str) -> Analyzer:
    """The text analyzer to open ``manifest``'s store with: the recorded one (a store that
    records none takes the caller's, or the default). `ConfigurationError` if the caller chose
    another one (the keyword index would need rebuilding); `IntegrityError` if the recorded
    settings are not valid."""
    if manifest.analyzer is None:
        return chosen or Analyzer()
    try:
        recorded = Analyzer.from_json(dict(manifest.analyzer))
        recorded.check()  # an unknown language fails here, not at the first search
    except Exception as exc:  # whatever the analyzer's libraries raise for unknown settings
        raise IntegrityError(
            f"the store at {where} records text analyzer settings this release cannot use "
            f"({exc}); upgrade vectordb-manager, or the manifest is damaged"
        ) from None
    if chosen is not None and chosen != recorded:
        raise ConfigurationError(
            f"the store at {where} indexes keywords with analyzer {recorded.to_json()}; open "
            f"it with that analyzer, or without one (it was given {chosen.to_json()}); "
            "another analyzer would need the keyword index rebuilt (copy the documents into a "
            "new store)"
        )
    return recorded


def check_unchanged_analyzer(manifest: Manifest, analyzer: Analyzer, where: str) -> None:
    """`ConfigurationError` if ``manifest`` records an analyzer other than the one a writer
    indexes with (another writer recorded one meanwhile, in a store that had none when this
    one opened it)."""
    if manifest.analyzer is None or dict(manifest.analyzer) == analyzer.to_json():
        return  # (the usual case: the writer's own, recorded as it writes it)
    if adopt_analyzer(manifest, None, where) != analyzer:
        raise ConfigurationError(
            f"another writer recorded text analyzer {manifest.analyzer} for the store at "
            f"{where} while this one uses {analyzer.to_json()}; the change was not applied. "
            "Open the store again (without an analyzer) and retry"
        )
