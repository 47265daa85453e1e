"""Compare two result folders run by run: phase time, service time and cost.

Either folder may be daydream's own (``run-<i>/phase_time.txt`` …) or the original DayDream
artifact's (``run-<i>/phase_time-baseline.txt`` …): both keep one number a line. Runs are
matched by index. The original's reproduction criterion is a total within 10%; the median
per-run error is reported beside it. Ratios mean little when the two folders did not run the
same work (a replay at ``--scale 0.05`` is not the original's work, another phase structure is
another workload), so every difference found is named.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from daydream_core.errors import UsageError
from daydream_core.outputs import journaled_run, run_metrics

TOLERANCE = 0.10  # the original artifact's reproduction criterion
METRICS = ("phase_time", "function_service_time", "execution_cost")


@dataclass(frozen=True)
class RunTotals:
    """One run of a folder, as its files say."""

    index: int
    phase_times: tuple[float, ...]
    service_times: tuple[float, ...]
    costs: tuple[float, ...]
    widths: tuple[int, ...] | None = None  # components per phase, where recorded
    scale: float | None = None  # work done / work recorded, for replays that say so
    app: str | None = None

    @property
    def execution_s(self) -> float:
        return sum(self.phase_times)

    @property
    def service_s(self) -> float:
        return sum(self.service_times)

    @property
    def cost(self) -> float:
        return sum(self.costs)


def _numbers(path: Path) -> tuple[float, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read as text ({exc})") from None
    values = []
    for number, line in enumerate(text.splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{path}:{number}: {text[:40]!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise UsageError(f"{path}:{number}: {text[:40]!r} is not a finite number >= 0")
        values.append(value)
    return tuple(values)


def _metric_file(run: Path, metric: str) -> Path | None:
    """daydream's own file, else the original's ``-baseline`` one, else the only match."""
    for name in (f"{metric}.txt", f"{metric}-baseline.txt"):
        if (run / name).is_file():
            return run / name
    found = sorted(p for p in run.glob(f"{metric}*.txt") if p.is_file())
    return found[0] if len(found) == 1 else None


def _widths_and_scale(run: Path) -> tuple[tuple[int, ...] | None, float | None, str | None]:
    record = run / "run.json"
    if record.is_file():
        try:
            data = json.loads(record.read_text())
        except (json.JSONDecodeError, RecursionError, UnicodeDecodeError) as exc:
            raise UsageError(f"{record}: not a daydream run.json ({exc})") from None
        if not isinstance(data, dict):
            raise UsageError(f"{record}: not a daydream run.json")
        return _structure(data)
    concurrency = run / "concurrency_original.txt"
    if concurrency.is_file():
        return tuple(int(v) for v in _numbers(concurrency)), 1.0, None
    return None, None, None


def _structure(data: Mapping[str, Any]) -> tuple[tuple[int, ...], float | None, str | None]:
    widths = tuple(int(p.get("width", 0)) for p in data.get("phases", []))
    result = data.get("result")
    scale = None
    if isinstance(result, Mapping) and result.get("recorded_seconds"):
        scale = float(result.get("cpu_seconds", 0.0)) / float(result["recorded_seconds"])
    return widths, scale, data.get("app")


def read_run(run: Path, index: int) -> RunTotals:
    files = {metric: _metric_file(run, metric) for metric in METRICS}
    missing = [m for m, f in files.items() if f is None]
    if missing and (journaled := journaled_run(run)) is not None:  # its controller was killed
        phase_times, services, costs = (tuple(v) for v in run_metrics(journaled))
        return RunTotals(index, phase_times, services, costs, *_structure(journaled))
    if missing:
        raise UsageError(
            f"{run}: no {', '.join(f'{m}.txt' for m in missing)} (nor a -baseline.txt one)"
        )
    phases, services, costs = (_numbers(f) for f in files.values() if f is not None)
    if len(phases) != len(costs):
        raise UsageError(
            f"{run}: {len(phases)} phase times but {len(costs)} phase costs; one a phase each"
        )
    widths, scale, app = _widths_and_scale(run)
    return RunTotals(index, phases, services, costs, widths, scale, app)


def read_folder(folder: Path) -> dict[int, RunTotals]:
    """Every ``run-<i>`` of `folder`; a folder that is itself one run counts as run 1."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a directory of run-<i> folders")
    runs = {
        int(p.name.removeprefix("run-")): p
        for p in folder.iterdir()
        if p.is_dir() and p.name.removeprefix("run-").isdigit() and p.name.startswith("run-")
    }
    if not runs:
        if _metric_file(folder, "phase_time") is not None:
            return {1: read_run(folder, 1)}
        raise UsageError(f"{folder} holds no run-<i> folders with phase_time files")
    return {i: read_run(path, i) for i, path in sorted(runs.items())}


