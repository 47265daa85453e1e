"""Probes: an exploration sample that would lengthen its phase runs beside it instead.

The rule (`beside_the_phase`) is checked on placements; the live engine's probes from the
records of a real local run: the phase does not carry them, they are billed and learned,
and their outputs are gone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from daydream_trace.synthetic import seismology, write

from daydream_core.controller import Controller
from daydream_core.model import HIGH, LOW, Tier
from daydream_core.plugins import policies
from daydream_core.policies.exploration import ProbeCosts, beside_the_phase, sample_size
from daydream_core.policies.placement import SlackPlacement
from daydream_core.policies.predictor import start_costs
from daydream_core.pricing import AWS_LAMBDA_X86
from daydream_core.profile import ProfileStore

TIERS = {HIGH: Tier(HIGH, 10240, 2.0), LOW: Tier(LOW, 5120, 1.0)}  # low: the prior's 1.5x


def _placed(kinds: list[str], timings: dict[str, dict[str, float]]) -> list[str]:
    return SlackPlacement(0.02).place(kinds, timings, TIERS, AWS_LAMBDA_X86)


def test_a_one_wave_phase_of_a_new_kind_probes_the_slower_tier_beside_it() -> None:
    kinds = ["new"] * 100
    placement, probes = beside_the_phase(kinds, _placed(kinds, {}), {}, TIERS, 1000)
    assert placement == [HIGH] * 100
    # One probe: with its original it measures the tier ratio; more would pay for it again.
    assert probes == [(0, LOW)]


def test_a_phase_in_waves_does_not_absorb_its_critical_sample() -> None:
    # In 5 waves a sample 1.5x as slow still delays every later component on its slot, and
    # the phase leaves no room for a probe: the kind is not explored in this phase.
    kinds = ["new"] * 100
    placed = _placed(kinds, {})
    assert placed.count(LOW) == sample_size(100)
    placement, probes = beside_the_phase(kinds, placed, {}, TIERS, 23)
    assert placement == [HIGH] * 100
    assert probes == []


def test_probes_take_only_the_room_the_phase_leaves() -> None:
    kinds = ["new"] * 100 + ["other"] * 100
    placement, probes = beside_the_phase(kinds, _placed(kinds, {}), {}, TIERS, 1000)
    assert placement == [HIGH] * 200 and probes == [(0, LOW), (100, LOW)]
    placement, probes = beside_the_phase(kinds, _placed(kinds, {}), {}, TIERS, 201)
    assert placement == [HIGH] * 200 and probes == [(0, LOW)]
    placement, probes = beside_the_phase(kinds, _placed(kinds, {}), {}, TIERS, 200)
    assert placement == [HIGH] * 200 and probes == []  # not explored in this phase


def test_a_sample_shorter_than_the_phase_runs_in_it() -> None:
    # "short" is known on high only; the phase's critical path is "long" (10 s), so short's
    # sample on low (1.5 x 1 s) ends well within the phase.
    timings = {"long": {HIGH: 10.0, LOW: 15.0}, "short": {HIGH: 1.0}}
    kinds = ["long"] + ["short"] * 4
    placed = _placed(kinds, timings)
    paired = {("long", HIGH), ("long", LOW)}
    placement, probes = beside_the_phase(kinds, placed, timings, TIERS, 1000, paired=paired)
    assert placement == placed and probes == []
    assert [placed[i] for i in range(1, 5)].count(LOW) >= 1


def test_a_lone_component_on_the_critical_path_probes_instead_of_sampling_in_the_phase() -> None:
    # "terrain" is the phase's one long component, known on high only. Its sample on low is
    # the whole kind, so without a probe the phase would wait for low's 1.5x.
    timings = {"terrain": {HIGH: 3.0}, "imagery": {HIGH: 0.2}}
    kinds = ["terrain", "imagery"]
    placed = _placed(kinds, timings)
    assert placed[0] == LOW  # explore puts the lone component on its unknown tier
    placement, probes = beside_the_phase(kinds, placed, timings, TIERS, 1000)
    assert placement[0] == HIGH and (0, LOW) in probes
    assert placement[1] == LOW and (1, LOW) not in probes  # short: its sample fits the phase


def test_a_new_kind_is_not_explored_where_what_was_measured_agrees_with_the_prior() -> None:
    # Two kinds measured 1.5x as slow on low, as the vCPU prior says: a new kind would go
    # high under every one of them, so its first phase is not explored (it pays only if the
    # kind runs again; then it has data on high and is explored like any other).
    agree = {"a": {HIGH: 2.0, LOW: 3.1}, "b": {HIGH: 1.0, LOW: 1.4}}
    kinds = ["new"] * 100
    placed = _placed(kinds, agree)
    assert placed == [HIGH] * 100
    assert beside_the_phase(kinds, placed, agree, TIERS, 1000) == (placed, [])
    seen = {**agree, "new": {HIGH: 1.0}}
    assert beside_the_phase(kinds, _placed(kinds, seen), seen, TIERS, 1000)[1] == [(0, LOW)]


def test_a_new_kind_is_explored_where_what_was_measured_disagrees_with_the_prior() -> None:
    # A kind as fast on low (serial code) against the prior's 1.5x: a new kind's ratio is
    # open, so it is explored, here on high as the median of what was measured says low.
    disagree = {"serial": {HIGH: 2.0, LOW: 2.0}}
    kinds = ["new"] * 100
    placed = _placed(kinds, disagree)
    assert placed.count(HIGH) == sample_size(100) and placed[-1] == LOW
    nothing = _placed(kinds, {})  # nothing measured: the prior alone is not settled
    assert nothing.count(LOW) == sample_size(100)


def test_a_tier_known_only_by_its_mean_is_probed_once_for_a_paired_ratio() -> None:
    # "k" ran on both tiers, different components at different times: its means say low is
    # slower, so the phase runs high, and one probe pairs a component with itself on low.
    timings = {"k": {HIGH: 2.0, LOW: 2.2}, "oom": {HIGH: 1.0, LOW: math.inf}}
    kinds = ["k"] * 10 + ["oom"] * 2
    placed = _placed(kinds, timings)
    assert placed == [HIGH] * 12
    assert beside_the_phase(kinds, placed, timings, TIERS, 1000)[1] == [(0, LOW)]
    # Not where the ratio is paired, nor while its probe runs, nor without room for it; never
    # on a tier the kind runs out of memory on.
    for done in ({"paired": {("k", LOW)}}, {"probing": {("k", LOW)}}):
        assert beside_the_phase(kinds, placed, timings, TIERS, 1000, **done)[1] == []
    assert beside_the_phase(kinds, placed, timings, TIERS, 12)[1] == []


def test_a_probe_that_costs_more_than_its_kind_s_work_in_the_phase_is_not_sent() -> None:
    # One 0.1 s component known on high (SRA search's last phase): a probe on low would bill
    # a 1.5 s cold start for a choice worth 0.1 s of high. With a low instance to spare it
    # bills only its run, and ten such components are worth their probe's start.
    timings = {"tiny": {HIGH: 0.1}, "big": {HIGH: 2.0, LOW: 3.0}}
    paired = {("big", LOW), ("big", HIGH)}
    start = AWS_LAMBDA_X86.gb_second_cost(5120, 1.5)

    def probes(n: int, spare: bool) -> list[tuple[int, str]]:
        kinds = ["tiny"] * n
        costs = ProbeCosts(AWS_LAMBDA_X86, {HIGH: start, LOW: 0.0 if spare else start})
        placed = _placed(kinds, timings)  # the lone one explores low, as a sample
        return beside_the_phase(kinds, placed, timings, TIERS, 1000, paired=paired, costs=costs)[1]

    assert probes(1, spare=False) == []
    assert probes(1, spare=True) == [(0, LOW)]
    assert probes(10, spare=False) == [(0, LOW)]


def test_a_live_run_probes_beside_its_phase_and_learns_from_them(tmp_path: Path) -> None:
    from daydream_local.provider import LocalProvider
    from daydream_trace.workflow import workflow

    from daydream_core.engine import Engine

    instance = write(tmp_path / "tiny.json", seismology(6, seconds=(0.0005, 0.001)))
    provider = LocalProvider(tmp_path / "state", concurrency=16)
    profile = ProfileStore(tmp_path / "p.sqlite")
    engine = Engine(provider, profile, policies()["daydream"])
    params = workflow.validate({"trace": str(instance), "scale": 1.0, "io_mb": 0.0})
    try:
        engine.run(
            workflow, preset="small", params=params, seed=0, run_index=1, out_dir=tmp_path / "o"
        )
        leftovers = provider.store().list("")
    finally:
        provider.close()
        engine.close()
    record = json.loads((tmp_path / "o" / "run-1" / "run.json").read_text())
    first = record["phases"][0]
    assert first["widths"] == {HIGH: 6, LOW: 0}  # the phase itself all on the prior's tier
    # The first phase's: one per kind and tier. (The reducer after it, a lone kind, may be
    # probed too, on a tier the ratios measured by then expect no slower: noise, with
    # components this short.)
    probes = [r for phase in record["phases"] for r in phase["probes"] if r["phase"] == 0]
    assert len(probes) == 1
    kind = first["invocations"][0]["kind"]
    assert all(r["tier"] == LOW and r["phase"] == 0 and r["kind"] == kind for r in probes)
    assert {r["component"] for r in probes} == {f"p1-c{i + 1}-probe" for i in range(len(probes))}
    assert all(r["error"] is None and r["cost"] > 0 for r in probes)
    # Billed with the run, learned into the profile, outputs deleted.
    assert record["cost"] == sum(p["cost"] for p in record["phases"])
    assert sum(p["cost"] for p in record["phases"]) >= sum(r["cost"] for r in probes)
    # A probe teaches its kind's tier ratio against its original, not a sample of the kind.
    assert profile.ratios(workflow.name, provider.name)[(kind, LOW, HIGH)][0] == len(probes)
    assert (kind, LOW) not in profile.moments(workflow.name, provider.name)
    assert LOW in profile.timings(workflow.name, provider.name)[kind]
    assert not [k for k in leftovers if "-probe/" in k]
    accounted = (
        record["setup_time_s"]
        + sum(p["phase_time_s"] for p in record["phases"])
        + sum(p["controller_time_s"] for p in record["phases"])
    )
    assert abs(accounted - record["wall_time_s"]) <= 1e-9 * record["wall_time_s"]


def test_a_lone_new_kind_is_probed_in_the_first_phase_and_later_where_it_ends_sooner() -> None:
    # "mock" is one component of a kind never run: explore keeps it for its bulk (high, by
    # the prior), so only a probe compares its tiers.
    kinds = ["mock"] + ["sample"] * 10
    placed = _placed(kinds, {})
    assert placed[0] == HIGH
    explores = {LOW}
    opening = beside_the_phase(kinds, placed, {}, TIERS, 1000, explores=explores, opening=True)
    assert (0, LOW) in opening[1] and opening[0][0] == HIGH
    # After the first phase the run may end with it: no probe on a tier the ratios expect
    # slower, which would make the run wait; one on a tier expected faster ends first.
    later = beside_the_phase(kinds, placed, {}, TIERS, 1000, explores=explores)
    assert (0, LOW) not in later[1]
    on_low = [LOW, *placed[1:]]
    faster = beside_the_phase(kinds, on_low, {}, TIERS, 1000, explores={HIGH})
    assert (0, HIGH) in faster[1]
    # Nothing to explore (a placement that learns nothing), nothing probed.
    assert (0, LOW) not in beside_the_phase(kinds, placed, {}, TIERS, 1000, opening=True)[1]


def _controller(policy: str) -> Controller:
    """A first run's controller: no history, nothing learned."""
    return Controller(
        policy=policies()[policy],
        tiers=TIERS,
        prices=AWS_LAMBDA_X86,
        history=[],
        timings={},
        costs={t: start_costs(spec, AWS_LAMBDA_X86, 1000.0) for t, spec in TIERS.items()},
        max_concurrency=1000,
    )


