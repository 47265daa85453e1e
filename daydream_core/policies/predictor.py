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
from dataclasses import dataclass
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
    idle = prices.cost(tier.memory_mb, hold_ms, init_ms=init_ms)
    cold = time_value_per_s * init_ms / 1000.0
    return StartCosts(idle_hot_start=idle, cold_start=cold)


@dataclass(frozen=True)
class Observation:
    """What a predictor may look at."""

    history: Sequence[Sequence[Widths]]  # earlier runs of the workflow: per phase, per tier
    current: Sequence[Widths]  # this run's phases so far
    next_phase: int  # index (0-based) of the phase to predict
    costs: Mapping[str, StartCosts]  # per tier


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

    Samples are the widths of the same phase in earlier runs when there are enough of them
    (workflows repeat their shape), otherwise every phase seen so far in this and earlier runs.
    With fewer than `min_samples`, it predicts the last observed width (persistence).
    """

    name = "daydream"

    def __init__(self, min_samples: int = 2, max_instances: int = 1000) -> None:
        self.min_samples = min_samples
        self.max_instances = max_instances

    def samples(self, observation: Observation, tier: str) -> list[int]:
        same_phase = [
            run[observation.next_phase].get(tier, 0)
            for run in observation.history
            if len(run) > observation.next_phase
        ]
        if len(same_phase) >= self.min_samples:
            return same_phase
        pooled = [phase.get(tier, 0) for run in observation.history for phase in run]
        return pooled + [phase.get(tier, 0) for phase in observation.current]

    def predict(self, observation: Observation) -> dict[str, int]:
        counts: dict[str, int] = {}
        for tier, costs in observation.costs.items():
            samples = self.samples(observation, tier)
            if len(samples) < self.min_samples:
                last = observation.current[-1] if observation.current else {}
                counts[tier] = int(last.get(tier, samples[-1] if samples else 0))
                continue
            fit = WeibullFit.fit(samples)
            wanted = fit.quantile(costs.critical_ratio)
            counts[tier] = min(self.max_instances, math.ceil(wanted - 1e-9))
        return counts


class NoHotStart:
    """Baseline: never hot start (every first use is a cold start)."""

    name = "cold"

    def predict(self, observation: Observation) -> dict[str, int]:
        return dict.fromkeys(observation.costs, 0)
