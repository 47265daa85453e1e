"""Judging width predictors by what a miss costs (newsvendor loss), width MAE beside it.

Online, as the controller sees it: for run i the history is runs 0..i-1, for phase k the
current run's phases 0..k-1. A prediction p for a phase of width w, with `a` instances already
alive (kept from earlier phases of the run), hot starts max(0, p - a); the phase has max(p, a)
ready instances, so max(0, w - max(p, a)) cold starts and min(new, max(0, max(p, a) - w)) idle
hot starts. Loss = idle hot starts x an idle hot start's cost + cold starts x a cold start's.
Instances stay alive through a run (the platform keeps them) and start from none each run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from daydream_core.controller import cap_across_tiers
from daydream_core.model import HIGH
from daydream_core.policies.predictor import Observation, Predictor, StartCosts


@dataclass(frozen=True)
class Score:
    predictor: str
    loss: float
    mae: float
    idle: int
    cold: int


def score(
    predictor: Predictor,
    runs: Sequence[Sequence[int]],
    costs: Mapping[str, StartCosts],
    max_concurrency: int = 1000,
) -> Score:
    """Newsvendor loss and MAE of `predictor` over `runs` (widths per phase, totals)."""
    unit = costs.get(HIGH) or next(iter(costs.values()))
    only = {HIGH: unit}  # totals are judged as one tier at the high tier's costs
    loss = error = 0.0
    idle = cold = phases = 0
    history: list[list[dict[str, int]]] = []
    for run in runs:
        alive = 0
        current: list[dict[str, int]] = []
        for k, width in enumerate(run):
            observation = Observation(history, current, k, only, max_concurrency=max_concurrency)
            capped = cap_across_tiers(predictor.predict(observation), max_concurrency)
            predicted = sum(capped.values())
            new = max(0, predicted - alive)
            ready = max(predicted, alive)
            short = max(0, width - ready)
            wasted = min(new, max(0, ready - width))
            loss += wasted * unit.idle_hot_start + short * unit.cold_start
            idle += wasted
            cold += short
            error += abs(predicted - width)
            phases += 1
            alive = max(ready, width)
            current.append({HIGH: width})
        history.append(current)
    return Score(predictor.name, loss, error / max(1, phases), idle, cold)
