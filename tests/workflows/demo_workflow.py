"""A small dynamic workflow for the engine's tests: real (small) numerical work per component."""

from __future__ import annotations

import numpy as np

from daydream_core import Call, ComponentContext, Preset, RunContext, Workflow

workflow = Workflow(
    "demo",
    presets={
        "small": Preset({"width": 3, "size": 120, "phases": 4}),
        "failing": Preset({"width": 2, "size": 60, "phases": 3, "fail_at": 2}),
        "buggy": Preset({"width": 2, "size": 60, "phases": 3, "plan_bug_at": 1}),
        # Every phase two wider than the one before: each needs instances the last did not.
        "growing": Preset({"width": 1, "size": 120, "phases": 4, "grow": 2}),
    },
    preload=("numpy",),
)


@workflow.component
def solve(ctx: ComponentContext, size: int, seed: int) -> float:
    """Solve a random linear system; return the residual norm."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((size, size)) + size * np.eye(size)
    b = rng.standard_normal(size)
    x = np.linalg.solve(a, b)
    ctx.store.put_array(ctx.key("x.npy"), x)
    return float(np.linalg.norm(a @ x - b))


@workflow.component
def explode(ctx: ComponentContext, message: str) -> None:
    raise ValueError(message)


@workflow.phases
def plan(run: RunContext):  # type: ignore[no-untyped-def]
    params = run.params
    width = int(params["width"])
    for phase in range(int(params["phases"])):
        if params.get("plan_bug_at") == phase:
            residuals = {}["no such key"]  # a bug in the planning code, not in a component
        if params.get("fail_at") == phase:
            yield [Call("explode", {"message": f"boom in phase {phase}"})]
        seeds = run.rng.integers(0, 2**31, size=width)
        residuals = yield [Call("solve", {"size": params["size"], "seed": int(s)}) for s in seeds]
        # Dynamic: the next phase's width depends on this phase's results (it grows by the
        # half of the systems that were solved to machine precision).
        width = len(residuals) + sum(1 for r in residuals if r < 1e-9) // 2
        width += int(params.get("grow", 0))
    return {"phases": int(params["phases"])}
