"""The function side: what runs inside every instance, on every provider.

An instance loads its runtime environment once (`FunctionRuntime(...)`, the init), then serves
payloads naming a registered component. `handle` never raises: it answers with an envelope
that the provider adapter turns back into a result or a typed error.

Trust: given a `key` (made per deployment, kept in the function's configuration), a payload
without a valid signature is refused before anything runs (`daydream_core.auth`); given a
`store_uri` (fixed at deploy), the store is that one and a payload naming another is refused.
Run and component ids must be plain ids (no path separators), and the component must be
registered. Without `key` and `store_uri` an adapter keeps the old behaviour (the payload's
store), so adapters written before them still work; every built-in adapter passes both.

Faults (tests only, `daydream_core.faults`): given a plan, the runtime itself executes the
faults that happen inside an instance (killed mid-component, out of memory, a hang, a failing
or slow store), so every platform that hosts it injects them the same way.
"""

from __future__ import annotations

import resource
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from daydream_core import auth
from daydream_core.errors import (
    ComponentFailed,
    OutOfMemory,
    PayloadRejected,
    ProviderError,
    StoreUnavailable,
)
from daydream_core.faults import FaultPlan, FaultyStore, InstanceKill
from daydream_core.model import HIGH, StartKind, Tier
from daydream_core.objectstore import ObjectStore, open_store
from daydream_core.workflow import ComponentContext, RuntimeEnvironment, load_workflow

WARMUP = "__warmup__"
MAX_HOLD_MS = 900_000.0  # a warm-up holds its instance at most Lambda's longest invocation


