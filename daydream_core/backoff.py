"""Bounded exponential backoff with full jitter, for throttled and transient failures, shared by
every cloud adapter.

Attempt k (k = 1 after the first failure) waits a uniform random time in
``[0, min(cap, base * 2**(k-1))]``, and there are at most `max_attempts` attempts in all. The
clock and the random source are injected, so tests need no waiting.

Every retry is also noted in the attempt log of the current context, if one is open
(`recording`): the engine opens one around each invocation, so the retries an adapter makes
inside `Provider.invoke` (a throttled request, sent again) land in that invocation's record
without the contract carrying them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Retried:
    """One failed attempt that was retried: its number, its error, and the wait after it."""

    attempt: int
    error: Exception
    wait_s: float


_LOG: ContextVar[list[Retried] | None] = ContextVar("daydream_backoff_log", default=None)


@contextmanager
def recording() -> Iterator[list[Retried]]:
    """Collect the retries every `Backoff` makes in this context (this thread) meanwhile."""
    log: list[Retried] = []
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)


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
                wait = self.delay(attempt)
                log = _LOG.get()
                if log is not None:
                    log.append(Retried(attempt, exc, wait))
                self.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")
