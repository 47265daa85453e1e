"""The controller: one run's decisions, shared by the engine and the simulator."""

from __future__ import annotations

from daydream_core.controller import Controller, Upcoming, cap_across_tiers
from daydream_core.model import HIGH, LOW, Tier
from daydream_core.plugins import policies
from daydream_core.policies.predictor import Shape, StartCosts
from daydream_core.pricing import AWS_LAMBDA_X86

TIERS = {HIGH: Tier(HIGH, 10240, 6.0), LOW: Tier(LOW, 5120, 3.0)}
COSTS = {t: StartCosts(idle_hot_start=0.0002, cold_start=0.0012) for t in TIERS}


def _controller(policy: str, history: list[list[dict[str, int]]], limit: int = 1000) -> Controller:
    return Controller(
        policy=policies()[policy],
        tiers=TIERS,
        prices=AWS_LAMBDA_X86,
        history=history,
        timings={"a": {HIGH: 1.0, LOW: 1.9}, "b": {HIGH: 1.0, LOW: 1.0}},
        costs=COSTS,
        max_concurrency=limit,
    )


def test_the_cap_is_one_limit_for_all_tiers_together() -> None:
    assert cap_across_tiers({HIGH: 23, LOW: 23}, 23) == {HIGH: 12, LOW: 11}
    assert sum(cap_across_tiers({HIGH: 1000, LOW: 3}, 23).values()) == 23
    assert cap_across_tiers({HIGH: 2, LOW: 3}, 23) == {HIGH: 2, LOW: 3}


def test_a_narrow_phase_after_a_wide_one_is_predicted_within_the_limit() -> None:
    controller = _controller("daydream", [[{HIGH: 500, LOW: 500}, {HIGH: 1, LOW: 0}]] * 3, 23)
    controller.phase_started(controller.place(["a"] * 1000), ["a"] * 1000)
    predicted = controller.predict(1)
    assert sum(predicted.values()) <= 23


def test_placement_keeps_the_critical_component_fast_and_the_rest_cheap() -> None:
    plan = _controller("cold", []).place(["a", "b", "b"])  # daydream's placement, 5% slack
    assert plan.placement == [HIGH, LOW, LOW]
    assert plan.widths == {HIGH: 1, LOW: 2}


def test_only_a_clairvoyant_policy_sees_the_next_phase() -> None:
    upcoming = Upcoming(["a", "a"], [{HIGH: 1.0, LOW: 1.0}, {HIGH: 1.0, LOW: 3.0}])
    oracle = _controller("oracle", [])
    assert oracle.predict(0, upcoming) == {HIGH: 1, LOW: 1}  # exactly what it will place
    assert oracle.place(["a", "a"], upcoming).placement == [LOW, HIGH]
    daydream = _controller("daydream", [])
    assert daydream.predict(0, upcoming) == {HIGH: 0, LOW: 0}  # no history, no peeking


def test_the_per_kind_limit_sees_each_kinds_mean_not_each_component() -> None:
    upcoming = Upcoming(["a", "a"], [{HIGH: 1.0, LOW: 1.0}, {HIGH: 1.0, LOW: 3.0}])
    limit = _controller("oracle-kinds", [])
    # "a" is 2x as slow on low on average: both high, where the oracle sends the first low.
    assert limit.place(["a", "a"], upcoming).placement == [HIGH, HIGH]
    assert limit.predict(0, upcoming) == {HIGH: 2, LOW: 0}


def test_components_that_would_cold_start_take_the_other_tiers_idle_instances() -> None:
    controller = _controller("daydream", [])
    controller.costs = {t: StartCosts(0.0002, 0.0012, start_s=2.0) for t in TIERS}
    # "b" is as fast on low, so low (cheaper); one low instance is ready, four high ones.
    assert controller.place(["b"] * 4).placement == [LOW] * 4
    plan = controller.place(["b"] * 4, ready={HIGH: 4, LOW: 1})
    assert plan.placement == [LOW, HIGH, HIGH, HIGH]


