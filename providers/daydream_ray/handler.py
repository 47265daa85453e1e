"""The function side: what every instance (a Ray actor) runs.

Ray imports this module in the actor's worker process; the constructor is the instance's init:
it loads the workflow's runtime environment (`FunctionRuntime`) once, then `serve` runs one
component by name per call (an actor runs one call at a time). No Ray import at module level:
the adapter wraps `RayInstance` with ``ray.remote`` itself.

Ray puts the driver's working directory (and script directory) first on every worker's
``sys.path``; the constructor removes them before loading anything, so that a file named like
a module in the user's folder is never imported by an instance.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from daydream_core.model import Tier
from daydream_core.runtime import FunctionRuntime
from daydream_core.workflow import RuntimeEnvironment


def _strip_paths(untrusted: Sequence[str]) -> None:
    """Drop the driver's folders (and the empty entry, meaning the cwd) from ``sys.path``."""
    doomed = {os.path.realpath(p) for p in untrusted}
    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) not in doomed]


class RayInstance:
    """One instance: a loaded runtime environment serving components by name."""

    def __init__(
        self,
        runtime: Mapping[str, Any],
        tier: Mapping[str, Any],
        threads: int,
        untrusted_paths: Sequence[str] = (),
        store_uri: str | None = None,
    ) -> None:
        started = time.perf_counter()
        _strip_paths([*untrusted_paths, os.getcwd()])
        import ray

        context = ray.get_runtime_context()
        self._id = context.get_actor_id() or ""
        self._node = context.get_node_id()
        assigned = context.get_assigned_resources()  # type: ignore[no-untyped-call]
        # What the platform itself says this instance holds (not what the adapter asked for).
        self._platform = {
            "memory_mb": round(assigned.get("memory", 0.0) / 2**20),
            "vcpus": assigned.get("CPU", 0.0),
            "resources": dict(assigned),
            "node_id": self._node,
            "actor_id": self._id,
        }
        self._runtime = FunctionRuntime(
            RuntimeEnvironment(
                name=runtime["name"],
                module=runtime["module"],
                preload=tuple(runtime["preload"]),
                requirements=tuple(runtime["requirements"]),
            ),
            Tier(**tier),
            threads=threads,
            # Fixed when the actor is created: a payload naming another store is refused.
            # (Payloads are not signed: whoever can call a named actor already runs code on
            # the cluster.)
            store_uri=store_uri,
        )
        self._init_ms = (time.perf_counter() - started) * 1000.0

    def ready(self) -> dict[str, Any]:
        """Answered once the constructor has finished: the instance's identity and init."""
        return {
            "instance": self._id,
            "node": self._node,
            "pid": os.getpid(),
            "init_ms": self._init_ms,
        }

    def serve(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Run the payload's component; the envelope never raises (see `FunctionRuntime`)."""
        envelope = self._runtime.handle(payload, platform=self._platform)
        envelope["instance"] = self._id
        return envelope
