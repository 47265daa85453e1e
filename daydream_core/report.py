"""The summary of runs, as a table and as JSON (`folder_table`: every run in a folder)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.box import SIMPLE_HEAD
from rich.markup import escape
from rich.table import Table

from daydream_core.model import RunRecord, StartKind
from daydream_core.summary import command_labels


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


def _phases_cell(row: Mapping[str, Any]) -> str:
    total = row.get("phases_in_input")
    return f"{row['phases']}/{total}" if total is not None else str(row["phases"])


def folder_table(summary: Mapping[str, Any], command: str | None = None) -> Table:
    """Every run in a folder (`outputs.summarise_folder`), whichever command made it: its
    command (a letter; this command's runs in bold), status and figures, and below the table
    each run's headline result."""
    rows = summary.get("table", [])
    labels = command_labels(rows)
    table = Table(
        title="daydream summary: every run in the folder",
        title_justify="left",
        box=SIMPLE_HEAD,
        padding=(0, 1, 0, 0),  # ten columns fit an 80-column terminal
        show_edge=False,
    )
    for column in ("run", "cmd", "status", "phases", "comps", "time s", "ctrl s", "cost $"):
        table.add_column(
            column, justify="left" if column in ("cmd", "status") else "right", no_wrap=True
        )
    table.add_column("h/w/c", justify="right", no_wrap=True)
    table.add_column("w err", justify="right", no_wrap=True)
    for row in rows:
        starts = row["starts"]
        state = row["status"]
        table.add_row(
            str(row["run"]),
            labels[row.get("command")],
            {"ok": "ok", "failed": "[red]failed[/red]"}.get(state, f"[yellow]{state}[/yellow]"),
            _phases_cell(row),
            str(row["components"]),
            f"{row['execution_time_s']:.2f}",
            f"{row.get('controller_time_s', 0.0):.2f}",
            f"{row['cost']:.6f}",
            "/".join(str(starts.get(k, 0)) for k in ("hot", "warm", "cold")),
            f"{row['width_error']:.2f}",
            style="bold" if command is not None and row.get("command") == command else None,
        )
    if len(rows) > 1:
        table.add_row(
            "total", "", "", str(sum(r["phases"] for r in rows)), str(summary["components"]),
            f"{summary['execution_time_s']:.2f}",
            f"{sum(r.get('controller_time_s', 0.0) for r in rows):.2f}", f"{summary['cost']:.6f}",
            "/".join(str(summary["starts"].get(k, 0)) for k in ("hot", "warm", "cold")), "",
            end_section=False, style="bold",
        )  # fmt: skip
    notes = [
        f"run {row['run']}: {escape(row['headline'] or row['error'] or '')}"
        for row in rows
        if row["headline"] or row["error"]
    ]
    notes += [
        f"cmd {label}: {cmd}" + (" (this command)" if cmd == command else "")
        for cmd, label in labels.items()
        if cmd is not None
    ]
    if summary.get("unrecorded"):
        runs = ", ".join(str(i) for i in summary["unrecorded"])
        notes.append(f"run {runs}: reserved, no records (running elsewhere, or killed)")
    notes.append("time: the phases'; ctrl: the controller's around them (their sum: wall time)")
    notes.append("h/w/c: hot, warm and cold starts")
    notes.append("w err: width error, mean over phases of |instances hot started - components|")
    table.caption, table.caption_justify = "\n".join(notes), "left"
    return table
