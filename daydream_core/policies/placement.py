"""Two-tier placement: which tier each component of a phase runs on.

A phase is only as fast as its slowest component, so the cheapest placement that keeps the phase
within `slack` of its fastest achievable time puts each component on the cheapest tier that
finishes within that budget. The constraint is a maximum over components, so the choice
decomposes per component and the greedy choice is exactly optimal.

A kind with no data for a tier is explored there with a bounded sample of its components, and
a tier's missing time is estimated from what is known (`daydream_core.policies.exploration`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Protocol

from daydream_core.model import Tier
from daydream_core.policies.exploration import (
    Timings,
    cheapest_within,
    estimated,
    explore,
    tier_ratios,
)
from daydream_core.pricing import PriceTable

__all__ = ["AllTier", "Placement", "SlackPlacement", "Timings", "pooled_timings"]


class Placement(Protocol):
    name: str

    def place(
        self,
        kinds: Sequence[str],
        timings: Timings,
        tiers: Mapping[str, Tier],
        prices: PriceTable,
    ) -> list[str]:
        """One tier name per component, in order."""
        ...


class SlackPlacement:
    """Minimise cost subject to phase time <= (1 + slack) x fastest phase time."""

    name = "slack"

    def __init__(self, slack: float = 0.05, pooling: float = 0.0) -> None:
        if slack < 0:
            raise ValueError("slack must be >= 0")
        if not 0.0 <= pooling <= 1.0:
            raise ValueError("pooling must be in [0, 1]")
        self.slack = slack
        # How much a kind's learned tier ratio is pulled toward the ratio pooled over kinds:
        # a tier's speed is mostly the platform's (its CPU share), and a kind's own ratio,
        # from few and noisy samples, would otherwise flip placements on noise.
        self.pooling = pooling

    def place(
        self,
        kinds: Sequence[str],
        timings: Timings,
        tiers: Mapping[str, Tier],
        prices: PriceTable,
    ) -> list[str]:
        names = sorted(tiers, key=lambda t: -tiers[t].memory_mb)  # fastest-first tie-break
        if self.pooling > 0:
            timings = pooled_timings(timings, names[0], self.pooling)
        ratios = tier_ratios(timings, tiers, names[0])
        # A kind with no data at all: its time is unknown, so it may be the phase's critical
        # path; it goes to the cheapest tier within the slack of its own fastest (by ratio).
        prior_tier = cheapest_within(
            ratios, names, (1.0 + self.slack) * min(ratios.values()), tiers, prices
        )
        placement = explore(kinds, timings, names, prior_tier)

        known = estimated(timings, ratios)
        decided = {
            kinds[i] for i, tier in enumerate(placement) if tier is None and kinds[i] in known
        }
        if decided:
            budget = (1.0 + self.slack) * max(min(known[k].values()) for k in decided)
            # The budget is the phase's, so a kind's choice is the same for all its components.
            choice = {k: cheapest_within(known[k], names, budget, tiers, prices) for k in decided}
            placement = [
                choice.get(kinds[i], prior_tier) if tier is None else tier
                for i, tier in enumerate(placement)
            ]
        return [tier or prior_tier for tier in placement]


def pooled_timings(timings: Timings, reference: str, weight: float) -> Timings:
    """Each kind's time on a tier as its time on `reference` times a ratio that is
    `weight` the median ratio over kinds and 1 - `weight` the kind's own (in logs)."""
    logs: dict[str, list[float]] = {}
    for tiers in timings.values():
        ref = tiers.get(reference)
        for tier, value in tiers.items():
            if tier != reference and ref and ref > 0 and 0 < value < math.inf:
                logs.setdefault(tier, []).append(math.log(value / ref))
    pooled = {t: statistics.median(v) for t, v in logs.items()}
    result: dict[str, dict[str, float]] = {}
    for kind, tiers in timings.items():
        ref = tiers.get(reference)
        adjusted = dict(tiers)
        if ref and 0 < ref < math.inf:  # an infinite time (out of memory) stays infinite
            for tier, value in tiers.items():
                if tier in pooled and 0 < value < math.inf:
                    own = math.log(value / ref)
                    adjusted[tier] = ref * math.exp(weight * pooled[tier] + (1 - weight) * own)
        result[kind] = adjusted
    return result


class AllTier:
    """Baseline: every component on one tier."""

    def __init__(self, tier: str) -> None:
        self.tier = tier
        self.name = f"all-{tier}"

    def place(
        self,
        kinds: Sequence[str],
        timings: Timings,
        tiers: Mapping[str, Tier],
        prices: PriceTable,
    ) -> list[str]:
        return [self.tier] * len(kinds)
