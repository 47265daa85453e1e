"""The summary of runs, as a table and as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from daydream_core.model import RunRecord, StartKind


def prediction_error(run: RunRecord) -> float:
    """Mean absolute difference between predicted and actual width per phase (all tiers)."""
    errors = [abs(sum(p.predicted.values()) - p.width) for p in run.phases]
    return sum(errors) / len(errors) if errors else 0.0


def phases_cell(run: RunRecord) -> str:
    """Phases run, and of how many in the input when the workflow says (a trace replay's
    result carries ``phases_in_input``): a limited replay never looks complete."""
    total = run.result.get("phases_in_input") if isinstance(run.result, dict) else None
    if isinstance(total, int) and not isinstance(total, bool):
        return f"{len(run.phases)}/{total}"
    return str(len(run.phases))


def summary_table(runs: Sequence[RunRecord]) -> Table:
    table = Table(title="daydream summary", title_justify="left")
    for column in ("run", "phases", "comps", "time (s)", "ctrl (s)", "cost ($)"):
        table.add_column(column, justify="right")
    for column in ("hot", "warm", "cold", "width err"):
        table.add_column(column, justify="right")
    for run in runs:
        starts = run.start_counts()
        table.add_row(
            str(run.index),
            phases_cell(run),
            str(sum(p.width for p in run.phases)),
            f"{run.execution_time_s:.2f}",
            f"{run.controller_time_s:.2f}",  # outside phases: time + ctrl = wall time
            f"{run.cost:.6f}",
            str(starts["hot"]),
            str(starts["warm"]),
            str(starts["cold"]),
            f"{prediction_error(run):.2f}",
        )
    if len(runs) > 1:
        totals = summary_json(runs)
        table.add_row(
            "total",
            str(sum(len(r.phases) for r in runs)),
            str(totals["components"]),
            f"{totals['execution_time_s']:.2f}",
            f"{totals['controller_time_s']:.2f}",
            f"{totals['cost']:.6f}",
            str(totals["starts"]["hot"]),
            str(totals["starts"]["warm"]),
            str(totals["starts"]["cold"]),
            "",
            style="bold",
        )
    return table


def summary_json(runs: Sequence[RunRecord]) -> dict[str, Any]:
    starts = {kind.value: 0 for kind in StartKind}
    for run in runs:
        for kind, count in run.start_counts().items():
            starts[kind] += count
    return {
        "runs": [r.index for r in runs],
        "components": sum(p.width for r in runs for p in r.phases),
        "execution_time_s": sum(r.execution_time_s for r in runs),
        "controller_time_s": sum(r.controller_time_s for r in runs),
        "cost": sum(r.cost for r in runs),
        "starts": starts,
    }
