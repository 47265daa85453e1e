"""What a running phase has taught so far, from its results as they arrive.

The controller learns a phase for good when it ends (`daydream_core.learning`). But a result
can teach something the next phase's hot starts depend on before then: a kind's first sample
on a tier, a probe's first ratio. In a first run, the probe that shows a tier faster reports
while the phase still runs; learned only at the phase's end, the next phase's hot starts had
gone to the other tier, and its components cold started (the `ccl` records: 7.0 s instead of
3.1 s for the second phase). So the engine folds each result into a provisional copy as it
arrives and, where it is news, has the controller predict the next phase again. The simulator
does the same in virtual time (`daydream_core.simulator.executor`).
"""

from __future__ import annotations

import math
from collections.abc import Collection

from daydream_core.learning import RunLearning
from daydream_core.model import InvocationRecord
from daydream_core.policies.learned import Pair
from daydream_core.policies.placement import Timings


class PhaseLessons:
    """One phase's results so far, on top of what the run had learned when it started."""

    def __init__(
        self, learning: RunLearning, timings: Timings, paired: Collection[tuple[str, str]]
    ) -> None:
        self._learning = learning
        self._known = {
            (k, t) for k, tiers in timings.items() for t, s in tiers.items() if s < math.inf
        }
        self._paired = set(paired)
        self._executions: list[tuple[str, str, float]] = []
        self._pairs: list[Pair] = []
        self._probes: set[tuple[int, str]] = set()  # (phase, component) of the probes taken

    def sample(self, record: InvocationRecord) -> bool:
        """A component ended; whether its sample is its kind's first on its tier."""
        if record.error is not None:
            return False
        self._executions.append((record.kind, record.tier, record.execution_ms))
        news = (record.kind, record.tier) not in self._known
        self._known.add((record.kind, record.tier))
        return news

    def probe(self, probe: InvocationRecord, original: InvocationRecord | None) -> bool:
        """A probe ended (`original`: its original's record, None while that still runs);
        whether its ratio is its kind's first between those tiers."""
        key = (probe.phase, probe.component)
        if key in self._probes or original is None:
            return False
        self._probes.add(key)
        if probe.error is not None or original.error is not None or original.execution_ms <= 0:
            return False
        self._pairs.append(
            (probe.kind, probe.tier, original.tier, probe.execution_ms / original.execution_ms)
        )
        news = (probe.kind, probe.tier) not in self._paired
        self._paired |= {(probe.kind, probe.tier), (probe.kind, original.tier)}
        return news

    def now(self) -> tuple[dict[str, dict[str, float]], set[tuple[str, str]]]:
        """The timings and paired tiers with this phase's results so far."""
        return self._learning.provisional(self._executions, self._pairs)
