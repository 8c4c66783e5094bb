"""Importing a directory written by LangChain's FAISS store (``FAISS.save_local``).

Such a directory holds two files: ``<index_name>.faiss``, the FAISS index (read with
``faiss.read_index``, which parses data and runs no Python), and ``<index_name>.pkl``, a
pickle of ``(docstore, index_to_docstore_id)``, read by `faiss_pickle.SafeUnpickler`, which
loads only what a LangChain docstore needs and refuses anything else before it runs (unless
``allow_dangerous_deserialization=True``: the caller trusts the file).

Vectors are copied out of the index exactly (``reconstruct_n``; nothing is embedded again)
for the index types that keep them as they were added: ``IndexFlat`` (L2 or inner product),
``IndexHNSWFlat``, ``IndexIVFFlat``, and those inside ``IndexIDMap``/``IndexIDMap2``.
Quantized indexes (PQ, SQ, ...) keep only approximations and are refused.

`read_langchain_faiss` reads and checks both files completely (every document, its metadata
as the store will accept it, the position-to-id map) before anything is written; then
`FaissImport.check` checks the vectors against the target's distance and embedding model, and
`FaissImport.copy_to` writes them, a batch per commit. Importing again into the same store
replaces documents by id and writes nothing for those unchanged, so an interrupted import is
completed by running it again.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
from langchain_core.embeddings import Embeddings
from tqdm.std import tqdm

from vectordb_manager.embeddings import embedding_model_name, known_dimension
from vectordb_manager.engine.hashing import canonical_json
from vectordb_manager.engine.limits import check_record_size
from vectordb_manager.engine.options import DISTANCES
from vectordb_manager.engine.vectors import check_dimension
from vectordb_manager.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
)
from vectordb_manager.vectorstores.engine_store import EngineVectorStore
from vectordb_manager.vectorstores.faiss_pickle import (
    PickledDocstore,
    PickledDocument,
    SafeUnpickler,
    UnsafePickleError,
    load_docstore,
)
from vectordb_manager.vectorstores.rows import _validate_rows

if TYPE_CHECKING:
    from vectordb_manager.config import VectorDBConfig

logger = logging.getLogger(__name__)

__all__ = [
    "FaissImport",
    "SafeUnpickler",
    "UnsafePickleError",
    "import_langchain_faiss",
    "import_langchain_faiss_to",
    "read_langchain_faiss",
]

BATCH = 1000
"""The fewest documents a commit takes; more when the vectors are small (`batch_rows`)."""
BATCH_BYTES = 64 << 20
"""About how many bytes of vectors one commit takes: few commits mean few merges, so a large
import writes each vector about twice, not once per merge level."""
"""Documents per commit while importing."""

UNIT_TOLERANCE = 1e-4
"""How far from 1 a vector's length may be for the vectors to count as unit length."""


# -- the index ----------------------------------------------------------------------------------
_FLAT = (faiss.IndexFlat, faiss.IndexFlatL2, faiss.IndexFlatIP)
_METRICS = {int(faiss.METRIC_L2): "l2", int(faiss.METRIC_INNER_PRODUCT): "inner_product"}
_SUPPORTED = (
    "IndexFlat (L2 or inner product), IndexHNSWFlat, IndexIVFFlat, or one of them in IndexIDMap"
)


@dataclass
class _IndexVectors:
    """The vectors of a FAISS index in position order, and each position's label."""

    index: Any  # the index that reconstructs by position
    labels: np.ndarray[Any, np.dtype[np.int64]]
    kind: str  # our index type closest to it
    params: dict[str, int] = field(default_factory=dict)
    owner: Any = None  # the index read from the file, which owns ``index`` (kept alive)

    def read(self, start: int, stop: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        return np.asarray(self.index.reconstruct_n(start, stop - start), dtype=np.float32)


def _read_index(path: Path) -> tuple[_IndexVectors, int, str]:
    """The index's vectors, dimension and metric (our distance name)."""
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist; {_WHAT_IS_EXPECTED}")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise InvalidInputError(
            f"cannot read {path} as a FAISS index ({_faiss_reason(exc)}); the file is damaged "
            "or was not written by faiss.write_index"
        ) from None
    # downcast: a wrapper that does not own the C++ object; ``owner`` keeps ``index`` alive
    owner, index = index, faiss.downcast_index(index)
    metric = _METRICS.get(int(index.metric_type))
    if metric is None:
        raise InvalidInputError(
            f"{path} uses FAISS metric type {index.metric_type}; only METRIC_L2 and "
            "METRIC_INNER_PRODUCT (LangChain's distance strategies) can be imported"
        )
    vectors = _positions(index, path)
    vectors.owner = owner
    return vectors, int(index.d), metric


