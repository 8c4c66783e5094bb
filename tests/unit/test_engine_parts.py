"""The engine's small parts on their own: compaction policy, readers-writer lock, retention
and retry policies."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest

from vectordb_manager.engine.compaction import CompactionPolicy
from vectordb_manager.engine.format import FileRef, SegmentRef, canonical_json
from vectordb_manager.engine.locks import ReadWriteLock
from vectordb_manager.engine.retention import (
    KEEP_MANIFESTS,
    expired_count,
    next_due,
    plan_collection,
)
from vectordb_manager.engine.retention import (
    MANIFEST_RETENTION_SECONDS as RETENTION,
)
from vectordb_manager.engine.retry import RetryPolicy


def seg(rows: int, deletes: int = 0) -> SegmentRef:
    return SegmentRef(f"s{rows}-{deletes}", rows, deletes, FileRef("segments/x.seg", 1, "0" * 64))


# -- compaction policy ---------------------------------------------------------------------
def test_policy_merges_a_trailing_run_of_one_size_class() -> None:
    policy = CompactionPolicy(fan_in=4, min_weight=64)
    base = seg(100_000)
    assert policy.plan([base, seg(10), seg(10), seg(10)], 100_030, 0) is None
    assert policy.plan([base, seg(10), seg(10), seg(10), seg(10)], 100_040, 0) == 1
    # the last four are not of one class: nothing yet
    assert policy.plan([base, seg(10), seg(10), seg(10), seg(5000)], 105_030, 0) is None
    # a run of four at the next class merges from where it starts
    run = [base, seg(300), seg(10), seg(10), seg(10), seg(10)]
    assert policy.plan(run, 100_340, 0) == 2


def test_policy_compacts_fully_for_tombstones_and_for_a_large_tail() -> None:
    policy = CompactionPolicy(fan_in=4, min_weight=64, dead_ratio=0.3, full_ratio=0.5)
    assert policy.plan([seg(1000)], 1000, 400) == 0, "tombstones past the ratio"
    assert policy.plan([seg(1000)], 1000, 40) is None, "too few tombstones to bother"
    tail = [seg(1000), seg(300), seg(300)]
    assert policy.plan(tail, 1600, 0, snapshots=True) == 0, "the saved index would be stale"
    assert policy.plan(tail, 1600, 0, snapshots=False) is None, "flat: nothing to save"


def test_policy_bounds_the_tail_and_can_be_switched_off() -> None:
    policy = CompactionPolicy(max_tail=3, fan_in=10)
    segments = [seg(10_000), seg(1), seg(100), seg(1), seg(100)]
    assert policy.plan(segments, 10_202, 0, snapshots=False) == 1
    assert CompactionPolicy(enabled=False).plan(segments, 10_202, 10_000) is None
    assert CompactionPolicy().plan([], 0, 0) is None


def sized(rows: int, size: int) -> SegmentRef:
    return SegmentRef(f"s{rows}-{size}", rows, 0, FileRef("segments/x.seg", size, "0" * 64))


def test_policy_merges_no_segment_past_the_cap() -> None:
    """Segments over 1/fan_in of ``max_segment_bytes`` are sealed: the class rule and the
    tail's bound look only at the segments after the last sealed one, and a forced merge
    takes as many of the newest as fit in the cap."""
    capped = CompactionPolicy(fan_in=4, min_weight=64, max_segment_bytes=4000, max_tail=6)
    uncapped = CompactionPolicy(fan_in=4, min_weight=64, max_segment_bytes=None, max_tail=6)
    base = sized(100_000, 10**6)
    big = [sized(1000, 1500) for _ in range(4)]  # one class, each sealed (1500 > 4000 // 4)
    assert uncapped.plan([base, *big], 104_000, 0, snapshots=False) == 1
    assert capped.plan([base, *big], 104_000, 0, snapshots=False) is None
    small = [sized(10, 200) for _ in range(4)]
    assert capped.plan([base, *big, *small], 104_040, 0, snapshots=False) == 5
    # past max_tail: the segments after the last sealed one, as many of the newest as fit
    mixed = [sized(10, 900), sized(100, 900), sized(10, 900), sized(100, 900), sized(10, 900)]
    mixed += [sized(100, 900), sized(10, 900)]  # 7 > max_tail, no run of one class
    assert capped.plan([base, *big, *mixed], 104_440, 0, snapshots=False) == 1 + 4 + 7 - 4
    assert uncapped.plan([base, *big, *mixed], 104_440, 0, snapshots=False) == 1
    # a sealed segment between open ones: only those after it count
    assert capped.plan([base, *mixed[:3], big[0], *small], 101_470, 0, snapshots=False) == 5
    assert capped.plan([base, *mixed[:6], big[0]], 101_530, 0, snapshots=False) is None


def test_policy_merges_a_longer_trailing_run_whole_within_the_cap() -> None:
    """Where merges waited for writes to pause, more than ``fan_in`` segments of one class
    wait at the end: the whole run merges in one go, as much of it as the cap allows."""
    policy = CompactionPolicy(fan_in=4, min_weight=64)
    waited = [seg(100_000), seg(300), *(seg(10) for _ in range(11))]
    assert policy.plan(waited, 100_410, 0, snapshots=False) == 2
    capped = CompactionPolicy(fan_in=4, min_weight=64, max_segment_bytes=4000)
    run = [sized(100_000, 10**6), *(sized(10, 900) for _ in range(6))]  # 900 each: open
    assert capped.plan(run, 100_060, 0, snapshots=False) == 3  # the newest 4: 3,600 bytes
    # crowded: past max_tail (48) after the last sealed segment, a merge is due at once
    assert not capped.crowded([run[0], *(sized(10, 900) for _ in range(48))])
    assert capped.crowded([run[0], *(sized(10, 900) for _ in range(49))])
    assert not capped.crowded([*run, sized(10, 5000), *run[1:]])


@pytest.mark.parametrize(
    "bad",
    [
        {"fan_in": 1},
        {"fan_in": 2.0},
        {"min_weight": 0},
        {"max_tail": True},
        {"full_ratio": 0},
        {"dead_ratio": "0.3"},
        {"max_segment_bytes": 0},
        {"max_segment_bytes": 1.5e9},
    ],
)
def test_policy_refuses_settings_that_cannot_work(bad: dict[str, Any]) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"compaction {name} must be"):
        CompactionPolicy(**bad)


def test_size_classes_grow_by_the_fan_in() -> None:
    policy = CompactionPolicy(fan_in=4, min_weight=64)
    assert [policy.size_class(w) for w in (1, 63, 64, 255, 256, 1023, 1024)] == [0, 0, 1, 1, 2, 2, 3]


# -- readers-writer lock -------------------------------------------------------------------
def test_readers_share_and_a_writer_waits_for_them() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    both_reading = threading.Barrier(3)
    writer_waiting = threading.Event()

    def reader(name: str) -> None:
        with lock.read():
            both_reading.wait()  # two readers hold the lock at once, or this never returns
            writer_waiting.wait()
            order.append(name)

    def writer() -> None:
        writer_waiting.set()
        with lock.write():
            order.append("writer")

    readers = [threading.Thread(target=reader, args=(n,)) for n in ("r1", "r2")]
    for t in readers:
        t.start()
    both_reading.wait()
    w = threading.Thread(target=writer)
    w.start()
    for t in [*readers, w]:
        t.join()
    assert sorted(order[:2]) == ["r1", "r2"] and order[2:] == ["writer"]


def test_a_waiting_writer_goes_before_new_readers() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    first = lock.read()
    first.__enter__()
    writer_started = threading.Event()

    def writer() -> None:
        writer_started.set()
        with lock.write():
            order.append("writer")

    def late_reader() -> None:
        with lock.read():
            order.append("reader")

    w = threading.Thread(target=writer)
    w.start()
    writer_started.wait()
    while not lock.writers_waiting:  # the writer is queued (a state, not a time)
        threading.Event().wait(0.001)
    r = threading.Thread(target=late_reader)
    r.start()
    try:
        # the late reader has come to the lock and waits (behind the writer) before the first
        # reader leaves: else it could simply come after the writer, proving nothing
        while _waiting_on(lock) < 2 and not order:
            threading.Event().wait(0.001)
        assert order == [], "a new reader went before the waiting writer"
    finally:
        first.__exit__(None, None, None)
        w.join()
        r.join()
    assert order == ["writer", "reader"]


def _waiting_on(lock: ReadWriteLock) -> int:
    """How many threads wait in the lock (blocked in its condition's ``wait``)."""
    return len(lock._cond._waiters)  # type: ignore[attr-defined]


# -- retention -------------------------------------------------------------------------------
NOW = 1_000_000.0


def listing(*ages: float, first: int = 1) -> list[tuple[int, float]]:
    """Manifests committed ``ages`` seconds ago, oldest first."""
    return [(first + i, NOW - age) for i, age in enumerate(ages)]


def test_a_manifest_expires_once_its_successor_is_old_enough() -> None:
    old = RETENTION + 1
    assert expired_count(listing(5000, old, 10), NOW) == 1, "its successor is old enough"
    assert expired_count(listing(5000, 10, 5), NOW) == 0, "replaced only 10 s ago"
    assert expired_count(listing(5000), NOW) == 0, "the newest never expires"
    assert expired_count(listing(5000, 100, 10), NOW, retention=50) == 1


def test_a_collection_removes_replaced_files_and_keeps_recent_manifests() -> None:
    old = RETENTION + 100
    manifests = listing(*[old + 10 - i for i in range(12)], 5, first=1)  # 1..12 old, 13 new
    plan = plan_collection(manifests, current=13, now=NOW)
    assert plan is not None
    assert plan.scan == tuple(range(1, 12)) and plan.boundary == 12
    assert plan.remove == tuple(range(1, 13 - KEEP_MANIFESTS + 1)), "the newest 8 stay"
    assert plan_collection(listing(10, 5), current=2, now=NOW) is None


def test_the_next_collection_is_due_when_a_manifest_can_expire() -> None:
    due_time, due_version = next_due(listing(30, 20), NOW)
    assert due_time == NOW - 20 + RETENTION and due_version is None
    due_time, due_version = next_due(listing(5), NOW)
    assert due_time == NOW + RETENTION, "its successor comes after now"
    expired = listing(RETENTION + 50, RETENTION + 20, 1, first=40)
    assert next_due(expired, NOW)[1] == 40 + KEEP_MANIFESTS


# -- retry policy -----------------------------------------------------------------------------
def test_retry_policy_counts_attempts_and_backs_off_with_jitter() -> None:
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=5, base=0.01, cap=0.05, sleep=slept.append, rng=random.Random(3))
    assert list(policy.attempts()) == [0, 1, 2, 3, 4]
    assert len(slept) == 4, "no wait after the last attempt"
    assert all(0 <= s <= min(0.05, 0.01 * 2**i) for i, s in enumerate(slept))
    assert len(set(slept)) == 4, "jittered"


