"""What LangChain's FAISS store accepts, accepted here with the same meaning.

LangChain's FAISS store (``langchain_community.vectorstores.FAISS``) takes keyword arguments
that LangChain's own code and existing programs pass on: ``fetch_k`` and ``score_threshold``
on every search, callable filters, ``batch_size`` on adds (``langchain_core.indexing.index``
passes it), and it has methods the base `VectorStore` lacks (``..._with_score_by_vector``,
MMR with scores, ``merge_from``). This module holds that surface once for every engine store:

* `similarity_request` and `mmr_request` (in `vectorstores.requests`, which the command
  line's search uses too) check a search's arguments before anything is embedded: ``k``,
  the filter (compiled once), ``fetch_k``, ``score_threshold``, ``lambda_mult``. Anything
  else is refused by name (`refuse_unknown`), so a misspelt option is an error rather than
  silently ignored, as FAISS does. ``verbose``, which
  ``retriever.invoke(query, verbose=True)`` passes down to the store, is accepted and ignored.
* ``fetch_k`` on a similarity search: FAISS fetches that many neighbours and filters them
  afterwards, so a filtered search may come back short. Here a filtered search is exact (the
  k best among the documents passing the filter), so ``fetch_k`` is checked and changes
  nothing. On MMR it is, as in FAISS, the number of candidates MMR chooses from.
* ``score_threshold`` on the ``..._with_score`` searches (and the searches built on them):
  our scores are distances for every metric (lower is closer), so the threshold keeps results
  with ``distance <= score_threshold``, in the units of the scores returned. FAISS compares its
  raw scores instead: squared L2 (``<=``) or the inner product (``>=``); the same cut is
  ``sqrt(t)`` for ``"l2"`` and ``-t`` for ``"inner_product"`` here.
  ``similarity_search_with_relevance_scores(score_threshold=...)`` keeps LangChain's meaning
  (a minimum relevance in [0, 1]).
* `FaissCompatMixin`: the async variants (texts and queries embedded with the model's async
  methods, the engine's work run in an executor), MMR with scores, ``from_embeddings``
  (vectors computed elsewhere) and ``merge_from``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore
from typing_extensions import override

from vectordb_manager.errors import DimensionMismatchError, InvalidInputError
from vectordb_manager.vectorstores.requests import (
    MetadataFilter,
    MMRRequest,
    SearchRequest,
    mmr_request,
    similarity_request,
)

if TYPE_CHECKING:
    from vectordb_manager.embeddings import EmbeddingService
    from vectordb_manager.engine.core import Engine
    from vectordb_manager.engine.format import Vectors

ADD_KWARGS = ("metadatas", "ids", "batch_size")
ADD_IGNORED = ("current_time",)
"""What LangChain's retrievers pass to an add and the store has no use for:
``TimeWeightedVectorStoreRetriever.add_documents(docs, current_time=...)`` stamps the
documents' metadata itself and hands the keyword on."""
MERGE_CONFLICTS = ("error", "replace", "skip")


