"""When provisioned concurrency is the cheaper hot start (a pure decision).

A warm-up hot start pays one init plus its hold at the on-demand price, and Lambda may reclaim
the environment before it is used, so each phase that needs it pays again. Provisioned
concurrency pays for the held environments (per GB-second, in 5-minute steps) for as long as
it is configured, inits included, whether used or not. So, for the next `horizon_s`: held
capacity for the instances wanted, against the warm-ups that the same horizon is predicted to
need at the rate seen so far (at least the ones asked for now).
"""

from __future__ import annotations

from dataclasses import dataclass

from daydream_aws.facts import ProvisionedPrices
from daydream_core.pricing import PriceTable

ASSUMED_INIT_MS = 1500.0  # a warm-up's init before any has been measured for the function


@dataclass(frozen=True)
class HotStartChoice:
    """The cheaper way to hold `instances` for the horizon, with both costs."""

    provisioned: bool
    provisioned_cost: float
    warm_up_cost: float


def choose(
    instances: int,
    memory_mb: int,
    *,
    init_ms: float,
    hold_ms: float,
    warm_ups_per_horizon: float,
    horizon_s: float,
    on_demand: PriceTable,
    provisioned: ProvisionedPrices,
) -> HotStartChoice:
    """Provisioned concurrency or warm-ups for `instances` over the next `horizon_s`."""
    held = provisioned.held_cost(instances, memory_mb, horizon_s)
    per_warm_up = on_demand.cost(memory_mb, hold_ms, init_ms)
    warm_ups = max(float(instances), warm_ups_per_horizon) * per_warm_up
    return HotStartChoice(held < warm_ups, held, warm_ups)