def test_retry_policy_stops_when_time_runs_out() -> None:
    now = [0.0]
    policy = RetryPolicy(
        max_attempts=None, max_elapsed=10.0, clock=lambda: now[0], sleep=lambda s: None, base=0
    )
    seen = []
    for attempt in policy.attempts():
        seen.append(attempt)
        now[0] += 4.0
    assert seen == [0, 1, 2]
    with pytest.raises(ValueError, match="needs max_attempts or max_elapsed"):
        RetryPolicy(max_attempts=None)


def _random_text(rng: random.Random) -> str:
    # ASCII, controls, DEL, Latin, the line separators, CJK, astral; no lone surrogates
    pools = ["abcXYZ09 _-", "\x00\x01\x1f\x7f\n\t\"\\/", "éüß", "\u2028\u2029", "東京", "\U0001f600"]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randrange(0, 12)))


def test_canonical_json_of_flat_metadata_is_what_the_standard_library_writes() -> None:
    """Flat metadata (strings, integers, booleans, None) takes orjson's faster path; the
    content hashes of stored records depend on its bytes being exactly the same."""
    rng = random.Random(20261202)
    ints = [0, -1, 7, 2**31, -(2**63), 2**63 - 1, 2**64, -(2**64) - 5, 10**30]
    for _ in range(2000):
        meta: dict[Any, Any] = {}
        for _ in range(rng.randrange(0, 6)):
            value = rng.choice([_random_text(rng), rng.choice(ints), True, False, None])
            meta[_random_text(rng)] = value
        if rng.random() < 0.05:
            meta[rng.randrange(10)] = "an int key"  # json.dumps makes it a string
        try:
            reference = json.dumps(
                meta, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            )
        except TypeError:  # int and str keys do not sort together: neither path writes it
            with pytest.raises(TypeError):
                canonical_json(meta)
            continue
        assert canonical_json(meta) == reference, meta
