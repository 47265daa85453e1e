"""Two-tier placement: which tier each component of a phase runs on.

A phase is only as fast as its slowest component, so the cheapest placement that keeps the phase
within `slack` of its fastest achievable time puts each component on the cheapest tier that
finishes within that budget. The constraint is a maximum over components, so the choice
decomposes per component and the greedy choice is exactly optimal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from daydream_core.model import Tier
from daydream_core.pricing import PriceTable

Timings = Mapping[str, Mapping[str, float]]  # kind -> tier -> learned execution seconds


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

    def __init__(self, slack: float = 0.05) -> None:
        if slack < 0:
            raise ValueError("slack must be >= 0")
        self.slack = slack

    def place(
        self,
        kinds: Sequence[str],
        timings: Timings,
        tiers: Mapping[str, Tier],
        prices: PriceTable,
    ) -> list[str]:
        names = sorted(tiers, key=lambda t: -tiers[t].memory_mb)  # fastest-first tie-break
        placement: list[str | None] = [None] * len(kinds)

        # Explore: a kind gets one component on each tier it has no data for; a kind with no
        # data at all alternates tiers, so that one phase teaches both.
        explored: dict[str, list[str]] = {}
        for i, kind in enumerate(kinds):
            known = timings.get(kind, {})
            tried = explored.setdefault(kind, [])
            if not known:
                placement[i] = names[len(tried) % len(names)]
                tried.append(placement[i] or "")
                continue
            missing = [t for t in names if t not in known and t not in tried]
            if missing:
                placement[i] = missing[0]
                tried.append(missing[0])

        decided = [i for i, tier in enumerate(placement) if tier is None]
        if not decided:
            return [tier for tier in placement if tier is not None]

        def seconds(i: int, tier: str) -> float | None:
            return timings.get(kinds[i], {}).get(tier)

        def fastest(i: int) -> float:
            return min(s for t in names if (s := seconds(i, t)) is not None)

        budget = (1.0 + self.slack) * max(fastest(i) for i in decided)
        for i in decided:
            feasible = [
                t for t in names if (s := seconds(i, t)) is not None and s <= budget + 1e-12
            ]
            placement[i] = min(
                feasible,
                key=lambda t: prices.gb_second_cost(
                    tiers[t].memory_mb, seconds(i, t) or 0.0, tiers[t].vcpus
                ),
            )
        return [tier or names[0] for tier in placement]


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
