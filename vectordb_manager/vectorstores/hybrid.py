"""Keyword (BM25) and hybrid search on every engine store, and a retriever that offers them.

* ``keyword_search(query, k, filter)`` and ``keyword_search_with_score``: the engine's BM25
  search over its text index (the store's analyzer turns the query into terms, as it did the
  documents). Scores are BM25 scores: higher is better, not bounded, comparable only within
  one query. A query without terms (empty, or only stopwords) finds nothing: ``[]``.
* ``hybrid_search(query, k, filter, fusion="rrf", alpha=0.5, rank_constant=60)`` and
  ``hybrid_search_with_score``: the vector ranking and the keyword ranking fused
  (`vectordb_manager.vectorstores.fusion`), exactly: the true top k among the documents that
  pass the filter, which applies to both sides before ranking. Scores are fused scores, higher
  is better. An empty (or blank) query finds nothing, without embedding it; a query of
  stopwords only is ranked by its vector side alone (its keyword side is empty).
* async twins of each (the query embedded with the model's async method, the engine's work in
  an executor).
* `HybridRetriever`: LangChain's `VectorStoreRetriever` with two more ``search_type``s,
  ``"keyword"`` and ``"hybrid"``; ``as_retriever`` returns it.

Arguments are checked, and filters compiled, before the query is embedded; an unknown keyword
argument is refused by name, as on the other searches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import LangSmithRetrieverParams
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from typing_extensions import override

from vectordb_manager.vectorstores.fusion import DEFAULT_ALPHA, DEFAULT_RANK_CONSTANT
from vectordb_manager.vectorstores.requests import (
    HYBRID_KWARGS,
    KEYWORD_KWARGS,
    HybridRequest,
    KeywordRequest,
    MetadataFilter,
    hybrid_request,
    keyword_request,
    threshold_hybrid,
)

if TYPE_CHECKING:
    from vectordb_manager.embeddings import EmbeddingService
    from vectordb_manager.engine.core import Engine
    from vectordb_manager.engine.format import Vectors

SEARCH_TYPES = ("similarity", "similarity_score_threshold", "mmr", "keyword", "hybrid")
"""The ``search_type``s of `HybridRetriever`: LangChain's three and ours."""


