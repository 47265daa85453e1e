"""Two-tier placement: cheapest placement within the slack of the fastest phase time."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daydream_core.model import HIGH, LOW, Tier
from daydream_core.policies.placement import AllTier, SlackPlacement, Starts, makespan
from daydream_core.pricing import AWS_LAMBDA_X86

TIERS = {HIGH: Tier(HIGH, 10240, 6), LOW: Tier(LOW, 5120, 3)}


def _cost(kinds, timings, placement):  # type: ignore[no-untyped-def]
    return sum(
        AWS_LAMBDA_X86.gb_second_cost(TIERS[t].memory_mb, timings[k][t])
        for k, t in zip(kinds, placement, strict=True)
    )


def _brute_force(kinds, timings, slack):  # type: ignore[no-untyped-def]
    fastest = max(min(timings[k].values()) for k in kinds)
    budget = (1 + slack) * fastest
    feasible = [
        p
        for p in itertools.product((HIGH, LOW), repeat=len(kinds))
        if max(timings[k][t] for k, t in zip(kinds, p, strict=True)) <= budget + 1e-12
    ]
    return min(_cost(kinds, timings, p) for p in feasible), budget


seconds = st.floats(0.05, 60.0, allow_nan=False)


@settings(deadline=None, max_examples=200)
@given(
    data=st.data(),
    n_kinds=st.integers(1, 4),
    width=st.integers(1, 7),
    slack=st.sampled_from([0.0, 0.05, 0.2, 1.0]),
)
def test_matches_brute_force(data: st.DataObject, n_kinds: int, width: int, slack: float) -> None:
    timings = {f"k{i}": {HIGH: data.draw(seconds), LOW: data.draw(seconds)} for i in range(n_kinds)}
    kinds = data.draw(st.lists(st.sampled_from(sorted(timings)), min_size=width, max_size=width))
    placement = SlackPlacement(slack).place(kinds, timings, TIERS, AWS_LAMBDA_X86)
    best, budget = _brute_force(kinds, timings, slack)
    assert max(timings[k][t] for k, t in zip(kinds, placement, strict=True)) <= budget + 1e-9
    assert _cost(kinds, timings, placement) == pytest.approx(best, rel=1e-9)


def test_off_critical_path_components_go_low() -> None:
    timings = {"long": {HIGH: 10.0, LOW: 18.0}, "short": {HIGH: 1.0, LOW: 1.6}}
    placement = SlackPlacement(0.05).place(
        ["long", "short", "short"], timings, TIERS, AWS_LAMBDA_X86
    )
    assert placement == [HIGH, LOW, LOW]


def test_a_kind_with_no_data_explores_both_tiers() -> None:
    placement = SlackPlacement().place(["new"] * 4, {}, TIERS, AWS_LAMBDA_X86)
    assert sorted(placement) == [HIGH, HIGH, LOW, LOW]


def test_a_tier_with_no_data_is_explored_once() -> None:
    timings = {"k": {HIGH: 2.0}}
    placement = SlackPlacement().place(["k"] * 3, timings, TIERS, AWS_LAMBDA_X86)
    assert placement.count(LOW) == 1
    assert placement.count(HIGH) == 2


def _schedule(seconds: list[float], concurrency: int) -> float:
    """Components started in order, each on the slot that frees first."""
    slots = [0.0] * concurrency
    for duration in seconds:
        slot = slots.index(min(slots))
        slots[slot] += duration
    return max(slots)


def test_a_phase_wider_than_the_limit_is_placed_by_its_schedule() -> None:
    # Two slots: eight short components, then a long one that waits for the shorts. Each
    # short alone fits the budget on low, but all eight there delay the long one past it.
    kinds = ["short"] * 8 + ["long"]
    timings = {"short": {HIGH: 1.0, LOW: 1.5}, "long": {HIGH: 10.0, LOW: 20.0}}
    fastest = _schedule([1.0] * 8 + [10.0], 2)
    placement = SlackPlacement(0.05).place(kinds, timings, TIERS, AWS_LAMBDA_X86, concurrency=2)
    taken = [timings[k][t] for k, t in zip(kinds, placement, strict=True)]
    assert _schedule(taken, 2) <= 1.05 * fastest
    assert placement.count(LOW) >= 1  # what fits the budget still goes low
    unlimited = SlackPlacement(0.05).place(kinds, timings, TIERS, AWS_LAMBDA_X86)
    assert unlimited == [LOW] * 8 + [HIGH]
    assert _schedule([1.5] * 8 + [10.0], 2) > 1.05 * fastest  # what the limit rules out


@settings(deadline=None, max_examples=100)
@given(
    times=st.lists(st.tuples(seconds, st.floats(1.0, 3.0)), min_size=1, max_size=12),
    concurrency=st.integers(1, 12),
    slack=st.floats(0.0, 0.5),
)
def test_a_schedule_within_the_slack_and_no_dearer(
    times: list[tuple[float, float]], concurrency: int, slack: float
) -> None:
    # Each component its own kind, low `factor` x as slow: the placement's schedule ends
    # within the slack of all-high's, at no more cost; no wider than the limit, it is the
    # per-component optimum.
    kinds = [str(i) for i in range(len(times))]
    timings = {str(i): {HIGH: h, LOW: h * f} for i, (h, f) in enumerate(times)}
    placement = SlackPlacement(slack).place(
        kinds, timings, TIERS, AWS_LAMBDA_X86, concurrency=concurrency
    )
    taken = [timings[k][t] for k, t in zip(kinds, placement, strict=True)]
    fastest = [min(timings[k].values()) for k in kinds]
    assert _schedule(taken, concurrency) <= (1 + slack) * _schedule(fastest, concurrency) + 1e-9
    assert makespan(taken, concurrency) == pytest.approx(_schedule(taken, concurrency))
    assert _cost(kinds, timings, placement) <= _cost(kinds, timings, [HIGH] * len(kinds)) + 1e-12
    if len(kinds) <= concurrency:
        assert placement == SlackPlacement(slack).place(kinds, timings, TIERS, AWS_LAMBDA_X86)


def test_all_tier_baseline() -> None:
    assert AllTier(LOW).place(["a", "b"], {}, TIERS, AWS_LAMBDA_X86) == [LOW, LOW]


def test_negative_slack_is_refused() -> None:
    with pytest.raises(ValueError, match="slack"):
        SlackPlacement(-0.1)


def test_a_component_that_would_cold_start_takes_an_idle_instance_of_the_other_tier() -> None:
    # cosmoscout's `refine`: a little faster on low, 7 components, 6 low instances ready and
    # 12 high ones idle after the phase before. The 7th would wait 4 s for a low start.
    timings = {"refine": {HIGH: 0.9, LOW: 0.8}}
    placement = SlackPlacement(slack=0.02)
    idle_high = Starts(ready={HIGH: 12, LOW: 6}, latency_s={HIGH: 4.0, LOW: 4.0})
    placed = placement.place(["refine"] * 7, timings, TIERS, AWS_LAMBDA_X86, starts=idle_high)
    assert placed == [LOW] * 6 + [HIGH]
    # A cold start the phase absorbs (it ends before the phase's longest component) stays.
    timings["long"] = {HIGH: 9.0, LOW: 20.0}
    placed = placement.place(
        ["long", *["refine"] * 7], timings, TIERS, AWS_LAMBDA_X86, starts=idle_high
    )
    assert placed == [HIGH, *[LOW] * 7]
    # With nothing idle on the other tier, or nothing known of starts, nothing moves.
    none_idle = Starts(ready={HIGH: 0, LOW: 6}, latency_s={HIGH: 4.0, LOW: 4.0})
    assert (
        placement.place(["refine"] * 7, timings, TIERS, AWS_LAMBDA_X86, starts=none_idle)
        == [LOW] * 7
    )
    assert placement.place(["refine"] * 7, timings, TIERS, AWS_LAMBDA_X86) == [LOW] * 7
