"""A small adaptive workflow that says what it knows of each next phase's width (`WidthHint`).

Each round scans `width` points, refines those whose value is above the median (at most
half of them: the scan's hint is a bound), and merges them in one component (exactly one: the
refinement's hint is exact). The merge says the next round scans twice the refined points, or
that the run ends.
"""

from __future__ import annotations

import numpy as np

from daydream_core import Call, ComponentContext, Phase, Preset, RunContext, WidthHint, Workflow

workflow = Workflow(
    "hinted",
    presets={"small": Preset({"width": 6, "rounds": 2})},
    preload=("numpy",),
)


@workflow.component
def scan(ctx: ComponentContext, seed: int) -> float:
    return float(np.random.default_rng(seed).standard_normal(64).mean())


@workflow.component
def refine(ctx: ComponentContext, value: float) -> float:
    return float(np.sqrt(abs(value)))


@workflow.component
def merge(ctx: ComponentContext, values: list[float]) -> float:
    return float(np.sum(values))


@workflow.phases
def plan(run: RunContext):  # type: ignore[no-untyped-def]
    width = int(run.params["width"])
    rounds = int(run.params["rounds"])
    total = 0.0
    for round_index in range(rounds):
        seeds = run.rng.integers(0, 2**31, size=width)
        scans = [Call("scan", {"seed": int(s)}) for s in seeds]
        values = yield Phase(scans, WidthHint(at_most=width // 2))
        cut = float(np.median(values))
        chosen = [v for v in values if v > cut][: width // 2]
        refined = yield Phase([Call("refine", {"value": v}) for v in chosen], WidthHint(expected=1))
        last = round_index + 1 == rounds
        after = WidthHint(expected=0) if last else WidthHint(expected=2 * len(chosen))
        [merged] = yield Phase([Call("merge", {"values": refined})], after)
        total += merged
        width = 2 * len(chosen)
    return {"total": total}
