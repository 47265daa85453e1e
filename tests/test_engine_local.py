"""The engine on the local platform, end to end: hot starts, records, output files, failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from daydream_local.provider import LocalProvider

from daydream_core.engine import Engine, PlanFailed, RunFailed
from daydream_core.model import HIGH, LOW, RunRecord, StartKind
from daydream_core.plugins import policies
from daydream_core.profile import ProfileStore


@pytest.fixture
def engine(tmp_path: Path, demo_workflows: Path) -> Iterator[Engine]:
    provider = LocalProvider(tmp_path / "state", concurrency=8)
    engine = Engine(provider, ProfileStore(tmp_path / "profile.sqlite"), policies()["daydream"])
    yield engine
    provider.close()
    engine.close()


def _run(engine: Engine, out: Path, preset: str, index: int = 1, seed: int = 0) -> RunRecord:
    import demo_workflow

    workflow = demo_workflow.workflow
    params = workflow.preset(preset).params
    return engine.run(
        workflow, preset=preset, params=params, seed=seed, run_index=index, out_dir=out
    )


def _runs(engine: Engine, out: Path, preset: str = "small", count: int = 3) -> list[RunRecord]:
    return [_run(engine, out, preset, index, seed=1) for index in range(1, count + 1)]


def _floats(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().splitlines()]


def test_runs_use_hot_starts_and_they_beat_cold_starts(
    tmp_path: Path, demo_workflows: Path
) -> None:
    # Each phase is wider than the one before (two more, and more as systems converge), so
    # the first run's phases need instances the one before did not: the shortfall, predicted
    # from the widths so far, is hot started while the phase before it runs. (Later runs
    # find the first run's instances still alive, up to the limit, and need none.) Daydream's
    # hot starts on one tier (`all-high`), so that what placement learns on this machine (the
    # first run's probes may move the kind to the other tier) does not decide the test.
    provider = LocalProvider(tmp_path / "state", concurrency=8)
    engine = Engine(provider, ProfileStore(tmp_path / "profile.sqlite"), policies()["all-high"])
    try:
        runs = _runs(engine, tmp_path / "out", preset="growing")
    finally:
        provider.close()
        engine.close()
    later = [r for run in runs for p in run.phases[1:] for r in p.invocations]
    hot = [r for r in later if r.start is StartKind.HOT]
    assert hot, "hot starts are used from the second phase on"
    # Every hot start used was issued (and billed) by daydream ahead of its phase.
    issued = [h for run in runs for p in run.phases for h in p.hot_starts]
    assert {r.instance for r in hot} <= {h.instance for h in issued}
    assert all(h.init_ms > 0 for h in issued), "a hot start runs the runtime's init"
    records = [r for run in runs for p in run.phases for r in p.invocations]
    cold = [r for r in records if r.start is StartKind.COLD]
    assert cold, "the first phase of the first run starts cold"
    # What a hot start saves: its component does not wait for an init (paid ahead, billed to
    # the hot start), while a cold start's does.
    assert all(r.init_ms == 0 for r in hot)
    assert all(r.init_ms > 0 for r in cold)
    assert all(r.cost > 0 and r.billed_ms >= r.execution_ms for r in records)


def test_output_files_are_well_formed(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runs = _runs(engine, out, count=2)
    for run in runs:
        directory = out / f"run-{run.index}"
        phase_times = _floats(directory / "phase_time.txt")
        service_times = _floats(directory / "function_service_time.txt")
        costs = _floats(directory / "execution_cost.txt")
        assert len(phase_times) == len(costs) == len(run.phases) >= 2
        assert len(service_times) == sum(p.width for p in run.phases)
        assert all(t > 0 for t in phase_times + service_times + costs)
        # A phase lasts at least as long as its slowest invocation.
        offset = 0
        for phase, phase_time in zip(run.phases, phase_times, strict=True):
            slowest = max(service_times[offset : offset + phase.width])
            assert phase_time >= slowest
            offset += phase.width
        data = json.loads((directory / "run.json").read_text())
        assert data["cost"] == pytest.approx(sum(costs))
        assert data["execution_time_s"] == pytest.approx(sum(phase_times))
        lives = {life["instance"]: life for life in data["instances"]}
        used = {r["instance"] for p in data["phases"] for r in p["invocations"]}
        assert used <= set(lives)
        assert all(life["origin"] in {"hot", "cold"} for life in lives.values())
        for phase in data["phases"]:
            assert set(phase["predicted"]) == {"high", "low"}
            assert set(phase["placement"].values()) <= {"high", "low"}
            for record in phase["invocations"]:
                assert record["start"] in {"hot", "warm", "cold"}
                assert record["instance"]
                assert record["error"] is None


def test_widths_and_timings_are_learned_across_runs(engine: Engine, tmp_path: Path) -> None:
    runs = _runs(engine, tmp_path / "out", count=2)
    assert engine.profile.timings("demo", "local")["solve"]
    history = engine.profile.width_history("demo:small")
    assert [sum(p.values()) for p in history[0]] == [p.width for p in runs[0].phases]
    assert engine.profile.run_count("demo") == 2


def test_a_failing_component_stops_the_run_and_keeps_results(
    engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(RunFailed) as failure:
        _run(engine, out, "failing")
    assert failure.value.record.kind == "explode"
    assert "phase 3" in str(failure.value)
    assert "boom in phase 2" in str(failure.value)
    assert "demo_workflow.py" in failure.value.remote_traceback
    # The phases before the failure, and the failed phase's records, are on disk.
    assert len(_floats(out / "run-1" / "phase_time.txt")) == 3
    data = json.loads((out / "run-1" / "run.json").read_text())
    assert "explode" in data["error"]
    assert data["phases"][2]["invocations"][0]["error"].startswith("ComponentFailed")


def test_a_bug_in_the_phase_generator_stops_the_run_and_keeps_results(
    engine: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(PlanFailed) as failure:
        _run(engine, out, "buggy")
    assert "workflow 'demo' failed planning phase 2: KeyError" in str(failure.value)
    assert "demo_workflow.py" in failure.value.remote_traceback
    assert failure.value.run is not None and len(failure.value.run.phases) == 1
    assert len(_floats(out / "run-1" / "phase_time.txt")) == 1
    assert "failed planning" in json.loads((out / "run-1" / "run.json").read_text())["error"]


def test_a_1000_wide_phase_queues_at_the_limit_instead_of_thrashing(
    tmp_path: Path, demo_workflows: Path
) -> None:
    import wide_workflow

    class Alternating:  # both tiers in the one wide phase, queueing at one limit
        name = "alternating"

        def place(self, kinds, timings, tiers, prices, concurrency=None, starts=None):  # type: ignore[no-untyped-def]
            return [(HIGH, LOW)[i % 2] for i in range(len(kinds))]

    limit = 23
    provider = LocalProvider(tmp_path / "state", concurrency=limit)
    policy = replace(policies()["daydream"], name="alternating", placement=Alternating)
    engine = Engine(provider, ProfileStore(tmp_path / "profile.sqlite"), policy)
    try:
        workflow = wide_workflow.workflow
        run = engine.run(
            workflow,
            preset="1000",
            params=workflow.preset("1000").params,
            seed=0,
            run_index=1,
            out_dir=tmp_path / "out",
        )
    finally:
        provider.close()
        engine.close()
    data = json.loads((tmp_path / "out" / "run-1" / "run.json").read_text())
    wide = data["phases"][0]
    assert wide["width"] == 1000 and len({r["tier"] for r in wide["invocations"]}) == 2
    cold = [r for r in wide["invocations"] if r["start"] == "cold"]
    lives = data["instances"]
    assert len(lives) == len({r["instance"] for p in data["phases"] for r in p["invocations"]})
    # Both tiers queue for their own instances. The one ending allowed is an idle instance of a
    # tier that drained first, evicted for the other tier's queue (where that pays, which
    # depends on this machine's timings): never one whose own tier had requests waiting.
    evicted = [life for life in lives if life["ended_by"] is not None]
    unpaid = [e for e in evicted if e["ended_by"] != "evicted" or e["waiting_at_end"] != 0]
    assert not unpaid, unpaid
    assert len(cold) <= limit + len(evicted), "a cold start beyond the limit evicts one"
    assert len(run.phases) == 2


def test_a_calls_label_is_kept_in_its_invocation_record(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import demo_workflow

    from daydream_core.model import Call

    def plan(run: object):  # type: ignore[no-untyped-def]
        yield [Call("solve", {"size": 8, "seed": i}, label=f"task-{i}") for i in range(2)]

    workflow = demo_workflow.workflow
    monkeypatch.setattr(workflow, "_plan", plan)
    run = engine.run(
        workflow,
        preset="small",
        params=workflow.preset("small").params,
        seed=0,
        run_index=1,
        out_dir=tmp_path / "out",
    )
    recorded = json.loads((tmp_path / "out" / "run-1" / "run.json").read_text())["phases"][0]
    assert [r["label"] for r in recorded["invocations"]] == ["task-0", "task-1"]
    assert recorded["number"] == 1 and recorded["index"] == 0
    assert run.phases[0].invocations[0].label == "task-0"
