"""After a component's attempt failed: retry it (on which tier, after how long), or not.

Pure: a decision from the error, the attempts so far, the tiers and what was learned.

- **Throttled, instance lost** (killed, crashed) **or store unavailable**: the component never
  ran, or ran and lost its answer; retried on the same tier after bounded exponential backoff
  with full jitter (`daydream_core.backoff`).
- **Out of memory** on a tier smaller than the largest: retried once, at once, on the largest
  (the engine stores the lesson, so the next placement sends that kind there directly).
- **Timeout**: retried once, on the same tier, only when the kind is known to finish well
  within the timeout there (``hang_ratio``): then the instance hung. With no such history, or
  a kind that needs most of its timeout, another attempt would likely time out as well and
  double the wait: not retried.
- Anything else (the component's own error, a refused payload, a missing function): the same
  attempt would fail the same way; not retried.

At most ``backoff.max_attempts`` attempts that reached the component, and at most
``throttled_attempts`` that were throttled (they cost nothing but the wait: a storm of 429s
gets more patience than a component that keeps dying).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from daydream_core.backoff import Backoff
from daydream_core.errors import (
    FunctionTimeout,
    InstanceLost,
    OutOfMemory,
    PayloadRejected,
    StoreUnavailable,
    Throttled,
)
from daydream_core.model import AttemptRecord, Tier
from daydream_core.policies.placement import Timings


def fault_of(error: BaseException) -> str:
    """The fault an error stands for, as `AttemptRecord.fault` names it."""
    if isinstance(error, Throttled):
        return "throttled"
    if isinstance(error, InstanceLost):
        return "lost"
    if isinstance(error, OutOfMemory):
        return "memory"
    if isinstance(error, FunctionTimeout):
        return "timeout"
    if isinstance(error, StoreUnavailable):
        return "store"
    if isinstance(error, PayloadRejected):
        return "rejected"
    return "other"


@dataclass(frozen=True)
class Retry:
    """Attempt the component again, on `tier`, after `wait_s`."""

    tier: str
    wait_s: float


@dataclass
class RetryPolicy:
    backoff: Backoff = field(default_factory=lambda: Backoff(max_attempts=4, cap_s=5.0))
    hang_ratio: float = 0.5  # a timeout is a hang when the kind's mean is at most this x timeout
    throttled_attempts: int = 8

    def decide(
        self,
        error: BaseException,
        *,
        kind: str,
        tier: str,
        attempts: Sequence[AttemptRecord],
        tiers: Mapping[str, Tier],
        timings: Timings,
        timeout_s: float,
    ) -> Retry | None:
        """Whether to attempt again after `error` on `tier`; `attempts` are the failed attempts
        so far (this one included), the provider's own retries among them."""
        ours = [a for a in attempts if a.by == "engine"]
        throttled = sum(1 for a in ours if a.fault == "throttled")
        if len(ours) - throttled >= self.backoff.max_attempts:
            return None
        fault = fault_of(error)
        if fault == "throttled" and throttled >= self.throttled_attempts:
            return None
        if fault in ("throttled", "lost", "store"):
            return Retry(tier, self.backoff.delay(len(ours)))
        if fault == "memory":
            largest = max(tiers, key=lambda t: tiers[t].memory_mb)
            if tiers[largest].memory_mb > tiers[tier].memory_mb:
                return Retry(largest, 0.0)
            return None
        if fault == "timeout":
            timeouts = sum(1 for a in ours if a.fault == "timeout")
            known = timings.get(kind, {}).get(tier)
            if timeouts <= 1 and known is not None and known <= self.hang_ratio * timeout_s:
                return Retry(tier, 0.0)
        return None
