"""The simulator: deterministic, the same decisions as the engine, the artifact reproduced."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from daydream_core.cli import main
from daydream_core.plugins import policies
from daydream_core.simulator import evaluate, load_workload, named_calibration
from daydream_core.simulator.artifact_fit import fit
from daydream_core.simulator.report import coincident, reproduction
from daydream_core.simulator.workload import Task, TraceRun, Workload

TRACE = Path(__file__).resolve().parents[1] / "apps" / "daydream_trace" / "data" / "ccl"
RECORDS = Path(__file__).resolve().parent / "data" / "records"


def _workload(widths: list[list[float]], runs: int = 3) -> Workload:
    run = TraceRun(
        "toy",
        tuple(tuple(Task(f"k{i % 2}", s) for i, s in enumerate(phase)) for phase in widths),
    )
    return Workload("toy", "wfformat", (run,) * runs, Path("toy"))


def test_same_seed_same_answer_and_every_policy_meets_the_same_components() -> None:
    workload = _workload([[2.0, 3.0], [1.0] * 6, [4.0, 4.0, 4.0]])
    specs = {n: policies()[n] for n in ("daydream", "cold", "oracle")}
    first = evaluate(workload, named_calibration("aws"), specs, seed=3)
    again = evaluate(workload, named_calibration("aws"), specs, seed=3)
    assert {n: r.execution_time_s for n, r in first.results.items()} == {
        n: r.execution_time_s for n, r in again.results.items()
    }
    other = evaluate(workload, named_calibration("aws"), specs, seed=4)
    assert other.results["cold"].execution_time_s != first.results["cold"].execution_time_s


def test_a_components_cold_start_draws_the_same_init_whatever_else_started() -> None:
    # daydream's probe starts an instance `all-high` does not: a component that cold starts
    # under both still waits the same init, so their comparison is of their decisions.
    def run(last: int) -> TraceRun:
        widths = [[2.0, 3.0], [1.0] * 6, [4.0] * last]
        return TraceRun("toy", tuple(tuple(Task("k", s) for s in p) for p in widths))

    # The last run's last phase outgrows what either policy has alive.
    workload = Workload("toy", "wfformat", (run(9), run(9), run(30)), Path("toy"))
    specs = {n: policies()[n] for n in ("daydream", "all-high")}
    result = evaluate(workload, named_calibration("aws"), specs, seed=1)
    assert result.results["daydream"].runs[0].probes
    inits = {
        name: {
            (index, r.component): r.init_ms
            for index, outcome in enumerate(policy.runs)
            for r in outcome.invocations
            if r.start.value == "cold"
        }
        for name, policy in result.results.items()
    }
    both = inits["daydream"].keys() & inits["all-high"].keys()
    assert {index for index, _ in both} == {0, 2}
    assert all(inits["daydream"][key] == inits["all-high"][key] for key in both)


def test_hot_starts_shorten_the_phases_that_would_start_cold() -> None:
    # Each phase wider than the last: without hot starts every new instance starts cold.
    workload = _workload([[5.0] * w for w in (1, 2, 4, 8)], runs=4)
    specs = {n: policies()[n] for n in ("oracle", "cold")}
    result = evaluate(workload, named_calibration("aws"), specs)
    oracle, cold = result.results["oracle"], result.results["cold"]
    assert oracle.cold_fraction < cold.cold_fraction
    assert oracle.execution_time_s < cold.execution_time_s
    assert oracle.width_mae == 0.0


def test_the_artifact_reproduction_holds_on_runs_not_fitted() -> None:
    workload = load_workload(trace=TRACE)
    constants = fit(workload, runs=10)
    assert constants.delete_s > 0
    result = evaluate(workload, named_calibration("trace"), {"artifact": policies()["artifact"]})
    repro = reproduction(result)
    assert repro is not None
    held = repro["held_out"]
    assert abs(held["time_error"]) < 0.10 and abs(held["cost_error"]) < 0.10
    assert held["per_run_time_error"]["median_abs"] < 0.10
    assert held["per_run_cost_error"]["median_abs"] < 0.10


def test_daydream_against_the_baselines_on_the_shared_trace_with_aws() -> None:
    workload = load_workload(trace=TRACE)
    result = evaluate(workload, named_calibration("aws"), policies())
    daydream = result.results["daydream"]
    time, cost = result.ratio("daydream", "oracle")
    assert time <= 1.05 and cost <= 1.10
    t, c = result.ratio("daydream", "artifact")
    assert t < 1.0 and c < 1.0
    # keep-alive and hybrid-histogram place with daydream's placement at 5% slack: on this
    # trace their placement and daydream's trade under 1% of time for under 1% of cost
    # (docs/simulator.md; "beats them on both" is missed), so daydream is held to no
    # baseline being both faster and cheaper.
    for name, other in result.results.items():
        if name != "daydream" and not policies()[name].clairvoyant:
            assert not (
                other.execution_time_s < daydream.execution_time_s and other.cost < daydream.cost
            ), name


@pytest.mark.parametrize("app", ["ccl", "exafel", "cosmoscout"])
def test_no_policy_beats_the_oracle_on_both_time_and_cost(app: str) -> None:
    # The limit: its hot starts are ready when its phase starts (it knows when that is), so
    # a placement that wants an instance on the other tier never waits for one to start.
    from daydream_core.simulator.calibration import from_records

    records = [json.loads(p.read_text()) for p in sorted((RECORDS / app).glob("run-*/run.json"))]
    calibration = from_records(named_calibration("aws"), records)
    result = evaluate(load_workload(records=RECORDS / app), calibration, policies())
    oracle = result.results["oracle"]
    for name, other in result.results.items():
        assert not (
            other.execution_time_s < oracle.execution_time_s and other.cost < oracle.cost
        ), name


def test_a_probe_that_reports_mid_phase_moves_the_next_phases_hot_starts() -> None:
    # `ccl`'s first recorded run: the first phase runs high (the vCPU prior), its probe shows
    # low faster while the phase still runs, and the next phase (a kind never seen, sent
    # low) finds the hot starts made then ready on low, instead of 11 cold starts.
    from daydream_core.simulator.calibration import from_records
    from daydream_core.simulator.evaluate import simulate_policy

    app = RECORDS / "ccl"
    records = [json.loads(p.read_text()) for p in sorted(app.glob("run-*/run.json"))]
    calibration = from_records(named_calibration("aws"), records)
    workload = load_workload(records=app)
    first = simulate_policy(policies()["daydream"], workload, calibration, 0).runs[0]
    assert first.widths[0].get("high") == len(workload.runs[0].phases[0])
    second = [r for r in first.invocations if r.phase == 1]
    assert {r.tier for r in second} == {"low"}
    assert not [r for r in second if r.start.value == "cold"]


def _recorded_run(provider: str, started_at: float, cold: dict[str, float]) -> dict[str, object]:
    invocation = {"kind": "k", "tier": "high", "start": "cold", "error": None, **cold}
    return {
        "app": "toy",
        "policy": "cold",
        "provider": provider,
        "started_at": started_at,
        "wall_time_s": 10.0,
        "phases": [{"invocations": [invocation], "hot_starts": []}],
    }


def test_records_teach_their_own_platform_its_start_waits_and_every_calibration_run_gaps() -> None:
    # A cold start billed 1 s of init whose service, but for 2 s of execution and 0.5 s of
    # queue, took 4 s: 3 s waited for a CPU beyond the billed init (the local platform's way).
    from daydream_core.simulator.calibration import from_records

    cold = {"init_ms": 1000.0, "execution_ms": 2000.0, "queued_ms": 500.0, "service_ms": 6500.0}
    runs = [_recorded_run("local", t, cold) for t in (0.0, 40.0, 110.0)]  # gaps 30 s, 60 s
    local = from_records(named_calibration("local"), runs)
    assert local.init_s["high"] == 1.0 and local.start_wait_s == {"high": 3.0}
    assert local.run_gap_s == 45.0
    aws = from_records(named_calibration("aws"), runs)  # another platform: no local waits
    assert aws.start_wait_s == {} and aws.run_gap_s == 45.0


def test_a_start_is_ready_after_its_init_and_wait_and_billed_its_init_only() -> None:
    from dataclasses import replace

    import numpy as np

    from daydream_core.model import StartKind
    from daydream_core.simulator.platform import Platform

    cal = replace(named_calibration("aws"), init_spread=0.0, start_wait_s={"high": 3.0})
    platform = Platform(cal, np.random.default_rng(0))
    instance, kind, begins = platform.acquire("high", 10.0)
    assert kind is StartKind.COLD and instance.init_s == cal.init_s["high"]
    assert begins == 10.0 + cal.init_s["high"] + 3.0


def test_the_command_prints_json_and_a_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "plot.png"
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--trace", str(TRACE), "--runs", "5", "--json", "--plot", str(plot)])
    assert exit_.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["calibration"]["name"] == "trace"  # a DayDream trace's own service times
    assert {p["policy"] for p in data["policies"]} == set(policies())
    assert "artifact_reproduction" in data and "daydream_vs_artifact" in data
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_plot_draws_policies_that_coincide_as_one_point() -> None:
    # On Lambda, cold, keep-alive and hybrid-histogram decide alike: one point, one legend
    # entry, instead of three labels drawn over each other.
    specs = {n: policies()[n] for n in ("daydream", "cold", "keep-alive", "hybrid-histogram")}
    result = evaluate(load_workload(trace=TRACE), named_calibration("aws"), specs)
    names = sorted(coincident(result).values())
    assert names == [["cold", "keep-alive", "hybrid-histogram"], ["daydream"]]


def test_the_table_keeps_every_name_and_number_whole_in_80_columns() -> None:
    from rich.console import Console

    from daydream_core.simulator.evaluate import add_snapstart
    from daydream_core.simulator.report import table, width

    # Wide phases give the widest numbers a table shows (thousands of GB-s, widths' MAE).
    workload = _workload([[900.0] * 1000, [30.0] * 9, [600.0] * 223], runs=1)
    specs = policies()
    result = evaluate(workload, named_calibration("aws"), specs)
    add_snapstart(result, specs)
    console = Console(width=80, record=True)
    report = table(result)
    assert width(report, console) == 80
    console.print(report)
    text = console.export_text()
    assert "…" not in text  # rich cuts a cell it cannot fit with an ellipsis
    assert max(map(len, text.splitlines())) <= 80
    rows = {line.split()[0] for line in text.splitlines() if line.strip()}
    assert set(result.results) - {"snapstart alone"} <= rows
    assert f"{result.results['daydream'].cost:.4f}" in text


def test_numbers_too_wide_for_80_columns_widen_the_table_rather_than_lose_digits() -> None:
    from rich.console import Console, Group

    from daydream_core.simulator.report import _table, show, width

    # A long trace's totals: genome-10000's width MAE (3,181) once cut the table to `3181.…`
    big = ["daydream+snapstart", "1,234,567.8", "12,345.6789", "100.0%", "9,876,543.2", "3,181"]
    big += ["12,345.678", "1.000"]
    report = Group(_table("wide", ["policy", *"abcdefg"], [big, big]))
    console = Console(width=80, record=True)
    assert width(report, console) > 80
    show(report, console)
    text = console.export_text()
    assert "…" not in text and all(cell in text for cell in big)
    assert console.width == 80  # as it was


def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--trace", str(TRACE), "--calibration", "mars"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_:
        main(["simulate"])
    assert exit_.value.code == 2


MEASURED = "phase_time-baseline.txt", "execution_cost-baseline.txt"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: (run / MEASURED[0]).write_text("1.0\nfast\n"), "line 2 is not a number of"),
        (lambda run: (run / MEASURED[1]).write_text("inf\n"), "line 1: inf is not a phase cost"),
        (lambda run: (run / MEASURED[0]).write_bytes(b"\xff\xfe"), "cannot be read as text"),
        (lambda run: (run / MEASURED[1]).unlink(), "has no execution_cost-baseline.txt beside"),
        (lambda run: (run / MEASURED[0]).write_text("1.0\n"), "has 1 numbers for the 10 phases"),
    ],
)
def test_what_the_artifact_measured_is_checked_when_present(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any, message: str
) -> None:
    """A trace's measured phase times and costs are what the reproduction compares with: a
    damaged file is refused, not skipped (it used to drop the reproduction without a word)."""
    run = tmp_path / "run-1"
    shutil.copytree(TRACE / "run-1", run)
    damage(run)
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--trace", str(tmp_path), "--policies", "artifact"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and str(run) in err and err.count("\n") == 1


def test_a_trace_without_measurements_is_simulated_without_a_reproduction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run-1"
    shutil.copytree(TRACE / "run-1", run)
    for name in MEASURED:
        (run / name).unlink()
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--trace", str(tmp_path), "--policies", "artifact,oracle"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "artifact reproduction: none" in out and MEASURED[0] in out


def test_an_interrupted_simulation_does_not_claim_results_on_disk(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import daydream_core.simulator

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(daydream_core.simulator, "evaluate", interrupted)
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--trace", str(TRACE)])
    assert exit_.value.code == 130
    assert capsys.readouterr().err.strip() == "daydream: error: interrupted"  # it writes nothing


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("execution_ms", 1e308, "execution_ms 1e+308 is not a number from 0 to"),  # overflowed
        ("execution_ms", -5, "execution_ms -5 is not a number from 0 to"),
        ("execution_ms", "NaN", "execution_ms 'NaN' is not a number"),  # a traceback before
        ("init_ms", None, "init_ms None is not a number"),
        ("start", "lukewarm", "start 'lukewarm' is not one of"),
    ],
)
def test_records_with_a_bad_number_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: object, message: str
) -> None:
    records = tmp_path / "records"
    shutil.copytree(RECORDS / "ccl", records)
    path = records / "run-2" / "run.json"
    data = json.loads(path.read_text())
    data["phases"][1]["invocations"][0][field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--records", str(records), "--calibration", "aws"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(path) in err


@pytest.mark.parametrize(
    "content", [b"\xff\xfe{", b"[" * 200_000, b'{"app": "ccl"'], ids=["bytes", "deep", "cut"]
)
def test_a_run_json_that_is_not_one_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    """Not JSON, not UTF-8, or nested past the parser's depth (a RecursionError, a traceback
    before): one line naming the file."""
    records = tmp_path / "records"
    shutil.copytree(RECORDS / "ccl", records)
    path = records / "run-3" / "run.json"
    path.write_bytes(content)
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--records", str(records)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a daydream run.json" in err and str(path) in err


@pytest.mark.parametrize("name", ["plot.txt", "missing/plot.png"])
def test_a_plot_it_cannot_write_is_refused_before_the_simulation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # matplotlib picks the format by suffix: a .txt used to end a finished simulation in a
    # traceback, its table never printed
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--trace", str(TRACE), "--plot", str(tmp_path / name)])
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--plot" in err


def test_snapstart_rows_beside_daydream_under_the_aws_calibration() -> None:
    from daydream_core.simulator.calibration import aws, aws_snapstart
    from daydream_core.simulator.evaluate import add_snapstart

    # Growing phases: without hot starts every new instance starts cold (or restores).
    workload = _workload([[5.0] * w for w in (1, 2, 4, 8)], runs=2)
    specs = {n: policies()[n] for n in ("daydream", "cold")}
    result = evaluate(workload, aws(), specs)
    add_snapstart(result, specs)
    cold, alone = result.results["cold"], result.results["snapstart alone"]
    assert "daydream+snapstart" in result.results
    snap = aws_snapstart()
    assert snap.init_s["high"] < aws().init_s["high"]  # a restore is shorter than an init
    assert alone.execution_time_s < cold.execution_time_s
    assert alone.fixed_cost == snap.fixed_cost > 0  # snapshot caching, whatever runs
    assert alone.cost > alone.fixed_cost
    # another calibration gets no SnapStart rows: they are an aws mechanism
    other = evaluate(workload, named_calibration("trace"), specs)
    add_snapstart(other, specs)
    assert set(other.results) == {"daydream", "cold"}


def test_simulated_runs_carry_the_engines_records_in_virtual_time() -> None:
    widths = [[2.0, 3.0], [1.0] * 6, [4.0, 4.0, 4.0]]
    result = evaluate(_workload(widths, runs=2), named_calibration("aws"),
                      {"daydream": policies()["daydream"]}, seed=1)  # fmt: skip
    seen: set[str] = set()
    for run in result.results["daydream"].runs:
        assert [len([r for r in run.invocations if r.phase == k]) for k in range(3)] == [2, 6, 3]
        assert sum(r.start.value == "cold" for r in run.invocations) == run.billing.starts["cold"]
        phase_start = 0.0
        for k, phase_time in enumerate(run.phase_times):
            spans = [(r.started_s, r.ended_s) for r in run.invocations if r.phase == k]
            assert all(s is not None and e is not None for s, e in spans)
            assert min(s for s, _ in spans) == pytest.approx(phase_start)  # dispatched at once
            assert max(e for _, e in spans) == pytest.approx(phase_start + phase_time)
            phase_start += phase_time
        # instances are named by tier; a warm start reuses one seen before (runs share them;
        # a probe's instance, beside a phase, may serve a later component)
        assert all(r.instance.startswith(f"{r.tier}-") for r in run.invocations)
        started = [*run.invocations, *run.probes]
        for r in sorted(started, key=lambda r: (r.phase, r.started_s or 0.0, r in run.probes)):
            if r.start.value == "warm":
                assert r.instance in seen
            seen.add(r.instance)


def test_beating_names_only_policies_strictly_faster_and_cheaper() -> None:
    workload = _workload([[5.0, 1.0], [2.0] * 4], runs=2)
    specs = {n: policies()[n] for n in ("daydream", "all-high", "all-low", "oracle")}
    result = evaluate(workload, named_calibration("aws"), specs)
    assert result.beating("oracle", specs) == []  # none beats the oracle on both
    ours = result.results["daydream"]
    expected = [
        n
        for n, r in result.results.items()
        if r.execution_time_s < ours.execution_time_s and r.cost < ours.cost
    ]
    assert result.beating("daydream", specs) == expected
    assert "daydream" not in result.beating("daydream", specs)
