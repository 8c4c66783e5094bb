"""The benchmarks' interleaved measurements: every system follows every other equally often
(one that follows a slow system starts with cold caches, so an uneven draw biases its p50)."""

from __future__ import annotations

import collections
import itertools

from benchmarks import common


def _followers(orders: list[tuple[str, ...]]) -> collections.Counter[tuple[str, str]]:
    pairs: collections.Counter[tuple[str, str]] = collections.Counter()
    for turn in orders:
        pairs.update(itertools.pairwise(turn))
    return pairs


def test_each_system_follows_each_other_equally_often() -> None:
    names = ["ours", "hnsw", "peer", "mem"]
    orders = common._balanced_orders(names, 24 * 8)
    assert len(orders) == 192 and all(sorted(t) == sorted(names) for t in orders)
    pairs = _followers(orders)
    assert len(pairs) == 12 and set(pairs.values()) == {8 * 6}
    assert set(collections.Counter(t[0] for t in orders).values()) == {8 * 6}


def test_a_count_between_rounds_stays_nearly_even_and_is_seeded() -> None:
    names = ["ours", "hnsw", "peer", "mem"]
    orders = common._balanced_orders(names, 200)  # bench_text: 40 questions x 5
    after_mem = {n: c for (p, n), c in _followers(orders).items() if p == "mem"}
    assert max(after_mem.values()) - min(after_mem.values()) <= 8
    assert orders == common._balanced_orders(names, 200)


def test_many_systems_get_random_orders() -> None:
    names = [f"s{i}" for i in range(8)]
    orders = common._balanced_orders(names, 5)
    assert len(orders) == 5 and all(sorted(t) == sorted(names) for t in orders)


def test_measure_interleaved_runs_every_system_on_every_query() -> None:
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    def searcher(name: str) -> common.Searcher:
        return common.Searcher(lambda q: seen[name].append(q) or [q], lambda r: [(str(r[0]), {})])

    out = common.measure_interleaved({n: searcher(n) for n in seen}, [1, 2, 3, 4], warmup=0)
    assert all(v == [1, 2, 3, 4] for v in seen.values())
    assert all(
        len(t) == 4 and h == [[("1", {})], [("2", {})], [("3", {})], [("4", {})]]
        for t, h in out.values()
    )
