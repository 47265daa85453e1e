"""The table: every policy on one workload, its ratios to the oracle and to each baseline."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.console import Console, Group
from rich.table import Column, Table
from rich.text import Text

from daydream_core.errors import UsageError
from daydream_core.simulator.evaluate import Evaluation, order

BASELINES = ("cold", "keep-alive", "hybrid-histogram", "artifact", "all-high", "all-low")
PAPER = {"time": -0.45, "cost": -0.23}  # DayDream (SC'22) against its baselines, published


FITTED_RUNS = 10  # runs 1-10 of the shared CCL trace fitted the artifact's constants


def _spread(errors: list[float]) -> dict[str, float]:
    magnitudes = np.abs(errors) if errors else np.zeros(1)
    return {
        "median_abs": float(np.median(magnitudes)),
        "p90_abs": float(np.percentile(magnitudes, 90)),
        "max_abs": float(magnitudes.max()),
    }


def reproduction(evaluation: Evaluation) -> dict[str, Any] | None:
    """The artifact policy's simulated totals against what the trace measured: all runs, and
    the runs after the first 10 (those not used to fit its constants, on the shared trace)."""
    runs = evaluation.workload.runs
    result = evaluation.results.get("artifact")
    measured = [r.measured for r in runs]
    if result is None or any(m is None for m in measured):
        return None
    pairs = [(s, m) for s, m in zip(result.runs, measured, strict=True) if m is not None]

    def totals(chosen: list[Any]) -> dict[str, Any]:
        sim_time = sum(s.execution_time_s for s, _ in chosen)
        sim_cost = sum(s.own_cost for s, _ in chosen)
        real_time = sum(m.execution_time_s for _, m in chosen)
        real_cost = sum(m.cost for _, m in chosen)
        return {
            "runs": len(chosen),
            "measured_time_s": real_time,
            "simulated_time_s": sim_time,
            "time_error": sim_time / real_time - 1 if real_time else 0.0,
            "measured_cost": real_cost,
            "simulated_cost": sim_cost,
            "cost_error": sim_cost / real_cost - 1 if real_cost else 0.0,
            "per_run_time_error": _spread(
                [s.execution_time_s / m.execution_time_s - 1 for s, m in chosen]
            ),
            "per_run_cost_error": _spread([s.own_cost / m.cost - 1 for s, m in chosen]),
        }

    data = totals(pairs)
    if len(pairs) > FITTED_RUNS:
        data["held_out"] = totals(pairs[FITTED_RUNS:])
    return data


def to_json(evaluation: Evaluation) -> dict[str, Any]:
    names = order(list(evaluation.results))
    ratios = {
        name: {
            other: dict(zip(("time", "cost"), evaluation.ratio(name, other), strict=True))
            for other in names
            if other != name and (other == "oracle" or other in BASELINES)
        }
        for name in names
    }
    data: dict[str, Any] = {
        "workload": evaluation.workload.name,
        "format": evaluation.workload.format,
        "runs": len(evaluation.workload.runs),
        "calibration": {
            "name": evaluation.calibration.name,
            "source": evaluation.calibration.source,
        },
        "seed": evaluation.seed,
        "policies": [evaluation.results[n].to_json() for n in names],
        "ratios": ratios,
    }
    if "daydream" in evaluation.results and "artifact" in evaluation.results:
        time, cost = evaluation.ratio("daydream", "artifact")
        data["daydream_vs_artifact"] = {"time": time - 1, "cost": cost - 1, "paper": PAPER}
    repro = reproduction(evaluation)
    if repro is not None:
        data["artifact_reproduction"] = repro
    data["predictors"] = [
        {
            "predictor": s.predictor,
            "loss": s.loss,
            "width_mae": s.mae,
            "idle": s.idle,
            "cold": s.cold,
        }
        for s in evaluation.predictors()
    ]
    return data


def _table(
    title: str, headers: list[str], rows: list[list[str]], styles: list[str] | None = None
) -> Table:
    """A table that loses nothing: each column as wide as its widest cell or header line, so
    rich never cuts a row name or a number (it cut `daydream+snapstart` and `daydream` alike
    to `daydre…`), headers broken where given, light rules. Typical workloads fit 80 columns
    (a pipe, a small terminal); one whose numbers need more is printed wider (`width`)."""

    def widest(cells: list[str]) -> int:
        return max(len(line) for cell in cells for line in cell.split("\n"))

    columns = [
        Column(
            h,
            justify="left" if i == 0 else "right",
            no_wrap=True,
            min_width=widest([h, *(row[i] for row in rows)]),
        )
        for i, h in enumerate(headers)
    ]
    table = Table(
        *columns,
        title=title,
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    for i, row in enumerate(rows):
        table.add_row(*row, style=styles[i] if styles else None)
    return table


def width(report: Group, console: Console) -> int:
    """The columns `report` needs for its tables whole: the console's, or more."""
    wide = console.options.update_width(10**4)
    tables = [part for part in report.renderables if isinstance(part, Table)]
    return max([console.width, *(console.measure(t, options=wide).maximum for t in tables)])