def _positions(index: Any, path: Path) -> _IndexVectors:
    n = int(index.ntotal)
    sequential = np.arange(n, dtype=np.int64)
    if isinstance(index, faiss.IndexIDMap | faiss.IndexIDMap2):
        inner = _positions(faiss.downcast_index(index.index), path)  # owned by ``index``
        labels = faiss.vector_to_array(index.id_map).astype(np.int64)
        return _IndexVectors(inner.index, labels, inner.kind, inner.params, owner=index)
    if type(index) in _FLAT:
        return _IndexVectors(index, sequential, "flat")
    if type(index) is faiss.IndexHNSWFlat:
        m = int(index.hnsw.nb_neighbors(1))  # type: ignore[attr-defined]  # SWIG method
        return _IndexVectors(index, sequential, "hnsw", {"hnsw_m": m})
    if type(index) is faiss.IndexIVFFlat:
        try:
            index.make_direct_map()
        except RuntimeError as exc:
            raise InvalidInputError(
                f"{path}: the IVF index's ids are not its positions 0..{n - 1} "
                f"({_faiss_reason(exc)}); vectors were removed from it, after which LangChain's "
                "FAISS itself maps results to the wrong documents. Rebuild the FAISS store, or "
                "re-add its documents to a LocalVectorStore"
            ) from None
        return _IndexVectors(index, sequential, "ivf", {"ivf_nlist": int(index.nlist)})
    raise InvalidInputError(
        f"{path} holds a FAISS {type(index).__name__}, whose vectors cannot be read back "
        f"exactly (it keeps compressed codes, or a structure this import does not know); "
        f"supported: {_SUPPORTED}. Re-add the documents to a LocalVectorStore (they will be "
        "embedded again), or save the FAISS store with a flat index"
    )


def _faiss_reason(exc: BaseException) -> str:
    """FAISS's message without its C++ location prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^Error in .*? at \S+:\d+: (Error: )?", "", text)[:300]


def _read_file(path: Path) -> bytes:
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist; {_WHAT_IS_EXPECTED}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None


_WHAT_IS_EXPECTED = (
    "a LangChain FAISS directory (FAISS.save_local) holds <index_name>.faiss and "
    "<index_name>.pkl; give the directory and, if it was saved with one, its index_name"
)


# -- documents ----------------------------------------------------------------------------------
def _lookup(docstore: Any, pkl: Path) -> Callable[[str], Any]:
    """A function from docstore id to the stored document (``None`` where there is none)."""
    if isinstance(docstore, PickledDocstore):
        state = docstore.state
        docs = state.get("_dict") if isinstance(state, dict) else None
        if not isinstance(docs, dict):
            raise InvalidInputError(
                f"{pkl}: the InMemoryDocstore holds no documents dict; the file is damaged"
            )
        return docs.get
    docs = getattr(docstore, "_dict", None)  # a trusted, real docstore
    if isinstance(docs, dict):
        return docs.get
    search = getattr(docstore, "search", None)
    if callable(search):
        return search  # type: ignore[no-any-return]
    raise InvalidInputError(
        f"{pkl}: the docstore is a {type(docstore).__name__}, which has no documents to read"
    )


def _document(obj: Any, doc_id: str, pkl: Path) -> tuple[str, Any]:
    """A stored document's text and metadata."""
    if isinstance(obj, PickledDocument):
        state = obj.state
        fields = state.get("__dict__", state) if isinstance(state, dict) else None
        if not isinstance(fields, dict):
            fields = {}
        text, metadata = fields.get("page_content"), fields.get("metadata", {})
    elif obj is None or isinstance(obj, str):  # InMemoryDocstore.search's "not found" string
        raise InvalidInputError(
            f"{pkl}: the docstore has no document for id {doc_id!r}, which the index maps a "
            "vector to; the files do not belong together (saved at different times?)"
        )
    else:  # a trusted real Document (or a subclass)
        text, metadata = getattr(obj, "page_content", None), getattr(obj, "metadata", None)
    if not isinstance(text, str):
        raise InvalidInputError(
            f"{pkl}: document {doc_id!r} is a {type(obj).__name__} without a page_content "
            "string; the file is damaged or its docstore holds something else"
        )
    return text, {} if metadata is None else metadata


