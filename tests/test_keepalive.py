"""Keep-alive: idle instances worth keeping are those a later phase will want."""

from __future__ import annotations

from daydream_core.model import HIGH, LOW
from daydream_core.policies.keepalive import HorizonKeepAlive, PlatformKeepAlive
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
