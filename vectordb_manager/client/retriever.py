"""`RemoteRetriever`: LangChain's retriever over a `RemoteVectorStore`, with the keyword and
hybrid searches of the server besides LangChain's own search types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStoreRetriever
from typing_extensions import override

if TYPE_CHECKING:
    from .remote_store import RemoteVectorStore


class RemoteRetriever(VectorStoreRetriever):
    """LangChain's retriever over a `RemoteVectorStore`, with ``search_type="keyword"`` and
    ``"hybrid"`` besides ``"similarity"``, ``"similarity_score_threshold"`` and ``"mmr"``."""

    allowed_search_types: ClassVar[Sequence[str]] = (
        "similarity",
        "similarity_score_threshold",
        "mmr",
        "keyword",
        "hybrid",
    )

    def _remote(self) -> RemoteVectorStore:
        from .remote_store import RemoteVectorStore

        assert isinstance(self.vectorstore, RemoteVectorStore)
        return self.vectorstore

    @override
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self.search_kwargs | kwargs
        if self.search_type == "keyword":
            return self._remote().keyword_search(query, **options)
        if self.search_type == "hybrid":
            return self._remote().hybrid_search(query, **options)
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    @override
    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self.search_kwargs | kwargs
        if self.search_type == "keyword":
            return await self._remote().akeyword_search(query, **options)
        if self.search_type == "hybrid":
            return await self._remote().ahybrid_search(query, **options)
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)


__all__ = ["RemoteRetriever"]
