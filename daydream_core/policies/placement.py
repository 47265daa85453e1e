"""Two-tier placement: which tier each component of a phase runs on.

The cheapest placement that keeps a phase within `slack` of its fastest achievable time. A
phase's time is its components' schedule at the platform's concurrency, in dispatch order
(`makespan`): each component starts on the first free slot. No wider than the
concurrency, every component has a slot of its own, the phase is as fast as its slowest
component, and each component goes to the cheapest tier that finishes within the budget; the
constraint is a maximum over components, so the choice decomposes and is exactly optimal.

A wider phase runs in waves, and a component on a slower tier delays every later one on its
slot, so a placement is checked against its schedule (`within_budget`). Without that check, a
3,000-wide phase at a limit of 1,000 (WfCommons' BLAST) that sent most components to a tier
1.5x as slow took 1.3x as long as all-fastest, each component alone within the budget.

A kind with no data for a tier is explored there with a bounded sample of its components, and
a tier's missing time is estimated from what is known (`daydream_core.policies.exploration`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from daydream_core.model import Tier
from daydream_core.policies.exploration import (
    Timings,
    cheapest_within,
    estimated,
    explore,
    settled,
    tier_ratios,
)
from daydream_core.pricing import PriceTable

__all__ = ["AllTier", "Placement", "SlackPlacement", "Starts", "Timings"]


@dataclass(frozen=True)
class Starts:
    """How components would start on each tier: the instances ready for the phase (started
    and idle; not hot starts still starting), and how long a cold start beyond them takes."""

    ready: Mapping[str, int]
    latency_s: Mapping[str, float]


class Placement(Protocol):
    name: str

    def place(
        self,
        kinds: Sequence[str],
        timings: Timings,
        tiers: Mapping[str, Tier],
        prices: PriceTable,
        concurrency: int | None = None,
        starts: Starts | None = None,
    ) -> list[str]:
        """One tier name per component, in order. `concurrency`: how many components the
        platform runs at once, all tiers together (None: no limit); a wider phase runs in
        waves. `starts`: the instances ready per tier (None: not known)."""
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
        concurrency: int | None = None,
        starts: Starts | None = None,
    ) -> list[str]:
        names, ratios, prior_tier, unexplored = self._new_kinds(timings, tiers, prices)
        placement = explore(kinds, timings, names, prior_tier, unexplored)

        known = estimated(timings, ratios)
        decided = [i for i, tier in enumerate(placement) if tier is None and kinds[i] in known]
        if decided:
            seconds = [known[kinds[i]] for i in decided]
            chosen = within_budget(seconds, self.slack, concurrency, names, tiers, prices)
            for i, tier in zip(decided, chosen, strict=True):
                placement[i] = tier
        placed = [tier or prior_tier for tier in placement]
        if starts is not None and (concurrency is None or len(kinds) <= concurrency):
            placed = onto_ready(kinds, placed, decided, known, starts, self.slack)
        return placed

    def explores(self, timings: Timings, tiers: Mapping[str, Tier], prices: PriceTable) -> set[str]:
        """The tiers a kind with no data explores: all but the one its bulk goes to, and
        those where what was measured settles a new kind's tier (`settled`)."""
        _, _, prior_tier, unexplored = self._new_kinds(timings, tiers, prices)
        return set(tiers) - {prior_tier} - unexplored

    def _new_kinds(
        self, timings: Timings, tiers: Mapping[str, Tier], prices: PriceTable
    ) -> tuple[list[str], dict[str, float], str, set[str]]:
        """How a kind with no data is placed: the tiers fastest first, the tier ratios, the
        tier its bulk goes to, and the tiers it is not explored on (`settled`)."""
        names = _fastest_first(tiers)

        def new_kind(ratios: Mapping[str, float]) -> str:
            # Its time is unknown, so it may be the phase's critical path: it goes to the
            # cheapest tier within the slack of its own fastest.
            budget = (1.0 + self.slack) * min(ratios.values())
            return cheapest_within(ratios, names, budget, tiers, prices)

        ratios = tier_ratios(timings, tiers, names[0])
        return names, ratios, new_kind(ratios), settled(timings, tiers, names[0], new_kind)


def _fastest_first(tiers: Mapping[str, Tier]) -> list[str]:
    return sorted(tiers, key=lambda t: -tiers[t].memory_mb)  # the largest: the reference


def makespan(seconds: Sequence[float], concurrency: int | None) -> float:
    """A phase's time when its components start in order, each on the first free slot."""
    if concurrency is None or len(seconds) <= concurrency:
        return max(seconds, default=0.0)
    free = [0.0] * concurrency  # when each slot frees: a heap
    for duration in seconds:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


