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
from daydream_core.policies.naive import NAIVE
from daydream_core.policies.predictor import (
    DayDreamPredictor,
    Observation,
    Predictor,
    Shape,
    StartCosts,
)
from daydream_core.simulator.workload import Workload


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
    shapes: Sequence[Sequence[Shape]] | None = None,
) -> Score:
    """Newsvendor loss and MAE of `predictor` over `runs` (widths per phase, totals), with
    each phase's kinds and hint where `shapes` gives them (as the controller would)."""
    unit = costs.get(HIGH) or next(iter(costs.values()))
    only = {HIGH: unit}  # totals are judged as one tier at the high tier's costs
    loss = error = 0.0
    idle = cold = phases = 0
    history: list[list[dict[str, int]]] = []
    known = list(shapes) if shapes is not None else [[] for _ in runs]
    for index, run in enumerate(runs):
        alive = 0
        current: list[dict[str, int]] = []
        for k, width in enumerate(run):
            observation = Observation(
                history,
                current,
                k,
                only,
                max_concurrency=max_concurrency,
                shapes=known[index][:k],
                history_shapes=known[:index],
            )
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


def compare(
    workload: Workload,
    costs: Mapping[str, StartCosts],
    max_concurrency: int = 1000,
) -> list[Score]:
    """The daydream predictor, then every naive one, on a workload's recorded phases (widths,
    kinds, hints), the same costs for all."""
    runs = [run.widths for run in workload.runs]
    shapes = [run.shapes for run in workload.runs]
    predictors: list[Predictor] = [DayDreamPredictor(), *(naive() for naive in NAIVE)]
    return [score(p, runs, costs, max_concurrency, shapes) for p in predictors]
