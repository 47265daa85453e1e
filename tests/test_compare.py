"""`daydream compare`: run-by-run ratios, the 10% criterion, and naming unlike workloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daydream_core.cli import main
from daydream_core.compare import compare, read_folder
from daydream_core.errors import UsageError

TRACE = Path(__file__).parents[1] / "apps" / "daydream_trace" / "data" / "ccl"


def _write_run(
    folder: Path,
    index: int,
    phases: list[float],
    costs: list[float],
    services: list[float],
    *,
    suffix: str = "",
    widths: list[int] | None = None,
) -> Path:
    run = folder / f"run-{index}"
    run.mkdir(parents=True)
    for name, values in (
        ("phase_time", phases),
        ("execution_cost", costs),
        ("function_service_time", services),
    ):
        (run / f"{name}{suffix}.txt").write_text("".join(f"{v}\n" for v in values))
    if widths is not None:
        (run / "concurrency_original.txt").write_text("".join(f"{w}\n" for w in widths))
    return run


def _exit_code(args: list[str]) -> int:
    with pytest.raises(SystemExit) as stopped:
        main(args)
    return int(stopped.value.code or 0)


def test_the_original_trace_reproduces_itself() -> None:
    runs = read_folder(TRACE)
    assert len(runs) == 50
    comparison = compare(runs, runs)
    assert comparison.same_workload, comparison.differences
    _, baseline, ratio = comparison.total("execution_s")
    assert baseline == pytest.approx(8948, rel=1e-3)  # the artifact's published total
    assert ratio == 1.0 and comparison.total("cost")[1] == pytest.approx(1.597, rel=1e-3)


def test_ratios_and_the_criterion(tmp_path: Path) -> None:
    base, close, far = tmp_path / "base", tmp_path / "close", tmp_path / "far"
    for i in (1, 2):
        _write_run(base, i, [10.0, 10.0], [1.0, 1.0], [5.0] * 4, suffix="-baseline", widths=[2, 2])
        _write_run(close, i, [10.5, 10.0], [1.05, 1.0], [5.0] * 4, widths=[2, 2])
        _write_run(far, i, [15.0, 10.0], [1.0, 1.0], [5.0] * 4, widths=[2, 2])
    near = compare(read_folder(close), read_folder(base))
    assert near.same_workload
    assert near.total("execution_s")[2] == pytest.approx(1.025)
    assert near.within(near.total("execution_s")[2]) and near.within(near.total("cost")[2])
    assert near.median_error("time_ratio") == pytest.approx(0.025)
    off = compare(read_folder(far), read_folder(base))
    assert not off.within(off.total("execution_s")[2])
    assert off.within(off.total("cost")[2])


def test_unlike_workloads_are_named(tmp_path: Path) -> None:
    base, other = tmp_path / "base", tmp_path / "other"
    _write_run(base, 1, [1.0, 1.0], [1.0, 1.0], [1.0], widths=[3, 1])
    _write_run(base, 2, [1.0], [1.0], [1.0], widths=[1])
    run = _write_run(other, 1, [1.0, 1.0], [1.0, 1.0], [1.0])
    record = {
        "app": "trace",
        "phases": [{"width": 3}, {"width": 2}],
        "result": {"recorded_seconds": 100.0, "cpu_seconds": 5.0},
    }
    (run / "run.json").write_text(json.dumps(record))
    comparison = compare(read_folder(other), read_folder(base))
    assert not comparison.same_workload
    text = "; ".join(comparison.differences)
    assert "phase widths differ" in text and "scale 0.05" in text
    assert comparison.only_baseline == (2,)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"1.0\nabc\n", ["phase_time.txt:2", "'abc'", "not a number"]),
        (b"nan\n", ["finite"]),
        (b"\xff\xfe1.0\n", ["phase_time.txt", "cannot be read as text"]),
    ],
)
def test_bad_numbers_are_one_line(tmp_path: Path, content: bytes, words: list[str]) -> None:
    run = _write_run(tmp_path / "x", 1, [1.0], [1.0], [1.0])
    (run / "phase_time.txt").write_bytes(content)
    with pytest.raises(UsageError) as error:
        read_folder(tmp_path / "x")
    assert all(w in str(error.value) for w in words), error.value


def test_folder_problems_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        read_folder(tmp_path / "missing")
    with pytest.raises(UsageError, match="no run-<i> folders"):
        read_folder(tmp_path)
    _write_run(tmp_path / "a", 1, [1.0], [1.0], [1.0])
    _write_run(tmp_path / "b", 2, [1.0], [1.0], [1.0])
    with pytest.raises(UsageError, match="no run index in common"):
        compare(read_folder(tmp_path / "a"), read_folder(tmp_path / "b"))
    lopsided = _write_run(tmp_path / "c", 1, [1.0, 2.0], [1.0], [1.0])
    with pytest.raises(UsageError, match="2 phase times but 1 phase costs"):
        read_folder(lopsided.parent)


def test_cli_table_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["compare", str(TRACE), "--baseline", str(TRACE)]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "time yes" in out and "NOT THE SAME" not in out
    assert _exit_code(["compare", str(TRACE), "--baseline", str(TRACE), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["same_workload"] and len(data["runs"]) == 50
    assert data["total"]["cost"]["within_tolerance"]
    assert _exit_code(["compare", str(tmp_path), "--baseline", str(TRACE)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run-<i> folders" in err
