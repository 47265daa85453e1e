"""The suite's own small workflow: components that exercise the contract, not science.

`sleep` exists only to test timeouts; everything else returns what it was given or fails on
purpose. Importable without pytest: cloud providers package this module into their functions.
"""

from __future__ import annotations

import hashlib
import os
import resource
import time
from pathlib import Path
from typing import Any

from daydream_core.model import Call
from daydream_core.workflow import ComponentContext, Preset, RunContext, Workflow

NAME = "conformance"
FAILURE_MARKER = "conformance-failure-marker"

workflow = Workflow(
    NAME,
    presets={"small": Preset({"width": 3}, description="one phase of echoes")},
    description="the provider conformance suite's test workflow",
)


@workflow.component
def echo(ctx: ComponentContext, value: Any = None, key: str | None = None) -> dict[str, Any]:
    """Return `value` with what the instance sees of its tier; optionally store it too."""
    if key is not None:
        ctx.store.put_json(ctx.key(key), value)
    return {
        "value": value,
        "tier": ctx.tier.name,
        "memory_mb": ctx.tier.memory_mb,
        "component": ctx.component_id,
        "stored": ctx.key(key) if key is not None else None,
    }


def _cgroup_memory_mb() -> float | None:
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return None
    return None if text == "max" else int(text) / 2**20


def _boot_id() -> str:
    """The running kernel's boot id: equal for every process on this machine (and in its
    containers), so the suite can tell an instance on its own host from a remote one."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def limits() -> dict[str, Any]:
    """What this process observes of its own limits; the suite calls it on itself too, to
    tell limits an instance inherits from the host from those the platform set for it."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return {
        "rlimit_as_mb": None if soft == resource.RLIM_INFINITY else soft / 2**20,
        "cgroup_memory_mb": _cgroup_memory_mb(),
        "cpus": len(os.sched_getaffinity(0)),
        "host": _boot_id(),
        "pid": os.getpid(),
    }


@workflow.component
def observe(ctx: ComponentContext) -> dict[str, Any]:
    """What the instance itself observes of its limits, whatever the adapter reports: the
    platform's own word (`ctx.platform`, from e.g. Lambda's context), the address-space limit,
    the cgroup memory limit, and the CPUs it may run on."""
    return {"platform": dict(ctx.platform), **limits()}


def _raise_inner(message: str) -> None:
    raise ValueError(f"{FAILURE_MARKER}: {message}")


@workflow.component
def fail(ctx: ComponentContext, message: str = "boom") -> None:
    """Raise, one frame down, so the remote traceback has something to show."""
    _raise_inner(message)


@workflow.component
def big(ctx: ComponentContext, blob: str = "", size: int = 0) -> dict[str, Any]:
    """Digest a large input and/or return a large output of `size` characters."""
    return {
        "received": len(blob),
        "sha256": hashlib.sha256(blob.encode()).hexdigest(),
        "blob": "y" * size,
    }


@workflow.component
def sleep(ctx: ComponentContext, seconds: float = 1.0) -> float:
    """Sleep on purpose: the suite's timeout case needs a component that runs too long."""
    time.sleep(seconds)
    return seconds


@workflow.phases
def plan(run: RunContext) -> Any:
    echoes = yield [Call("echo", {"value": i}) for i in range(int(run.params["width"]))]
    return [e["value"] for e in echoes]
