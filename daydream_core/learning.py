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

from daydream_core.policies.learned import Pair, RatioKey, fold_pairs, paired
from daydream_core.profile import (
    Moments,
    PhaseWidths,
    ProfileStore,
    fold_moments,
    merge_moments,
    timings_of,
)


class RunLearning:
    def __init__(self, profile: ProfileStore, app: str, provider: str, executor: Executor) -> None:
        self.profile = profile
        self.app = app
        self.provider = provider
        self._executor = executor
        self._moments: dict[tuple[str, str], Moments] = profile.moments(app, provider)
        self._ratios: dict[RatioKey, Moments] = profile.ratios(app, provider)
        self._pending: Future[object] | None = None

    def timings(self) -> dict[str, dict[str, float]]:
        """Execution seconds: kind -> tier -> seconds (this run's phases included)."""
        return timings_of(self._moments, self._ratios)

    def paired(self) -> set[tuple[str, str]]:
        """(kind, tier) where a probe has measured the kind's tier ratio."""
        return paired(self._ratios)

    def provisional(
        self, executions: Sequence[tuple[str, str, float]], pairs: Sequence[Pair]
    ) -> tuple[dict[str, dict[str, float]], set[tuple[str, str]]]:
        """The timings and paired tiers with a running phase's results so far, which are
        learned for good (and persisted) only when it ends."""
        moments = dict(self._moments)
        for key, batch in fold_moments(executions).items():
            moments[key] = merge_moments(moments.get(key, (0, 0.0, 0.0)), batch)
        ratios = dict(self._ratios)
        for ratio, folded in fold_pairs(pairs).items():
            ratios[ratio] = merge_moments(ratios.get(ratio, (0, 0.0, 0.0)), folded)
        return timings_of(moments, ratios), paired(ratios)

    def learn_probes(self, pairs: Sequence[Pair]) -> None:
        """Fold probes that belong to no phase of their own (ended after the run's last
        phase) in; persist them in the background."""
        if not pairs:
            return
        self._fold((), pairs)
        self._pending = self._executor.submit(
            self.profile.record_pairs, self.app, self.provider, list(pairs)
        )

    def learn(
        self,
        executions: Sequence[tuple[str, str, float]],
        inits: Sequence[tuple[str, float]],
        widths: PhaseWidths,
        pairs: Sequence[Pair] = (),
    ) -> dict[str, dict[str, float]]:
        """Fold one phase in; persist it in the background; the timings now."""
        self._fold(executions, pairs)
        self._pending = self._executor.submit(
            self.profile.learn_phase,
            self.app,
            self.provider,
            list(executions),
            list(inits),
            widths,
            list(pairs),
        )
        return self.timings()

    def _fold(self, executions: Sequence[tuple[str, str, float]], pairs: Sequence[Pair]) -> None:
        """Merge samples into the run's moments, once the write in flight is done (one at a
        time)."""
        self.wait()
        for key, batch in fold_moments(executions).items():
            self._moments[key] = merge_moments(self._moments.get(key, (0, 0.0, 0.0)), batch)
        for ratio, folded in fold_pairs(pairs).items():
            self._ratios[ratio] = merge_moments(self._ratios.get(ratio, (0, 0.0, 0.0)), folded)

    def wait(self) -> None:
        """Until the last phase's write is done; its failure (a `ProfileError`) is raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()