def _id_map(mapping: Any, labels: np.ndarray[Any, np.dtype[np.int64]], pkl: Path) -> list[str]:
    """The docstore id of each index position."""
    if not isinstance(mapping, dict):
        raise InvalidInputError(
            f"{pkl}: index_to_docstore_id is a {type(mapping).__name__}, not a dict; the "
            "file is damaged"
        )
    label_list = labels.tolist()
    if len(mapping) != len(label_list) or set(mapping) != set(label_list):
        missing = sorted(set(label_list) - set(mapping))[:5]
        raise InvalidInputError(
            f"{pkl} maps {len(mapping)} index positions to documents but the index holds "
            f"{len(label_list)} vectors"
            + (f" (no document for positions {missing})" if missing else "")
            + "; the two files do not belong together (saved at different times?)"
        )
    ids = [mapping[label] for label in label_list]
    bad = next((i for i in ids if not isinstance(i, str)), None)
    if bad is not None:
        raise InvalidInputError(f"{pkl}: the docstore id {bad!r} is not a string")
    if len(set(ids)) != len(ids):
        dupes = sorted(i for i, count in Counter(ids).items() if count > 1)
        raise InvalidInputError(
            f"{pkl}: several vectors map to the same document id ({dupes[:5]}); the store "
            "keeps one vector per id"
        )
    return ids


