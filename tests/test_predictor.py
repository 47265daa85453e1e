"""The DayDream hot-start predictor: Weibull fit and critical-ratio quantile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from daydream_core.model import HIGH, LOW, Tier
from daydream_core.policies.predictor import (
    DayDreamPredictor,
    NoHotStart,
    Observation,
    StartCosts,
    WeibullFit,
    start_costs,
)
from daydream_core.pricing import AWS_LAMBDA_X86


@pytest.mark.parametrize(("shape", "scale"), [(0.9, 4.0), (1.8, 12.0), (3.5, 40.0)])
def test_fit_recovers_parameters_and_predicts_unseen_samples(shape: float, scale: float) -> None:
    rng = np.random.default_rng(7)
    train = scale * rng.weibull(shape, size=3000)
    held_out = scale * rng.weibull(shape, size=3000)
    fit = WeibullFit.fit(train)
    assert fit.shape == pytest.approx(shape, rel=0.08)
    assert fit.scale == pytest.approx(scale, rel=0.08)
    # The fitted distribution describes samples it never saw.
    result = stats.kstest(held_out, "weibull_min", args=(fit.shape, 0, fit.scale))
    assert result.pvalue > 0.01
    for q in (0.5, 0.9):
        assert fit.quantile(q) == pytest.approx(np.quantile(held_out, q), rel=0.1)


def test_zero_widths_are_a_point_mass() -> None:
    fit = WeibullFit.fit([0, 0, 0, 5, 6, 7])
    assert fit.zero_mass == pytest.approx(0.5)
    assert fit.quantile(0.4) == 0.0
    assert fit.quantile(0.9) > 5


def test_constant_samples_predict_the_constant() -> None:
    fit = WeibullFit.fit([6, 6, 6, 6])
    assert fit.quantile(0.3) == pytest.approx(6, rel=0.01)
    assert fit.quantile(0.95) == pytest.approx(6, rel=0.01)


def _observation(history: list[list[dict[str, int]]], ratio: float, phase: int = 1) -> Observation:
    costs = StartCosts(idle_hot_start=1.0, cold_start=ratio)
    return Observation(history=history, current=[], next_phase=phase, costs={HIGH: costs})


def _history(seed: int, runs: int = 20) -> list[list[dict[str, int]]]:
    rng = np.random.default_rng(seed)
    return [
        [{HIGH: int(w)} for w in 1 + np.round(8 * rng.weibull(1.5, size=4))] for _ in range(runs)
    ]


@settings(deadline=None, max_examples=30)
@given(
    seed=st.integers(0, 10_000),
    low=st.floats(0.01, 50.0),
    factor=st.floats(1.0, 100.0),
)
def test_count_grows_with_the_cold_start_cost_ratio(seed: int, low: float, factor: float) -> None:
    history = _history(seed)
    predictor = DayDreamPredictor()
    cheap = predictor.predict(_observation(history, low))[HIGH]
    dear = predictor.predict(_observation(history, low * factor))[HIGH]
    assert dear >= cheap


def test_count_spans_the_distribution_as_the_ratio_moves() -> None:
    history = _history(3)
    widths = [run[1][HIGH] for run in history]
    predictor = DayDreamPredictor()
    assert predictor.predict(_observation(history, 0.01))[HIGH] <= np.quantile(widths, 0.2)
    assert predictor.predict(_observation(history, 100.0))[HIGH] >= np.quantile(widths, 0.9)


def test_same_phase_of_earlier_runs_is_preferred_to_pooled_widths() -> None:
    # Phase 0 is always narrow and phase 1 always wide: pooling would blur them.
    history = [[{HIGH: 2}, {HIGH: 20}] for _ in range(5)]
    predictor = DayDreamPredictor()
    assert predictor.predict(_observation(history, 4.0, phase=1))[HIGH] == 20
    assert predictor.predict(_observation(history, 4.0, phase=0))[HIGH] == 2


def test_little_history_falls_back_to_the_last_width() -> None:
    costs = {HIGH: StartCosts(1.0, 4.0), LOW: StartCosts(1.0, 4.0)}
    predictor = DayDreamPredictor()
    nothing = Observation(history=[], current=[], next_phase=0, costs=costs)
    assert predictor.predict(nothing) == {HIGH: 0, LOW: 0}
    one = Observation(history=[], current=[{HIGH: 3, LOW: 5}], next_phase=1, costs=costs)
    assert predictor.predict(one) == {HIGH: 3, LOW: 5}


def test_no_hot_start_baseline() -> None:
    observation = _observation(_history(1), 10.0)
    assert NoHotStart().predict(observation) == {HIGH: 0}


def test_start_costs_weigh_idle_init_against_latency() -> None:
    tier = Tier(HIGH, 10240, 6)
    costs = start_costs(tier, AWS_LAMBDA_X86, init_ms=1000.0, time_value_per_s=0.001)
    # An idle hot start is billed its second of init at 10 GB.
    assert costs.idle_hot_start == pytest.approx(10 * 0.0000166667 + 0.2e-6)
    assert costs.cold_start == pytest.approx(0.001)
    cheaper_tier = start_costs(Tier(LOW, 5120, 3), AWS_LAMBDA_X86, init_ms=1000.0)
    assert cheaper_tier.critical_ratio > costs.critical_ratio


def test_tiers_share_the_total_as_the_latest_run_split_it() -> None:
    # Placement changed its mind between runs; the total width did not.
    history = [[{HIGH: 6, LOW: 6}, {HIGH: 12, LOW: 0}], [{HIGH: 3, LOW: 9}, {HIGH: 0, LOW: 12}]]
    costs = {HIGH: StartCosts(1.0, 4.0), LOW: StartCosts(1.0, 4.0)}
    observation = Observation(history=history, current=[], next_phase=1, costs=costs)
    assert DayDreamPredictor().predict(observation) == {HIGH: 0, LOW: 12}


def test_each_tier_uses_its_own_critical_ratio() -> None:
    rng = np.random.default_rng(5)
    history = [[{HIGH: int(w), LOW: int(w)}] for w in 2 + np.round(10 * rng.weibull(2.0, 40))]
    costs = {HIGH: StartCosts(1.0, 0.1), LOW: StartCosts(1.0, 10.0)}
    observation = Observation(history=history, current=[], next_phase=0, costs=costs)
    counts = DayDreamPredictor().predict(observation)
    assert counts[LOW] > counts[HIGH]


def test_no_hot_starts_past_the_usual_end_of_the_workflow() -> None:
    history = [[{HIGH: 5}, {HIGH: 9}] for _ in range(4)]
    assert DayDreamPredictor().predict(_observation(history, 6.0, phase=2)) == {HIGH: 0}
    # ... but when runs sometimes go on, it hot starts for the continuation.
    history += [[{HIGH: 5}, {HIGH: 9}, {HIGH: 4}] for _ in range(8)]
    assert DayDreamPredictor().predict(_observation(history, 6.0, phase=2))[HIGH] == 4