def show(report: Group, console: Console) -> None:
    """Print `report` with its tables whole, wider than the console where they need it (a
    terminal then wraps the lines; rich would cut each cell to fit)."""
    previous = console.width
    console.width = width(report, console)
    try:
        console.print(report)
    finally:
        console.width = previous


def _mae(mae: float) -> str:
    """A width MAE, to two decimals where they tell (a 1,000-wide phase's misses do not)."""
    return f"{mae:.2f}" if mae < 100 else f"{mae:,.0f}"


def predictor_table(evaluation: Evaluation) -> Table:
    """Every hot-start predictor on the recorded phases, by newsvendor loss (lowest in bold)."""
    scores = evaluation.predictors()
    best = min(s.loss for s in scores)
    return _table(
        f"hot-start predictors, {evaluation.calibration.name} costs",
        ["predictor", "newsvendor\nloss ($)", "width\nMAE", "idle hot\nstarts", "cold\nstarts"],
        [[s.predictor, f"{s.loss:.4f}", _mae(s.mae), str(s.idle), str(s.cold)] for s in scores],
        ["bold" if s.loss == best else "" for s in scores],
    )


def table(evaluation: Evaluation) -> Group:
    names = order(list(evaluation.results))
    cal = evaluation.calibration
    rows = []
    for name in names:
        r = evaluation.results[name]
        t, c = evaluation.ratio(name, "oracle") if "oracle" in evaluation.results else (0, 0)
        rows.append(
            [
                name,
                f"{r.execution_time_s:,.1f}",
                f"{r.cost:,.4f}",
                f"{r.cold_fraction:.1%}",
                f"{r.idle_gb_s:,.1f}",
                _mae(r.width_mae),
                f"{t:.3f}",
                f"{c:.3f}",
            ]
        )
    head = _table(
        (
            f"{evaluation.workload.name}: {len(evaluation.workload.runs)} runs, "
            f"calibration {cal.name}, seed {evaluation.seed}"
        ),
        [
            "policy",
            "execution\ntime (s)",
            "cost\n($)",
            "cold\nstarts",
            "idle hot\nGB-s",
            "width\nMAE",
            "time /\noracle",
            "cost /\noracle",
        ],
        rows,
    )
    baselines = [b for b in BASELINES if b in evaluation.results]
    cells = []
    for name in names:
        row = [name]
        for other in baselines:
            if other == name:
                row.append("-")
            else:
                t, c = evaluation.ratio(name, other)
                row.append(f"{t:.2f}\n{c:.2f}")
        cells.append(row)
    headers = ["policy", *("vs\n" + b.replace("-", "-\n") for b in baselines)]  # hyphens break
    matrix = _table("time x (above), cost x (below)", headers, cells)
    parts: list[Any] = [head, matrix, predictor_table(evaluation)]
    if "daydream" in evaluation.results and "artifact" in evaluation.results:
        t, c = evaluation.ratio("daydream", "artifact")
        parts.append(
            Text(
                f"daydream vs artifact ({cal.name} calibration): time {t - 1:+.0%}, "
                f"cost {c - 1:+.0%}  (paper, on AWS: time {PAPER['time']:+.0%}, "
                f"cost {PAPER['cost']:+.0%})"
            )
        )
    repro = reproduction(evaluation)
    if (
        repro is None
        and evaluation.workload.format == "daydream"
        and "artifact" in evaluation.results
    ):
        parts.append(
            Text(
                "artifact reproduction: none (not every run holds the "
                "phase_time-baseline.txt and execution_cost-baseline.txt it is compared with)"
            )
        )
    if repro is not None:
        held = repro.get("held_out")
        if held is not None:
            parts.append(
                Text(
                    f"held out (runs {FITTED_RUNS + 1}-{repro['runs']}): time "
                    f"{held['time_error']:+.1%}, cost {held['cost_error']:+.1%}; per run "
                    f"|error| median {held['per_run_time_error']['median_abs']:.1%} time, "
                    f"{held['per_run_cost_error']['median_abs']:.1%} cost"
                )
            )
        parts.insert(
            len(parts) - (1 if held is not None else 0),
            Text(
                f"artifact reproduction: time {repro['simulated_time_s']:,.0f} s vs measured "
                f"{repro['measured_time_s']:,.0f} s ({repro['time_error']:+.1%}), cost "
                f"${repro['simulated_cost']:.3f} vs ${repro['measured_cost']:.3f} "
                f"({repro['cost_error']:+.1%}); per run |error| median "
                f"{repro['per_run_time_error']['median_abs']:.1%} time, "
                f"{repro['per_run_cost_error']['median_abs']:.1%} cost"
            ),
        )
    return Group(*parts)


