"""Bounded exponential backoff with full jitter, for throttled and transient failures, shared by
every cloud adapter.

Attempt k (k = 1 after the first failure) waits a uniform random time in
``[0, min(cap, base * 2**(k-1))]``, and there are at most `max_attempts` attempts in all. The
clock and the random source are injected, so tests need no waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Backoff:
    max_attempts: int = 6
    base_s: float = 0.2
    cap_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt `attempt` (1-based)."""
        return float(min(self.cap_s, self.base_s * 2.0 ** (attempt - 1)))

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, self.ceiling(attempt))

    def call(self, operation: Callable[[], T], retryable: Callable[[Exception], bool]) -> T:
        """Run `operation`, retrying what `retryable` accepts; re-raise the last failure."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return operation()
            except Exception as exc:
                if attempt >= self.max_attempts or not retryable(exc):
                    raise
                self.sleep(self.delay(attempt))
        raise AssertionError("unreachable: the loop returns or raises")