class HybridSearchMixin(VectorStore):
    """Keyword and hybrid search, sync and async, and `as_retriever` returning a
    `HybridRetriever`; mixed into `EngineVectorStore`, which provides what is declared
    below."""

    if TYPE_CHECKING:
        _engine: Engine
        _service: EmbeddingService
        _relevance_score_fn: Callable[[float], float] | None

    # -- keyword -----------------------------------------------------------------------------
    def keyword_search(
        self, query: str, k: int = 4, filter: MetadataFilter | None = None, **kwargs: Any
    ) -> list[Document]:
        """The k documents that match the query's terms best (BM25), among those passing
        ``filter``; ``[]`` for a query without terms (empty, or only stopwords).

        Raises:
            InvalidInputError: a bad ``k``, filter or keyword argument.
        """
        return [doc for doc, _ in self.keyword_search_with_score(query, k, filter, **kwargs)]

    def keyword_search_with_score(
        self, query: str, k: int = 4, filter: MetadataFilter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Like `keyword_search`, each document with its BM25 score: higher is better,
        greater than 0, unbounded, comparable only between results of one query."""
        return self._keyword(keyword_request(query, k, filter, kwargs))

    async def akeyword_search(
        self, query: str, k: int = 4, filter: MetadataFilter | None = None, **kwargs: Any
    ) -> list[Document]:
        """`keyword_search`, run in an executor."""
        pairs = await self.akeyword_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    async def akeyword_search_with_score(
        self, query: str, k: int = 4, filter: MetadataFilter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """`keyword_search_with_score`, run in an executor."""
        request = keyword_request(query, k, filter, kwargs)
        return await run_in_executor(None, self._keyword, request)

    def _keyword(self, request: KeywordRequest) -> list[tuple[Document, float]]:
        return request.search(self._engine)

    # -- hybrid ------------------------------------------------------------------------------
    def hybrid_search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        *,
        fusion: str = "rrf",
        alpha: float = DEFAULT_ALPHA,
        rank_constant: float = DEFAULT_RANK_CONSTANT,
        **kwargs: Any,
    ) -> list[Document]:
        """The k documents with the best fused vector and keyword rankings, among those
        passing ``filter`` (applied to both sides before ranking; the result is exact).

        ``fusion="rrf"``: reciprocal rank fusion, ``alpha / (rank_constant + vector rank) +
        (1 - alpha) / (rank_constant + keyword rank)``; ``fusion="weighted"``: ``alpha *
        relevance + (1 - alpha) * BM25 / best BM25`` (see docs/hybrid-search.md). ``alpha``
        weighs the vector side (1: vector only, 0: keyword only). An empty query finds
        nothing; one of stopwords only is ranked by the vector side.

        Raises:
            InvalidInputError: a bad ``k``, filter, fusion argument or keyword argument
                (before the query is embedded).
            EmbeddingError: the model failed.
        """
        pairs = self.hybrid_search_with_score(
            query, k, filter, fusion=fusion, alpha=alpha, rank_constant=rank_constant, **kwargs
        )
        return [doc for doc, _ in pairs]

    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        *,
        fusion: str = "rrf",
        alpha: float = DEFAULT_ALPHA,
        rank_constant: float = DEFAULT_RANK_CONSTANT,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Like `hybrid_search`, each document with its fused score (higher is better; at
        most ``1 / (rank_constant + 1)`` for RRF, 1 for ``"weighted"``)."""
        request = hybrid_request(
            query, k, filter, kwargs, fusion=fusion, alpha=alpha, rank_constant=rank_constant
        )
        if not request.query.strip():
            return []
        vector = self._service.embed_query_array(request.query) if request.fusion.alpha else None
        return self._hybrid(request, vector)

    async def ahybrid_search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        *,
        fusion: str = "rrf",
        alpha: float = DEFAULT_ALPHA,
        rank_constant: float = DEFAULT_RANK_CONSTANT,
        **kwargs: Any,
    ) -> list[Document]:
        """`hybrid_search`, embedding with the model's async method."""
        pairs = await self.ahybrid_search_with_score(
            query, k, filter, fusion=fusion, alpha=alpha, rank_constant=rank_constant, **kwargs
        )
        return [doc for doc, _ in pairs]

    async def ahybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        *,
        fusion: str = "rrf",
        alpha: float = DEFAULT_ALPHA,
        rank_constant: float = DEFAULT_RANK_CONSTANT,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """`hybrid_search_with_score`, embedding with the model's async method."""
        request = hybrid_request(
            query, k, filter, kwargs, fusion=fusion, alpha=alpha, rank_constant=rank_constant
        )
        if not request.query.strip():
            return []
        vector = await self._service.aembed_query(request.query) if request.fusion.alpha else None
        return await run_in_executor(None, self._hybrid, request, vector)

    def _hybrid(
        self, request: HybridRequest, vector: Sequence[float] | Vectors | None
    ) -> list[tuple[Document, float]]:
        return request.search(self._engine, vector, self._relevance_score_fn)

    # -- retriever ---------------------------------------------------------------------------
    @override
    def as_retriever(self, **kwargs: Any) -> HybridRetriever:
        """A LangChain retriever over the store; ``search_type`` is one of `SEARCH_TYPES`:
        ``"similarity"`` (the default), ``"similarity_score_threshold"``, ``"mmr"``,
        ``"keyword"`` or ``"hybrid"``, and ``search_kwargs`` go to the search (``k``,
        ``filter``, and for ``"hybrid"`` ``fusion``, ``alpha``, ``rank_constant``)."""
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return HybridRetriever(vectorstore=self, tags=tags, **kwargs)




class HybridRetriever(VectorStoreRetriever):
    """LangChain's `VectorStoreRetriever` with ``search_type="keyword"`` (BM25) and
    ``search_type="hybrid"`` (vector and keyword rankings fused) besides LangChain's
    ``"similarity"``, ``"similarity_score_threshold"`` and ``"mmr"``, sync and async.

    Example:
        .. code-block:: python

            retriever = store.as_retriever(
                search_type="hybrid",
                search_kwargs={"k": 5, "filter": {"lang": "en"}, "fusion": "rrf"},
            )
            retriever.invoke("ERR_CONN_RESET after upgrading to v2.3.1")
    """

    allowed_search_types: ClassVar[Sequence[str]] = SEARCH_TYPES

    @override
    def _get_ls_params(self, **kwargs: Any) -> LangSmithRetrieverParams:
        # traced as LangChain's vector-store retriever, which it extends
        return {**super()._get_ls_params(**kwargs), "ls_retriever_name": "vectorstore"}

    def _store(self) -> HybridSearchMixin:
        store = self.vectorstore
        if not isinstance(store, HybridSearchMixin):
            raise TypeError(
                f"search_type={self.search_type!r} needs a vectordb-manager store, not "
                f"{type(store).__name__}"
            )
        return store

    @override
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "keyword":
            return self._store().keyword_search(query, **(self.search_kwargs | kwargs))
        if self.search_type == "hybrid":
            return self._store().hybrid_search(query, **(self.search_kwargs | kwargs))
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    @override
    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "keyword":
            return await self._store().akeyword_search(query, **(self.search_kwargs | kwargs))
        if self.search_type == "hybrid":
            return await self._store().ahybrid_search(query, **(self.search_kwargs | kwargs))
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)


__all__ = [
    "HYBRID_KWARGS",
    "KEYWORD_KWARGS",
    "SEARCH_TYPES",
    "HybridRetriever",
    "HybridSearchMixin",
    "hybrid_request",
    "keyword_request",
    "threshold_hybrid",
]
