"""Where a run's wall time goes: its phases, and the controller's work around them.

A phase's time runs from the start of its dispatch to the end of its last component. The
controller's time after phase k runs from there to the start of phase k+1's dispatch (to the
end of the run, after the last phase): learning, profile-store writes, the run's files, the
workflow planning the next phase, its placement, pauses. Before the first phase, the run's
setup time (the first prediction, planning and placing the first phase). Every mark is read
from one monotonic clock and each interval starts where the previous one ended, so

    setup + sum(phase times) + sum(controller times) = wall time

holds by construction, from the records (`RunRecord.accounted_s`), with no clock threshold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from daydream_core.model import RunRecord


class RunClock:
    """Marks a run's intervals and files them into its records as they close."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self._now = now
        self.started = now()
        self._mark = self.started
        self._parts: dict[str, float] = {}

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Time a piece of the controller's work (its breakdown in the records)."""
        begun = self._now()
        try:
            yield
        finally:
            self._parts[name] = self._parts.get(name, 0.0) + self._now() - begun

    def dispatching(self, run: RunRecord) -> float:
        """A phase's dispatch starts now: the controller's interval before it closes."""
        return self._close(run)

    def phase_ended(self) -> float:
        """The phase's last component is done: the controller's interval opens."""
        self._mark = self._now()
        self._parts = {}
        return self._mark

    def finish(self, run: RunRecord) -> None:
        """The run is over: close the last interval and record the wall time."""
        end = self._close(run)
        run.wall_time_s = end - self.started

    def _close(self, run: RunRecord) -> float:
        now = self._now()
        gap = now - self._mark
        if run.phases:
            run.phases[-1].controller_time_s += gap
            parts = run.phases[-1].controller_parts
        else:
            run.setup_time_s += gap
            parts = run.setup_parts
        for name, seconds in self._parts.items():
            parts[name] = parts.get(name, 0.0) + seconds
        self._mark = now
        self._parts = {}
        return now
