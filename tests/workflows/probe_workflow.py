"""Components that report on the instance they run in, for the local platform's tests."""

from __future__ import annotations

import os
import time

import numpy as np

from daydream_core import ComponentContext, Preset, Workflow

workflow = Workflow("probe", presets={"small": Preset({})}, preload=("numpy",))


@workflow.component
def whoami(ctx: ComponentContext) -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "cpus": sorted(os.sched_getaffinity(0)),
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        "ctx_threads": ctx.threads,
        "tier": ctx.tier.name,
        "policy": os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None,
    }


@workflow.component
def allocate(ctx: ComponentContext, megabytes: int) -> int:
    block = np.ones(megabytes * 1024 * 1024 // 8)
    return int(block.size)


@workflow.component
def spin(ctx: ComponentContext, seconds: float) -> int:
    """Busy work for about `seconds` (to exceed a timeout)."""
    end, count = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        count += 1
    return count


@workflow.component
def fail(ctx: ComponentContext, message: str) -> None:
    raise RuntimeError(message)
