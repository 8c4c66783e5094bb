"""Test doubles for the embedding tests (test_embeddings*.py): providers that count or script
what they return, wrapped by the code under test (which is never mocked)."""

from __future__ import annotations

from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from vectordb_manager.embeddings import HashingEmbeddings


class CountingEmbeddings(Embeddings):
    """A provider with no advertised dimension that records every call it receives."""

    def __init__(self, dim: int = 3) -> None:
        self.dim = dim
        self.model_name = "counting-model"
        self.document_batches: list[list[str]] = []
        self.query_calls: list[str] = []

    def _vector(self, text: str) -> list[float]:
        return [float(len(text)), *([1.0] * (self.dim - 1))]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.document_batches.append(list(texts))
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.query_calls.append(text)
        return self._vector(text)


class CountingHashing(HashingEmbeddings):
    """HashingEmbeddings that counts the calls it receives."""

    def __init__(self, size: int = 16) -> None:
        super().__init__(size)
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return super().embed_query(text)


class ScriptedEmbeddings(Embeddings):
    """Returns pre-scripted outputs (one per call) or raises a scripted exception."""

    def __init__(self, outputs: list[Any], model: str = "scripted-model") -> None:
        self.outputs = list(outputs)
        self.model = model

    def _next(self) -> Any:
        out = self.outputs.pop(0)
        if isinstance(out, BaseException):
            raise out
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._next()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self._next()  # type: ignore[no-any-return]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._next()  # type: ignore[no-any-return]

    async def aembed_query(self, text: str) -> list[float]:
        return self._next()  # type: ignore[no-any-return]


def cos(a: list[float], b: list[float]) -> float:
    va, vb = np.asarray(a), np.asarray(b)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))
