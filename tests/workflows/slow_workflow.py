"""A workflow whose one phase keeps its instances busy, for killing controllers mid-run."""

from __future__ import annotations

import os
import time
from pathlib import Path

from daydream_core import Call, ComponentContext, Preset, RunContext, Workflow

workflow = Workflow("slow", presets={"small": Preset({"seconds": 60.0, "marker_dir": ""})})


@workflow.component
def busy(ctx: ComponentContext, seconds: float, marker_dir: str) -> int:
    """Mark that this instance is busy (its pid), then compute for `seconds`."""
    Path(marker_dir, f"{os.getpid()}.busy").write_text(ctx.component_id)
    end, count = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        count += 1
    return count


@workflow.phases
def plan(run: RunContext):  # type: ignore[no-untyped-def]
    params = run.params
    yield [Call("busy", dict(params)) for _ in range(2)]
