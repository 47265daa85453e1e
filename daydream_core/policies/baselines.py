"""Baselines: the oracle, a fixed keep-alive, and the hybrid histogram of ATC'20.

Keep-alive windows: a policy may say how long an idle instance is worth keeping
(`WindowKeepAlive.window_s`); where it does not, the platform's own keep-alive applies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from daydream_core.policies.predictor import Observation, Predictor


class OraclePredictor:
    """Knows the next phase: hot starts exactly what each tier will need beyond what is alive."""

    name = "oracle"

    def predict(self, observation: Observation) -> dict[str, int]:
        if observation.upcoming is None:
            return dict.fromkeys(observation.costs, 0)
        return {t: observation.upcoming.widths.get(t, 0) for t in observation.costs}


class WindowKeepAlive:
    """Keep every idle instance for a window after its last use; release nothing earlier."""

    name = "window"

    def __init__(self, window_s: float) -> None:
        self.window = window_s

    def keep(self, predictor: Predictor, observation: Observation) -> dict[str, int] | None:
        return None  # within the window, everything stays

    def window_s(self, observation: Observation) -> float | None:
        return self.window


def fixed_keep_alive() -> WindowKeepAlive:
    """The literature's fixed keep-alive: 10 minutes after an instance's last use."""
    return WindowKeepAlive(600.0)


def clairvoyant_keep_alive() -> WindowKeepAlive:
    """The oracle's: idle time is free where a policy may set a window (the local platform,
    Ray), so keeping every instance for the longest window any policy may set (`RANGE_S`)
    keeps each until it is next used. Where the platform reclaims on its own (Lambda), the
    window does not apply."""
    return WindowKeepAlive(RANGE_S)


# -- hybrid histogram ---------------------------------------------------------------------------

RANGE_S = 4 * 3600.0
BIN_S = 60.0
CV_THRESHOLD = 2.0
OOB_THRESHOLD = 0.5
HEAD, TAIL = 0.05, 0.99
HIST_MARGIN = 0.10
FORECAST_MARGIN = 0.15


def idle_times(observation: Observation) -> list[float]:
    """Per tier, the idle time before each phase that used it: the phase times of the phases
    in between (the tier's function is the application; a phase using it, one arrival); and,
    for each tier this run used, the gaps between runs (the idle time before a run's first
    arrival is at least its gap)."""
    gaps: list[float] = []
    for tier in observation.costs:
        last_end: float | None = None
        clock = 0.0
        for widths, seconds in zip(observation.current, observation.phase_times, strict=False):
            if widths.get(tier, 0) > 0:
                if last_end is not None:
                    gaps.append(clock - last_end)
                last_end = clock + seconds
            clock += seconds
        if last_end is not None:
            gaps.extend(observation.run_gaps_s)
    return gaps


class Histogram:
    """Idle times in 1-minute bins over 4 hours, with the paper's pattern tests."""

    def __init__(self, idle: Sequence[float]) -> None:
        self.bins = [0] * int(RANGE_S / BIN_S)
        self.out_of_bounds = 0
        self.raw = list(idle)
        for seconds in idle:
            index = int(seconds // BIN_S)
            if index < len(self.bins):
                self.bins[index] += 1
            else:
                self.out_of_bounds += 1

    @property
    def count(self) -> int:
        return sum(self.bins)

    def cv(self) -> float:
        n = len(self.bins)
        mean = self.count / n
        if mean == 0:
            return 0.0
        variance = sum((b - mean) ** 2 for b in self.bins) / (n - 1)
        return math.sqrt(variance) / mean

    def oob_rate(self) -> float:
        total = self.count + self.out_of_bounds
        return self.out_of_bounds / total if total else 0.0

    def percentile_bin(self, p: float) -> int:
        prefix = 0
        for i, b in enumerate(self.bins):
            prefix += b
            if prefix / self.count >= p:
                return i
        return len(self.bins) - 1

    def forecast(self) -> float:
        """Next idle time when most fall beyond the range. The paper fits ARIMA; with the few
        idle times a run has, an exponentially weighted mean (ARIMA(0,1,1)'s forecast with a
        fixed smoothing of 0.5) is what such a fit reduces to."""
        level = self.raw[0]
        for value in self.raw[1:]:
            level = 0.5 * value + 0.5 * level
        return level

    def windows(self) -> tuple[float, float]:
        """(pre-warm window, keep-alive window), seconds."""
        if self.oob_rate() >= OOB_THRESHOLD:
            idle = self.forecast()
            return idle * (1 - FORECAST_MARGIN), idle * FORECAST_MARGIN * 2
        if self.cv() < CV_THRESHOLD:
            return 0.0, RANGE_S  # not representative: no pre-warm, keep for the whole range
        head = self.percentile_bin(HEAD) * BIN_S * (1 - HIST_MARGIN)
        tail = (self.percentile_bin(TAIL) + 1) * BIN_S * (1 + HIST_MARGIN)
        return head, tail


class HybridHistogramPredictor:
    """Pre-warm a tier's instances (as many as it used last) when its pre-warm window is
    positive: they were unloaded after the last use and come back just before the next one.
    With a zero pre-warm window the instances simply stay loaded (no hot starts)."""

    name = "hybrid-histogram"

    def predict(self, observation: Observation) -> dict[str, int]:
        prewarm, _ = Histogram(idle_times(observation)).windows()
        last = observation.current[-1] if observation.current else {}
        if prewarm <= 0:
            return dict.fromkeys(observation.costs, 0)
        return {t: last.get(t, 0) for t in observation.costs}


class HybridHistogramKeepAlive(WindowKeepAlive):
    name = "hybrid-histogram"

    def __init__(self) -> None:
        super().__init__(RANGE_S)

    def window_s(self, observation: Observation) -> float | None:
        prewarm, keep = Histogram(idle_times(observation)).windows()
        return prewarm + keep