class FaissCompatMixin(VectorStore):
    """The methods of LangChain's FAISS store that the base `VectorStore` lacks, and async
    variants that embed with the model's async methods; mixed into `EngineVectorStore`,
    which provides the synchronous core declared below."""

    if TYPE_CHECKING:
        _engine: Engine
        _service: EmbeddingService

        def __init__(self, embedding: Embeddings, **kwargs: Any) -> None: ...

        def add_embeddings(
            self,
            text_embeddings: Iterable[tuple[str, Sequence[float]]],
            metadatas: list[dict[str, Any]] | None = None,
            ids: list[str] | None = None,
            **kwargs: Any,
        ) -> list[str]: ...

        def _rows(
            self,
            texts: Iterable[str],
            metadatas: Sequence[Mapping[str, Any] | None] | None,
            ids: Sequence[str | None] | None,
            batch_size: object,
            kwargs: Mapping[str, Any],
        ) -> tuple[list[str], list[dict[str, Any]], list[str]]: ...

        def _scored(
            self,
            vector: Sequence[float] | Vectors,
            request: SearchRequest,
            *,
            checked: bool = False,
        ) -> list[tuple[Document, float]]: ...

        def _mmr(
            self,
            embedding: Sequence[float] | Vectors,
            request: MMRRequest,
            *,
            checked: bool = False,
        ) -> list[tuple[Document, float]]: ...

    # -- MMR with scores ---------------------------------------------------------------------
    def max_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        *,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: MetadataFilter | None = None,
    ) -> list[tuple[Document, float]]:
        """The documents MMR picks among the ``fetch_k`` closest passing ``filter``, each with
        its distance to the query (lower is closer)."""
        return self._mmr(embedding, mmr_request(k, fetch_k, lambda_mult, filter, {}))

    async def amax_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        *,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: MetadataFilter | None = None,
    ) -> list[tuple[Document, float]]:
        """`max_marginal_relevance_search_with_score_by_vector`, run in an executor."""
        request = mmr_request(k, fetch_k, lambda_mult, filter, {})
        return await run_in_executor(None, self._mmr, embedding, request)

    # -- async -------------------------------------------------------------------------------
    @override
    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        ids: list[str] | None = None,
        *,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        text_list, metas, id_list = self._rows(texts, metadatas, ids, batch_size, kwargs)
        if not text_list:
            return []
        postings = self._engine.postings_ahead(text_list)  # (queued: never waits on the pipe)
        step = batch_size or len(text_list)
        vectors: list[list[float]] = []
        for start in range(0, len(text_list), step):
            vectors += await self._service.aembed_documents(text_list[start : start + step])
        array = np.asarray(vectors, dtype=np.float32)
        await run_in_executor(
            None,
            partial(self._engine.upsert, postings=postings),
            id_list,
            text_list,
            metas,
            array,
        )
        return id_list

    @override
    async def asimilarity_search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        fetch_k: int = 20,
        **kwargs: Any,
    ) -> list[Document]:
        pairs = await self.asimilarity_search_with_score(query, k, filter, fetch_k, **kwargs)
        return [doc for doc, _ in pairs]

    @override
    async def asimilarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        fetch_k: int = 20,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        request = similarity_request(k, filter, fetch_k, kwargs)
        vector = await self._service.aembed_query(query)
        return await run_in_executor(None, self._scored, vector, request)

    async def asimilarity_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        filter: MetadataFilter | None = None,
        fetch_k: int = 20,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """`similarity_search_with_score_by_vector`, run in an executor."""
        request = similarity_request(k, filter, fetch_k, kwargs)
        return await run_in_executor(None, self._scored, embedding, request)

    @override
    async def asimilarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: MetadataFilter | None = None,
        fetch_k: int = 20,
        **kwargs: Any,
    ) -> list[Document]:
        pairs = await self.asimilarity_search_with_score_by_vector(
            embedding, k, filter, fetch_k, **kwargs
        )
        return [doc for doc, _ in pairs]

    @override
    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        request = mmr_request(k, fetch_k, lambda_mult, filter, kwargs)
        vector = await self._service.aembed_query(query)
        return [doc for doc, _ in await run_in_executor(None, self._mmr, vector, request)]

    @override
    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        request = mmr_request(k, fetch_k, lambda_mult, filter, kwargs)
        return [doc for doc, _ in await run_in_executor(None, self._mmr, embedding, request)]

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    @override
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        store = await run_in_executor(None, partial(cls, embedding, **kwargs))
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_embeddings(
        cls,
        text_embeddings: Iterable[tuple[str, Sequence[float]]],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """A store holding texts with vectors computed elsewhere (nothing is embedded);
        ``kwargs`` go to the constructor (``path``, ``distance``, ``index``, ...)."""
        store = cls(embedding, **kwargs)
        store.add_embeddings(text_embeddings, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_embeddings(
        cls,
        text_embeddings: Iterable[tuple[str, Sequence[float]]],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """`from_embeddings`, run in an executor."""
        build = partial(cls.from_embeddings, text_embeddings, embedding, metadatas, ids, **kwargs)
        return await run_in_executor(None, build)

    # -- merging -----------------------------------------------------------------------------
    def merge_from(self, other: FaissCompatMixin, *, on_conflict: str = "error") -> list[str]:
        """Add every document of ``other`` (another `LocalVectorStore` or `S3VectorStore`)
        with its stored vector: nothing is embedded again, and it is one commit here (the
        other store is read whole into memory first; `copy_to` copies in batches instead).
        Returns the ids added.

        ``on_conflict``: what to do when an id of ``other`` is already here. ``"error"``
        (the default, as LangChain's FAISS store raises): raise and change nothing;
        ``"replace"``: ``other``'s document replaces ours; ``"skip"``: ours is kept.

        Raises:
            TypeError: ``other`` is not one of our stores (a LangChain FAISS store is
                imported with `LocalVectorStore.from_langchain_faiss`).
            InvalidInputError: the stores use different distances, an id collides under
                ``on_conflict="error"``, or ``on_conflict`` is unknown.
            DimensionMismatchError: the stores hold vectors of different dimensions.
        """
        if not isinstance(other, FaissCompatMixin):
            raise TypeError(
                f"merge_from takes another LocalVectorStore or S3VectorStore, got "
                f"{type(other).__name__}; import a LangChain FAISS store with "
                "LocalVectorStore.from_langchain_faiss(folder, embedding) first"
            )
        if on_conflict not in MERGE_CONFLICTS:
            raise InvalidInputError(
                f"on_conflict={on_conflict!r} must be one of {', '.join(MERGE_CONFLICTS)}"
            )
        ours, theirs = self._engine, other._engine
        if ours.distance != theirs.distance:
            raise InvalidInputError(
                f"cannot merge a store using distance={theirs.distance!r} into one using "
                f"distance={ours.distance!r}: their scores mean different things; build the "
                "other store with the same distance (or re-add its texts here)"
            )
        if None not in (ours.dimension, theirs.dimension) and ours.dimension != theirs.dimension:
            raise DimensionMismatchError(
                f"cannot merge vectors of dimension {theirs.dimension} into a store of "
                f"dimension {ours.dimension}; both stores must use the same embedding model"
            )
        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        vectors: list[Vectors] = []
        for rows in theirs.iter_rows(1000):
            ids += rows.ids
            texts += rows.texts
            metas += rows.metadatas
            vectors.append(rows.vectors)
        present = set(ours.ids()).intersection(ids)
        if present and on_conflict == "error":
            shown = sorted(present)[:5]
            raise InvalidInputError(
                f"{len(present)} id(s) of the other store are already here, such as {shown}; "
                "nothing was merged. Pass on_conflict='replace' or 'skip' to merge anyway"
            )
        keep = [i for i, d in enumerate(ids) if on_conflict != "skip" or d not in present]
        if not keep:
            return []
        array = np.concatenate(vectors)[keep] if len(keep) < len(ids) else np.concatenate(vectors)
        chosen = [ids[i] for i in keep]
        ours.upsert(chosen, [texts[i] for i in keep], [metas[i] for i in keep], array)
        return chosen