def _ratio(measured: float, baseline: float) -> float:
    return measured / baseline if baseline > 0 else math.inf if measured > 0 else 1.0


@dataclass(frozen=True)
class RunComparison:
    index: int
    measured: RunTotals
    baseline: RunTotals
    differences: tuple[str, ...]  # why these two runs are not the same workload

    @property
    def time_ratio(self) -> float:
        return _ratio(self.measured.execution_s, self.baseline.execution_s)

    @property
    def service_ratio(self) -> float:
        return _ratio(self.measured.service_s, self.baseline.service_s)

    @property
    def cost_ratio(self) -> float:
        return _ratio(self.measured.cost, self.baseline.cost)


def _differences(measured: RunTotals, baseline: RunTotals) -> tuple[str, ...]:
    """Why two runs are not the same workload, one short reason each ("" when they are)."""
    found = []
    if measured.widths is not None and baseline.widths is not None:
        if measured.widths != baseline.widths:
            found.append("another phase structure (phase widths differ)")
    elif len(measured.phase_times) != len(baseline.phase_times):
        found.append("another number of phases")
    else:
        found.append("no phase structure recorded to check")
    for side, totals in (("measured", measured), ("baseline", baseline)):
        if totals.scale is not None and not math.isclose(totals.scale, 1.0, rel_tol=0.01):
            found.append(f"the {side} runs replay their trace at scale {totals.scale:.2g}")
    return tuple(found)


@dataclass(frozen=True)
class Comparison:
    runs: tuple[RunComparison, ...]
    only_measured: tuple[int, ...] = ()
    only_baseline: tuple[int, ...] = ()
    tolerance: float = TOLERANCE
    differences: tuple[str, ...] = field(default=())

    @property
    def same_workload(self) -> bool:
        return not self.differences

    def total(self, attribute: str) -> tuple[float, float, float]:
        """(measured, baseline, ratio) summed over the matched runs."""
        measured = sum(getattr(r.measured, attribute) for r in self.runs)
        baseline = sum(getattr(r.baseline, attribute) for r in self.runs)
        return measured, baseline, _ratio(measured, baseline)

    def within(self, ratio: float) -> bool:
        return abs(ratio - 1.0) <= self.tolerance + 1e-12

    def median_error(self, ratio: str) -> float:
        errors = [abs(getattr(r, ratio) - 1.0) for r in self.runs]
        return statistics.median(errors) if errors else 0.0

    def to_json(self) -> dict[str, Any]:
        def totals(attribute: str) -> dict[str, Any]:
            measured, baseline, ratio = self.total(attribute)
            return {
                "measured": measured,
                "baseline": baseline,
                "ratio": ratio,
                "within_tolerance": self.within(ratio),
            }

        return {
            "tolerance": self.tolerance,
            "same_workload": self.same_workload,
            "differences": list(self.differences),
            "runs": [
                {
                    "run": r.index,
                    "execution_s": [r.measured.execution_s, r.baseline.execution_s],
                    "service_s": [r.measured.service_s, r.baseline.service_s],
                    "cost": [r.measured.cost, r.baseline.cost],
                    "time_ratio": r.time_ratio,
                    "service_ratio": r.service_ratio,
                    "cost_ratio": r.cost_ratio,
                    "differences": list(r.differences),
                }
                for r in self.runs
            ],
            "total": {
                "execution_s": totals("execution_s"),
                "service_s": totals("service_s"),
                "cost": totals("cost"),
            },
            "median_run_error": {
                "time": self.median_error("time_ratio"),
                "cost": self.median_error("cost_ratio"),
            },
            "only_measured": list(self.only_measured),
            "only_baseline": list(self.only_baseline),
        }