def within_budget(
    seconds: Sequence[Mapping[str, float]],
    slack: float,
    concurrency: int | None,
    order: Sequence[str],
    tiers: Mapping[str, Tier],
    prices: PriceTable,
) -> list[str]:
    """The cheapest tiers whose phase ends within `slack` of the all-fastest one's.

    From every component on its fastest tier (ties: the earlier in `order`), moves to a
    cheaper tier that alone stays within the budget go in order of seconds of delay per
    dollar saved, and of equals the later component first (its delay holds up fewer of the
    rest). No wider than the concurrency, every such move is taken: exactly optimal. Wider,
    the longest prefix of them whose schedule still ends within the budget (a binary search
    over `makespan`).
    """

    def cost(s: Mapping[str, float], tier: str) -> float:
        return prices.gb_second_cost(tiers[tier].memory_mb, s[tier], tiers[tier].vcpus)

    fastest = [min((t for t in order if t in s), key=lambda t: s[t]) for s in seconds]
    times = [s[t] for s, t in zip(seconds, fastest, strict=True)]
    budget = (1.0 + slack) * makespan(times, concurrency)
    if concurrency is None or len(seconds) <= concurrency:  # a slot each: every move is taken
        cheapest: dict[int, str] = {}  # components of a kind share their `seconds`
        for s in seconds:
            if id(s) not in cheapest:
                cheapest[id(s)] = cheapest_within(s, order, budget, tiers, prices)
        return [cheapest[id(s)] for s in seconds]
    moves: list[tuple[float, int, int, str]] = []  # (delay per dollar, -i, i, tier)
    for i, s in enumerate(seconds):
        for tier in order:
            saved = cost(s, fastest[i]) - cost(s, tier) if tier in s else 0.0
            if saved > 0 and s[tier] <= budget + 1e-12:
                moves.append(((s[tier] - s[fastest[i]]) / saved, -i, i, tier))
    moves.sort()

    def taking(count: int) -> list[str]:
        placement = list(fastest)
        for *_, i, tier in moves[:count]:
            if cost(seconds[i], tier) < cost(seconds[i], placement[i]):
                placement[i] = tier
        return placement

    low, high = 0, len(moves)  # the longest prefix within the budget
    while low < high:
        middle = (low + high + 1) // 2
        placed = taking(middle)
        if makespan([s[t] for s, t in zip(seconds, placed, strict=True)], concurrency) <= budget:
            low = middle
        else:
            high = middle - 1
    return taking(low)


def onto_ready(
    kinds: Sequence[str],
    placement: Sequence[str],
    movable: Sequence[int],
    known: Mapping[str, Mapping[str, float]],
    starts: Starts,
    slack: float,
) -> list[str]:
    """Components that would cold start on their tier, and so end the phase late, go to an
    idle instance of another tier if they finish sooner on it.

    A tier's first components in dispatch order take its ready instances; the rest cold
    start. A cold start the phase absorbs (it still ends within `slack` of the slowest warm
    component) stays. One that would not, moves to the tier with a spare ready instance on
    which the component ends soonest, if sooner than its cold start would. Without this,
    a 7-wide phase sent to low with 6 hot starts there waited 4 s for the 7th instance while
    12 high ones sat idle (`cosmoscout`'s `refine`, 0.9 s components).
    """
    result = list(placement)
    counts: dict[str, int] = {}
    cold: list[int] = []
    for i, tier in enumerate(placement):
        counts[tier] = counts.get(tier, 0) + 1
        if counts[tier] > starts.ready.get(tier, 0):
            cold.append(i)
    spare = {t: n - counts.get(t, 0) for t, n in starts.ready.items() if n > counts.get(t, 0)}
    if not spare:
        return result
    can_move = set(movable)
    cold_set = set(cold)

    def seconds(i: int, tier: str) -> float:
        return known.get(kinds[i], {}).get(tier, math.inf)

    warm = [seconds(i, t) for i, t in enumerate(placement) if i not in cold_set]
    target = (1.0 + slack) * max((s for s in warm if s < math.inf), default=0.0)

    def ends(i: int) -> float:
        return seconds(i, placement[i]) + starts.latency_s.get(placement[i], 0.0)

    candidates = [i for i in cold if i in can_move and kinds[i] in known]
    for i in sorted(candidates, key=ends, reverse=True):
        late = ends(i)
        if late <= target:
            continue
        options = [t for t in spare if spare[t] > 0 and seconds(i, t) < late]
        if not options:
            continue
        tier = min(options, key=lambda t: seconds(i, t))
        result[i] = tier
        spare[tier] -= 1
        target = max(target, (1.0 + slack) * seconds(i, tier))
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
        concurrency: int | None = None,
        starts: Starts | None = None,
    ) -> list[str]:
        return [self.tier] * len(kinds)
