"""The engine's read side: lookups and searches on the current state, under the read lock.

`Queries` is a mixin of `Engine` (engine/core.py): each method compiles its filter once, takes
the readers' lock only while it reads the state (`StoreState`, replaced whole by writes that
compact), and leaves the work to `search` (nearest neighbours, BM25, value indexes) and
`hybrid` (fused rankings).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.documents import Document

from vectordb_manager.engine import hybrid as hybrid_module
from vectordb_manager.engine import search as searching
from vectordb_manager.engine import vectors as vectors_module
from vectordb_manager.engine.filters import CompiledFilter, Filter, compile_where
from vectordb_manager.engine.format import SegmentData, Vectors
from vectordb_manager.engine.hybrid import Relevance
from vectordb_manager.engine.locks import ReadWriteLock
from vectordb_manager.engine.search import Hit, KeywordHit, require_k
from vectordb_manager.engine.state import StoreState
from vectordb_manager.errors import InvalidInputError


class Queries:
    """The read-side operations of `Engine`."""

    _state: StoreState
    _rw: ReadWriteLock
    distance: str

    @property
    def dimension(self) -> int | None:
        raise NotImplementedError

    def prepare_query(
        self, vector: Sequence[float] | Vectors, *, checked: bool = False
    ) -> Vectors | None:
        """Validate a query vector into shape (1, d); ``None`` if the store has no dimension
        yet (``checked``: its values were checked by the embedding service)."""
        return vectors_module.prepare_query(vector, self.distance, self.dimension, checked=checked)

    # -- reading ---------------------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> list[Document]:
        with self._rw.read():
            st = self._state
            return [searching.document(st, st.slot[i]) for i in ids if i in st.slot]

    def search(
        self,
        query: Sequence[float] | Vectors,
        k: int,
        filter: Filter | CompiledFilter | None = None,
        *,
        with_vectors: bool = False,
        checked: bool = False,
    ) -> list[Hit]:
        """The k nearest live records passing the filter (a dict, a function of the metadata,
        or one compiled once for the call), closest first. ``checked``: the query comes from
        the embedding service, which has checked its values already."""
        k = require_k(k)
        where = filter if isinstance(filter, CompiledFilter) else compile_where(filter)
        q = self.prepare_query(query, checked=checked)
        if q is None:
            return []
        with self._rw.read():
            return searching.search(self._state, q, k, where, with_vectors=with_vectors)

    def scored(
        self,
        query: Sequence[float] | Vectors,
        k: int,
        filter: CompiledFilter | None = None,
        *,
        checked: bool = False,
    ) -> list[tuple[Document, float]]:
        """`search`'s hits as (document, distance) pairs, as a LangChain store returns them
        (``filter``: compiled, or ``None``)."""
        k = require_k(k)
        dim = self._state.dim  # (the store's `dimension`, in one call where it has vectors)
        if dim is None:
            dim = self.dimension
        q = vectors_module.prepare_query(query, self.distance, dim, checked=checked)
        if q is None:
            return []
        with self._rw.reading:
            return searching.scored(self._state, q, k, filter)

    def keyword_search(
        self, query: str, k: int, filter: Filter | CompiledFilter | None = None
    ) -> list[KeywordHit]:
        """The k live records passing the filter that best match ``query``'s terms by BM25
        (`text_index`), best first (equal scores: the older slot first); only records holding
        at least one of its terms. A query without terms (empty, or only stopwords, as the
        analyzer sees it) finds nothing. The first keyword search of a store with segments
        written without postings builds theirs from the texts (once, in memory)."""
        k = require_k(k)
        if not isinstance(query, str):
            raise InvalidInputError(f"query must be a string, not {type(query).__name__}")
        where = filter if isinstance(filter, CompiledFilter) else compile_where(filter)
        with self._rw.read():
            return searching.keyword_search(self._state, query, k, where)

    def hybrid_search(
        self,
        query_vector: Sequence[float] | Vectors | None,
        query_text: str,
        k: int,
        filter: Filter | CompiledFilter | None = None,
        *,
        fusion: str = "rrf",
        alpha: float = 0.5,
        rank_constant: float = 60.0,
        relevance: Relevance,
        checked: bool = False,
    ) -> list[tuple[Document, float]] | None:
        """The k passing records with the best fused scores, with them (`engine.hybrid`;
        arguments as in `vectorstores.fusion`, checked by the caller), or ``None`` where the
        vector side is an approximate index's ranking: fuse `search` and `keyword_search`."""
        k = require_k(k)
        where = filter if isinstance(filter, CompiledFilter) else compile_where(filter)
        q = None if query_vector is None else self.prepare_query(query_vector, checked=checked)
        if q is None and alpha > 0:
            return []
        with self._rw.read():
            return hybrid_module.hybrid_search(
                self._state, q, query_text, k, where, method=fusion, alpha=alpha,
                rank_constant=rank_constant, relevance=relevance)

    def ids(self, filter: Filter | None = None) -> list[str]:
        """The live ids (passing ``filter``, if given), in insertion order."""
        where = compile_where(filter)
        with self._rw.read():
            st = self._state
            if where is None:
                return list(st.slot)
            return [st.ids[s] for s in searching.passing(st, where).tolist()]

    def ids_by_value(self, key: str) -> list[tuple[Any, list[str]]]:
        """The live ids grouped by their value of metadata ``key`` (from the key's value index,
        without decoding the records); documents without the key, or with a list or dict
        there, are left out."""
        with self._rw.read():
            return searching.ids_by_value(self._state, key)

    def iter_rows(self, batch_size: int = 1000) -> Iterator[SegmentData]:
        """Every live record with its vector, in batches (each batch a consistent snapshot;
        records deleted meanwhile are left out)."""
        with self._rw.read():
            ids = list(self._state.slot)
        for start in range(0, len(ids), batch_size):
            with self._rw.read():  # released before yielding: the consumer may write
                st = self._state
                batch = ids[start : start + batch_size]
                rows = st.rows([st.slot[i] for i in batch if i in st.slot])
            yield rows
