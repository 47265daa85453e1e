"""Published facts about Lambda's own cold-start remedies, as typed data with their sources.

Read by the adapter (billing SnapStart restores, choosing provisioned concurrency) and meant
for a simulator's ``aws`` calibration: restore latency and the prices of snapshot caching,
restores and provisioned concurrency. us-east-1 list prices; other regions differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRICING_SOURCE = (
    "aws.amazon.com/lambda/pricing, us-east-1, as published 2025 (not re-checked offline)"
)


@dataclass(frozen=True)
class SnapStartPrices:
    """SnapStart for Python and .NET: a cached snapshot per published version, a restore per
    new execution environment; the runtime hooks' time is billed as duration."""

    cache_per_gb_second: float  # while the version is active, for the function's memory
    restore_per_gb: float  # each restore of the snapshot, for the function's memory
    cache_minimum_s: float = 3 * 3600.0  # each version's caching is billed for at least 3 h
    source: str = PRICING_SOURCE

    def cache_cost(self, memory_mb: int, seconds: float) -> float:
        return memory_mb / 1024.0 * max(seconds, self.cache_minimum_s) * self.cache_per_gb_second

    def restore_cost(self, memory_mb: int) -> float:
        return memory_mb / 1024.0 * self.restore_per_gb


@dataclass(frozen=True)
class ProvisionedPrices:
    """Provisioned concurrency: environments held initialised, billed while configured (in
    5-minute steps) whether used or not; invocations on them pay a lower duration price."""

    per_gb_second: float  # held capacity
    duration_per_gb_second: float  # invocations served by held environments
    billing_step_s: float = 300.0
    source: str = PRICING_SOURCE

    def held_cost(self, instances: int, memory_mb: int, seconds: float) -> float:
        steps = max(1, math.ceil(seconds / self.billing_step_s - 1e-9))
        billed = steps * self.billing_step_s
        return instances * memory_mb / 1024.0 * billed * self.per_gb_second


@dataclass(frozen=True)
class RestoreLatency:
    """What AWS says of a SnapStart restore's latency; measured restores (the REPORT line's
    ``Restore Duration``, kept as the init of `StartKind.RESTORED` records) calibrate the
    rest."""

    upper_ms: float
    source: str


SNAPSTART_PRICES = {
    "x86_64": SnapStartPrices(cache_per_gb_second=0.0000015046, restore_per_gb=0.0001397998),
    "arm64": SnapStartPrices(cache_per_gb_second=0.0000015046, restore_per_gb=0.0001397998),
}
PROVISIONED_PRICES = {
    "x86_64": ProvisionedPrices(per_gb_second=0.0000041667, duration_per_gb_second=0.0000097222),
    "arm64": ProvisionedPrices(per_gb_second=0.0000033334, duration_per_gb_second=0.0000077778),
}
RESTORE_LATENCY = RestoreLatency(
    upper_ms=1000.0,
    source="AWS News Blog, 2024-11-18, SnapStart for Python and .NET: 'sub-second startup'",
)
PROVISIONED_READY_POLLS = 600  # 1 s apart: AWS takes minutes to allocate provisioned concurrency
