"""Keep-alive: idle instances worth keeping are those a later phase will want."""

from __future__ import annotations

import pytest

from daydream_core.model import HIGH, LOW
from daydream_core.policies.keepalive import (
    MAX_WINDOW_S,
    PRIOR_GAP_S,
    HorizonKeepAlive,
    PlatformKeepAlive,
    run_spacing,
)
from daydream_core.policies.predictor import DayDreamPredictor, Observation, StartCosts

COSTS = {HIGH: StartCosts(1.0, 4.0), LOW: StartCosts(1.0, 4.0)}
# Tiers alternate phase by phase, as placement often makes them.
ALTERNATING = [[{HIGH: 0, LOW: 12}, {HIGH: 12, LOW: 0}, {HIGH: 0, LOW: 4}, {HIGH: 2, LOW: 0}]] * 3


def _keep(next_phase: int, history=ALTERNATING):  # type: ignore[no-untyped-def]
    observation = Observation(history=history, current=[], next_phase=next_phase, costs=COSTS)
    return HorizonKeepAlive().keep(DayDreamPredictor(), observation)


def test_instances_idle_now_but_wanted_later_are_kept() -> None:
    # After phase 0 (12 low), phase 1 wants no low instance, but phase 2 wants 4.
    assert _keep(1) == {HIGH: 12, LOW: 4}


def test_what_no_remaining_phase_wants_is_released() -> None:
    assert _keep(3) == {HIGH: 2, LOW: 0}
    assert _keep(4) == {HIGH: 0, LOW: 0}  # every earlier run had ended


def test_with_no_history_the_platform_decides() -> None:
    assert _keep(1, history=[]) is None


def test_platform_baseline_releases_nothing() -> None:
    observation = Observation(history=ALTERNATING, current=[], next_phase=1, costs=COSTS)
    assert PlatformKeepAlive().keep(DayDreamPredictor(), observation) is None


def _window(
    gaps: list[float], runs: list[float], phase_times: tuple[float, ...] = ()
) -> float | None:
    observation = Observation(
        history=ALTERNATING,
        current=[],
        next_phase=0,
        costs=COSTS,
        phase_times=phase_times,
        run_gaps_s=gaps,
        run_times_s=runs,
    )
    return HorizonKeepAlive().window_s(observation)


def test_kept_instances_are_kept_until_the_next_run_is_expected_to_use_them() -> None:
    # Runs 20-30 s long, 90-120 s apart: an instance last used as one run ends is next
    # wanted at most a run's length after the next one starts; a half more, for the host.
    assert _window([90.0, 120.0], [20.0, 30.0]) == pytest.approx(1.5 * (120.0 + 30.0))
    # A run longer than any before it (so far) lengthens the window as it goes.
    assert _window([90.0], [20.0], phase_times=(25.0, 15.0)) == pytest.approx(1.5 * 130.0)


def test_before_any_gap_between_runs_the_field_s_fixed_keep_alive_stands_for_one() -> None:
    assert _window([], [20.0]) == pytest.approx(1.5 * (PRIOR_GAP_S + 20.0))
    assert _window([], [], phase_times=(30.0,)) == pytest.approx(1.5 * (600.0 + 30.0))


def test_no_window_is_longer_than_the_hybrid_histogram_s_range() -> None:
    assert _window([3.9 * 3600.0], [600.0]) == MAX_WINDOW_S == 4 * 3600.0
    # An overnight gap cannot be bridged: the window is the daytime gaps'.
    assert _window([86_400.0, 100.0], [20.0]) == pytest.approx(1.5 * 120.0)
    assert _window([86_400.0], [20.0]) is None  # none can be: the platform's


def test_run_spacing_reads_gaps_and_lengths_from_wall_clock_spans() -> None:
    spans = [(100.0, 120.0), (200.0, 230.0), (225.0, 260.0)]  # the third overlapped
    gaps, lengths = run_spacing(spans, started=300.0)
    assert gaps == [80.0, 0.0, 40.0]  # before the second, the third, and this run
    assert lengths == [20.0, 30.0, 35.0]
    assert run_spacing([], started=5.0) == ([], [])


def test_a_policy_s_keep_alive_window_reaches_the_platform_through_the_controller() -> None:
    from daydream_core.controller import Controller
    from daydream_core.model import Tier
    from daydream_core.plugins import policies
    from daydream_core.pricing import AWS_LAMBDA_X86

    tiers = {HIGH: Tier(HIGH, 2048, 2.0), LOW: Tier(LOW, 1024, 1.0)}

    def controller(policy: str) -> Controller:
        return Controller(
            policy=policies()[policy],
            tiers=tiers,
            prices=AWS_LAMBDA_X86,
            history=ALTERNATING,
            timings={},
            costs=COSTS,
            max_concurrency=100,
            run_gaps=[100.0],
            run_times=[10.0],
        )

    assert controller("daydream").keep_alive_window() == pytest.approx(165.0)
    assert controller("keep-alive").keep_alive_window() == 600.0
    assert controller("cold").keep_alive_window() is None
