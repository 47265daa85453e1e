"""Workloads to simulate: recorded runs as phases of tasks with their measured seconds.

Three sources, one shape:

- a DayDream evaluation trace (a folder of ``run-<i>`` folders, or one of them): each task's
  seconds are its measured service time; the measured phase times and costs are kept beside
  the runs, only to compare with (they are never an input of the simulation);
- a WfCommons WfFormat instance (a ``.json`` file, or a folder of them, one run each);
- ``daydream run`` results (``--records DIR``): every invocation's measured execution time on
  the tier it ran on.

The two trace formats are read by the trace app's reader (`daydream_trace.formats`), so the
simulator accepts exactly what `daydream run trace` replays.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from daydream_core.errors import UsageError
from daydream_core.model import LONGEST_COMPONENT_S, StartKind, WidthHint
from daydream_core.policies.predictor import Shape


@dataclass(frozen=True)
class Task:
    """One component of a recorded phase."""

    kind: str
    seconds: float  # measured: service time (trace) or execution time (records)
    tier_seconds: Mapping[str, float] = field(default_factory=dict)  # measured per tier


@dataclass(frozen=True)
class Measured:
    """What the recording itself measured for a whole run (compared with, never an input)."""

    phase_times: tuple[float, ...]
    costs: tuple[float, ...]

    @property
    def execution_time_s(self) -> float:
        return sum(self.phase_times)

    @property
    def cost(self) -> float:
        return sum(self.costs)


@dataclass(frozen=True)
class TraceRun:
    name: str
    phases: tuple[tuple[Task, ...], ...]
    measured: Measured | None = None
    hints: tuple[WidthHint | None, ...] = ()  # per phase: what the workflow said of the next

    @property
    def widths(self) -> list[int]:
        return [len(p) for p in self.phases]

    def hint(self, k: int) -> WidthHint | None:
        """What the workflow said, with phase `k`, of the next phase's width."""
        return self.hints[k] if k < len(self.hints) else None

    @property
    def shapes(self) -> list[Shape]:
        """Each phase's kinds and hint, as the controller saw them."""
        return [
            Shape(frozenset(task.kind for task in phase), self.hint(k))
            for k, phase in enumerate(self.phases)
        ]


@dataclass(frozen=True)
class Workload:
    name: str
    format: str  # "daydream" | "wfformat" | "records"
    runs: tuple[TraceRun, ...]
    source: Path

    def first(self, count: int | None) -> Workload:
        """The first `count` runs, wrapping around (like `daydream run trace`)."""
        if count is None or count == len(self.runs):
            return self
        runs = tuple(self.runs[i % len(self.runs)] for i in range(count))
        return Workload(self.name, self.format, runs, self.source)


def _daydream_run_dirs(root: Path) -> list[Path]:
    from daydream_trace.formats import COMPONENTS  # type: ignore[import-untyped]

    if (root / COMPONENTS).is_file():
        return [root]
    return [
        p
        for p in root.iterdir()
        if p.is_dir() and re.fullmatch(r"run-\d+", p.name) and (p / COMPONENTS).is_file()
    ]


def _trace_run(source: Path, index: int) -> TraceRun:
    from daydream_trace.formats import load_trace, read_measured

    trace = load_trace(source, index)
    phases = tuple(
        tuple(Task(trace.kind(task), task.seconds) for task in phase) for phase in trace.phases
    )
    measured = None
    if trace.format == "daydream":
        found = read_measured(Path(trace.source), len(phases))
        measured = Measured(*found) if found else None
    return TraceRun(trace.name, phases, measured)


def load_trace_workload(path: Path) -> Workload:
    """A DayDream trace folder (every run in it) or WfFormat file(s)."""
    try:
        from daydream_trace.formats import resolve
    except ImportError:
        raise UsageError(
            "reading traces needs the trace app: pip install 'daydream[apps]'"
        ) from None
    first, kind = resolve(path, 1)
    if kind == "daydream":
        count = len(_daydream_run_dirs(path)) if path.is_dir() else 1
    else:
        count = len([p for p in path.iterdir() if p.suffix == ".json"]) if path.is_dir() else 1
    runs = tuple(_trace_run(path, i) for i in range(1, count + 1))
    name = path.name if kind == "wfformat" or path.is_dir() else first.parent.name
    return Workload(name, kind, runs, path)


