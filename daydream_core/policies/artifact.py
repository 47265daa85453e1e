"""The original DayDream artifact's policy.

From GitHub ``rohanbasuroy/DayDream``, ``CCL-daydream/build/main.py``.

Per phase it draws the hot-start count at random: 100 samples of a Weibull whose location and
scale come from a moment fit (``scipy.stats.exponweib.fit_loc_scale(widths, 2, 2)``, with
``weibullvariate(2, 2)`` before any phase), normalised to [0, widest phase of the run], one of
them picked at random. Half go high-end, adjusted +10% when the last phase took longer than the
one before, -10% otherwise (from the third phase); the rest low-end. Hot-started functions it
did not use stay in its pool for the next phases. Each component takes a random function of the
pool, or has a new high-end function created for it (a cold start).

The widest phase of the run is something the artifact read from the trace before running; the
replay gives it the same knowledge (`Observation.upcoming_peak`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from functools import cache

from daydream_core.model import HIGH, LOW, Tier
from daydream_core.policies.placement import Starts, Timings
from daydream_core.policies.predictor import Observation
from daydream_core.pricing import PriceTable


@cache
def _exponweib_moments() -> tuple[float, float]:
    from scipy import stats

    mean, variance = stats.exponweib.stats(2, 2, moments="mv")
    return float(mean), float(variance)


def fit_loc_scale(widths: Sequence[float]) -> tuple[float, float]:
    """``exponweib.fit_loc_scale(widths, 2, 2)``: location and scale by the method of moments."""
    mu, mu2 = _exponweib_moments()
    n = len(widths)
    mean = sum(widths) / n
    variance = sum((w - mean) ** 2 for w in widths) / n
    scale = math.sqrt(variance / mu2)
    loc = mean - scale * mu
    if not math.isfinite(loc):
        loc = 0.0
    if not (math.isfinite(scale) and scale > 0):
        scale = 1.0
    return loc, scale


def draw_hot_starts(widths: Sequence[float], peak: int, rng: random.Random) -> int:
    """The artifact's ``predict_hot_start``: a random normalised Weibull sample."""
    alpha, beta = fit_loc_scale(widths) if widths else (2.0, 2.0)
    samples = [rng.weibullvariate(alpha, beta) for _ in range(100)]
    low, high = min(samples), max(samples)
    span = high - low
    choices = [(s - low) / span * peak if span > 0 else 0.0 for s in samples]
    return int(rng.choice(choices))


def split(predicted: int, phase_times: Sequence[float]) -> dict[str, int]:
    """The artifact's ``get_he_le_number``: half high-end, ±10% by the last phase time."""
    if len(phase_times) < 2:
        high = int(predicted / 2)
    elif phase_times[-1] > phase_times[-2]:
        high = int(predicted / 2 * 1.1)
    else:
        high = int(predicted / 2 * 0.9)
    return {HIGH: high, LOW: predicted - high}


def _rng(seed: int, phase: int, salt: int) -> random.Random:
    return random.Random(f"daydream-artifact:{seed}:{phase}:{salt}")


class ArtifactPredictor:
    """Hot starts drawn at random from a normalised Weibull sample (not a critical ratio)."""

    name = "artifact"

    def predict(self, observation: Observation) -> dict[str, int]:
        seen = [sum(w.values()) for w in observation.current]
        peak = observation.upcoming_peak or max(seen, default=0)
        drawn = draw_hot_starts(seen, peak, _rng(observation.seed, observation.next_phase, 0))
        return split(drawn, observation.phase_times)


class ArtifactPlacement:
    """Each component takes a random pooled function, else a new high-end one (cold)."""

    name = "artifact"

    def place_from_pool(
        self, width: int, pool: Mapping[str, int], seed: int, phase: int
    ) -> list[str]:
        functions = [t for t in sorted(pool) for _ in range(pool[t])]
        rng = _rng(seed, phase, 1)
        rng.shuffle(functions)
        taken = functions[:width]
        return taken + [HIGH] * (width - len(taken))

    def place(
        self,
        kinds: Sequence[str],
        timings: Timings,
        tiers: Mapping[str, Tier],
        prices: PriceTable,
        concurrency: int | None = None,
        starts: Starts | None = None,
    ) -> list[str]:
        # Without a pool (the live engine's first phase): new high-end functions, as it did.
        return [HIGH] * len(kinds)
