"""Hot-start predictors: how many instances of each tier to hot start for the next phase.

The DayDream predictor fits a Weibull distribution to the per-phase concurrency seen so far and
picks the newsvendor quantile: hot start n instances where n is the critical-ratio quantile
``c_cold / (c_cold + c_idle)`` of the fitted distribution. An idle hot start wastes its billed
init; a cold start costs the time it adds to the phase. Zero-width phases (a tier unused) are
handled as a point mass at zero in front of the Weibull (a hurdle model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy import stats

from daydream_core.model import Tier
from daydream_core.pricing import PriceTable

Widths = Mapping[str, int]  # tier name -> components of that tier in one phase

# What a second of a scientist's waiting is worth, in dollars, against billed GB-seconds.
DEFAULT_TIME_VALUE_PER_S = 0.001


@dataclass(frozen=True)
class StartCosts:
    """What one unit of prediction error costs, for one tier."""

    idle_hot_start: float  # an instance hot started and never used
    cold_start: float  # a component that found no hot instance

    @property
    def critical_ratio(self) -> float:
        total = self.idle_hot_start + self.cold_start
        return 0.5 if total <= 0 else self.cold_start / total


def start_costs(
    tier: Tier,
    prices: PriceTable,
    init_ms: float,
    hold_ms: float = 0.0,
    time_value_per_s: float = DEFAULT_TIME_VALUE_PER_S,
) -> StartCosts:
    """Costs of over- and under-predicting by one instance on `tier`.

    An unused hot start is billed its init (where init is billed) and its hold. A cold start's
    init is billed either way, so its extra cost is the latency it adds, valued in dollars.
    """
    idle = prices.cost(tier.memory_mb, hold_ms, init_ms=init_ms, vcpus=tier.vcpus)
    cold = time_value_per_s * init_ms / 1000.0
    return StartCosts(idle_hot_start=idle, cold_start=cold)


@dataclass(frozen=True)
class Upcoming:
    """What a clairvoyant policy (the oracle) is told about the next phase before it starts."""

    kinds: Sequence[str]
    seconds: Sequence[Mapping[str, float]] = ()  # per component: tier -> execution seconds
    widths: Mapping[str, int] = field(default_factory=dict)  # its placement, per tier


@dataclass(frozen=True)
class Observation:
    """What a predictor may look at."""

    history: Sequence[Sequence[Widths]]  # earlier runs of the workflow: per phase, per tier
    current: Sequence[Widths]  # this run's phases so far
    next_phase: int  # index (0-based) of the phase to predict
    costs: Mapping[str, StartCosts]  # per tier
    kinds: Sequence[Sequence[str]] = ()  # this run's phases so far: each component's kind
    phase_times: Sequence[float] = ()  # this run's phase times so far, seconds
    upcoming: Upcoming | None = None  # the next phase itself, for clairvoyant policies only
    max_concurrency: int = 1000  # the platform's limit, all tiers together
    alive: Mapping[str, int] = field(default_factory=dict)  # instances alive now, per tier
    seed: int = 0  # the run's seed (for policies that draw at random)
    upcoming_peak: int = 0  # the run's widest phase, where the executor knows it (artifact)


class Predictor(Protocol):
    name: str

    def predict(self, observation: Observation) -> dict[str, int]:
        """Instances to hot start, per tier, for `observation.next_phase`."""
        ...


@dataclass(frozen=True)
class WeibullFit:
    """A two-parameter Weibull (location 0), with a point mass at zero."""

    shape: float
    scale: float
    zero_mass: float = 0.0
    constant: bool = False  # every positive sample equal: the MLE's limit is a point mass

    @classmethod
    def fit(cls, samples: Sequence[float]) -> WeibullFit:
        data = np.asarray(samples, dtype=float)
        if data.size == 0:
            raise ValueError("cannot fit a Weibull to no samples")
        positive = data[data > 0]
        zero_mass = 1.0 - positive.size / data.size
        if positive.size == 0:
            return cls(shape=1.0, scale=0.0, zero_mass=1.0)
        if positive.size == 1 or np.ptp(positive) == 0:
            return cls(shape=math.inf, scale=float(positive[0]), zero_mass=zero_mass, constant=True)
        shape, _, scale = stats.weibull_min.fit(positive, floc=0)
        return cls(shape=float(shape), scale=float(scale), zero_mass=zero_mass)

    def quantile(self, q: float) -> float:
        if q <= self.zero_mass or self.scale == 0.0:
            return 0.0
        if self.constant:
            return self.scale
        conditional = (q - self.zero_mass) / (1.0 - self.zero_mass)
        return float(stats.weibull_min.ppf(conditional, self.shape, scale=self.scale))


class DayDreamPredictor:
    """Weibull fit of observed concurrency; critical-ratio quantile per tier.

    The fit is to total phase widths, which do not depend on how placement splits a phase
    between tiers (placement keeps learning, especially in the first runs). Samples are the
    widths of the same phase in earlier runs when there are at least `min_samples` of them
    (workflows repeat their shape; a run that had already ended counts as width zero, so no
    instances are hot started for a phase past a workflow's usual end), otherwise every phase
    seen so far in this and earlier runs.
    Each tier then gets its share of the quantile at its own critical ratio; the share is the
    tier's in the same phase of the latest earlier run, else in the latest phase of this run.
    With fewer than `min_samples` widths it predicts the last width seen (persistence).
    """

    name = "daydream"

    def __init__(self, min_samples: int = 2, max_instances: int = 1000) -> None:
        self.min_samples = min_samples
        self.max_instances = max_instances

    def samples(self, observation: Observation) -> list[int]:
        # An earlier run that had ended by this phase saw it with width zero.
        same_phase = [
            sum(run[observation.next_phase].values()) if len(run) > observation.next_phase else 0
            for run in observation.history
        ]
        if len(same_phase) >= self.min_samples:
            return same_phase
        pooled = [sum(phase.values()) for run in observation.history for phase in run]
        return pooled + [sum(phase.values()) for phase in observation.current]

    def shares(self, observation: Observation) -> dict[str, float]:
        """Each tier's expected share of the next phase."""
        latest = [
            run[observation.next_phase]
            for run in observation.history
            if len(run) > observation.next_phase
        ]
        reference = (
            latest[-1] if latest else (observation.current[-1] if observation.current else {})
        )
        total = sum(reference.get(t, 0) for t in observation.costs)
        if total == 0:
            return {t: 1.0 / len(observation.costs) for t in observation.costs}
        return {t: reference.get(t, 0) / total for t in observation.costs}

    def predict(self, observation: Observation) -> dict[str, int]:
        samples = self.samples(observation)
        shares = self.shares(observation)
        if len(samples) < self.min_samples:
            last = samples[-1] if samples else 0
            return {t: round(last * shares[t]) for t in observation.costs}
        fit = WeibullFit.fit(samples)
        return {
            tier: min(
                self.max_instances,
                math.ceil(fit.quantile(costs.critical_ratio) * shares[tier] - 1e-9),
            )
            for tier, costs in observation.costs.items()
        }


class NoHotStart:
    """Baseline: never hot start (every first use is a cold start)."""

    name = "cold"

    def predict(self, observation: Observation) -> dict[str, int]:
        return dict.fromkeys(observation.costs, 0)