def test_a_placement_that_learns_nothing_sends_no_lone_probe() -> None:
    kinds = ["mock"] + ["sample"] * 10
    assert (0, LOW) in _controller("daydream").place(kinds).probes
    assert _controller("all-high").place(kinds).probes == []


def test_a_kind_being_probed_is_not_probed_again_until_its_probe_reports() -> None:
    controller = _controller("daydream")
    kinds = ["new"] * 100
    first = controller.place(kinds)
    assert len(first.probes) == 1
    controller.phase_started(first, kinds)
    controller.phase_done(1.0, {"new": {HIGH: 1.0}})  # the probes on low still running
    second = controller.place(kinds)
    assert second.probes == [] and second.placement == [HIGH] * 100
    controller.phase_started(second, kinds)
    controller.phase_done(1.0, {"new": {HIGH: 1.0, LOW: 1.4}}, {("new", HIGH), ("new", LOW)})
    assert controller.probing == {}  # it reported
    third = controller.place(kinds)
    assert third.probes == [] and third.placement == [HIGH] * 100


class _Deletes:
    def __init__(self) -> None:
        self.prefixes: list[str] = []

    def delete(self, prefix: str) -> None:
        self.prefixes.append(prefix)


def test_a_run_that_stops_early_records_its_ended_probes_and_waits_for_none() -> None:
    from concurrent.futures import Future
    from types import SimpleNamespace

    from daydream_core.model import Call, Component
    from daydream_core.probes import Probes

    store = _Deletes()
    probes = Probes("run-1", lambda: store)  # type: ignore[arg-type, return-value]
    components = [Component(f"p1-c{i + 1}", 0, Call("k")) for i in range(3)]
    futures: list[Future[SimpleNamespace]] = [Future() for _ in components]
    probes.dispatch(components, [(0, LOW), (1, LOW), (2, LOW)], lambda t, p: futures[len(probes)])
    futures[0].set_result(SimpleNamespace(record="the first probe's record"))
    futures[1].set_exception(RuntimeError("a probe's own failure"))

    assert probes.abandon() == ["the first probe's record"]  # the raised one has none
    assert store.prefixes == ["run-1/p1-c1-probe/", "run-1/p1-c2-probe/"]
    assert len(probes) == 0  # nothing left to wait for
    futures[2].set_result(SimpleNamespace(record="too late"))  # ends after the run
    assert store.prefixes[-1] == "run-1/p1-c3-probe/"  # its outputs go all the same


