"""Running a workflow in this process, without instances: for tests, notebooks and debugging.

`run_inline` calls each component directly, with the arguments and results passed through JSON
as they are on the wire, so what works inline works on a provider. `drive` runs the phase
generator with any executor (a fake one, in tests of the generator's logic).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from daydream_core.model import HIGH, Call, Tier
from daydream_core.objectstore import ObjectStore
from daydream_core.workflow import ComponentContext, RunContext, Workflow

Executor = Callable[[int, Sequence[Call]], list[Any]]  # (phase index, calls) -> results
INLINE_TIER = Tier(HIGH, 10240, 1.0)


@dataclass
class InlineRun:
    """What a run made: its result, and every phase's calls and outputs."""

    result: Any = None
    phases: list[list[Call]] = field(default_factory=list)
    outputs: list[list[Any]] = field(default_factory=list)


def drive(workflow: Workflow, run: RunContext, execute: Executor) -> InlineRun:
    """Run the phase generator to its end, executing each phase with `execute`."""
    made = InlineRun()
    generator = workflow.plan(run)
    try:
        calls = next(generator)
        while True:
            made.phases.append(list(calls))
            results = execute(len(made.phases) - 1, calls)
            made.outputs.append(results)
            calls = generator.send(results)
    except StopIteration as finished:
        made.result = finished.value
    return made


def run_inline(
    workflow: Workflow,
    params: Mapping[str, Any],
    store: ObjectStore,
    *,
    seed: int = 0,
    run_index: int = 1,
    tier: Tier = INLINE_TIER,
    run_id: str = "inline",
) -> InlineRun:
    """Run `workflow` here, calling every component in this process, in order."""

    def execute(phase: int, calls: Sequence[Call]) -> list[Any]:
        results = []
        for i, call in enumerate(calls):
            ctx = ComponentContext(
                store=store,
                tier=tier,
                threads=max(1, int(tier.vcpus)),
                run_id=run_id,
                component_id=f"p{phase + 1}-c{i + 1}",
                phase=phase,
            )
            args = json.loads(json.dumps(dict(call.args)))
            output = workflow.component_fn(call.kind)(ctx, **args)
            results.append(json.loads(json.dumps(output)))
        return results

    run = RunContext(params=params, seed=seed, run_index=run_index, store=store, run_id=run_id)
    return drive(workflow, run, execute)
