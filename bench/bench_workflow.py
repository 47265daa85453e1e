"""The benchmarks' workflow: a multi-threaded BLAS kernel in phases of changing width."""

from __future__ import annotations

import numpy as np

from daydream_core import Call, ComponentContext, Preset, RunContext, Workflow

workflow = Workflow(
    "bench",
    presets={"small": Preset({"widths": [2, 4, 6, 3, 5], "size": 900, "repeats": 3})},
    preload=("numpy",),
)


@workflow.component
def matmul(ctx: ComponentContext, size: int, repeats: int, seed: int) -> float:
    """Dense matrix products: BLAS uses every thread of the instance's envelope."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((size, size))
    for _ in range(repeats):
        a = a @ a
        a /= np.linalg.norm(a)
    return float(np.trace(a))


@workflow.phases
def plan(run: RunContext):  # type: ignore[no-untyped-def]
    p = run.params
    for phase, width in enumerate(p["widths"]):
        yield [
            Call("matmul", {"size": p["size"], "repeats": p["repeats"], "seed": phase * 100 + i})
            for i in range(width)
        ]