def test_a_probe_that_outlasts_its_run_is_not_the_run_s_execution_time() -> None:
    from daydream_core.simulator import Task, TraceRun, Workload, evaluate
    from daydream_core.simulator.calibration import named_calibration

    # bwa-like (WfInstances): a lone 80 s component and a short one open the run, which then
    # ends in a second. Each lone new kind is probed on low, 1.5x as slow: the run's results
    # are in when its last phase ends, and the 40 s more its probe takes (to record its bill
    # and ratio) are the controller's, as in the live engine's run.json, not the run's.
    run = TraceRun("bwa", ((Task("index", 80.0), Task("fetch", 0.1)), (Task("align", 1.0),)))
    workload = Workload("bwa", "wfformat", (run, run), Path("bwa"))
    result = evaluate(workload, named_calibration("aws"), {"daydream": policies()["daydream"]})
    first, second = result.results["daydream"].runs
    assert ("index", LOW) in {(p.kind, p.tier) for p in first.probes}
    assert first.probe_wait_s > 30 and first.execution_time_s == sum(first.phase_times) < 85
    # Its ratio is learned before the next run, which does not probe it again.
    assert ("index", LOW) not in {(p.kind, p.tier) for p in second.probes}
    assert all(i.tier == HIGH for i in second.invocations if i.kind == "index")
