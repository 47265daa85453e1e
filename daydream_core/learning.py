"""A run's learning: in memory for the controller, persisted in the background.

After each phase the controller needs the kinds' timings at once (the next phase's placement
uses them); the profile store needs them too, but not before the next phase starts. So the
phase's samples are merged into the run's own copy of the moments (read once, at the run's
start) and the same samples go to the profile store in one transaction on a background
thread, while the next phase runs. The store merges them into whatever it holds then, so
concurrent runs still lose no update. One write is in flight at a time; a failed write
surfaces at the next phase's learning or at the run's end (`wait`), never silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, Future

from daydream_core.profile import (
    Moments,
    PhaseWidths,
    ProfileStore,
    fold_moments,
    merge_moments,
)


class RunLearning:
    def __init__(self, profile: ProfileStore, app: str, provider: str, executor: Executor) -> None:
        self.profile = profile
        self.app = app
        self.provider = provider
        self._executor = executor
        self._moments: dict[tuple[str, str], Moments] = profile.moments(app, provider)
        self._pending: Future[object] | None = None

    def timings(self) -> dict[str, dict[str, float]]:
        """Mean execution seconds: kind -> tier -> seconds (this run's phases included)."""
        result: dict[str, dict[str, float]] = {}
        for (kind, tier), (_, mean_ms, _) in self._moments.items():
            result.setdefault(kind, {})[tier] = mean_ms / 1000.0
        return result

    def learn_executions(self, executions: Sequence[tuple[str, str, float]]) -> None:
        """Fold samples that belong to no phase of their own (probes that ended after the
        run's last phase) in; persist them in the background."""
        if not executions:
            return
        self._fold(executions)
        self._pending = self._executor.submit(
            self.profile.record_executions, self.app, self.provider, list(executions)
        )

    def learn(
        self,
        executions: Sequence[tuple[str, str, float]],
        inits: Sequence[tuple[str, float]],
        widths: PhaseWidths,
    ) -> dict[str, dict[str, float]]:
        """Fold one phase in; persist it in the background; the timings now."""
        self._fold(executions)
        self._pending = self._executor.submit(
            self.profile.learn_phase,
            self.app,
            self.provider,
            list(executions),
            list(inits),
            widths,
        )
        return self.timings()

    def _fold(self, executions: Sequence[tuple[str, str, float]]) -> None:
        """Merge samples into the run's moments, once the write in flight is done (one at a
        time)."""
        self.wait()
        for key, batch in fold_moments(executions).items():
            self._moments[key] = merge_moments(self._moments.get(key, (0, 0.0, 0.0)), batch)

    def wait(self) -> None:
        """Until the last phase's write is done; its failure (a `ProfileError`) is raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()
