"""Baselines: the hybrid histogram's windows, the artifact's draw, the predictor vs naive ones."""

from __future__ import annotations

import random
from pathlib import Path

from daydream_core.model import HIGH
from daydream_core.policies.artifact import draw_hot_starts, fit_loc_scale, split
from daydream_core.policies.baselines import Histogram
from daydream_core.policies.naive import NAIVE
from daydream_core.policies.predictor import DayDreamPredictor, StartCosts
from daydream_core.simulator import load_workload
from daydream_core.simulator.predictors import score

TRACE = Path(__file__).resolve().parents[1] / "apps" / "daydream_trace" / "data" / "ccl"
COSTS = {HIGH: StartCosts(idle_hot_start=0.0002, cold_start=0.0012)}


def test_histogram_windows_follow_the_paper() -> None:
    assert Histogram([]).windows() == (0.0, 4 * 3600.0)  # nothing seen: keep the whole range
    certain = Histogram([610.0] * 30)  # every idle time in the 10th minute
    prewarm, keep = certain.windows()
    assert prewarm == 10 * 60 * 0.9 and keep == 11 * 60 * 1.1
    spread = Histogram([60.0 * i + 1 for i in range(240)])  # flat: not representative
    assert spread.windows() == (0.0, 4 * 3600.0)
    beyond = Histogram([5 * 3600.0] * 3)  # out of bounds: forecast
    assert beyond.windows() == (5 * 3600.0 * 0.85, 5 * 3600.0 * 0.3)


def test_the_artifact_draws_within_the_widest_phase_and_splits_half_and_half() -> None:
    rng = random.Random(0)
    draws = [draw_hot_starts([4, 7, 2], 7, rng) for _ in range(200)]
    assert min(draws) >= 0 and max(draws) <= 7 and len(set(draws)) > 3
    assert split(7, [1.0]) == {"high": 3, "low": 4}
    assert split(10, [1.0, 2.0]) == {"high": 5, "low": 5}  # int(5 * 1.1)
    assert split(10, [2.0, 1.0]) == {"high": 4, "low": 6}  # int(5 * 0.9)
    loc, scale = fit_loc_scale([4, 4, 4])  # no spread: scipy's fallback scale of 1
    assert (loc, scale) == (4.0, 1.0)


def test_the_predictor_has_the_lowest_newsvendor_loss_on_the_shared_trace() -> None:
    runs = [run.widths for run in load_workload(trace=TRACE).runs]
    ours = score(DayDreamPredictor(), runs, COSTS)
    for naive in NAIVE:
        theirs = score(naive(), runs, COSTS)
        assert ours.loss < theirs.loss, theirs.predictor


def test_adaptive_widths_are_predicted_from_the_previous_width() -> None:
    # Each run wanders from its own start (results steer the next phase): position says
    # little, the last width much.
    rng = random.Random(1)
    runs = []
    for _ in range(12):
        width = rng.randint(2, 40)
        run = []
        for _ in range(rng.randint(4, 8)):
            run.append(width)
            width = max(1, width + rng.randint(-2, 2))
        runs.append(run)
    ours = score(DayDreamPredictor(), runs, COSTS)
    for naive in NAIVE:
        assert ours.loss < score(naive(), runs, COSTS).loss, naive.name


def test_the_histogram_counts_the_gaps_between_runs_as_idle_times() -> None:
    from daydream_core.policies.baselines import HybridHistogramKeepAlive
    from daydream_core.policies.predictor import Observation

    # Back-to-back phases (idle 0) and runs 70 s apart: the keep-alive outlasts the gap.
    phases = [{HIGH: 2}, {HIGH: 3}, {HIGH: 1}]
    within = Observation(
        history=[], current=phases, next_phase=3, costs=COSTS, phase_times=[5.0, 5.0, 5.0]
    )
    apart = Observation(
        history=[phases] * 3,
        current=phases,
        next_phase=3,
        costs=COSTS,
        phase_times=[5.0, 5.0, 5.0],
        run_gaps_s=[70.0, 70.0, 70.0],
    )
    assert HybridHistogramKeepAlive().window_s(within) == 1 * 60 * 1.1  # the first minute
    assert HybridHistogramKeepAlive().window_s(apart) == 2 * 60 * 1.1 > 70.0
