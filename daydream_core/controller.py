"""The controller: every decision of one run, shared by the live engine and the simulator.

A controller holds a run's state (earlier runs' widths, this run's widths and kinds so far,
what was predicted) and decides, phase by phase: the placement of the phase's components,
the hot starts for the next phase, and what idle instances to keep. It does no I/O and keeps
no clock: the engine executes its decisions on a provider in real time, the simulator in
virtual time on a model of a platform. So what the simulator says about a policy is what the
engine does.

Work per phase is linear in the phase's width: the predictor sees widths (numbers), never
components, and placement is one pass over the phase.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from daydream_core.model import Tier, WidthHint
from daydream_core.policies.artifact import ArtifactPlacement
from daydream_core.policies.exploration import (
    ProbeCosts,
    beside_the_phase,
    estimated,
    tier_ratios,
)
from daydream_core.policies.placement import Starts, Timings
from daydream_core.policies.predictor import Observation, Shape, StartCosts, Upcoming, Widths
from daydream_core.policies.registry import PolicySpec
from daydream_core.pricing import PriceTable

__all__ = ["Controller", "PhasePlan", "Upcoming", "cap_across_tiers"]


@dataclass
class PhasePlan:
    """The controller's decisions for one phase."""

    index: int
    placement: list[str]
    predicted: dict[str, int]  # what was hot started for this phase (predicted before it)
    # Exploration that runs beside the phase: (component index, tier) of each probe, a
    # duplicate of that component whose output is discarded and which the phase does not
    # wait for (`daydream_core.policies.exploration.beside_the_phase`).
    probes: list[tuple[int, str]] = field(default_factory=list)

    @property
    def widths(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for tier in self.placement:
            counts[tier] = counts.get(tier, 0) + 1
        return counts


# Stands for the next phase's kinds in a first run where they are likely new to it.
A_NEW_KIND = "<a kind new to the run>"


def cap_across_tiers(predicted: Mapping[str, int], limit: int) -> dict[str, int]:
    """Scale per-tier counts down so that their sum respects the platform's concurrency,
    which is one limit for all tiers together (largest remainders keep the proportions)."""
    wanted = {t: max(0, int(n)) for t, n in predicted.items()}
    total = sum(wanted.values())
    if total <= limit:
        return wanted
    return apportion({t: n * limit / total for t, n in wanted.items()}, limit)


def apportion(exact: Mapping[str, float], total: int) -> dict[str, int]:
    """Whole counts summing to `total` from exact shares of it (largest remainders)."""
    counts = {t: math.floor(x) for t, x in exact.items()}
    spare = total - sum(counts.values())
    for tier in sorted(exact, key=lambda t: counts[t] - exact[t])[:spare]:
        counts[tier] += 1
    return counts


@dataclass
class Controller:
    """One run's decisions under a policy.

    `history` is earlier runs' widths (per phase, per tier); `timings` what was learned of each
    kind's execution time per tier; `costs` what a prediction error costs per tier.
    """

    policy: PolicySpec
    tiers: Mapping[str, Tier]
    prices: PriceTable
    history: Sequence[Sequence[Widths]]
    timings: Timings
    costs: Mapping[str, StartCosts]
    max_concurrency: int
    phase_times: list[float] = field(default_factory=list)
    current: list[dict[str, int]] = field(default_factory=list)
    kinds: list[list[str]] = field(default_factory=list)
    placements: list[list[str]] = field(default_factory=list)
    predicted: dict[int, dict[str, int]] = field(default_factory=dict)
    seed: int = 0
    peak: int = 0  # the run's widest phase, where the executor knows it (the artifact did)
    # The artifact's controller state: functions it created and has not used yet, per tier.
    pool: dict[str, int] = field(default_factory=dict)
    # Prediction inputs besides widths: earlier runs' phase shapes (kinds, hints) where known,
    # and this run's so far.
    history_shapes: Sequence[Sequence[Shape]] = ()
    shapes: list[Shape] = field(default_factory=list)
    # (kind, tier) where a probe has measured the kind's ratio to another tier.
    paired: set[tuple[str, str]] = field(default_factory=set)
    # (kind, tier) with a probe dispatched and not reported yet: whether the tier had data
    # (the probe is for a paired ratio) or not (it explores the tier).
    probing: dict[tuple[str, str], bool] = field(default_factory=dict)
    # The kinds this run has dispatched, and whether its latest phase brought one new to it.
    seen_kinds: set[str] = field(default_factory=set)
    brought_a_new_kind: bool = False
    # Earlier runs' wall-clock spans: the idle seconds before each later run and this one,
    # and each run's length (what a keep-alive window is learned from).
    run_gaps: Sequence[float] = ()
    run_times: Sequence[float] = ()

    def __post_init__(self) -> None:
        self.predictor = self.policy.predictor()
        self.placement = self.policy.placement()
        self.keep_alive = self.policy.keep_alive()

    @property
    def clairvoyant(self) -> bool:
        return self.policy.clairvoyant

    def observation(
        self,
        next_phase: int,
        upcoming: Upcoming | None = None,
        alive: Mapping[str, int] | None = None,
    ) -> Observation:
        return Observation(
            history=self.history,
            current=self.current,
            next_phase=next_phase,
            costs=self.costs,
            kinds=self.kinds,
            phase_times=self.phase_times,
            upcoming=upcoming,
            max_concurrency=self.max_concurrency,
            alive=alive or {},
            seed=self.seed,
            upcoming_peak=self.peak,
            shapes=self.shapes,
            history_shapes=self.history_shapes,
            run_gaps_s=self.run_gaps,
            run_times_s=self.run_times,
        )

    def predict(
        self,
        next_phase: int,
        upcoming: Upcoming | None = None,
        alive: Mapping[str, int] | None = None,
    ) -> dict[str, int]:
        """Instances to have ready, per tier, for `next_phase` (capped across tiers)."""
        if upcoming is not None and not self.clairvoyant:
            upcoming = None  # only the oracle may see the future
        if upcoming is not None:
            placed = self._place(upcoming.kinds, upcoming)
            upcoming = Upcoming(
                upcoming.kinds, upcoming.seconds, {t: placed.count(t) for t in self.tiers}
            )
        raw = self.predictor.predict(self.observation(next_phase, upcoming, alive))
        if upcoming is None and self.splits_by_placement:
            raw = self._split_by_placement(next_phase, raw)
        predicted = cap_across_tiers(raw, self.max_concurrency)
        self.predicted[next_phase] = predicted
        return predicted

    @property
    def splits_by_placement(self) -> bool:
        """Whether hot starts follow what placement has learned (so a result that teaches
        something new while a phase runs is worth predicting the next phase again)."""
        return bool(getattr(self.predictor, "split_by_placement", False)) and not isinstance(
            self.placement, ArtifactPlacement
        )

    def _split_by_placement(self, next_phase: int, raw: Mapping[str, int]) -> dict[str, int]:
        """The predicted instances, split across tiers as placement would place the next
        phase's kinds now, not as earlier phases happened to be placed: what has been
        learned since (a probe that showed a tier faster, say) moves the hot starts with it,
        instead of leaving them idle on one tier while the other cold starts.

        The next phase's kinds are those of the same phase of the latest earlier run. In a
        first run, after a phase that brought a kind new to the run the next is taken to
        bring one too (placed as a kind with no data); after one that brought none, to be
        like it, its kinds weighted by their components. In `ccl`'s first run the second
        phase is a new kind, which placement sends where the measured ratios say; split as
        the first phase's kinds, one of them 1.2x as slow on low, its hot starts went 2 in
        12 to high and it cold started 2 on low."""
        total = sum(raw.values())
        earlier = [run[next_phase] for run in self.history_shapes if len(run) > next_phase]
        if earlier:
            kinds = sorted(earlier[-1].kinds)
        elif self.brought_a_new_kind:
            kinds = [A_NEW_KIND]  # so may the next phase
        else:
            kinds = sorted(self.kinds[-1]) if self.kinds else []  # by their components
        if total <= 0 or not kinds:
            return dict(raw)
        each = max(1, math.ceil(total / len(kinds)))
        placed = self._bulk([k for k in kinds for _ in range(each)])
        return apportion({t: total * placed.count(t) / len(placed) for t in self.tiers}, total)

    def _bulk(self, kinds: Sequence[str]) -> list[str]:
        """Where placement would send these kinds' bulk, exploring nothing: every tier
        estimated where unmeasured, and a kind with no data taken for the longest of them
        (it may be the critical path)."""
        reference = max(self.tiers, key=lambda t: self.tiers[t].memory_mb)
        ratios = tier_ratios(self.timings, self.tiers, reference)
        known = estimated(self.timings, ratios)
        longest = max((min(known[k].values()) for k in set(kinds) if k in known), default=1.0)
        filled = {k: known.get(k) or {t: r * longest for t, r in ratios.items()} for k in kinds}
        return self.placement.place(
            kinds, filled, self.tiers, self.prices, concurrency=self.max_concurrency
        )

    def first(
        self, upcoming: Upcoming | None = None, alive: Mapping[str, int] | None = None
    ) -> dict[str, int]:
        """Hot starts before the run's first phase."""
        return self.predict(0, upcoming, alive)

    def place(
        self,
        kinds: Sequence[str],
        upcoming: Upcoming | None = None,
        ready: Mapping[str, int] | None = None,
    ) -> PhasePlan:
        """Place the next phase's components on tiers; `ready`: the instances started and
        alive for it, per tier, where the executor knows them."""
        index = len(self.current)
        probes: list[tuple[int, str]] = []
        if isinstance(self.placement, ArtifactPlacement):
            placement = self.placement.place_from_pool(len(kinds), self.pool, self.seed, index)
            for tier in placement:
                if self.pool.get(tier, 0) > 0:
                    self.pool[tier] -= 1
        else:
            starts = None
            if ready is not None:
                starts = Starts(ready, {t: c.start_s for t, c in self.costs.items()})
            placement = self._place(kinds, upcoming, starts)
            if not self._exact(upcoming):  # the oracle knows every time: nothing to explore
                placement, probes = beside_the_phase(
                    kinds,
                    placement,
                    self.timings,
                    self.tiers,
                    self.max_concurrency,
                    self.probing,
                    self.paired,
                    self._probe_costs(placement, ready),
                    self._explores(),
                    opening=index == 0,
                )
                for i, tier in probes:
                    self.probing[(kinds[i], tier)] = tier in self.timings.get(kinds[i], {})
        return PhasePlan(index, placement, self.predicted.get(index, {}), probes)

    def _probe_costs(self, placement: Sequence[str], ready: Mapping[str, int] | None) -> ProbeCosts:
        """What a probe's start bills per tier: nothing where an instance ready for the phase
        is left over by its components, else a cold start's init."""
        start = {}
        for tier, costs in self.costs.items():
            spare = (ready or {}).get(tier, 0) - sum(t == tier for t in placement)
            start[tier] = 0.0 if spare > 0 else costs.idle_hot_start
        return ProbeCosts(self.prices, start)

    def _explores(self) -> set[str]:
        """The tiers placement explores a kind with no data on (none, for a placement that
        learns nothing: one tier for all)."""
        explores = getattr(self.placement, "explores", None)
        return explores(self.timings, self.tiers, self.prices) if explores else set()

    def _exact(self, upcoming: Upcoming | None) -> bool:
        return upcoming is not None and bool(upcoming.seconds) and self.clairvoyant

    def _place(
        self, kinds: Sequence[str], upcoming: Upcoming | None, starts: Starts | None = None
    ) -> list[str]:
        timings = self.timings
        if upcoming is not None and self._exact(upcoming):
            if self.policy.sees == "kinds":
                timings = _kind_means(kinds, upcoming.seconds)
            else:
                timings = _exact_timings(kinds, upcoming.seconds)
                kinds = [str(i) for i in range(len(kinds))]  # each component is its own kind
        return self.placement.place(
            kinds, timings, self.tiers, self.prices, concurrency=self.max_concurrency, starts=starts
        )

    def created(self, functions: Mapping[str, int]) -> None:
        """The artifact's controller created these functions (its hot starts)."""
        for tier, n in functions.items():
            self.pool[tier] = self.pool.get(tier, 0) + n

    def keep_alive_window(self) -> float | None:
        """How long an idle instance is worth keeping, if the policy says (else the platform)."""
        window_s = getattr(self.keep_alive, "window_s", None)
        return window_s(self.observation(len(self.current))) if window_s else None

    def phase_started(
        self, plan: PhasePlan, kinds: Sequence[str], hint: WidthHint | None = None
    ) -> None:
        """The phase is dispatched: its widths are known (and `hint`, what the workflow said
        with it of the next phase's width); the next phase can be predicted."""
        widths = dict.fromkeys(self.tiers, 0)
        widths.update(plan.widths)
        self.current.append(widths)
        self.kinds.append(list(kinds))
        self.placements.append(plan.placement)
        self.shapes.append(Shape(frozenset(kinds), hint))
        self.brought_a_new_kind = not self.seen_kinds.issuperset(kinds)
        self.seen_kinds.update(kinds)

    def learned(self, timings: Timings, paired: Collection[tuple[str, str]]) -> None:
        """What has been learned of the kinds now (`paired`: where their tier ratios are
        measured). Also while a phase runs, as its results arrive: the next `predict` splits
        its hot starts by it."""
        self.paired = set(paired)
        self.timings = timings
        self.probing = {
            (k, t): pairing
            for (k, t), pairing in self.probing.items()
            if (k, t) not in self.paired and (pairing or t not in timings.get(k, {}))
        }

    def phase_done(
        self,
        phase_time_s: float,
        timings: Timings | None = None,
        paired: Collection[tuple[str, str]] | None = None,
    ) -> None:
        """The phase ended; `timings` and `paired`: what has been learned, now."""
        self.phase_times.append(phase_time_s)
        if timings is not None:
            self.learned(timings, self.paired if paired is None else paired)

    def keep(self) -> dict[str, int] | None:
        """Idle instances worth keeping after the phase just done (None: the platform decides)."""
        return self.keep_alive.keep(self.predictor, self.observation(len(self.current)))

    def keep_between_runs(self) -> dict[str, int] | None:
        """After the run: keep what the next run needs at its peak."""
        after = Observation(
            history=[*self.history, self.current],
            current=[],
            next_phase=0,
            costs=self.costs,
            max_concurrency=self.max_concurrency,
            history_shapes=[*self.history_shapes, self.shapes],
        )
        return self.keep_alive.keep(self.predictor, after)


def _exact_timings(kinds: Sequence[str], seconds: Sequence[Mapping[str, float]]) -> Timings:
    return {str(i): dict(s) for i, s in enumerate(seconds[: len(kinds)])}


def _kind_means(kinds: Sequence[str], seconds: Sequence[Mapping[str, float]]) -> Timings:
    """Each kind's mean time per tier over the phase's components of that kind."""
    sums: dict[str, dict[str, list[float]]] = {}
    for kind, row in zip(kinds, seconds, strict=False):
        for tier, value in row.items():
            sums.setdefault(kind, {}).setdefault(tier, []).append(value)
    return {k: {t: sum(v) / len(v) for t, v in tiers.items()} for k, tiers in sums.items()}
