"""A wide phase of components that do almost nothing, for the local platform's queueing tests."""

from __future__ import annotations

from daydream_core import Call, ComponentContext, Preset, RunContext, Workflow

workflow = Workflow(
    "wide",
    presets={
        "1000": Preset({"widths": [1000, 1]}),
        "mixed": Preset({"widths": [200, 40, 200]}),
    },
)


@workflow.component
def noop(ctx: ComponentContext, index: int) -> int:
    return index


@workflow.phases
def plan(run: RunContext):  # type: ignore[no-untyped-def]
    for width in run.params["widths"]:
        yield [Call("noop", {"index": i}) for i in range(int(width))]
    return {"phases": len(run.params["widths"])}
