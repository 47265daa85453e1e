"""Phases of components that do almost nothing: what is measured is the platform's queueing."""

from __future__ import annotations

from daydream_core import Call, ComponentContext, Preset, RunContext, Workflow

workflow = Workflow("noop", presets={"wide": Preset({"widths": [10_000, 1]})})


@workflow.component
def noop(ctx: ComponentContext, index: int) -> int:
    return index


@workflow.phases
def plan(run: RunContext):  # type: ignore[no-untyped-def]
    for width in run.params["widths"]:
        yield [Call("noop", {"index": i}) for i in range(int(width))]
    return {"phases": len(run.params["widths"])}
