"""The query workflow's steps, as activities over the worker's stores (`StoreCache`).

A reranker is any LangChain ``BaseDocumentCompressor`` (``compress_documents(documents,
query)``: a cross-encoder reranker, an embeddings filter...), an answerer any LangChain
``Runnable`` taking ``{"question", "context", "documents"}`` and giving a string or a message;
both are registered with the worker by name (`QueryComponents`), since code never travels in
a workflow's arguments. Scores are relevance, higher is better, as the manager's
``search_with_scores`` gives them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document
from temporalio import activity

from vectordb_manager.errors import ConfigurationError
from vectordb_manager.manager import require_query
from vectordb_manager.workflows.activities import StoreCache
from vectordb_manager.workflows.types import QueryStepRequest


@dataclass
class QueryComponents:
    """The rerankers (LangChain document compressors) and answerers (LangChain runnables)
    a worker offers, by the names a `QueryRequest` gives."""

    rerankers: Mapping[str, Any] = field(default_factory=dict)
    answerers: Mapping[str, Any] = field(default_factory=dict)


class QueryActivities:
    """The activities of `QueryWorkflow`."""

    def __init__(self, stores: StoreCache, components: QueryComponents | None = None) -> None:
        self.stores = stores
        self.components = components or QueryComponents()

    @activity.defn(name="vectordb-query-preprocess", no_thread_cancel_exception=True)
    def preprocess(self, step: QueryStepRequest) -> str:
        """The query with its whitespace normalised (`InvalidInputError` if it is empty)."""
        return " ".join(require_query(step.request.query).split())

    @activity.defn(name="vectordb-query-embed", no_thread_cancel_exception=True)
    def embed(self, step: QueryStepRequest) -> list[float]:
        """The query's vector, by the store's model."""
        manager = self.stores.manager(step.request.store)
        return [float(x) for x in manager.vector_store.embeddings.embed_query(step.request.query)]

    @activity.defn(name="vectordb-query-retrieve", no_thread_cancel_exception=True)
    def retrieve(self, step: QueryStepRequest) -> list[dict[str, Any]]:
        """The best documents with relevance scores (``fetch_k`` of them when reranking)."""
        request = step.request
        manager = self.stores.manager(request.store)
        store = manager.vector_store
        store.refresh()
        k = request.fetch_k or (4 * request.k if request.rerank else request.k)
        if step.vector is not None:
            relevance = store._select_relevance_score_fn()
            pairs = [
                (doc, relevance(distance))
                for doc, distance in store.similarity_search_with_score_by_vector(
                    step.vector, k=k, filter=request.filter
                )
            ]
        else:
            pairs = manager.search_with_scores(
                request.query, k=k, filter=request.filter, mode=request.mode
            )
        return [_hit(doc, score) for doc, score in pairs]

    @activity.defn(name="vectordb-query-rerank", no_thread_cancel_exception=True)
    def rerank(self, step: QueryStepRequest) -> list[dict[str, Any]]:
        """The hits in the order (and selection) the named reranker gives."""
        reranker = _component(self.components.rerankers, step.request.rerank, "reranker")
        by_id = {hit["id"]: hit for hit in step.hits}
        docs = reranker.compress_documents([_document(h) for h in step.hits], step.request.query)
        return [by_id[doc.id] for doc in docs if doc.id in by_id]

    @activity.defn(name="vectordb-query-answer", no_thread_cancel_exception=True)
    def answer(self, step: QueryStepRequest) -> str:
        """The named runnable's answer from the hits."""
        runnable = _component(self.components.answerers, step.request.answer, "answerer")
        docs = [_document(h) for h in step.hits]
        out = runnable.invoke(
            {
                "question": step.request.query,
                "context": "\n\n".join(d.page_content for d in docs),
                "documents": docs,
            }
        )
        content = getattr(out, "content", out)  # a chat model's message, or a string
        return content if isinstance(content, str) else str(content)

    def all(self) -> list[Callable[..., Any]]:
        """The activities to register with a worker."""
        return [self.preprocess, self.embed, self.retrieve, self.rerank, self.answer]


def _component(table: Mapping[str, Any], name: str | None, kind: str) -> Any:
    if name is None or name not in table:
        offered = ", ".join(sorted(table)) or "none"
        raise ConfigurationError(
            f"no {kind} named {name!r} is registered with this worker (it offers: {offered}); "
            "register it in the worker's QueryComponents"
        )
    return table[name]


def _hit(doc: Document, score: float) -> dict[str, Any]:
    return {"id": doc.id, "text": doc.page_content, "metadata": doc.metadata, "score": score}


def _document(hit: dict[str, Any]) -> Document:
    return Document(id=hit["id"], page_content=hit["text"], metadata=hit["metadata"])