def test_the_artifact_takes_pooled_functions_then_creates_high_end_ones() -> None:
    controller = _controller("artifact", [])
    controller.created({HIGH: 1, LOW: 1})
    plan = controller.place(["a", "a", "a", "a"])
    assert sorted(plan.placement[:2]) == [HIGH, LOW]
    assert plan.placement[2:] == [HIGH, HIGH]  # cold starts: new high-end functions
    assert controller.pool == {HIGH: 0, LOW: 0}


def test_hot_starts_go_where_placement_now_puts_the_phase_not_where_it_was_put() -> None:
    # Earlier runs placed phase 0 ("b") high; "b" has since been learned as fast on low, so
    # placement now puts it low, and the hot starts for it follow.
    history = [[{HIGH: 4, LOW: 0}]] * 3
    controller = _controller("daydream", history)
    controller.timings = {"b": {HIGH: 1.0, LOW: 0.9}}
    controller.history_shapes = [[Shape(frozenset({"b"}))]] * 3
    assert controller.place(["b"] * 4).widths == {LOW: 4}
    assert controller.predict(0) == {HIGH: 0, LOW: 4}


def test_without_an_earlier_phase_at_that_position_the_predictor_splits() -> None:
    controller = _controller("daydream", [[{HIGH: 4, LOW: 0}]] * 3)  # widths, no shapes
    assert controller.predict(0) == {HIGH: 4, LOW: 0}


def test_hot_starts_follow_a_one_tier_placement_whatever_earlier_runs_did() -> None:
    controller = _controller("all-low", [[{HIGH: 4, LOW: 0}]] * 3)
    controller.history_shapes = [[Shape(frozenset({"b"}))]] * 3
    assert controller.predict(0) == {HIGH: 0, LOW: 4}


def test_in_a_first_run_the_next_phase_is_split_as_a_new_kind_would_be() -> None:
    # No earlier run says what the next phase holds, and the current one brought a kind new
    # to the run: its hot starts go where a kind with no data would be placed now (no
    # exploration sample moves them).
    controller = _controller("daydream", [])
    controller.timings = {}
    kinds = ["new"] * 8
    plan = controller.place(kinds)
    controller.phase_started(plan, kinds)
    assert controller.predict(1, alive={HIGH: 8, LOW: 0})[LOW] == 0
    # A probe reports, mid-phase: low is as fast. The next phase's hot starts follow it.
    controller.learned({"new": {HIGH: 1.0, LOW: 1.0}}, {("new", HIGH), ("new", LOW)})
    predicted = controller.predict(1, alive={HIGH: 8, LOW: 0})
    assert predicted[HIGH] == 0 and predicted[LOW] > 0
    assert controller.paired == {("new", HIGH), ("new", LOW)}


def test_in_a_first_run_the_next_phase_is_split_as_the_phases_so_far_suggest() -> None:
    # Kinds measured as fast on low send a new kind low; "a" is 1.9x as slow there. A run
    # whose phases bring new kinds is taken to go on doing so: after "a"'s first phase the
    # hot starts go low. Once a phase brings no new kind, the next is taken to be like it.
    controller = _controller("daydream", [])
    controller.timings = {"a": {HIGH: 1.0, LOW: 1.9}} | {
        k: {HIGH: 1.0, LOW: 1.0} for k in ("b", "c", "d")
    }
    kinds = ["a"] * 8
    for alike in (False, True):
        plan = controller.place(kinds)
        assert plan.widths == {HIGH: 8}
        controller.phase_started(plan, kinds)
        predicted = controller.predict(len(controller.kinds), alive={HIGH: 8, LOW: 0})
        assert (predicted[HIGH] > 0) is alike and (predicted[LOW] > 0) is not alike
        controller.phase_done(1.0, {})