class StartLedger:
    """How each request to one instance found it, as the instance itself saw it: the first
    request initialised it (cold, or hot when it was a warm-up); the first component after a
    warm-up is hot; every later one is warm. Thread-safe: platforms send one request at a time
    to an instance, and the lock keeps the counts honest if one does not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.components = 0
        self.warmed = False

    def record(self, kind: str) -> tuple[bool, StartKind]:
        """(whether this is the instance's first request, how this request started)."""
        with self._lock:
            first = self.requests == 0
            self.requests += 1
            if kind == WARMUP:
                self.warmed = self.warmed or first
                return first, StartKind.HOT
            self.components += 1
            if first:
                return first, StartKind.COLD
            if self.warmed and self.components == 1:
                return first, StartKind.HOT
            return first, StartKind.WARM


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
        *,
        store_uri: str | None = None,
        key: str | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        started = time.perf_counter()
        self.workflow = load_workflow(runtime)
        self.tier = tier
        self.threads = threads
        self._open_store = open_store  # inside a cloud function there may be no entry points
        self._stores: dict[str, ObjectStore] = {}
        self.store_uri = store_uri
        self._key = key  # never logged, never in an envelope
        self.faults = faults  # tests only: handed over by the host, never read from a payload
        self.init_ms = (time.perf_counter() - started) * 1000.0

    def authenticate(self, payload: Mapping[str, Any]) -> None:
        """Raise `PayloadRejected` unless `payload` is signed with this function's key (a
        no-op for a runtime built without a key). Handlers that unwrap an envelope of their
        own (e.g. a payload passed through the store) check the wrapper with this too."""
        if self._key is not None:
            auth.verify(payload, self._key)

    def _store(self, uri: str) -> ObjectStore:
        if uri not in self._stores:
            self._stores[uri] = self._open_store(uri)
        return self._stores[uri]

    def handle(
        self, payload: Mapping[str, Any], platform: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run the payload's component; `platform` is what the platform's own context says
        about this instance (see `ComponentContext.platform`)."""
        started = time.perf_counter()
        kind = str(payload.get("kind", ""))
        try:
            self.authenticate(payload)
            if kind == WARMUP:
                # Hold the instance so that concurrent warm-ups land on distinct instances.
                time.sleep(_hold_ms(payload.get("hold_ms", 0)) / 1000.0)
                return self._ok(None, started)
            fn, ctx, args = self._prepare(payload, kind, platform)
        except PayloadRejected as exc:
            return self._error("rejected", kind, str(exc), "")
        except Exception as exc:  # the store would not open: the component cannot run
            message = f"{type(exc).__name__}: {exc}"
            return self._error("component", kind, message, traceback.format_exc())
        try:
            self._inject(ctx, kind)
            output = fn(ctx, **args)
        except MemoryError:
            return self._error("memory", kind, "out of memory", traceback.format_exc())
        except StoreUnavailable as exc:
            return self._error("store", kind, str(exc), traceback.format_exc())
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            return self._error("component", kind, message, traceback.format_exc())
        if self.faults is not None and self.faults.strikes("kill", ctx.component_id, ctx.attempt):
            raise InstanceKill(f"instance killed after {ctx.component_id} ran (injected fault)")
        return self._ok(output, started)

    def _inject(self, ctx: ComponentContext, kind: str) -> None:
        """The faults that strike before a component runs (a plan's, tests only)."""
        plan = self.faults
        if plan is None:
            return
        ctx.store = FaultyStore(ctx.store, plan, ctx.component_id, ctx.attempt)
        if plan.strikes("timeout", ctx.component_id, ctx.attempt):
            # A hung instance: it never runs its component, and the platform ends it at last.
            threading.Event().wait(plan.hang_s)
            raise InstanceKill(f"instance hung {plan.hang_s:g} s on {ctx.component_id} (injected)")
        if self.tier.name != HIGH and plan.strikes("oom", kind, ctx.attempt):
            raise MemoryError(
                f"{kind!r} needs more than the {self.tier.memory_mb} MB of tier "
                f"{self.tier.name!r} (injected fault)"
            )

    def _prepare(
        self, payload: Mapping[str, Any], kind: str, platform: Mapping[str, Any] | None
    ) -> tuple[Any, ComponentContext, dict[str, Any]]:
        """The component, its context and arguments, or `PayloadRejected`."""
        try:
            fn = self.workflow.component_fn(kind)  # registered components only
        except KeyError as exc:
            raise PayloadRejected(str(exc.args[0])) from None
        args = payload.get("args", {})
        if not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args):
            raise PayloadRejected("payload args must be a mapping by name")
        phase = payload.get("phase", 0)
        if not isinstance(phase, int) or isinstance(phase, bool) or phase < 0:
            raise PayloadRejected(f"payload phase {phase!r} is not a phase index")
        attempt = payload.get("attempt", 1)
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
            raise PayloadRejected(f"payload attempt {attempt!r} is not an attempt number")
        ctx = ComponentContext(
            store=self._store(self._store_uri(payload)),
            tier=self.tier,
            threads=self.threads,
            run_id=auth.check_id(payload.get("run_id", "adhoc"), "run id"),
            component_id=auth.check_id(payload.get("component", kind), "component id"),
            phase=phase,
            platform=dict(platform or {}),
            attempt=attempt,
        )
        return fn, ctx, dict(args)

    def _store_uri(self, payload: Mapping[str, Any]) -> str:
        named = payload.get("store")
        if self.store_uri is not None:
            if named is not None and named != self.store_uri:
                raise PayloadRejected("payload names another store than the one fixed at deploy")
            return self.store_uri
        if not isinstance(named, str) or not named:
            raise PayloadRejected("payload names no store (and none was fixed at deploy)")
        return named

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


def _hold_ms(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadRejected("warm-up hold_ms must be a number")
    if not 0 <= value <= MAX_HOLD_MS:
        raise PayloadRejected(f"warm-up hold_ms must be within 0-{MAX_HOLD_MS:g}")
    return float(value)


def envelope_error(error: Mapping[str, Any]) -> ProviderError:
    """The shared typed error of a failed envelope's ``error``."""
    kind, message = str(error.get("kind", "")), str(error.get("message", ""))
    if error.get("type") == "memory":
        return OutOfMemory(f"component {kind!r} ran out of memory")
    if error.get("type") == "rejected":
        return PayloadRejected(f"the instance refused the payload: {message}")
    if error.get("type") == "store":
        return StoreUnavailable(f"component {kind!r}: {message}")
    return ComponentFailed(kind, message, str(error.get("traceback", "")))


def raise_for_envelope(envelope: Mapping[str, Any]) -> None:
    """Turn a failed envelope into the shared typed error."""
    if not envelope.get("ok"):
        raise envelope_error(envelope["error"])
