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

from daydream_core.model import Tier, WidthHint
from daydream_core.pricing import PriceTable

Widths = Mapping[str, int]  # tier name -> components of that tier in one phase

# What a second of a scientist's waiting is worth, in dollars, against billed GB-seconds.
DEFAULT_TIME_VALUE_PER_S = 0.001


@dataclass(frozen=True)
class StartCosts:
    """What one unit of prediction error costs, for one tier."""

    idle_hot_start: float  # an instance hot started and never used
    cold_start: float  # a component that found no hot instance
    start_s: float = 0.0  # how long a cold start takes, seconds

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
    return StartCosts(idle_hot_start=idle, cold_start=cold, start_s=init_ms / 1000.0)


@dataclass(frozen=True)
class Upcoming:
    """What a clairvoyant policy (the oracle) is told about the next phase before it starts."""

    kinds: Sequence[str]
    seconds: Sequence[Mapping[str, float]] = ()  # per component: tier -> execution seconds
    widths: Mapping[str, int] = field(default_factory=dict)  # its placement, per tier


@dataclass(frozen=True)
class Shape:
    """What is known of a phase besides its widths: its kinds, and its hint of the next."""

    kinds: frozenset[str] = frozenset()
    hint: WidthHint | None = None


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
    shapes: Sequence[Shape] = ()  # this run's phases so far (the last one's hint is of next)
    history_shapes: Sequence[Sequence[Shape]] = ()  # earlier runs', where known (as `history`)
    # Earlier runs' wall-clock spans where known: the idle seconds before each later run (and
    # before this one), and each run's seconds from start to end.
    run_gaps_s: Sequence[float] = ()
    run_times_s: Sequence[float] = ()


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


def totals(phases: Sequence[Widths]) -> list[int]:
    return [sum(phase.values()) for phase in phases]


def shares(observation: Observation) -> dict[str, float]:
    """Each tier's expected share of the next phase: its share in the same phase of the latest
    earlier run, else in the latest phase of this run, else even."""
    latest = [
        run[observation.next_phase]
        for run in observation.history
        if len(run) > observation.next_phase
    ]
    reference = latest[-1] if latest else (observation.current[-1] if observation.current else {})
    total = sum(reference.get(t, 0) for t in observation.costs)
    if total == 0:
        return {t: 1.0 / len(observation.costs) for t in observation.costs}
    return {t: reference.get(t, 0) / total for t in observation.costs}


def newsvendor_quantile(samples: Sequence[float], ratio: float, min_empirical: int) -> float:
    """The critical-ratio quantile: empirical with enough samples (the newsvendor optimum for
    the distribution seen), else of a Weibull fit (smooths a handful of samples)."""
    if len(samples) >= min_empirical:
        return float(np.quantile(np.asarray(samples, dtype=float), ratio, method="inverted_cdf"))
    return WeibullFit.fit(samples).quantile(ratio)


def aligned_column(
    runs: Sequence[Sequence[int]], k: int, min_runs: int, threshold: float
) -> list[float] | None:
    """The widths of phase `k` in earlier runs (zero where a run had ended), if position `k`
    predicts the width: they vary much less than widths overall (variance below `threshold`
    x the pooled variance). For a dynamic DAG whose phases do not line up between runs they
    do not, and None says so."""
    if len(runs) < min_runs:
        return None
    column = [float(run[k]) if len(run) > k else 0.0 for run in runs]
    longest = max(len(run) for run in runs)
    pooled = [run[i] if len(run) > i else 0 for run in runs for i in range(longest)]
    total = float(np.var(pooled)) if len(pooled) > 1 else 0.0
    if float(np.var(column)) <= threshold * total or total == 0.0:
        return column
    return None


