"""The command line: one-line errors with exit 2, and a real run written to disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from daydream_core import plugins
from daydream_core.cli import main

DAYDREAM = str(Path(sys.executable).parent / "daydream")


def _daydream(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DAYDREAM, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["run", "nosuchapp"], ["'nosuchapp'", "valid apps:", "ccl"]),
        (
            ["--provider", "nosuchcloud", "run", "ccl"],
            ["'nosuchcloud'", "valid providers:", "local"],
        ),
        (["run", "ccl", "--policy", "psychic"], ["'psychic'", "valid policies:", "daydream"]),
        (["run", "ccl", "--preset", "huge"], ["'huge'", "valid presets:", "small"]),
        (["run", "ccl", "--runs", "0"], ["--runs", "0"]),
        (["-o", "colour", "run", "ccl"], ["colour", "KEY=VALUE"]),
        (["-o", "colour=red", "run", "ccl"], ["'colour'", "valid options"]),
        (["run", "trace", "--trace", "/no/such/trace"], ["--trace", "/no/such/trace"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], names: list[str], tmp_path: Path
) -> None:
    result = (
        _daydream(*args, "--out", str(tmp_path / "out")) if args[0] == "run" else _daydream(*args)
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("daydream: error: ")
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in lines[0]


def test_listings() -> None:
    for command, expected in (("providers", "local"), ("policies", "daydream"), ("apps", "ccl")):
        result = _daydream(command)
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout


def _main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0)


def test_run_writes_every_run_and_a_summary(
    demo_app: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _main(["run", "demo", "--runs", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "daydream summary" in captured.out
    for index in (1, 2):
        for name in (
            "phase_time.txt",
            "function_service_time.txt",
            "execution_cost.txt",
            "run.json",
        ):
            assert (out / f"run-{index}" / name).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == [1, 2] and summary["cost"] > 0
    # A second command appends runs: earlier results are never overwritten.
    assert _main(["run", "demo", "--runs", "1", "--out", str(out)]) == 0
    assert (out / "run-3" / "run.json").is_file()


def test_a_failed_run_reports_the_component_and_exits_1(
    demo_app: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _main(["run", "demo", "--preset", "failing", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "daydream: error: component 'explode' (p3-c1, phase 3) failed" in err
    assert "ValueError: boom in phase 2" in err
    assert "ValueError: boom in phase 2" in (out / "run-1" / "error.log").read_text()
    assert (out / "run-1" / "phase_time.txt").read_text().count("\n") == 3


def test_a_bad_trace_is_refused_before_anything_starts(tmp_path: Path) -> None:
    trace = tmp_path / "truncated.json"
    trace.write_text('{"name": "x", "workflow": {"tasks": [')
    result = _daydream("run", "trace", "--trace", str(trace), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("daydream: error: ") and "truncated.json" in line
    assert not (tmp_path / "out").exists()


def test_cleanup_names_its_provider(tmp_path: Path) -> None:
    result = _daydream("cleanup", "--provider", "local", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "local: would remove 0 resource(s)" in result.stdout
    result = _daydream("cleanup", "--provider", "nosuchcloud")
    assert result.returncode == 2
    valid = ", ".join(sorted(plugins.providers()))  # every installed provider, not a fixed list
    assert result.stderr.strip() == (
        f"daydream: error: unknown provider 'nosuchcloud'; valid providers: {valid}"
    )


def test_conformance_command_runs_the_suite() -> None:
    result = _daydream("conformance", "--provider", "local", "--", "-q", "-k", "tiers or price")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_a_bug_in_a_workflow_is_one_line_and_its_traceback(
    demo_app: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _main(["run", "demo", "--preset", "buggy", "--out", str(out)]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress line
    assert line.startswith("daydream: error: workflow 'demo' failed planning phase 2: KeyError")
    log = out / "run-1" / "error.log"
    assert f"traceback in {log}" in line
    assert "demo_workflow.py" in log.read_text()
    # --verbose shows the traceback on the terminal as well
    assert _main(["run", "demo", "--preset", "buggy", "--out", str(out), "--verbose"]) == 1
    assert "demo_workflow.py" in capsys.readouterr().err
