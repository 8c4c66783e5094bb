"""`RemoteVectorStore`: a LangChain `VectorStore` over a collection of a `vectordb serve`
server, so a chain retrieves from a shared server exactly as from a local store."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Self
from urllib.parse import quote

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from typing_extensions import override

from vectordb_manager.engine.records import tag_metadata
from vectordb_manager.errors import InvalidInputError
from vectordb_manager.vectorstores.relevance import RELEVANCE

from .transport import CollectionExistsError, Transport
from .wire import SIMILARITY_OPTIONS, checked_options, document, texts_of, within

Query = dict[str, Any]


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

    def _query(
        self,
        *,
        text: str | None = None,
        vector: Sequence[float] | None = None,
        k: int = 4,
        filter: Any = None,
        **options: Any,
    ) -> Query:
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

    def _vector_query(self, query: str, k: int, filter: Any, kwargs: dict[str, Any]) -> Query:
        """A vector search for a text: embedded here if this store has a model."""
        checked_options(kwargs, SIMILARITY_OPTIONS)
        if self._embedding is not None:
            return self._query(vector=self._embedding.embed_query(query), k=k, filter=filter)
        return self._query(text=query, k=k, filter=filter)

    async def _avector_query(
        self, query: str, k: int, filter: Any, kwargs: dict[str, Any]
    ) -> Query:
        checked_options(kwargs, SIMILARITY_OPTIONS)
        if self._embedding is not None:
            vector = await self._embedding.aembed_query(query)
            return self._query(vector=vector, k=k, filter=filter)
        return self._query(text=query, k=k, filter=filter)

    def _search(self, body: Query) -> list[tuple[Document, dict[str, Any]]]:
        answer = self.transport.request("POST", f"{self._path}/query", json=body)
        return [(document(r), r) for r in answer["results"]]

    async def _asearch(self, body: Query) -> list[tuple[Document, dict[str, Any]]]:
        answer = await self.transport.arequest("POST", f"{self._path}/query", json=body)
        return [(document(r), r) for r in answer["results"]]

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
        out: list[str] = []
        for body in self._add_requests(text_list, metadatas, ids, vectors):
            out += self.transport.request("POST", f"{self._path}/documents", json=body)["ids"]
        return out

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
        out: list[str] = []
        for body in self._add_requests(text_list, metadatas, ids, vectors):
            answer = await self.transport.arequest("POST", f"{self._path}/documents", json=body)
            out += answer["ids"]
        return out

    @override
    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id (unknown ids are ignored); ``ids=None`` deletes every document."""
        if ids is None:
            ids = self.get_ids()
        self.transport.request("POST", f"{self._path}/documents/delete", json={"ids": list(ids)})
        return True

    @override
    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if ids is None:
            answer = await self.transport.arequest("GET", f"{self._path}/documents")
            ids = answer["ids"]
        body = {"ids": list(ids or [])}
        await self.transport.arequest("POST", f"{self._path}/documents/delete", json=body)
        return True

    # -- reading -----------------------------------------------------------------------------
    @override
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        body = {"ids": list(ids)}
        answer = self.transport.request("POST", f"{self._path}/documents/get", json=body)
        return [document(d) for d in answer["documents"]]

    @override
    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        body = {"ids": list(ids)}
        answer = await self.transport.arequest("POST", f"{self._path}/documents/get", json=body)
        return [document(d) for d in answer["documents"]]

    def get_ids(self, filter: dict[str, Any] | None = None) -> list[str]:
        """The ids of every document (passing ``filter``), oldest first."""
        ids: list[str] = []
        params: dict[str, Any] = {"limit": 100_000}
        if filter:
            params["filter"] = json.dumps(filter)
        while True:
            params["offset"] = len(ids)
            page = self.transport.request("GET", f"{self._path}/documents", params=params)
            ids += page["ids"]
            if not page["ids"] or len(ids) >= page["total"]:
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
        hits = self._search(self._vector_query(query, k, filter, kwargs))
        return within([(doc, float(r["distance"])) for doc, r in hits], kwargs)

    @override
    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        hits = await self._asearch(await self._avector_query(query, k, filter, kwargs))
        return within([(doc, float(r["distance"])) for doc, r in hits], kwargs)

    @override
    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        filter = kwargs.pop("filter", None)
        kwargs.pop("score_threshold", None)  # LangChain's caller applies it
        hits = self._search(self._vector_query(query, k, filter, kwargs))
        return [(doc, float(r["score"])) for doc, r in hits]

    @override
    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        filter = kwargs.pop("filter", None)
        kwargs.pop("score_threshold", None)
        hits = await self._asearch(await self._avector_query(query, k, filter, kwargs))
        return [(doc, float(r["score"])) for doc, r in hits]

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
        checked_options(kwargs, SIMILARITY_OPTIONS)
        body = self._query(vector=embedding, k=k, filter=filter)
        return within([(doc, float(r["distance"])) for doc, r in self._search(body)], kwargs)

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
        checked_options(kwargs, SIMILARITY_OPTIONS)
        body = self._query(vector=embedding, k=k, filter=filter)
        hits = await self._asearch(body)
        return [doc for doc, _ in within([(d, float(r["distance"])) for d, r in hits], kwargs)]

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
        checked_options(kwargs, ())
        mmr: dict[str, Any] = {"mmr": True, "fetch_k": fetch_k, "lambda_mult": lambda_mult}
        if self._embedding is not None:
            vector = self._embedding.embed_query(query)
            return self.max_marginal_relevance_search_by_vector(
                vector, k, fetch_k, lambda_mult, filter
            )
        return [doc for doc, _ in self._search(self._query(text=query, k=k, filter=filter, **mmr))]

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
        checked_options(kwargs, ())
        body = self._query(
            vector=embedding,
            k=k,
            filter=filter,
            mmr=True,
            fetch_k=fetch_k,
            lambda_mult=lambda_mult,
        )
        return [doc for doc, _ in self._search(body)]

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
        checked_options(kwargs, ())
        mmr: dict[str, Any] = {"mmr": True, "fetch_k": fetch_k, "lambda_mult": lambda_mult}
        if self._embedding is not None:
            vector = await self._embedding.aembed_query(query)
            body = self._query(vector=vector, k=k, filter=filter, **mmr)
        else:
            body = self._query(text=query, k=k, filter=filter, **mmr)
        return [doc for doc, _ in await self._asearch(body)]

    # -- keyword and hybrid ------------------------------------------------------------------
    def keyword_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None
    ) -> list[tuple[Document, float]]:
        """The k best BM25 matches of the query's terms, with their BM25 scores (higher is
        better; comparable only within one query)."""
        body = self._query(text=query, k=k, filter=filter, mode="keyword")
        return [(doc, float(r["score"])) for doc, r in self._search(body)]

    def keyword_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None
    ) -> list[Document]:
        """`keyword_search_with_score` without the scores."""
        return [doc for doc, _ in self.keyword_search_with_score(query, k, filter)]

    async def akeyword_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None
    ) -> list[Document]:
        body = self._query(text=query, k=k, filter=filter, mode="keyword")
        return [doc for doc, _ in await self._asearch(body)]

    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: dict[str, Any] | None = None,
        *,
        fusion: str | None = None,
        alpha: float | None = None,
        rank_constant: float | None = None,
    ) -> list[tuple[Document, float]]:
        """The vector and keyword rankings fused (see the server's ``/query``): fused scores,
        higher is better."""
        body = self._query(
            text=query,
            k=k,
            filter=filter,
            mode="hybrid",
            fusion=fusion,
            alpha=alpha,
            rank_constant=rank_constant,
        )
        return [(doc, float(r["score"])) for doc, r in self._search(body)]

    def hybrid_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """`hybrid_search_with_score` without the scores."""
        return [doc for doc, _ in self.hybrid_search_with_score(query, k, filter, **kwargs)]

    async def ahybrid_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        options = checked_options(kwargs, ("fusion", "alpha", "rank_constant"))
        body = self._query(text=query, k=k, filter=filter, mode="hybrid", **options)
        return [doc for doc, _ in await self._asearch(body)]

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


__all__ = ["RemoteRetriever", "RemoteVectorStore"]