# -- the import ---------------------------------------------------------------------------------
@dataclass
class FaissImport:
    """A LangChain FAISS directory, read and checked: documents in memory, vectors in the
    FAISS index (read a batch at a time)."""

    folder: Path
    dimension: int
    distance: str  # the index's metric, as our distance name
    kind: str  # our index type closest to the source's: "flat", "hnsw" or "ivf"
    params: dict[str, int]  # our index options matching the source's (hnsw_m, ivf_nlist)
    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    vectors: _IndexVectors
    unindexed: int = 0  # documents in the docstore that no vector refers to (not imported)

    def __len__(self) -> int:
        return len(self.ids)

    def batch_rows(self) -> int:
        """Documents per commit: `BATCH_BYTES` of vectors, at least `BATCH`."""
        return max(BATCH, BATCH_BYTES // (4 * self.dimension))

    def batches(
        self, size: int | None = None
    ) -> Iterator[tuple[slice, np.ndarray[Any, np.dtype[np.float32]]]]:
        size = size or self.batch_rows()
        for start in range(0, len(self.ids), size):
            stop = min(start + size, len(self.ids))
            yield slice(start, stop), self.vectors.read(start, stop)

    def check(self, *, distance: str, embedding: Embeddings | None = None) -> None:
        """Check, before anything is written, that the vectors can go to a store of
        ``distance`` for ``embedding``: same dimension, finite values, and, for a distance
        other than the index's metric, unit length (then all three distances rank alike).

        Raises:
            ConfigurationError: an unknown distance, or one that would rank differently.
            DimensionMismatchError: the embedding model gives vectors of another dimension.
            InvalidInputError: a vector is not finite.
        """
        if distance not in DISTANCES:
            raise ConfigurationError(
                f"distance={distance!r} is not supported; use one of {', '.join(DISTANCES)}"
            )
        check_dimension(self.dimension, None)
        if embedding is not None:
            dim = known_dimension(embedding)
            if dim is not None and dim != self.dimension:
                raise DimensionMismatchError(
                    f"{self.folder} holds {self.dimension}-dimensional vectors but the "
                    f"embedding model {embedding_model_name(embedding)!r} gives {dim}; pass "
                    "the model the FAISS store was built with"
                )
        for rows, vectors in self.batches():
            finite = np.isfinite(vectors).all(axis=1)
            if not finite.all():
                raise InvalidInputError(
                    f"{self.folder}: the vector of document {self._id_at(rows, finite)!r} "
                    "holds NaN or infinite values; remove it from the FAISS store first"
                )
            if distance != self.distance:
                lengths = np.linalg.norm(vectors, axis=1)
                unit = np.abs(lengths - 1.0) <= UNIT_TOLERANCE
                if not unit.all():
                    bad = int(np.argmin(unit))
                    raise ConfigurationError(
                        f"distance={distance!r} ranks like the index's {self.distance!r} only "
                        f"for unit-length vectors, but document {self.ids[rows.start + bad]!r} "
                        f"has a vector of length {lengths[bad]:.6g}; import with "
                        f"distance={self.distance!r}"
                    )

    def _id_at(self, rows: slice, ok: np.ndarray[Any, Any]) -> str:
        return str(self.ids[rows.start + int(np.argmin(ok))])

    def copy_to(
        self, store: EngineVectorStore, *, progress: Callable[[int], object] | None = None
    ) -> int:
        """Add every document with its vector to ``store``, `batch_rows` per commit (documents
        already there unchanged are not written again); returns how many were imported."""
        if store.engine.dimension not in (None, self.dimension):
            raise DimensionMismatchError(
                f"the target store holds {store.engine.dimension}-dimensional vectors but "
                f"{self.folder} holds {self.dimension}-dimensional ones; import into a new "
                "store (another path)"
            )
        for rows, vectors in self.batches():
            store.add_embeddings(
                zip(self.texts[rows], vectors, strict=True),
                self.metadatas[rows],
                ids=self.ids[rows],
            )
            if progress is not None:
                progress(rows.stop - rows.start)
        return len(self.ids)


def read_langchain_faiss(
    folder: str | os.PathLike[str],
    *,
    index_name: str = "index",
    allow_dangerous_deserialization: bool = False,
) -> FaissImport:
    """Read and check the directory ``FAISS.save_local(folder, index_name)`` wrote; nothing
    is written and nothing is embedded.

    Raises:
        UnsafePickleError: the pickle names a class outside the allowlist (and
            ``allow_dangerous_deserialization`` is false); nothing it names was loaded.
        InvalidInputError: a file is missing or damaged, the files disagree, the index keeps
            no exact vectors, or a document's metadata cannot be stored (naming the document).
    """
    if not isinstance(index_name, str) or not index_name or "/" in index_name:
        raise InvalidInputError(
            f"index_name={index_name!r} must be the file name FAISS.save_local was given "
            "(default 'index'), without a directory"
        )
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InvalidInputError(f"{root} is not a directory; {_WHAT_IS_EXPECTED}")
    faiss_path, pkl = root / f"{index_name}.faiss", root / f"{index_name}.pkl"
    for path in (faiss_path, pkl):
        if not path.is_file():
            others = sorted(p.name for p in root.glob("*.faiss"))
            hint = f" (the directory has {', '.join(others)}: pass index_name)" if others else ""
            raise InvalidInputError(f"{path} does not exist{hint}; {_WHAT_IS_EXPECTED}")
    # the pickle first: a refused pickle is reported even when the index is damaged too
    docstore, mapping = load_docstore(_read_file(pkl), pkl, trusted=allow_dangerous_deserialization)
    vectors, dimension, metric = _read_index(faiss_path)
    ids = _id_map(mapping, vectors.labels, pkl)
    lookup = _lookup(docstore, pkl)
    texts: list[str] = []
    metadatas: list[dict[str, Any]] = []
    for doc_id in ids:
        text, metadata = _document(lookup(doc_id), doc_id, pkl)
        try:
            _, (clean,), _ = _validate_rows([text], [metadata], [doc_id])
            check_record_size(0, text, canonical_json(clean))
        except InvalidInputError as exc:
            reason = re.sub(r"^(metadata|text|id) 0 ", r"its \1 ", str(exc))
            raise InvalidInputError(
                f"{pkl}: document {doc_id!r} cannot be stored: {reason}"
            ) from None
        texts.append(text)
        metadatas.append(clean)
    stored = _stored_count(docstore)
    return FaissImport(
        folder=root,
        dimension=dimension,
        distance=metric,
        kind=vectors.kind,
        params=vectors.params,
        ids=ids,
        texts=texts,
        metadatas=metadatas,
        vectors=vectors,
        unindexed=max(0, stored - len(ids)) if stored is not None else 0,
    )


def _stored_count(docstore: Any) -> int | None:
    """How many documents the docstore holds, where it can say."""
    state = docstore.state if isinstance(docstore, PickledDocstore) else None
    docs = state.get("_dict") if isinstance(state, dict) else getattr(docstore, "_dict", None)
    return len(docs) if isinstance(docs, dict) else None


def import_langchain_faiss(
    folder: str | os.PathLike[str],
    embedding: Embeddings,
    open_store: Callable[[str, str, dict[str, int]], EngineVectorStore],
    *,
    distance: str | None = None,
    index: str | None = None,
    index_name: str = "index",
    allow_dangerous_deserialization: bool = False,
    progress: bool = False,
) -> tuple[EngineVectorStore, int]:
    """Import the LangChain FAISS directory ``folder`` into the store
    ``open_store(distance, index, index_params)`` opens (or creates), called only once
    everything has been read and checked. ``distance`` defaults to the index's metric,
    ``index`` to the source's kind. Returns the store and how many documents were imported.
    """
    source = read_langchain_faiss(
        folder,
        index_name=index_name,
        allow_dangerous_deserialization=allow_dangerous_deserialization,
    )
    distance = source.distance if distance is None else distance
    source.check(distance=distance, embedding=embedding)
    kind = source.kind if index is None else index
    params = source.params if kind == source.kind else {}
    store = open_store(distance, kind, params)
    if source.unindexed:
        logger.warning(
            "%s: %d documents in the docstore have no vector in the index; not imported",
            source.folder,
            source.unindexed,
        )
    with tqdm(total=len(source), unit="doc", disable=not progress, desc="import-faiss") as bar:
        count = source.copy_to(store, progress=bar.update)
    return store, count


def import_langchain_faiss_to(
    config: VectorDBConfig,
    folder: str | os.PathLike[str],
    *,
    distance: str | None = None,
    index: str | None = None,
    index_name: str = "index",
    allow_dangerous_deserialization: bool = False,
    progress: bool = False,
) -> tuple[EngineVectorStore, int]:
    """Import ``folder`` into the store ``config`` describes (local or S3), with its embedding
    model; ``distance`` and ``index`` override the source's, not the config's (which the
    source decides). What the command ``vectordb import-faiss`` runs."""
    from vectordb_manager.embeddings import EmbeddingService
    from vectordb_manager.vectorstores.factory import create_vector_store

    service = EmbeddingService.from_config(config, lazy=True)

    def open_store(distance: str, kind: str, params: dict[str, int]) -> EngineVectorStore:
        target = config.replace(distance_metric=distance, index_type=kind)
        store = create_vector_store(target, service, create=True)
        assert isinstance(store, EngineVectorStore)
        return store

    return import_langchain_faiss(
        folder,
        service,
        open_store,
        distance=distance,
        index=index,
        index_name=index_name,
        allow_dangerous_deserialization=allow_dangerous_deserialization,
        progress=progress,
    )
