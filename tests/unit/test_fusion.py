"""Hybrid fusion: the threshold algorithm's top k equals brute-force fusion over every document."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from vectordb_manager.errors import InvalidInputError
from vectordb_manager.vectorstores.fusion import (
    DEFAULT_RANK_CONSTANT,
    KEYWORD,
    Entry,
    Fusion,
    fused_top_k,
)


def _rankings(
    rng: random.Random, docs: int, matching: float, ties: bool
) -> tuple[list[Entry[str]], list[Entry[str]]]:
    """A complete vector ranking (every document, relevance in [0, 1]) and keyword ranking
    (the documents holding a query term, BM25 > 0), best first."""
    keys = [f"d{i:04d}" for i in range(docs)]
    rel = {key: rng.random() for key in keys}
    bm25 = {key: rng.uniform(0.1, 12.0) for key in keys if rng.random() < matching}
    if ties:  # few distinct values: many equal scores, broken by the order given
        rel = {key: round(v, 1) for key, v in rel.items()}
        bm25 = {key: round(v) + 1.0 for key, v in bm25.items()}
    vector = sorted(((key, v, key) for key, v in rel.items()), key=lambda e: -e[1])
    keyword = sorted(((key, v, key) for key, v in bm25.items()), key=lambda e: -e[1])
    return vector, keyword


def _reference(
    vector: Sequence[Entry[str]], keyword: Sequence[Entry[str]], fusion: Fusion, k: int
) -> list[tuple[str, float]]:
    """The formulas of the module's docstring, applied to every document."""
    a, c = fusion.alpha, fusion.rank_constant
    sides = [(a, list(vector)), (1.0 - a, list(keyword))]
    parts: dict[str, list[float]] = {}
    for s, (weight, entries) in enumerate(sides):
        if weight == 0:
            continue
        for rank, (key, score, _) in enumerate(entries, start=1):
            if fusion.method == "rrf":
                part = weight / (c + rank)
            elif s == KEYWORD:
                part = weight * score / entries[0][1]
            else:
                part = weight * score
            parts.setdefault(key, [0.0, 0.0])[s] = part
    scores = {key: 0.0 + p[0] + p[1] for key, p in parts.items()}
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


class _Counted:
    """A side's fetch over a complete ranking, counting the entries it hands out."""

    def __init__(self, entries: Sequence[Entry[str]]) -> None:
        self.entries = entries
        self.served = 0
        self.calls = 0

    def __call__(self, n: int) -> Sequence[Entry[str]]:
        self.calls += 1
        self.served += min(n, len(self.entries))
        return self.entries[:n]


CASES = [
    (seed, method, alpha, k, ties)
    for seed in range(6)
    for method in ("rrf", "weighted")
    for alpha in (0.0, 0.3, 0.5, 1.0)
    for k in (1, 4, 25)
    for ties in (False, True)
]


@pytest.mark.parametrize(("seed", "method", "alpha", "k", "ties"), CASES)
def test_top_k_equals_brute_force_fusion(
    seed: int, method: str, alpha: float, k: int, ties: bool
) -> None:
    rng = random.Random(seed)
    vector, keyword = _rankings(rng, rng.choice([3, 40, 400]), rng.choice([0.02, 0.3, 0.9]), ties)
    fusion = Fusion(method, alpha, rng.choice([0.0, 1.0, DEFAULT_RANK_CONSTANT]))
    matching = {key for key, _, _ in keyword}
    for absent in (None, lambda side, key: side == KEYWORD and key not in matching):
        got = fused_top_k(_Counted(vector), _Counted(keyword), k, fusion, absent=absent, start=2)
        assert got == _reference(vector, keyword, fusion, k)


def test_stops_early_when_both_sides_agree() -> None:
    # 10,000 documents; the keyword side's best are the vector side's best: a few rounds
    keys = [f"d{i:05d}" for i in range(10_000)]
    vector = [(key, 1.0 - i / 10_000, key) for i, key in enumerate(keys)]
    keyword = [(key, 100.0 - i, key) for i, key in enumerate(keys[:50])]
    for method in ("rrf", "weighted"):
        v, kw = _Counted(vector), _Counted(keyword)
        got = fused_top_k(v, kw, 4, Fusion(method))
        assert [key for key, _ in got] == keys[:4]
        assert v.served + kw.served < 500


def test_known_absent_documents_need_no_full_keyword_scan() -> None:
    # the vector side's best hold no query term; 5,000 documents match the query weakly
    keys = [f"d{i:05d}" for i in range(10_000)]
    vector = [(key, 1.0 - i / 10_000, key) for i, key in enumerate(keys)]
    keyword = [(key, 5.0 - i / 5000, key) for key in keys[5000:] for i in [int(key[1:])]]
    matching = {key for key, _, _ in keyword}
    fusion = Fusion("rrf")
    informed = _Counted(keyword)
    got = fused_top_k(
        _Counted(vector),
        informed,
        4,
        fusion,
        absent=lambda side, key: side == KEYWORD and key not in matching,
    )
    assert got == _reference(vector, keyword, fusion, 4)
    assert informed.served < 1000
    blind = _Counted(keyword)  # without the test, the whole keyword side must be read
    assert fused_top_k(_Counted(vector), blind, 4, fusion) == got
    assert blind.served >= 5000


def test_a_zero_weight_side_is_not_searched() -> None:
    vector = [("a", 0.9, "a"), ("b", 0.8, "b")]
    keyword = [("b", 3.0, "b")]

    def never(n: int) -> Sequence[Entry[str]]:
        raise AssertionError("searched a side of weight 0")

    assert fused_top_k(lambda n: vector[:n], never, 2, Fusion("rrf", 1.0)) == [
        ("a", 1.0 / 61),
        ("b", 1.0 / 62),
    ]
    assert fused_top_k(never, lambda n: keyword[:n], 2, Fusion("weighted", 0.0)) == [("b", 1.0)]


def test_fewer_documents_than_k() -> None:
    vector = [("a", 0.9, "a"), ("b", 0.8, "b")]
    got = fused_top_k(lambda n: vector[:n], lambda n: [], 10, Fusion("weighted", 0.5))
    assert got == [("a", 0.45), ("b", 0.4)]
    assert fused_top_k(lambda n: [], lambda n: [], 3, Fusion()) == []


@pytest.mark.parametrize(
    ("method", "alpha", "constant", "message"),
    [
        ("bm25", 0.5, 60, "fusion='bm25' is not a fusion method"),
        ("rrf", 1.5, 60, "alpha=1.5 must be a number from 0"),
        ("rrf", True, 60, "alpha=True"),
        ("rrf", float("nan"), 60, "alpha=nan"),
        ("weighted", "0.5", 60, "alpha='0.5'"),
        ("rrf", 0.5, -1, "rank_constant=-1 must be a number, zero or more"),
        ("rrf", 0.5, float("inf"), "rank_constant=inf"),
    ],
)
def test_bad_fusion_arguments(
    method: object, alpha: object, constant: object, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
        Fusion.checked(method, alpha, constant)


def test_checked_fusion_keeps_its_values() -> None:
    assert Fusion.checked("weighted", 1, 10) == Fusion("weighted", 1.0, 10.0)
    assert Fusion.checked("rrf", 0.25, 0).weights == (0.25, 0.75)
