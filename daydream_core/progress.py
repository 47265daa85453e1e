"""Live progress of runs, drawn from engine events."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from daydream_core.engine import EngineEvents
from daydream_core.model import InvocationRecord, PhaseRecord, RunRecord


class ProgressDisplay(EngineEvents):
    """One line per run: phase, components done in the phase, hot/warm/cold so far."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._phase = ""
        self._starts = {"hot": 0, "warm": 0, "cold": 0}

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def run_started(self, index: int, of: int) -> None:
        self._starts = {"hot": 0, "warm": 0, "cold": 0}
        self._task = self.progress.add_task(f"run {index}/{of}", total=None, status="starting")

    def phase_started(self, run: RunRecord, phase: int, placement: Sequence[str]) -> None:
        if self._task is None:
            return
        high = sum(1 for t in placement if t == "high")
        self._phase = f"phase {phase + 1} · high {high} low {len(placement) - high}"
        self.progress.update(self._task, total=len(placement), completed=0, status=self._status())

    def invocation_done(self, run: RunRecord, record: InvocationRecord) -> None:
        if self._task is None:
            return
        self._starts[record.start.value] += 1
        self.progress.update(self._task, advance=1, status=self._status())

    def phase_done(self, run: RunRecord, phase: PhaseRecord) -> None:
        pass

    def run_finished(self, run: RunRecord) -> None:
        if self._task is None:
            return
        self._phase = f"{len(run.phases)} phases · {run.execution_time_s:.1f} s · ${run.cost:.6f}"
        if run.error:
            self._phase += " · [red]failed[/red]"
        self.progress.update(self._task, status=self._status())

    def _status(self) -> str:
        s = self._starts
        return f"{self._phase} · hot {s['hot']} warm {s['warm']} cold {s['cold']}"
