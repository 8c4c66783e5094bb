"""`RemoteVectorStore`: a LangChain `VectorStore` over a collection of a `vectordb serve`
server, so a chain retrieves from a shared server exactly as from a local store."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self
from urllib.parse import quote

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from typing_extensions import override

from vectordb_manager.engine.records import tag_metadata
from vectordb_manager.errors import InvalidInputError
from vectordb_manager.vectorstores.relevance import RELEVANCE

from .retriever import RemoteRetriever
from .transport import CollectionExistsError, Transport
from .wire import (
    HYBRID_OPTIONS,
    SIMILARITY_OPTIONS,
    Hit,
    Query,
    add_page,
    checked_options,
    distances_of,
    documents_of,
    found_documents,
    hits_of,
    page_params,
    scores_of,
    texts_of,
    within,
)


class RemoteVectorStore(VectorStore):
    """A LangChain vector store over one collection of a `vectordb serve` server (HTTP).

    Scores: as with the local stores, ``similarity_search_with_score`` returns a **distance,
    lower is closer**, and ``similarity_search_with_relevance_scores`` a relevance in [0, 1],
    higher is closer (the server's, for the collection's distance). ``keyword_search_with_score``
    returns BM25 scores and ``hybrid_search_with_score`` fused scores, both higher is better.

    Setup:
        .. code-block:: bash

            pip install "vectordb-manager[server]"
            vectordb --path ./collections serve --port 8000      # on the server

    Instantiate:
        .. code-block:: python

            from vectordb_manager.client import RemoteVectorStore, VectorDBClient

            VectorDBClient("http://localhost:8000").create_collection("docs", exist_ok=True)
            store = RemoteVectorStore("http://localhost:8000", "docs", api_key="...")
            # embedding=None: the server embeds texts with the collection's model; an
            # embedding given here embeds on this side and sends vectors (same dimension)

    Add:
        .. code-block:: python

            store.add_texts(["cats purr", "dogs bark"], [{"animal": "cat"}, {"animal": "dog"}],
                            ids=["c", "d"])

    Delete:
        .. code-block:: python

            store.delete(ids=["d"])

    Search:
        .. code-block:: python

            store.similarity_search("do cats purr", k=1)

        .. code-block:: none

            [Document(id='c', metadata={'animal': 'cat'}, page_content='cats purr')]

    Search with filter:
        .. code-block:: python

            store.similarity_search("pets", k=1, filter={"animal": {"$in": ["cat", "dog"]}})

    Search with score:
        .. code-block:: python

            store.similarity_search_with_score("cats", k=1)   # [(Document(...), 0.29)]: distance

    Async:
        .. code-block:: python

            await store.aadd_texts(["fish swim"], ids=["f"])
            await store.asimilarity_search("swim", k=1)

    Use as retriever:
        .. code-block:: python

            retriever = store.as_retriever(search_type="hybrid", search_kwargs={"k": 3})
            retriever.invoke("purring")

    Requests that could not be sent and 503 answers are retried (``retries``, tenacity);
    adds name every id (made here when not given), so repeating one is harmless. Errors are
    the package's (`InvalidInputError`, `StoreNotFoundError`, ...; see
    `vectordb_manager.client.transport`).
    """

    def __init__(
        self,
        url: str,
        collection: str,
        *,
        embedding: Embeddings | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        batch_size: int = 500,
    ) -> None:
        """Use collection ``collection`` of the server at ``url`` (nothing is sent yet).
        ``batch_size``: documents per request when adding many (each request one commit)."""
        if not isinstance(collection, str) or not collection:
            raise InvalidInputError("collection must be the collection's name")
        if embedding is not None and not isinstance(embedding, Embeddings):
            raise InvalidInputError(
                f"embedding must be a LangChain Embeddings object or None, got "
                f"{type(embedding).__name__}"
            )
        self.collection = collection
        self.transport = Transport(url, api_key=api_key, timeout=timeout, retries=retries)
        self._embedding = embedding
        self._batch_size = batch_size
        self._path = f"/collections/{quote(collection, safe='')}"
        self._distance: str | None = None

    def __repr__(self) -> str:
        return f"RemoteVectorStore({self.transport.url!r}, {self.collection!r})"

    @property
    @override
    def embeddings(self) -> Embeddings | None:
        return self._embedding

    # -- requests ----------------------------------------------------------------------------
    # Each sync method and its async twin build their request with the same helper and read
    # the answer with the same function (`_distances`, `_scores`, `_docs`); they differ only
    # in the calls that wait: `_send` / `_asend`, and the model's `embed_*` / `aembed_*`.
    # Every request here is repeatable (queries and gets read; adds name their ids; deletes
    # are by id): a connection closed before the answer is retried (see `transport`).
    def _send(self, method: str, tail: str, **kwargs: Any) -> Any:
        return self.transport.request(method, f"{self._path}{tail}", repeatable=True, **kwargs)

    async def _asend(self, method: str, tail: str, **kwargs: Any) -> Any:
        return await self.transport.arequest(
            method, f"{self._path}{tail}", repeatable=True, **kwargs
        )

    def _search(self, body: Query) -> list[Hit]:
        return hits_of(self._send("POST", "/query", json=body))

    async def _asearch(self, body: Query) -> list[Hit]:
        return hits_of(await self._asend("POST", "/query", json=body))

    def _embed(self, query: str) -> list[float] | None:
        """The query's vector when this store embeds on its side, else ``None``."""
        return self._embedding.embed_query(query) if self._embedding is not None else None

    async def _aembed(self, query: str) -> list[float] | None:
        return await self._embedding.aembed_query(query) if self._embedding is not None else None

    def _add_requests(
        self,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any] | None] | None,
        ids: Sequence[str | None] | None,
        vectors: Sequence[Sequence[float]] | None,
    ) -> list[Query]:
        text_list = list(texts)
        n = len(text_list)
        for name, given in (("metadatas", metadatas), ("ids", ids)):
            if given is not None and len(given) != n:
                raise InvalidInputError(f"got {len(given)} {name} for {n} texts; pass one per text")
        id_list = [i if i is not None else str(uuid.uuid4()) for i in (ids or [None] * n)]
        docs = []
        for i, text in enumerate(text_list):
            doc: Query = {"id": id_list[i], "text": text}
            meta = metadatas[i] if metadatas is not None else None
            if meta:
                doc["metadata"] = tag_metadata(dict(meta))
            if vectors is not None:
                doc["vector"] = [float(x) for x in vectors[i]]
            docs.append(doc)
        step = max(1, self._batch_size)
        return [{"documents": docs[i : i + step]} for i in range(0, n, step)]

    @staticmethod
    def _query(
        *,
        text: str | None = None,
        vector: Sequence[float] | None = None,
        k: int = 4,
        filter: Any = None,
        **options: Any,
    ) -> Query:
        """A ``/query`` body: by ``vector`` when one is given, else by ``text``."""
        if filter is not None and not isinstance(filter, dict):
            raise InvalidInputError(
                "filter must be a dict (a callable filter cannot be sent to a server); "
                'e.g. {"animal": "cat"} or {"year": {"$gte": 2020}}'
            )
        body: Query = {"k": k, **{key: v for key, v in options.items() if v is not None}}
        if vector is not None:
            body["vector"] = [float(x) for x in vector]
        else:
            body["text"] = text
        if filter:
            body["filter"] = filter
        return body

    def _vector_query(
        self,
        k: int,
        filter: Any,
        kwargs: dict[str, Any],
        *,
        text: str | None = None,
        vector: Sequence[float] | None = None,
    ) -> Query:
        """A vector search (by ``vector`` if given, else the server embeds ``text``)."""
        checked_options(kwargs, SIMILARITY_OPTIONS)
        return self._query(text=text, vector=vector, k=k, filter=filter)

    def _mmr_query(
        self,
        k: int,
        fetch_k: int,
        lambda_mult: float,
        filter: Any,
        kwargs: dict[str, Any],
        *,
        text: str | None = None,
        vector: Sequence[float] | None = None,
    ) -> Query:
        checked_options(kwargs, ())
        return self._query(
            text=text, vector=vector, k=k, filter=filter,
            mmr=True, fetch_k=fetch_k, lambda_mult=lambda_mult,
        )  # fmt: skip

    def _keyword_query(self, query: str, k: int, filter: Any) -> Query:
        return self._query(text=query, k=k, filter=filter, mode="keyword")

    def _hybrid_query(self, query: str, k: int, filter: Any, kwargs: dict[str, Any]) -> Query:
        options = checked_options(kwargs, HYBRID_OPTIONS)
        return self._query(text=query, k=k, filter=filter, mode="hybrid", **options)

    # -- writing -----------------------------------------------------------------------------
    @override
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Add texts (ids made here when not given; an existing id is replaced); embedded
        here when this store has a model, else by the server. Each ``batch_size`` documents
        are one request and one commit."""
        text_list = texts_of(texts)
        vectors = self._embedding.embed_documents(text_list) if self._embedding else None
        bodies = self._add_requests(text_list, metadatas, ids, vectors)
        return [i for body in bodies for i in self._send("POST", "/documents", json=body)["ids"]]

    @override
    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        text_list = texts_of(texts)
        vectors = await self._embedding.aembed_documents(text_list) if self._embedding else None
        bodies = self._add_requests(text_list, metadatas, ids, vectors)
        return [
            i
            for body in bodies
            for i in (await self._asend("POST", "/documents", json=body))["ids"]
        ]

    @override
    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id (unknown ids are ignored); ``ids=None`` deletes every document."""
        ids = self.get_ids() if ids is None else ids
        self._send("POST", "/documents/delete", json={"ids": list(ids)})
        return True

    @override
    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        ids = await self.aget_ids() if ids is None else ids
        await self._asend("POST", "/documents/delete", json={"ids": list(ids)})
        return True

    # -- reading -----------------------------------------------------------------------------
    @override
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return found_documents(self._send("POST", "/documents/get", json={"ids": list(ids)}))

    @override
    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return found_documents(await self._asend("POST", "/documents/get", json={"ids": list(ids)}))

    def get_ids(self, filter: dict[str, Any] | None = None) -> list[str]:
        """The ids of every document (passing ``filter``), oldest first."""
        ids: list[str] = []
        while add_page(ids, self._send("GET", "/documents", params=page_params(filter, ids))):
            pass
        return ids

    async def aget_ids(self, filter: dict[str, Any] | None = None) -> list[str]:
        """`get_ids`, async."""
        ids: list[str] = []
        while add_page(
            ids, await self._asend("GET", "/documents", params=page_params(filter, ids))
        ):
            pass
        return ids

    @override
    def similarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    @override
    async def asimilarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        pairs = await self.asimilarity_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    @override
    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their distance to the query: lower is closer (``score_threshold``:
        keep those within that distance, as the local stores do; ``fetch_k`` is accepted and
        changes nothing: filtered searches are exact)."""
        body = self._vector_query(k, filter, kwargs, text=query, vector=self._embed(query))
        return within(distances_of(self._search(body)), kwargs)

    @override
    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        body = self._vector_query(k, filter, kwargs, text=query, vector=await self._aembed(query))
        return within(distances_of(await self._asearch(body)), kwargs)

    @override
    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        filter = kwargs.pop("filter", None)
        kwargs.pop("score_threshold", None)  # LangChain's caller applies it
        body = self._vector_query(k, filter, kwargs, text=query, vector=self._embed(query))
        return scores_of(self._search(body))

    @override
    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        filter = kwargs.pop("filter", None)
        kwargs.pop("score_threshold", None)
        body = self._vector_query(k, filter, kwargs, text=query, vector=await self._aembed(query))
        return scores_of(await self._asearch(body))

    @override
    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self._distance is None:
            info = self.transport.request("GET", self._path)
            self._distance = str(info["distance"])
        return RELEVANCE[self._distance]

    def similarity_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Documents with their distance to the vector: lower is closer."""
        body = self._vector_query(k, filter, kwargs, vector=embedding)
        return within(distances_of(self._search(body)), kwargs)

    async def asimilarity_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """`similarity_search_with_score_by_vector`, async."""
        body = self._vector_query(k, filter, kwargs, vector=embedding)
        return within(distances_of(await self._asearch(body)), kwargs)

    @override
    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        pairs = self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    @override
    async def asimilarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        pairs = await self.asimilarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    @override
    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        mmr = (k, fetch_k, lambda_mult, filter, kwargs)
        return documents_of(
            self._search(self._mmr_query(*mmr, text=query, vector=self._embed(query)))
        )

    @override
    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        mmr = (k, fetch_k, lambda_mult, filter, kwargs)
        body = self._mmr_query(*mmr, text=query, vector=await self._aembed(query))
        return documents_of(await self._asearch(body))

    @override
    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        body = self._mmr_query(k, fetch_k, lambda_mult, filter, kwargs, vector=embedding)
        return documents_of(self._search(body))

    @override
    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        body = self._mmr_query(k, fetch_k, lambda_mult, filter, kwargs, vector=embedding)
        return documents_of(await self._asearch(body))

    # -- keyword and hybrid ------------------------------------------------------------------
    def keyword_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None
    ) -> list[tuple[Document, float]]:
        """The k best BM25 matches of the query's terms, with their BM25 scores (higher is
        better; comparable only within one query)."""
        return scores_of(self._search(self._keyword_query(query, k, filter)))

    async def akeyword_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None
    ) -> list[tuple[Document, float]]:
        """`keyword_search_with_score`, async."""
        return scores_of(await self._asearch(self._keyword_query(query, k, filter)))

    def keyword_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None
    ) -> list[Document]:
        """`keyword_search_with_score` without the scores."""
        return documents_of(self._search(self._keyword_query(query, k, filter)))

    async def akeyword_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None
    ) -> list[Document]:
        return documents_of(await self._asearch(self._keyword_query(query, k, filter)))

    def hybrid_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The vector and keyword rankings fused (see the server's ``/query``; ``fusion``
        ``"rrf"`` or ``"weighted"``, ``alpha``, ``rank_constant``): fused scores, higher is
        better."""
        return scores_of(self._search(self._hybrid_query(query, k, filter, kwargs)))

    async def ahybrid_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """`hybrid_search_with_score`, async."""
        return scores_of(await self._asearch(self._hybrid_query(query, k, filter, kwargs)))

    def hybrid_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """`hybrid_search_with_score` without the scores."""
        return documents_of(self._search(self._hybrid_query(query, k, filter, kwargs)))

    async def ahybrid_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        return documents_of(await self._asearch(self._hybrid_query(query, k, filter, kwargs)))

    @override
    def as_retriever(self, **kwargs: Any) -> RemoteRetriever:
        """A retriever; ``search_type`` may also be ``"keyword"`` or ``"hybrid"``."""
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return RemoteRetriever(vectorstore=self, tags=tags, **kwargs)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    @override
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        url: str = "",
        collection: str = "",
        api_key: str | None = None,
        create: bool = True,
        **kwargs: Any,
    ) -> Self:
        """The texts added to ``collection`` of the server at ``url`` (created first if
        absent and ``create``, with the server's model)."""
        store = cls(url, collection, embedding=embedding, api_key=api_key, **kwargs)
        if create:
            with contextlib.suppress(CollectionExistsError):
                store.transport.request("POST", "/collections", json={"name": collection})
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def close(self) -> None:
        """Close the HTTP connections (sync ones; async ones close with `aclose`)."""
        self.transport.close()

    async def aclose(self) -> None:
        """Close this event loop's HTTP connections."""
        await self.transport.aclose()


__all__ = ["RemoteRetriever", "RemoteVectorStore"]
