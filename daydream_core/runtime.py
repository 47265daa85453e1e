"""The function side: what runs inside every instance, on every provider.

An instance loads its runtime environment once (`FunctionRuntime(...)`, the init), then serves
payloads naming a registered component. `handle` never raises: it answers with an envelope
that the provider adapter turns back into a result or a typed error.
"""

from __future__ import annotations

import resource
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from daydream_core.errors import ComponentFailed, OutOfMemory
from daydream_core.model import Tier
from daydream_core.objectstore import ObjectStore, open_store
from daydream_core.workflow import ComponentContext, RuntimeEnvironment, load_workflow

WARMUP = "__warmup__"


def max_rss_mb() -> float:
    """Peak resident memory of this process, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class FunctionRuntime:
    """A loaded runtime environment, serving components by name."""

    def __init__(
        self,
        runtime: RuntimeEnvironment,
        tier: Tier,
        threads: int,
        open_store: Callable[[str], ObjectStore] = open_store,
    ) -> None:
        started = time.perf_counter()
        self.workflow = load_workflow(runtime)
        self.tier = tier
        self.threads = threads
        self._open_store = open_store  # inside a cloud function there may be no entry points
        self._stores: dict[str, ObjectStore] = {}
        self.init_ms = (time.perf_counter() - started) * 1000.0

    def _store(self, uri: str) -> ObjectStore:
        if uri not in self._stores:
            self._stores[uri] = self._open_store(uri)
        return self._stores[uri]

    def handle(
        self, payload: Mapping[str, Any], platform: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run the payload's component; `platform` is what the platform's own context says
        about this instance (see `ComponentContext.platform`)."""
        kind = str(payload.get("kind", ""))
        started = time.perf_counter()
        if kind == WARMUP:
            # Hold the instance so that concurrent warm-ups land on distinct instances.
            time.sleep(float(payload.get("hold_ms", 0)) / 1000.0)
            return self._ok(None, started)
        try:
            fn = self.workflow.component_fn(kind)
            ctx = ComponentContext(
                store=self._store(str(payload["store"])),
                tier=self.tier,
                threads=self.threads,
                run_id=str(payload.get("run_id", "adhoc")),
                component_id=str(payload.get("component", kind)),
                phase=int(payload.get("phase", 0)),
                platform=dict(platform or {}),
            )
            output = fn(ctx, **dict(payload.get("args", {})))
        except MemoryError:
            return self._error("memory", kind, "out of memory", traceback.format_exc())
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            return self._error("component", kind, message, traceback.format_exc())
        return self._ok(output, started)

    def _ok(self, output: Any, started: float) -> dict[str, Any]:
        return {
            "ok": True,
            "output": output,
            "execution_ms": (time.perf_counter() - started) * 1000.0,
            "max_memory_mb": max_rss_mb(),
        }

    @staticmethod
    def _error(error_type: str, kind: str, message: str, remote_tb: str) -> dict[str, Any]:
        return {
            "ok": False,
            "error": {"type": error_type, "kind": kind, "message": message, "traceback": remote_tb},
            "max_memory_mb": max_rss_mb(),
        }


def raise_for_envelope(envelope: Mapping[str, Any]) -> None:
    """Turn a failed envelope into the shared typed error."""
    if envelope.get("ok"):
        return
    error = envelope["error"]
    if error["type"] == "memory":
        raise OutOfMemory(f"component {error['kind']!r} ran out of memory")
    raise ComponentFailed(error["kind"], error["message"], error.get("traceback", ""))