def load_records(directory: Path) -> Workload:
    """`daydream run` results: the runs' run.json files, each invocation as measured."""
    files = sorted(directory.glob("run-*/run.json"), key=lambda p: int(p.parent.name[4:]))
    if not files:
        raise UsageError(f"records {directory}: no run-<i>/run.json (write them with daydream run)")
    runs = []
    app = ""
    for path in files:
        try:
            data = json.loads(path.read_text())
            app = str(data["app"])
            for phase in data["phases"]:
                _check_phase(phase)
            phases = tuple(
                tuple(
                    Task(
                        str(r["kind"]),
                        float(r["execution_ms"]) / 1000.0,
                        {str(r["tier"]): float(r["execution_ms"]) / 1000.0},
                    )
                    for r in phase["invocations"]
                )
                for phase in data["phases"]
            )
            measured = Measured(
                tuple(float(p["phase_time_s"]) for p in data["phases"]),
                tuple(float(p["cost"]) for p in data["phases"]),
            )
            # Records written before hints existed have none: phases without a hint.
            hints = tuple(WidthHint.from_json(p.get("next_width_hint")) for p in data["phases"])
        except KeyError as exc:
            raise UsageError(f"records {path}: not a daydream run.json (no {exc})") from None
        except (OSError, ValueError, TypeError, AttributeError, RecursionError) as exc:
            raise UsageError(f"records {path}: not a daydream run.json ({exc})") from None
        runs.append(TraceRun(f"{app}/{path.parent.name}", phases, measured, hints))
    return Workload(app or directory.name, "records", tuple(runs), directory)


def _check_phase(phase: Mapping[str, object]) -> None:
    """The numbers a replay and its calibration (`from_records`) read: each one a number of
    seconds, ms or dollars from 0 to a year's worth (ValueError, KeyError or TypeError)."""
    _amount(phase, "phase_time_s", LONGEST_COMPONENT_S)
    _amount(phase, "cost", 1e9)  # dollars: any finite bill
    for record in _list(phase, "invocations"):
        for key in ("execution_ms", "init_ms", "service_ms"):
            _amount(record, key, LONGEST_COMPONENT_S * 1000.0)
        if "queued_ms" in record:
            _amount(record, "queued_ms", LONGEST_COMPONENT_S * 1000.0)
        if record["start"] not in {k.value for k in StartKind}:
            starts = ", ".join(k.value for k in StartKind)
            raise ValueError(f"start {record['start']!r} is not one of {starts}")
    for hot in _list(phase, "hot_starts"):
        _amount(hot, "init_ms", LONGEST_COMPONENT_S * 1000.0)


def _list(entry: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    items = entry.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise TypeError(f"{key} is not a list of objects")
    return items


def _amount(entry: Mapping[str, object], key: str, most: float) -> None:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} {value!r} is not a number")
    if not (math.isfinite(value) and 0 <= value <= most):
        raise ValueError(f"{key} {value!r} is not a number from 0 to {most:,.0f}")


def load_workload(trace: Path | None = None, records: Path | None = None) -> Workload:
    if (trace is None) == (records is None):
        raise UsageError("give one of --trace PATH or --records DIR")
    if records is not None:
        if not records.is_dir():
            raise UsageError(f"records {records}: not a directory")
        return load_records(records)
    assert trace is not None
    return load_trace_workload(trace)


def kind_timings(workload: Workload) -> dict[str, dict[str, list[float]]]:
    """Measured seconds per kind and tier over the workload (records only carry tiers)."""
    result: dict[str, dict[str, list[float]]] = {}
    for run in workload.runs:
        for phase in run.phases:
            for task in phase:
                for tier, seconds in task.tier_seconds.items():
                    result.setdefault(task.kind, {}).setdefault(tier, []).append(seconds)
    return result


def widths(workload: Workload) -> list[list[int]]:
    return [run.widths for run in workload.runs]


def shapes(workload: Workload) -> list[list[Shape]]:
    return [run.shapes for run in workload.runs]


def all_kinds(runs: Sequence[TraceRun]) -> set[str]:
    return {task.kind for run in runs for phase in run.phases for task in phase}