def conditional_samples(
    sequences: Sequence[Sequence[int]], last: int, min_pairs: int, min_correlation: float
) -> list[float] | None:
    """Widths that follow a phase of width `last`: a line fitted to (width, next width) pairs
    plus its residuals, when the previous width predicts the next (adaptive workflows, whose
    next phase depends on the previous one's results); else None."""
    pairs = [(run[i], run[i + 1]) for run in sequences for i in range(len(run) - 1)]
    if len(pairs) < min_pairs:
        return None
    x = np.array([p[0] for p in pairs], dtype=float)
    y = np.array([p[1] for p in pairs], dtype=float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    correlation = float(np.corrcoef(x, y)[0, 1])
    if not correlation >= min_correlation:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (slope * x + intercept)
    centre = slope * last + intercept
    return [max(0.0, float(centre + r)) for r in residuals]


def _form(hint: WidthHint | None) -> tuple[bool, bool]:
    if hint is None:
        return (False, False)
    return (hint.expected is not None, hint.at_most is not None)


def _reference(width: int, hint: WidthHint | None) -> int:
    """What a phase says of the next one's width: its hint (expected, else the bound), else
    its own width."""
    if hint is not None:
        return hint.expected if hint.expected is not None else int(hint.at_most or 0)
    return width


def _carry(following: int, then: int, now: int) -> float:
    """A width that followed a phase whose reference was `then`, carried to a phase whose
    reference is `now`: in proportion (a miss of an expected width, a share of a bound, a
    ratio to the previous width keep their relative size)."""
    return following * now / then if then > 0 else float(following)


def follower_samples(
    runs: Sequence[Sequence[int]],
    shapes: Sequence[Sequence[Shape]],
    current: Sequence[int],
    current_shapes: Sequence[Shape],
) -> list[float]:
    """Widths of the phases that followed a phase like the last one of this run (the same
    kinds, a hint of the same form), each carried to the last phase's reference (`_carry`).
    A run that ended
    after such a phase counts a follower of width 0. This conditions on what the workflow's
    structure and results say of the next phase, wherever phases sit in their runs."""
    last = current_shapes[-1]
    form = _form(last.hint)
    now = _reference(current[-1], last.hint)
    found: list[float] = []
    known = shapes[-len(runs) :] if runs else []  # shapes are of the latest runs
    described = runs[len(runs) - len(known) :]
    sequences = [*((w, k, True) for w, k in zip(described, known, strict=True))]
    sequences.append((current, current_shapes, False))
    for widths, kinds, ended in sequences:
        for i, shape in enumerate(kinds[: len(widths)]):
            if shape.kinds != last.kinds or _form(shape.hint) != form:
                continue
            then = _reference(widths[i], shape.hint)
            if i + 1 < len(widths):
                found.append(_carry(widths[i + 1], then, now))
            elif ended:
                found.append(0.0)
    return found


def hinted_fallback(hint: WidthHint, samples: Sequence[float]) -> list[float]:
    """A hint with nothing yet to judge it by: an expected width is the estimate; a bound
    truncates the widths seen."""
    if hint.expected is not None:
        return [float(hint.expected)]
    assert hint.at_most is not None
    return [min(float(hint.at_most), w) for w in samples] or [float(hint.at_most)]


def informative(samples: Sequence[float], pooled: Sequence[float], threshold: float) -> bool:
    """Samples vary much less than the pooled widths (or the pooled widths do not vary)."""
    total = float(np.var(pooled)) if len(pooled) > 1 else 0.0
    return total == 0.0 or float(np.var(samples)) <= threshold * total


class DayDreamPredictor:
    """Newsvendor hot starts from the widths that are comparable to the next one.

    Which widths, the first that applies:

    1. those that followed a phase like the last one (same kinds, a hint of the same form),
       carried to its hint (`follower_samples`), if they vary much less than widths overall
       or the workflow gave a hint; a hint with no such phase yet stands on its own
       (`hinted_fallback`);
    2. those of the same phase in earlier runs when that position lines up between runs
       (`aligned_column`);
    3. those that followed a phase as wide as the last one, when the previous width predicts
       the next (`conditional_samples`);
    4. every width seen, in this and earlier runs (phases independent of their position).

    How many: the critical-ratio quantile of those widths per tier (empirical for 1 and 2 or
    with 20 or more widths, else of a Weibull fit), each tier at its share. With fewer than
    `min_samples` widths it predicts the last width seen (persistence). The platform's
    concurrency caps the total.
    """

    name = "daydream"
    split_by_placement = True  # the controller splits its total as placement would place

    def __init__(
        self,
        min_samples: int = 2,
        max_instances: int = 1000,
        min_empirical: int = 20,
        alignment: float = 0.5,
        min_correlation: float = 0.5,
        min_followers: int = 1,
    ) -> None:
        self.min_followers = min_followers
        self.min_samples = min_samples
        self.max_instances = max_instances
        self.min_empirical = min_empirical
        self.alignment = alignment
        self.min_correlation = min_correlation

    def choose(self, observation: Observation) -> tuple[list[float], int]:
        """The comparable widths, and from how many of them the quantile is empirical."""
        runs = [totals(run) for run in observation.history]
        current = totals(observation.current)
        pooled = [float(w) for run in runs for w in run] + [float(w) for w in current]
        if observation.shapes and current:
            hint = observation.shapes[-1].hint
            followers = follower_samples(
                runs, observation.history_shapes, current, observation.shapes
            )
            if followers and (
                hint is not None
                or (
                    len(followers) >= self.min_followers
                    and informative(followers, pooled, self.alignment)
                )
            ):
                return followers, 1
            if hint is not None:
                return hinted_fallback(hint, pooled), 1
        # A run's start is the one position every run has: one earlier run already says
        # something of it. Later positions must first be seen to line up.
        k = observation.next_phase
        column = aligned_column(runs, k, 1 if k == 0 else self.min_samples, self.alignment)
        if column is not None:
            return column, 1
        if current:
            following = conditional_samples([*runs, current], current[-1], 8, self.min_correlation)
            if following is not None:
                return following, self.min_empirical
        return pooled, self.min_empirical

    def samples(self, observation: Observation) -> list[float]:
        return self.choose(observation)[0]

    def shares(self, observation: Observation) -> dict[str, float]:
        return shares(observation)

    def predict(self, observation: Observation) -> dict[str, int]:
        samples, floor = self.choose(observation)
        split = shares(observation)
        if len(samples) < min(floor, self.min_samples):
            last = samples[-1] if samples else 0
            return {t: round(last * split[t]) for t in observation.costs}
        result = {}
        for tier, costs in observation.costs.items():
            quantile = newsvendor_quantile(samples, costs.critical_ratio, floor)
            result[tier] = min(self.max_instances, math.ceil(quantile * split[tier] - 1e-9))
        return result


class NoHotStart:
    """Baseline: never hot start (every first use is a cold start)."""

    name = "cold"

    def predict(self, observation: Observation) -> dict[str, int]:
        return dict.fromkeys(observation.costs, 0)
