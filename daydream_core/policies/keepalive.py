"""Keep-alive: after a phase, which idle instances are worth keeping.

Workflows often alternate tiers between phases; an idle instance that the next phase will not
use may serve the phase after it as a warm start. So the horizon policy keeps, per tier, the
most that any remaining phase of the run is predicted to need (the remaining phases are those
earlier runs went on to); it releases only the rest.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from daydream_core.policies.predictor import Observation, Predictor


class KeepAlive(Protocol):
    name: str

    def keep(self, predictor: Predictor, observation: Observation) -> dict[str, int] | None:
        """Idle instances to keep per tier after a phase; None leaves it to the platform."""
        ...


class HorizonKeepAlive:
    """Keep what the rest of the run is predicted to need, at its peak, per tier."""

    name = "horizon"

    def keep(self, predictor: Predictor, observation: Observation) -> dict[str, int] | None:
        longest = max((len(run) for run in observation.history), default=0)
        if longest == 0:
            return None  # no idea how the run goes on: keep everything (the platform decides)
        needed = dict.fromkeys(observation.costs, 0)
        for phase in range(observation.next_phase, max(longest, observation.next_phase + 1)):
            predicted = predictor.predict(replace(observation, next_phase=phase))
            for tier, count in predicted.items():
                needed[tier] = max(needed[tier], count)
        return needed


class PlatformKeepAlive:
    """Baseline: release nothing; the platform's own keep-alive decides (its default)."""

    name = "platform"

    def keep(self, predictor: Predictor, observation: Observation) -> dict[str, int] | None:
        return None
