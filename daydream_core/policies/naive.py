"""Naive width predictors: what the daydream predictor must beat on newsvendor loss."""

from __future__ import annotations

import math
from statistics import median

import numpy as np

from daydream_core.policies.predictor import Observation, shares, totals


def _split(total: float, observation: Observation) -> dict[str, int]:
    split = shares(observation)
    return {t: max(0, math.ceil(total * split[t] - 1e-9)) for t in observation.costs}


class LastWidth:
    """The width of the last phase seen (this run, else the last run's last phase)."""

    name = "last-width"

    def predict(self, observation: Observation) -> dict[str, int]:
        seen = totals(observation.current) or (
            totals(observation.history[-1]) if observation.history else []
        )
        return _split(seen[-1] if seen else 0, observation)


class RunningMedian:
    """The median of every width seen so far, this run and earlier ones."""

    name = "running-median"

    def predict(self, observation: Observation) -> dict[str, int]:
        seen = [w for run in observation.history for w in totals(run)]
        seen += totals(observation.current)
        return _split(median(seen) if seen else 0, observation)


class SameIndexMean:
    """The mean width of the same phase index in earlier runs (zero where a run had ended)."""

    name = "same-index-mean"

    def predict(self, observation: Observation) -> dict[str, int]:
        k = observation.next_phase
        column = [totals(run)[k] if len(run) > k else 0 for run in observation.history]
        if not column:
            return LastWidth().predict(observation)
        return _split(sum(column) / len(column), observation)


class PooledQuantile:
    """The empirical quantile of every width seen, at each tier's critical ratio."""

    name = "pooled-quantile"

    def predict(self, observation: Observation) -> dict[str, int]:
        seen = [w for run in observation.history for w in totals(run)]
        seen += totals(observation.current)
        if not seen:
            return dict.fromkeys(observation.costs, 0)
        split = shares(observation)
        result = {}
        for tier, costs in observation.costs.items():
            q = float(np.quantile(seen, costs.critical_ratio, method="inverted_cdf"))
            result[tier] = max(0, math.ceil(q * split[tier] - 1e-9))
        return result


NAIVE = (LastWidth, RunningMedian, SameIndexMean, PooledQuantile)
