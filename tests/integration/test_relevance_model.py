"""Relevance scores with the real offline model: an identical text is fully relevant under
every distance, and related text outranks unrelated text."""

from __future__ import annotations

import pytest
from langchain_core.embeddings import Embeddings

from vectordb_manager import LocalVectorStore

pytestmark = pytest.mark.slow  # loads the model

TEXTS = [
    "The Eiffel Tower is in Paris.",
    "Paris is the capital of France.",
    "Photosynthesis turns light into chemical energy.",
]


@pytest.mark.parametrize("distance", ["cosine", "l2", "inner_product"])
async def test_identical_text_scores_at_least_099(minilm: Embeddings, distance: str) -> None:
    store = LocalVectorStore(minilm, distance=distance)
    store.add_texts(TEXTS, ids=["tower", "capital", "plants"])
    scored = store.similarity_search_with_relevance_scores(TEXTS[0], k=3)
    assert [d.id for d, _ in scored] == ["tower", "capital", "plants"]
    (_, same), (_, related), (_, unrelated) = scored
    assert same >= 0.99
    assert 0.0 <= unrelated < related < same <= 1.0
    ascored = await store.asimilarity_search_with_relevance_scores(TEXTS[0], k=1)
    assert ascored[0][1] >= 0.99