def coincident(evaluation: Evaluation) -> dict[tuple[float, float], list[str]]:
    """Policies by their (time, cost), those within 0.1% of another's on both as one point
    (on Lambda `cold`, `keep-alive` and `hybrid-histogram` often are one policy)."""
    points: dict[tuple[float, float], list[str]] = {}
    for name in order(list(evaluation.results)):
        r = evaluation.results[name]
        for time, cost in points:
            if math.isclose(time, r.execution_time_s, rel_tol=1e-3) and math.isclose(
                cost, r.cost, rel_tol=1e-3
            ):
                points[(time, cost)].append(name)
                break
        else:
            points[(r.execution_time_s, r.cost)] = [name]
    return points


def check_plot_path(path: Path) -> None:
    """That `--plot` names a PNG in a folder that exists: found before the simulation runs."""
    if path.suffix.lower() != ".png":
        raise UsageError(f"--plot {path}: the plot is a PNG; give a path ending in .png")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"--plot {path}: no folder {folder} to write it into")


def plot(evaluation: Evaluation, path: Path) -> None:
    """Execution time against cost, one point per policy (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'daydream[apps]'") from None
    figure, axes = plt.subplots(figsize=(6, 4.5))
    points = coincident(evaluation)
    markers = "osD^v<>ph*"
    for i, ((time, cost), names) in enumerate(points.items()):
        # A legend, not labels beside the points: close points' labels would overlap.
        axes.scatter(time, cost, s=45, marker=markers[i % len(markers)], label=" = ".join(names))
    axes.legend(fontsize=8, loc="best")
    times = [t for t, _ in points]
    costs = [c for _, c in points]
    # One policy far off (the artifact's serial dispatch) would crowd the rest into a corner.
    if min(times) > 0 and max(times) > 4 * min(times):
        axes.set_xscale("log")
    if min(costs) > 0 and max(costs) > 4 * min(costs):
        axes.set_yscale("log")
    axes.set_xlabel("execution time (s)")
    axes.set_ylabel("cost ($)")
    axes.set_title(
        f"{evaluation.workload.name} ({len(evaluation.workload.runs)} runs, "
        f"{evaluation.calibration.name} calibration)"
    )
    axes.grid(alpha=0.3)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise UsageError(f"--plot {path}: cannot write ({exc.strerror})") from None
    finally:
        plt.close(figure)
