"""The folder-wide summary after `daydream run` (every run in the folder, which command made
it, its status and headline result), `--json` and `--quiet`, and each run's `run.log`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daydream_core.cli import main
from daydream_core.model import PhaseRecord, RunRecord
from daydream_core.outputs import reserve_run, summarise_folder, write_run
from daydream_core.workflow import Preset, Workflow, default_headline


def _main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0)


def test_the_table_covers_every_run_in_the_folder_and_marks_its_command(
    demo_app: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _main(["--concurrency", "4", "run", "demo", "--runs", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert _main(["--concurrency", "4", "run", "demo", "--out", str(out)]) == 0
    table = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    first, second = summary["commands"]
    assert [row["command"] for row in summary["table"]] == [first, first, second]
    assert [row["status"] for row in summary["table"]] == ["ok"] * 3
    assert f"cmd A: {first}" in table and f"cmd B: {second} (this command)" in table
    for index in (1, 2, 3):  # the earlier command's runs are in this command's table
        assert f"run {index}: phases=4" in table  # the default headline: the result's scalars
    rows = [line.split() for line in table]
    assert [r[:3] for r in rows if r and r[0] in "123"] == [["1", "A", "ok"], ["2", "A", "ok"],
                                                            ["3", "B", "ok"]]  # fmt: skip


def test_json_prints_the_summary_and_nothing_else(
    demo_app: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _main(["--concurrency", "4", "run", "demo", "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # all of stdout is one JSON document
    assert data["folder"] == str(out.resolve()) and data["commands"] == [data["command"]]
    assert data["runs"] == [1] and data["table"][0]["headline"] == "phases=4"
    assert "run 1/1" not in captured.err  # no progress either


def test_quiet_shows_nothing_but_errors(
    demo_app: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _main(["--concurrency", "4", "run", "demo", "--out", str(out), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert (out / "run-1" / "run.json").is_file()
    assert _main(["run", "demo", "--preset", "failing", "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.strip().splitlines()
    assert line.startswith("daydream: error: component 'explode'")


def test_the_run_log_holds_what_the_terminal_does_not(
    demo_app: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _main(["--concurrency", "4", "run", "demo", "--out", str(out)]) == 0
    log = (out / "run-1" / "run.log").read_text()
    run = json.loads((out / "run-1" / "run.json").read_text())
    assert f"command {run['command']}: daydream --concurrency 4 run demo --out {out}" in log
    assert "workload demo:small" in log and '"width": 3' in log
    for phase in run["phases"]:
        assert f"phase {phase['index'] + 1}: {phase['width']} components placed" in log
        assert f"phase {phase['index'] + 1} done:" in log
        for record in phase["invocations"]:
            assert f"{record['component']} {record['kind']} on {record['tier']} " in log
    assert "run 1 finished: 4 phases" in log and "result: phases=4" in log
    assert "run.log" not in capsys.readouterr().out

    assert _main(["run", "demo", "--preset", "failing", "--out", str(out)]) == 1
    failed = (out / "run-2" / "run.log").read_text()
    assert "p3-c1 failed: ComponentFailed" in failed and "ValueError: boom in phase 2" in failed
    assert "run 2 stopped: component 'explode'" in failed


def _recorded(out: Path, error: str | None, command: str) -> int:
    index = reserve_run(out)
    run = RunRecord(f"r{index}", index, "demo", "local", "daydream", "small", 0, command=command)
    run.phases.append(PhaseRecord(0, 2, {"high": 1}, {"a": "high", "b": "low"}, 1.0))
    run.error, run.headline = error, None if error else "best fit 0.3"
    write_run(run, out)
    return index


def test_interrupted_and_unrecorded_runs_are_marked(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _recorded(out, None, "c1")
    _recorded(out, "interrupted", "c1")
    _recorded(out, "component 'x' failed\ntraceback", "c2")
    reserve_run(out)  # a run whose command was killed before it wrote anything
    summary = summarise_folder(out)
    assert [r["status"] for r in summary["table"]] == ["ok", "interrupted", "failed"]
    assert summary["interrupted"] == [2] and summary["failed"] == [2, 3]
    assert summary["unrecorded"] == [4] and summary["commands"] == ["c1", "c2"]
    assert summary["table"][2]["error"] == "component 'x' failed"  # its first line
    assert summary["table"][0]["width_error"] == 1.0  # 1 predicted, 2 came


def test_a_workflow_says_its_own_headline_and_a_broken_one_falls_back() -> None:
    flow = Workflow("headline-demo", presets={"small": Preset({})})
    assert flow.headline({"chi2": 1.23456, "fit": [1, 2], "ok": True}) == "chi2=1.235 ok=true"

    @flow.headliner
    def _(result: dict[str, float]) -> str:
        return f"best  fit\n{result['chi2']:.2f}"

    assert flow.headline({"chi2": 1.23456}) == "best fit 1.23"
    with pytest.warns(UserWarning, match="headline of the result failed"):
        assert flow.headline({"other": 1}) == "other=1"
    assert default_headline(None) == "" and default_headline("x" * 200).endswith("…")


def test_each_app_headlines_its_scientific_result() -> None:
    from daydream_ccl.workflow import workflow as ccl
    from daydream_cosmoscout.workflow import workflow as cosmoscout
    from daydream_exafel.workflow import workflow as exafel
    from daydream_trace.workflow import workflow as trace

    fit = {"best_fit": {"Omega_c": 0.2612, "sigma8": 0.8101, "S8": 0.8}, "chi2_min": 31.5,
           "n_data": 34, "converged": True, "iterations": 1}  # fmt: skip
    assert ccl.headline(fit) == (
        "best fit Omega_c=0.2612 sigma8=0.8101 S8=0.8000; chi2_min=31.50 (34 data), "
        "converged after 1 round"
    )
    merged = {"final": {"completeness": 0.934, "cc_half": 0.91}, "target_reached": False,
              "indexed": 40, "shots": 64, "batches": 2}  # fmt: skip
    assert exafel.headline(merged) == (
        "completeness 0.934 (below target), CC1/2 0.910; 40 of 64 shots indexed in 2 batches"
    )
    scene = {"leaves": 52, "refinements": 3, "unrefined_candidates": 7, "images": ["a", "b"],
             "relief_rms_km": 2.5}  # fmt: skip
    assert cosmoscout.headline(scene).startswith("52 tiles after 3 refinements (7 left")
    replay = {"name": "ccl/run-1", "phases": "6/10", "widths": [1, 2], "cpu_seconds": 1.25,
              "recorded_seconds": 12.5}  # fmt: skip
    assert trace.headline(replay) == (
        "ccl/run-1: 6/10 phases, 3 components, 1.2 s of CPU work (12.5 s recorded)"
    )
