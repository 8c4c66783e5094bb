"""Unit tests for `vectordb_manager.embeddings`' EmbeddingService (construction, dimension,
batching, failures), `build_embeddings` and the real offline model (HashingEmbeddings and
`check_vectors`: test_embedding_checks.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from tests.embedding_support import CountingEmbeddings, CountingHashing, ScriptedEmbeddings
from vectordb_manager.config import VectorDBConfig
from vectordb_manager.embeddings import (
    DEFAULT_HF_MODEL,
    EmbeddingService,
    HashingEmbeddings,
    build_embeddings,
    embedding_model_name,
    known_dimension,
)
from vectordb_manager.errors import (
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    VectorDBError,
)

# -- EmbeddingService: construction ----------------------------------------------------------


def test_service_wraps_an_embeddings_object() -> None:
    inner = HashingEmbeddings(8)
    service = EmbeddingService(inner)
    assert isinstance(service, Embeddings)
    assert service.embeddings is inner
    assert service.batch_size == 64
    assert service.model_name == "hashing-bow-8"
    assert service.known_dimension == 8


def test_service_unwraps_a_nested_service() -> None:
    inner = HashingEmbeddings(8)
    outer = EmbeddingService(EmbeddingService(inner, batch_size=2), batch_size=5)
    assert outer.embeddings is inner
    assert outer.batch_size == 5


@pytest.mark.parametrize("batch_size", [0, -3])
def test_service_rejects_a_non_positive_batch_size(batch_size: int) -> None:
    with pytest.raises(ConfigurationError, match=f"batch_size={batch_size} must be positive"):
        EmbeddingService(HashingEmbeddings(8), batch_size=batch_size)


def test_service_rejects_objects_that_are_not_embeddings() -> None:
    with pytest.raises(ConfigurationError, match="needs a LangChain Embeddings object, got str"):
        EmbeddingService("all-MiniLM-L6-v2")  # type: ignore[arg-type]


def test_service_from_config_builds_the_fake_provider() -> None:
    config = VectorDBConfig(
        embedding_provider="fake", embedding_dimensions=32, embedding_batch_size=5
    )
    service = EmbeddingService.from_config(config)
    assert isinstance(service.embeddings, HashingEmbeddings)
    assert service.batch_size == 5
    assert service.known_dimension == 32
    assert service.model_name == "hashing-bow-32"
    expected = HashingEmbeddings(32).embed_query("x y")
    assert service.embed_query("x y") == pytest.approx(expected, abs=1e-6)


# -- EmbeddingService: dimension -------------------------------------------------------------


def test_dimension_is_known_without_embedding_for_hashing() -> None:
    inner = CountingHashing(16)
    service = EmbeddingService(inner)
    assert service.known_dimension == 16
    assert service.dimension == 16
    assert inner.calls == 0


def test_dimension_is_known_without_embedding_for_deterministic_fake() -> None:
    service = EmbeddingService(DeterministicFakeEmbedding(size=24))
    assert service.known_dimension == 24
    assert service.dimension == 24


def test_dimension_embeds_one_text_when_the_provider_cannot_say() -> None:
    inner = CountingEmbeddings(dim=5)
    service = EmbeddingService(inner)
    assert service.known_dimension is None
    assert service.dimension == 5
    assert len(inner.query_calls) == 1
    assert inner.document_batches == []
    assert service.known_dimension == 5
    assert service.dimension == 5
    assert len(inner.query_calls) == 1  # learned, not asked again


def test_dimension_is_learned_from_the_first_embedding() -> None:
    inner = CountingEmbeddings(dim=6)
    service = EmbeddingService(inner)
    service.embed_documents(["a", "b"])
    assert service.known_dimension == 6
    assert inner.query_calls == []


# -- EmbeddingService: batching ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "batch_size", "expected_sizes"),
    [
        (10, 4, [4, 4, 2]),
        (8, 4, [4, 4]),
        (3, 64, [3]),
        (5, 1, [1, 1, 1, 1, 1]),
        (0, 4, []),
    ],
)
def test_embed_documents_embeds_in_batches(
    count: int, batch_size: int, expected_sizes: list[int]
) -> None:
    inner = CountingEmbeddings(dim=3)
    service = EmbeddingService(inner, batch_size=batch_size)
    texts = ["x" * (i + 1) for i in range(count)]
    vectors = service.embed_documents(texts)
    assert [len(b) for b in inner.document_batches] == expected_sizes
    # batches are consecutive slices of the input, in order
    assert [t for batch in inner.document_batches for t in batch] == texts
    assert vectors == [[float(i + 1), 1.0, 1.0] for i in range(count)]


def test_embed_documents_matches_the_wrapped_model() -> None:
    inner = HashingEmbeddings(16)
    service = EmbeddingService(inner, batch_size=3)
    texts = [f"text number {i}" for i in range(7)]
    got = np.asarray(service.embed_documents(texts))
    want = np.asarray(inner.embed_documents(texts), dtype=np.float32)
    np.testing.assert_array_equal(got, want)


def test_embed_array_shape_and_dtype() -> None:
    inner = CountingHashing(16)
    service = EmbeddingService(inner, batch_size=2)
    array = service.embed_array(("a", "b", "c", "d", "e"))
    assert array.shape == (5, 16)
    assert array.dtype == np.float32
    assert inner.calls == 3
    np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, rtol=1e-5)


def test_embed_array_of_nothing() -> None:
    known = EmbeddingService(CountingHashing(16))
    assert known.embed_array([]).shape == (0, 16)
    assert known.embeddings.calls == 0  # type: ignore[attr-defined]
    unknown = EmbeddingService(CountingEmbeddings())
    assert unknown.embed_array([]).shape == (0, 0)
    assert unknown.embed_documents([]) == []


def test_embed_query_uses_the_query_method() -> None:
    inner = CountingEmbeddings(dim=2)
    service = EmbeddingService(inner, batch_size=1)
    assert service.embed_query("hello") == [5.0, 1.0]
    assert inner.query_calls == ["hello"]
    assert inner.document_batches == []


async def test_aembed_documents_embeds_in_batches() -> None:
    inner = CountingEmbeddings(dim=3)
    service = EmbeddingService(inner, batch_size=3)
    texts = ["a", "bb", "ccc", "dddd", "eeeee", "ffffff", "g"]
    vectors = await service.aembed_documents(texts)
    assert [len(b) for b in inner.document_batches] == [3, 3, 1]
    assert vectors == [[float(len(t)), 1.0, 1.0] for t in texts]


async def test_aembed_query() -> None:
    service = EmbeddingService(HashingEmbeddings(8))
    vector = await service.aembed_query("async text")
    assert vector == pytest.approx(HashingEmbeddings(8).embed_query("async text"), abs=1e-6)


# -- EmbeddingService: failures ----------------------------------------------------------------


def test_provider_exception_becomes_embedding_error_naming_the_model() -> None:
    boom = RuntimeError("rate limited")
    service = EmbeddingService(ScriptedEmbeddings([boom], model="acme-embed"))
    with pytest.raises(
        EmbeddingError, match="embedding model 'acme-embed' failed: RuntimeError: rate limited"
    ) as info:
        service.embed_documents(["a"])
    assert info.value.__cause__ is boom
    assert isinstance(info.value, VectorDBError)


def test_provider_exception_in_a_later_batch() -> None:
    outputs: list[Any] = [[[1.0, 0.0]] * 2, ConnectionError("reset")]
    service = EmbeddingService(ScriptedEmbeddings(outputs, model="acme"), batch_size=2)
    with pytest.raises(
        EmbeddingError, match="embedding model 'acme' failed: ConnectionError: reset"
    ):
        service.embed_documents(["a", "b", "c"])


def test_provider_exception_in_embed_query() -> None:
    service = EmbeddingService(ScriptedEmbeddings([ValueError("bad input")], model="acme"))
    with pytest.raises(
        EmbeddingError, match="embedding model 'acme' failed: ValueError: bad input"
    ):
        service.embed_query("a")


async def test_provider_exception_in_async_methods() -> None:
    service = EmbeddingService(
        ScriptedEmbeddings([TimeoutError("slow"), OSError("down")], model="acme")
    )
    with pytest.raises(EmbeddingError, match="embedding model 'acme' failed: TimeoutError: slow"):
        await service.aembed_documents(["a"])
    with pytest.raises(EmbeddingError, match="embedding model 'acme' failed: OSError: down"):
        await service.aembed_query("a")


def test_wrong_number_of_vectors_is_an_embedding_error() -> None:
    service = EmbeddingService(ScriptedEmbeddings([[[1.0, 2.0]]], model="acme"))
    with pytest.raises(
        EmbeddingError, match="embedding model 'acme' returned 1 vectors for 2 texts"
    ):
        service.embed_documents(["a", "b"])


async def test_wrong_number_of_vectors_async() -> None:
    service = EmbeddingService(ScriptedEmbeddings([[]], model="acme"))
    with pytest.raises(
        EmbeddingError, match="embedding model 'acme' returned 0 vectors for 1 texts"
    ):
        await service.aembed_documents(["a"])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_vectors_are_embedding_errors(bad: float) -> None:
    service = EmbeddingService(ScriptedEmbeddings([[[1.0, bad]], [bad, 0.0]], model="acme"))
    with pytest.raises(EmbeddingError, match="embedding model 'acme' returned NaN or infinite"):
        service.embed_documents(["a"])
    with pytest.raises(EmbeddingError, match="embedding model 'acme' returned NaN or infinite"):
        service.embed_query("a")


def test_ragged_vectors_are_dimension_mismatches() -> None:
    service = EmbeddingService(ScriptedEmbeddings([[[1.0, 2.0], [1.0]]], model="acme"))
    with pytest.raises(
        DimensionMismatchError,
        match=r"embedding model 'acme' returned vectors of different lengths",
    ):
        service.embed_documents(["a", "b"])


def test_learned_dimension_is_enforced_across_batches() -> None:
    outputs: list[Any] = [[[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0, 4.0]]]
    service = EmbeddingService(ScriptedEmbeddings(outputs, model="acme"), batch_size=1)
    with pytest.raises(
        DimensionMismatchError,
        match="embedding model 'acme' returned 4-dimensional vectors but 3 were expected",
    ):
        service.embed_documents(["a", "b"])
    assert service.known_dimension == 3


def test_vectors_of_the_wrong_known_dimension_are_rejected() -> None:
    class Liar(HashingEmbeddings):
        def embed_query(self, text: str) -> list[float]:
            return [1.0] * (self.size + 1)

    service = EmbeddingService(Liar(4))
    with pytest.raises(
        DimensionMismatchError,
        match="embedding model 'hashing-bow-4' returned 5-dimensional vectors but 4 were expected",
    ):
        service.embed_query("a")


def test_failed_embedding_does_not_learn_a_dimension() -> None:
    service = EmbeddingService(ScriptedEmbeddings([[[math.nan, 1.0]], [[1.0, 2.0, 3.0]]]))
    with pytest.raises(EmbeddingError):
        service.embed_documents(["a"])
    assert service.known_dimension is None
    assert service.embed_documents(["b"]) == [[1.0, 2.0, 3.0]]
    assert service.known_dimension == 3


# -- build_embeddings --------------------------------------------------------------------------


def test_build_embeddings_fake_provider() -> None:
    default = build_embeddings(VectorDBConfig(embedding_provider="fake"))
    assert isinstance(default, HashingEmbeddings)
    assert default.size == 384
    sized = build_embeddings(VectorDBConfig(embedding_provider="fake", embedding_dimensions=48))
    assert isinstance(sized, HashingEmbeddings)
    assert known_dimension(sized) == 48


def test_build_embeddings_openai_provider_config() -> None:
    config = VectorDBConfig(
        embedding_provider="openai",
        openai_api_key="sk-test",
        openai_base_url="http://127.0.0.1:9/v1",
        embedding_dimensions=64,
    )
    embeddings = build_embeddings(config)
    assert type(embeddings).__name__ == "OpenAIEmbeddings"
    assert embeddings.dimensions == 64  # type: ignore[attr-defined]
    assert embeddings.check_embedding_ctx_length is False  # type: ignore[attr-defined]
    assert embeddings.model == "text-embedding-3-small"  # type: ignore[attr-defined]
    assert known_dimension(embeddings) == 64
    assert embedding_model_name(embeddings) == "text-embedding-3-small"
    service = EmbeddingService(embeddings, batch_size=config.embedding_batch_size)
    assert service.known_dimension == 64


@pytest.mark.parametrize(
    ("model", "dimension"),
    [
        (None, 1536),
        ("text-embedding-3-large", 3072),
        ("text-embedding-ada-002", 1536),
        ("some-local-model", None),
    ],
)
def test_openai_dimension_from_the_model_name(model: str | None, dimension: int | None) -> None:
    config = VectorDBConfig(
        embedding_provider="openai",
        embedding_model=model,
        openai_api_key="sk-test",
        openai_base_url="http://127.0.0.1:9/v1",
    )
    assert known_dimension(build_embeddings(config)) == dimension


# -- the real offline HuggingFace model ----------------------------------------------------------


@pytest.fixture(scope="module")
def hf_model() -> Iterator[Embeddings]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield build_embeddings(VectorDBConfig())


@pytest.mark.slow
def test_real_offline_minilm_model(hf_model: Embeddings) -> None:
    assert type(hf_model).__name__ == "MiniLMEmbeddings"  # computed in NumPy, see test_minilm
    assert known_dimension(hf_model) == 384
    assert embedding_model_name(hf_model) == DEFAULT_HF_MODEL
    service = EmbeddingService(hf_model)
    assert service.known_dimension == 384  # known before any embedding call
    assert service.model_name == DEFAULT_HF_MODEL

    texts = ["a cat sat on the mat", "a kitten rested on the rug", "quarterly tax filing deadlines"]
    array = service.embed_array(texts)
    assert array.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-4)
    cat, kitten, tax = array
    assert float(cat @ kitten) > float(cat @ tax) + 0.2

    query = np.asarray(service.embed_query("a cat sat on the mat"))
    assert math.isclose(float(np.linalg.norm(query)), 1.0, abs_tol=1e-4)
    np.testing.assert_allclose(query, cat, atol=1e-4)


def test_a_cache_in_front_of_the_model_is_recorded_and_compared_as_the_model(
    tmp_path: Path,
) -> None:
    from langchain_classic.embeddings import CacheBackedEmbeddings
    from langchain_core.stores import InMemoryByteStore

    from vectordb_manager import ConfigurationError, LocalVectorStore

    def cached(model: Embeddings, namespace: str) -> Embeddings:
        return CacheBackedEmbeddings.from_bytes_store(
            model, InMemoryByteStore(), namespace=namespace, key_encoder="sha256"
        )

    plain = HashingEmbeddings(64)
    built = LocalVectorStore(plain, tmp_path / "s")
    built.add_texts(["red apples"], ids=["a"])
    assert embedding_model_name(cached(plain, "x")) == "hashing-bow-64"
    assert known_dimension(cached(cached(plain, "x"), "y")) == 64  # wrappers of wrappers
    # built with the plain model, opened through a cache of it: the same model
    through_cache = LocalVectorStore(cached(HashingEmbeddings(64), "ns"), tmp_path / "s")
    assert through_cache.similarity_search("red apples", k=1)[0].id == "a"
    assert through_cache.stats()["embedding_model"] == "hashing-bow-64"
    # another model behind the cache is another model
    with pytest.raises(ConfigurationError, match="DeterministicFakeEmbedding"):
        LocalVectorStore(cached(DeterministicFakeEmbedding(size=64), "ns"), tmp_path / "s")
    # and a store built through a cache records the model, not the cache
    LocalVectorStore(cached(HashingEmbeddings(48), "ns"), tmp_path / "t").add_texts(["x"])
    assert LocalVectorStore(HashingEmbeddings(48), tmp_path / "t").stats()["embedding_model"] == (
        "hashing-bow-48"
    )
