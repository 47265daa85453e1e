"""``run-<i>/run.log``: what the terminal does not show of a run, as it happens.

Each phase's placement and the hot starts predicted for it against what it needed, every
invocation (tier, instance, how it started, its times), warnings, messages logged under the
``daydream`` logger (retries, for one), and failed components' remote tracebacks. The log is
appended line by line, so an interrupted run's log ends where the run did.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TextIO

from daydream_core.engine import EngineEvents
from daydream_core.model import HIGH, InvocationRecord, PhaseRecord, RunRecord
from daydream_core.outputs import FILE_MODE, run_dir

LOG_NAME = "run.log"
LOGGER = "daydream"  # what is logged under it (and its children) lands in the run's log


def _tiers(counts: Mapping[str, int]) -> str:
    return " ".join(f"{tier} {n}" for tier, n in sorted(counts.items())) or "none"


class RunLog(EngineEvents):
    """Writes the log of the run in progress into its run directory under `out_dir`."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._file: IO[str] | None = None
        self._origin = time.perf_counter()
        self._handler = _Forward(self)

    # -- the file ------------------------------------------------------------------------------

    def write(self, message: str) -> None:
        if self._file is None:
            return
        stamp = time.strftime("%H:%M:%S")
        elapsed = time.perf_counter() - self._origin
        for line in message.rstrip("\n").splitlines() or [""]:
            self._file.write(f"{stamp} +{elapsed:8.3f}s {line}\n")
        self._file.flush()

    def run_started(self, index: int, header: Sequence[str] = ()) -> Path:
        """Open run `index`'s log (its directory is already reserved) and write `header`."""
        self.close()
        path = run_dir(self.out_dir, index) / LOG_NAME
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._origin = time.perf_counter()
        self.write(f"run {index}")
        for line in header:
            self.write(line)
        return path

    def run_finished(self, run: RunRecord) -> None:
        starts = run.start_counts()
        self.write(
            f"run {run.index} {'stopped: ' + run.error if run.error else 'finished'}: "
            f"{len(run.phases)} phases, {run.execution_time_s:.3f} s, ${run.cost:.6f}, "
            f"hot {starts['hot']} warm {starts['warm']} cold {starts['cold']}"
        )
        if run.headline:
            self.write(f"result: {run.headline}")
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- engine events -----------------------------------------------------------------------

    def phase_started(self, run: RunRecord, phase: int, placement: Sequence[str]) -> None:
        high = sum(1 for tier in placement if tier == HIGH)
        self.write(
            f"phase {phase + 1}: {len(placement)} components placed high {high} "
            f"low {len(placement) - high}"
        )

    def invocation_done(self, run: RunRecord, record: InvocationRecord) -> None:
        self.write(
            f"  {record.component} {record.kind} on {record.tier} {record.instance or '-'} "
            f"{record.start.value}: service {record.service_ms:.1f} ms, execution "
            f"{record.execution_ms:.1f} ms, init {record.init_ms:.1f} ms, billed "
            f"{record.billed_ms:.0f} ms, ${record.cost:.8f}"
        )
        if record.error:
            self.write(f"  {record.component} failed: {record.error}")

    def phase_done(self, run: RunRecord, phase: PhaseRecord) -> None:
        hot = sum(1 for r in phase.invocations if r.start.value == "hot")
        self.write(
            f"phase {phase.index + 1} done: {phase.phase_time_s:.3f} s, ${phase.cost:.6f}; "
            f"hot starts predicted {sum(phase.predicted.values())} ({_tiers(phase.predicted)}), "
            f"issued {len(phase.hot_starts)}, used {hot}; widths {_tiers(phase.widths)}"
        )

    # -- what else is said while a run goes ------------------------------------------------------

    @contextmanager
    def capturing(self) -> Iterator[None]:
        """Warnings and the ``daydream`` logger's records go to the run's log too (warnings
        still reach the terminal as before)."""
        previous = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            self.write(f"warning: {message}")
            previous(message, category, filename, lineno, file, line)

        logger = logging.getLogger(LOGGER)
        level = logger.level
        warnings.showwarning = show
        logger.addHandler(self._handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        try:
            yield
        finally:
            warnings.showwarning = previous
            logger.removeHandler(self._handler)
            logger.setLevel(level)
            self.close()


class _Forward(logging.Handler):
    def __init__(self, log: RunLog) -> None:
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.log.write(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:
            self.handleError(record)


class Broadcast(EngineEvents):
    """Engine events to several listeners (the progress display and the run log)."""

    def __init__(self, *listeners: EngineEvents) -> None:
        self.listeners = listeners

    def phase_started(self, run: RunRecord, phase: int, placement: Sequence[str]) -> None:
        for listener in self.listeners:
            listener.phase_started(run, phase, placement)

    def invocation_done(self, run: RunRecord, record: InvocationRecord) -> None:
        for listener in self.listeners:
            listener.invocation_done(run, record)

    def phase_done(self, run: RunRecord, phase: PhaseRecord) -> None:
        for listener in self.listeners:
            listener.phase_done(run, phase)
