"""Keep-alive: after a phase, which idle instances are worth keeping.

Workflows often alternate tiers between phases; an idle instance that the next phase will not
use may serve the phase after it as a warm start. So the horizon policy keeps, per tier, the
most that any remaining phase of the run is predicted to need (the remaining phases are those
earlier runs went on to); it releases only the rest.

And for how long: where the platform lets daydream say (`window_s`), until the next run is
expected to need them. An instance idle after its last use in one run is next used at most a
run's length after the next run starts, so the window is the longest gap between runs seen
plus the longest run, with a margin (before a gap has been seen, the field's fixed 10
minutes stands for it). Without one, the local platform's 60 s reclaimed every kept
instance between runs a few minutes apart, and a fixed 10-minute keep-alive beat daydream by
its cold starts (`bench/bench_policies.py` with five policies interleaved).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from daydream_core.policies.predictor import Observation, Predictor


class KeepAlive(Protocol):
    name: str

    def keep(self, predictor: Predictor, observation: Observation) -> dict[str, int] | None:
        """Idle instances to keep per tier after a phase; None leaves it to the platform.

        A keep-alive may also say for how long, `window_s(observation) -> float | None`
        (seconds after an instance's last use; None: the platform's own keep-alive)."""
        ...


# Runs vary with the host's load and their inputs: the window is this much longer than the
# longest gap and run seen (few samples, so their maximum, not a percentile, with a margin).
WINDOW_MARGIN = 0.5
# No window longer than this: the hybrid histogram's range (`baselines.RANGE_S`), 4 hours.
MAX_WINDOW_S = 4 * 3600.0
# The gap between runs assumed before one has been seen: the field's fixed keep-alive (10
# minutes, the `keep-alive` baseline's). Assuming none, the local platform's 60 s reclaimed
# everything between a first and second run 70 s apart: 5 cold starts and 7 hot ones in
# the second run, where `keep-alive` had 2 cold starts (now daydream has 2 as well).
PRIOR_GAP_S = 600.0


class HorizonKeepAlive:
    """Keep what the rest of the run is predicted to need, at its peak, per tier, until the
    next run is expected to have used it."""

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

    def window_s(self, observation: Observation) -> float | None:
        """Seconds to keep an idle instance: the longest gap between runs and the longest run
        (this one so far included), with `WINDOW_MARGIN`. Before a gap has been seen, the
        gap assumed is `PRIOR_GAP_S`. A gap longer than `MAX_WINDOW_S` (overnight, say)
        could not be bridged, so it does not stretch the window for the ones that can; where
        none can, the platform's keep-alive applies (None)."""
        bridgeable = [gap for gap in observation.run_gaps_s if gap <= MAX_WINDOW_S]
        if observation.run_gaps_s and not bridgeable:
            return None
        gap = max(bridgeable, default=PRIOR_GAP_S)
        longest_run = max([*observation.run_times_s, sum(observation.phase_times)])
        return min((1.0 + WINDOW_MARGIN) * (gap + longest_run), MAX_WINDOW_S)


class PlatformKeepAlive:
    """Baseline: release nothing; the platform's own keep-alive decides (its default)."""

    name = "platform"

    def keep(self, predictor: Predictor, observation: Observation) -> dict[str, int] | None:
        return None


def run_spacing(
    spans: Sequence[tuple[float, float]], started: float
) -> tuple[list[float], list[float]]:
    """From earlier runs' (start, end) wall-clock seconds, oldest first, and this run's start:
    the idle gaps before each later run and this one, and each earlier run's length."""
    if not spans:
        return [], []
    starts = [start for start, _ in spans[1:]] + [started]
    gaps = [max(0.0, following - end) for (_, end), following in zip(spans, starts, strict=True)]
    return gaps, [max(0.0, end - start) for start, end in spans]
