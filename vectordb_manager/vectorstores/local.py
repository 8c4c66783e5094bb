"""`LocalVectorStore`: the engine in memory, optionally persisted to a local directory."""

from __future__ import annotations

import os
from typing import Any

from langchain_core.embeddings import Embeddings

from vectordb_manager.engine.options import DEFAULT_DISTANCE, DEFAULT_INDEX
from vectordb_manager.vectorstores.engine_store import EngineVectorStore, StoreOptions
from vectordb_manager.vectorstores.opening import local_storage


class LocalVectorStore(EngineVectorStore):
    """FAISS vector store for LangChain, in memory or persisted to a local directory.

    Persisted stores are immutable segment files (JSON lines + NumPy float32) and a versioned
    manifest with SHA-256 checksums; nothing is ever unpickled. Every add, delete or update is
    durable when the call returns. Several processes may write one directory at once.

    Scores: ``similarity_search_with_score`` returns a **distance, lower is closer**:
    ``1 - cosine similarity`` for ``distance="cosine"`` (0 to 2), the Euclidean distance for
    ``"l2"``, and ``-(inner product)`` for ``"inner_product"``.
    ``similarity_search_with_relevance_scores`` maps it into [0, 1], higher is closer:
    ``1 - d/2``, ``1/(1 + d)`` and ``(1 + inner product)/2`` (clamped) respectively, so an
    identical text scores 1 under every distance with normalized embeddings.

    Setup:
        .. code-block:: bash

            pip install "vectordb-manager[huggingface]"

    Instantiate:
        .. code-block:: python

            from vectordb_manager import LocalVectorStore
            from vectordb_manager.embeddings import HashingEmbeddings

            store = LocalVectorStore(HashingEmbeddings(), "./my_store")   # or path=None
            # distance="cosine" | "l2" | "inner_product"; index="flat" | "hnsw" | "ivf" | "auto"

    Add:
        .. code-block:: python

            from langchain_core.documents import Document

            store.add_documents([
                Document(page_content="cats purr and sleep", metadata={"animal": "cat", "legs": 4}),
                Document(page_content="dogs bark at night", metadata={"animal": "dog", "legs": 4}),
                Document(page_content="birds sing at dawn", metadata={"animal": "bird", "legs": 2}),
            ], ids=["c", "d", "b"])

    Delete:
        .. code-block:: python

            store.delete(ids=["b"])

    Search:
        .. code-block:: python

            store.similarity_search("do cats sleep", k=1)

        .. code-block:: none

            [Document(id='c', metadata={'animal': 'cat', 'legs': 4},
                      page_content='cats purr and sleep')]

    Search with filter:
        .. code-block:: python

            store.similarity_search(
                "night", k=1, filter={"legs": {"$gte": 4}, "animal": {"$ne": "cat"}}
            )

        .. code-block:: none

            [Document(id='d', metadata={'animal': 'dog', 'legs': 4},
                      page_content='dogs bark at night')]

    Search with score:
        .. code-block:: python

            store.similarity_search_with_score("cats sleep", k=1)

        .. code-block:: none

            [(Document(id='c', ...), 0.29289323091506958)]   # cosine distance, lower is closer

    Async:
        .. code-block:: python

            await store.aadd_texts(["fish swim"], ids=["f"])
            await store.asimilarity_search("swim", k=1)

        .. code-block:: none

            [Document(id='f', metadata={}, page_content='fish swim')]

    Use as retriever:
        .. code-block:: python

            retriever = store.as_retriever(search_kwargs={"k": 1, "filter": {"animal": "dog"}})
            retriever.invoke("barking")

        .. code-block:: none

            [Document(id='d', metadata={'animal': 'dog', 'legs': 4},
                      page_content='dogs bark at night')]

    Maintenance: ``verify()`` re-checks every checksum and raises `IntegrityError` on damage;
    ``compact()`` merges segments; ``refresh()`` loads other processes' commits.
    """

    def __init__(
        self,
        embedding: Embeddings,
        path: str | os.PathLike[str] | None = None,
        *,
        distance: str = DEFAULT_DISTANCE,
        index: str = DEFAULT_INDEX,
        **kwargs: Any,
    ) -> None:
        """Open the store at ``path``, creating it if absent; ``path=None`` keeps it in memory.

        An existing store keeps the ``distance``, ``index`` and index tuning it records where
        the caller does not choose them (a chosen ``distance`` must be the store's; a chosen
        ``index`` or tuning value applies from the next commit on). A new store gets
        ``cosine`` and ``flat`` unless told otherwise.

        Keyword options: ``hnsw_m``, ``ef_construction``, ``ef_search``, ``ivf_nlist``,
        ``ivf_nprobe``, ``ivf_min_train``, ``auto_threshold``, ``batch_size``, ``compaction``,
        ``commit_attempts``, ``check_embedding_model``, ``create`` (``False``: raise
        `StoreNotFoundError` instead of creating a store where none exists).

        Raises:
            ConfigurationError: an unknown option or value, or a chosen distance other than
                the store's.
            DimensionMismatchError: the embedding's dimension differs from the store's.
            IntegrityError: the store's files are damaged, or a store's files are there
                without its manifests.
            StoreNotFoundError: no store is there and ``create=False``.
            StorageError: the directory cannot be used.
        """
        options = StoreOptions.from_kwargs(kwargs)
        super().__init__(embedding, batch_size=options.batch_size)
        self.path, storage = local_storage(path)
        self._start_engine(storage, distance=distance, index=index, options=options)

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "memory"
        return (
            f"LocalVectorStore({where!r}, documents={len(self)}, "
            f"distance={self._engine.distance!r})"
        )

    @classmethod
    def from_langchain_faiss(
        cls,
        folder: str | os.PathLike[str],
        embedding: Embeddings,
        *,
        path: str | os.PathLike[str] | None = None,
        allow_dangerous_deserialization: bool = False,
        **kwargs: Any,
    ) -> LocalVectorStore:
        """A store holding everything a LangChain ``FAISS.save_local(folder)`` directory holds:
        each document with its docstore id, text and metadata, and its vector copied exactly
        from the FAISS index (nothing is embedded).

        ``index.pkl`` is read without running code: only LangChain's docstore and document
        classes (as inert stand-ins), ``datetime`` values, sets and ``OrderedDict`` may appear
        in it; anything else is refused before it is loaded. ``allow_dangerous_deserialization=
        True`` means you trust the file: other classes it names are then imported and called,
        as ``FAISS.load_local`` does. ``index.faiss`` may be ``IndexFlat`` (L2 or inner
        product), ``IndexHNSWFlat``, ``IndexIVFFlat``, or one of them in ``IndexIDMap``.

        Keyword options: ``index_name`` (as given to ``save_local``, default ``"index"``);
        ``distance``, by default the index's metric (``METRIC_L2``: ``"l2"``,
        ``METRIC_INNER_PRODUCT``: ``"inner_product"``), another one only if every vector has
        unit length (as with ``normalize_L2=True``), when all three rank alike; ``index``, by
        default the source's kind (``"flat"``, ``"hnsw"``, ``"ivf"``); ``progress=True`` for a
        progress bar; the others go to the constructor. ``embedding`` must be the model the
        FAISS store was built with: its name goes into the manifest, its dimension must match.

        Scores: FAISS returns the squared Euclidean distance for L2, this store the distance
        itself (``faiss_score == score ** 2``); for inner product FAISS returns the product,
        this store its negation. Results come in the same order.

        Everything is read and checked before anything is written; on an error no store is
        created, and an existing store at ``path`` is unchanged. Importing into an existing
        store replaces documents by id (unchanged ones are not written again), so running an
        interrupted import again completes it.

        Raises:
            UnsafePickleError (an `InvalidInputError`): ``index.pkl`` names a class outside the
                allowlist; nothing was loaded.
            InvalidInputError: a file is missing or damaged, the files disagree, the index
                type keeps no exact vectors, or a document cannot be stored (it is named).
            DimensionMismatchError: ``embedding`` gives vectors of another dimension.
            ConfigurationError: a bad option, or a distance that would rank differently.
        """
        from vectordb_manager.vectorstores.faiss_import import import_langchain_faiss

        options = {
            name: kwargs.pop(name)
            for name in ("distance", "index", "index_name", "progress")
            if name in kwargs
        }

        def open_store(distance: str, index: str, params: dict[str, int]) -> LocalVectorStore:
            return cls(embedding, path, distance=distance, index=index, **{**params, **kwargs})

        store, _ = import_langchain_faiss(
            folder,
            embedding,
            open_store,
            allow_dangerous_deserialization=allow_dangerous_deserialization,
            **options,
        )
        assert isinstance(store, LocalVectorStore)
        return store
