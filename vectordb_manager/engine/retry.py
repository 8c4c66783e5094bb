"""Retry policies for what botocore cannot retry for us: losing a manifest race.

Transport retries (throttling, 5xx, dropped connections) are botocore's. The engine retries
only two things of its own, each with a `RetryPolicy`:

* a **commit** whose manifest version another writer took first: after a jittered
  exponential backoff (so that writers spread out), re-read until up to date (a proposal
  made from a refresh older than the backoff, or than a slow load of the winners' commits,
  would lose again to a writer committing steadily: the loser would starve), propose the
  next version;
* a **load** whose files were replaced by a newer version while it read them: load the newer
  version. Such a retry is *progress* (the store moved on), so its budget is time, not a count.

A policy is three small decisions, kept apart as in botocore's retry package: whether to try
again (`RetryPolicy.allows`: attempts and elapsed time), how long to wait (`RetryPolicy.delay`:
"full jitter" exponential backoff), and the clock and random source, which are injected so that
tests control them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """Retry up to ``max_attempts`` times and for at most ``max_elapsed`` seconds (``None``:
    no limit of that kind), sleeping ``uniform(0, min(cap, base * 2**attempt))`` in between."""

    max_attempts: int | None = 32
    max_elapsed: float | None = None
    base: float = 0.002
    cap: float = 0.2
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts={self.max_attempts} must be at least 1")
        if self.max_attempts is None and self.max_elapsed is None:
            raise ValueError("a retry policy needs max_attempts or max_elapsed")

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (0-based)."""
        return min(self.cap, self.base * 2.0 ** min(attempt, 60)) * self.rng.random()

    def allows(self, attempt: int, started: float) -> bool:
        """Whether attempt number ``attempt`` (0-based) may run, given when the first began."""
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return False
        return self.max_elapsed is None or self.clock() - started <= self.max_elapsed

    def attempts(self) -> Iterator[int]:
        """Attempt numbers 0, 1, 2, ... while the budget lasts, backing off between them.

        The caller ``break``s out when an attempt succeeds; when the loop ends on its own the
        budget is spent (at least one attempt always runs)."""
        started = self.clock()
        attempt = 0
        while True:
            yield attempt
            attempt += 1
            if not self.allows(attempt, started):
                return
            self.sleep(self.delay(attempt - 1))


def commit_policy(
    attempts: int,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> RetryPolicy:
    """The policy for proposing a manifest version: ``attempts`` tries, jittered backoff."""
    return RetryPolicy(max_attempts=attempts, sleep=sleep, rng=rng or random.Random())


# A load is retried only when the store moved on while it was being read (the engine checks
# that, and raises IntegrityError otherwise), so it is bounded by time alone: an hour covers
# any store a machine can read, and old manifests keep their files for the retention time.
LOAD_POLICY = RetryPolicy(max_attempts=None, max_elapsed=3600.0, base=0.0, cap=0.0)
