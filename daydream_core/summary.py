"""One row per run of a results folder, derived from its ``run.json``: the folder-wide summary.

`summary.json`, the terminal table after `daydream run` and `--json` all show these rows, so a
folder that several commands wrote into reads as one history: which command made each run,
which runs failed or were interrupted, and each run's scientific result in one line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daydream_core.model import INTERRUPTED

OK = "ok"
FAILED = "failed"


def width_error(run: Mapping[str, Any]) -> float:
    """Mean over phases of |instances hot started for the phase - components in it|."""
    phases = run.get("phases", [])
    errors = [abs(sum(p.get("predicted", {}).values()) - p["width"]) for p in phases]
    return sum(errors) / len(errors) if errors else 0.0


def status(run: Mapping[str, Any]) -> str:
    error = run.get("error")
    if run.get("interrupted") or error == INTERRUPTED:
        return INTERRUPTED  # stopped, or a killed controller's run rebuilt from its journal
    return FAILED if error else OK


def phases_in_input(run: Mapping[str, Any]) -> int | None:
    """How many phases the input had, where the workflow says (a trace replay does)."""
    result = run.get("result")
    total = result.get("phases_in_input") if isinstance(result, Mapping) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def run_row(run: Mapping[str, Any]) -> dict[str, Any]:
    """What the summary shows of one run."""
    phases = run.get("phases", [])
    starts = {"hot": 0, "warm": 0, "cold": 0, **run.get("starts", {})}
    error = run.get("error")
    return {
        "run": run["index"],
        "command": run.get("command"),
        "status": status(run),
        "app": run.get("app"),
        "preset": run.get("preset"),
        "policy": run.get("policy"),
        "provider": run.get("provider"),
        "phases": len(phases),
        "phases_in_input": phases_in_input(run),
        "components": sum(int(p["width"]) for p in phases),
        "execution_time_s": float(run.get("execution_time_s", 0.0)),
        # The controller's time between and around the phases: phases + this = the wall time.
        "controller_time_s": float(run.get("controller_time_s", 0.0)),
        "cost": float(run.get("cost", 0.0)),
        "starts": starts,
        "width_error": width_error(run),
        "headline": run.get("headline") or "",
        "error": str(error).splitlines()[0] if error else None,
    }


def command_labels(rows: Sequence[Mapping[str, Any]]) -> dict[str | None, str]:
    """A short label per command (A, B, …, in order of first run), for a table column."""
    labels: dict[str | None, str] = {}
    for row in rows:
        command = row.get("command")
        if command not in labels:
            labels[command] = _label(len(labels)) if command is not None else "?"
    return labels


def _label(n: int) -> str:
    text = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        text = chr(ord("A") + rest) + text
    return text