def compare(
    measured: Mapping[int, RunTotals],
    baseline: Mapping[int, RunTotals],
    tolerance: float = TOLERANCE,
) -> Comparison:
    if not 0 <= tolerance < 1:
        raise UsageError(f"tolerance {tolerance} must be in [0, 1)")
    matched = sorted(set(measured) & set(baseline))
    if not matched:
        raise UsageError(
            f"no run index in common: measured runs {_span(measured)}, "
            f"baseline runs {_span(baseline)}"
        )
    runs = tuple(
        RunComparison(i, measured[i], baseline[i], _differences(measured[i], baseline[i]))
        for i in matched
    )
    reasons = sorted({reason for run in runs for reason in run.differences})
    differences = tuple(
        f"{reason} ({sum(reason in r.differences for r in runs)} of {len(runs)} runs)"
        for reason in reasons
    )
    return Comparison(
        runs=runs,
        only_measured=tuple(sorted(set(measured) - set(baseline))),
        only_baseline=tuple(sorted(set(baseline) - set(measured))),
        tolerance=tolerance,
        differences=differences,
    )


def _span(runs: Sequence[int] | Mapping[int, Any]) -> str:
    indices = sorted(runs)
    if not indices:
        return "none"
    return f"{indices[0]}..{indices[-1]}" if len(indices) > 1 else str(indices[0])


def comparison_table(comparison: Comparison) -> Table:
    """Per run and in total: measured vs baseline, ratios, and the reproduction criterion."""
    percent = f"{comparison.tolerance:.0%}"
    table = Table(
        title="daydream compare: ratio = measured / baseline (service: service times)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 0, 0, 1),  # ten numeric columns fit in 80 characters
        pad_edge=False,
    )
    for column in ("run", "phases", "time s", "base", "ratio", "service"):
        table.add_column(column, justify="right")
    for column in ("cost $", "base", "ratio", f"±{percent}"):
        table.add_column(column, justify="right")

    def mark(*ratios: float) -> str:
        return "yes" if all(comparison.within(r) for r in ratios) else "no"

    for run in comparison.runs:
        table.add_row(
            str(run.index),
            f"{len(run.measured.phase_times)}/{len(run.baseline.phase_times)}",
            f"{run.measured.execution_s:.1f}",
            f"{run.baseline.execution_s:.1f}",
            f"{run.time_ratio:.3f}",
            f"{run.service_ratio:.3f}",
            f"{run.measured.cost:.4f}",
            f"{run.baseline.cost:.4f}",
            f"{run.cost_ratio:.3f}",
            mark(run.time_ratio, run.cost_ratio),
        )
    time_m, time_b, time_r = comparison.total("execution_s")
    _, _, service_r = comparison.total("service_s")
    cost_m, cost_b, cost_r = comparison.total("cost")
    table.add_row(
        "total",
        "",
        f"{time_m:.1f}",
        f"{time_b:.1f}",
        f"{time_r:.3f}",
        f"{service_r:.3f}",
        f"{cost_m:.4f}",
        f"{cost_b:.4f}",
        f"{cost_r:.3f}",
        mark(time_r, cost_r),
        style="bold",
    )
    return table


def verdict(comparison: Comparison) -> list[str]:
    """The lines under the table: the criterion's answer, and what makes it moot."""
    _, _, time_r = comparison.total("execution_s")
    _, _, cost_r = comparison.total("cost")
    percent = f"{comparison.tolerance:.0%}"
    lines = [
        f"totals within {percent} of the baseline: time {_yes(comparison.within(time_r))} "
        f"({time_r - 1:+.1%}), cost {_yes(comparison.within(cost_r))} ({cost_r - 1:+.1%}); "
        f"median per-run error: time {comparison.median_error('time_ratio'):.1%}, "
        f"cost {comparison.median_error('cost_ratio'):.1%}"
    ]
    if comparison.differences:
        lines.append(
            "NOT THE SAME WORKLOAD, so the ratios do not test reproduction: "
            + "; ".join(comparison.differences)
        )
    if comparison.only_measured or comparison.only_baseline:
        lines.append(
            f"unmatched runs left out: measured {_span(comparison.only_measured)}, "
            f"baseline {_span(comparison.only_baseline)}"
        )
    return lines


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
