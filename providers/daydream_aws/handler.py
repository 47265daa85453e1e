"""The function side: what every Lambda execution environment runs.

Lambda imports this module once per execution environment (its init phase): that builds one
`ExecutionEnvironment`, which loads the workflow's runtime environment (`FunctionRuntime`), and
the handler then serves one payload per invocation, naming a registered component. Component
code never travels in a payload.

Every answer carries the environment's id (Lambda's name for it: the log stream it writes to,
from ``context.log_stream_name``; a uuid made at init where there is no context) and whether
this invocation ran the init, so the adapter measures hot, warm and cold starts instead of
assuming them:

- the first invocation of an environment ran its init: a cold start, unless it is a warm-up;
- an environment initialised by a warm-up is hot for the first component it serves;
- every later component on the same environment is a warm start.

A component's failure is raised as `DaydreamComponentError` (Lambda reports it as a function
error whose message is the failed envelope, traceback included); a component that outlives the
timeout the adapter sent is interrupted and raised as `DaydreamTimeout`. No boto3 at import: S3
is used only for oversized payloads and results, and by components through the store.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from daydream_aws import wire
from daydream_core.errors import PayloadRejected
from daydream_core.faults import FaultPlan
from daydream_core.model import Tier
from daydream_core.objectstore import ObjectStore
from daydream_core.runtime import FunctionRuntime, StartLedger
from daydream_core.workflow import RuntimeEnvironment


class DaydreamComponentError(Exception):
    """A component failed; the message is its failed envelope as JSON."""


class DaydreamTimeout(Exception):
    """A component ran past the timeout its invocation carried."""


class _DeadlineReached(BaseException):
    """Raised by the alarm inside the component; a BaseException, so nothing swallows it."""


def open_store(uri: str) -> ObjectStore:
    """S3 stores directly (no plugin discovery inside an instance); others through the core."""
    if uri.startswith("s3://"):
        from daydream_aws.store import S3ObjectStore

        return S3ObjectStore.from_uri(uri)
    from daydream_core.objectstore import open_store as core_open_store

    return core_open_store(uri)


def platform_limits(context: Any) -> dict[str, Any]:
    """What Lambda's context tells the environment about its limits (`ComponentContext.platform`):
    the memory size it runs with, as configured (``memory_limit_in_mb``)."""
    memory = getattr(context, "memory_limit_in_mb", None)
    return {"memory_mb": int(memory)} if memory else {}


class ExecutionEnvironment:
    """One execution environment: the loaded runtime environment and what it has served."""

    def __init__(self, environ: Mapping[str, str], *, faults: FaultPlan | None = None) -> None:
        """`faults`: a fault plan, handed over by a test double only (`daydream_aws.testing`);
        never read from the function's configuration."""
        started = time.perf_counter()
        self.id = uuid.uuid4().hex[:12]
        runtime = json.loads(environ[wire.RUNTIME_VAR])
        tier = json.loads(environ[wire.TIER_VAR])
        self.runtime = FunctionRuntime(
            RuntimeEnvironment(
                name=runtime["name"],
                module=runtime["module"],
                preload=tuple(runtime.get("preload", ())),
                requirements=tuple(runtime.get("requirements", ())),
            ),
            Tier(tier["name"], int(tier["memory_mb"]), float(tier["vcpus"])),
            threads=int(environ.get(wire.THREADS_VAR, "1")),
            open_store=open_store,
            # Trust: the store and the payload key are the function's configuration, fixed at
            # deploy; nothing a payload says can name another store or skip the signature.
            store_uri=environ.get(wire.STORE_VAR) or None,
            key=environ.get(wire.KEY_VAR) or None,
            faults=faults,
        )
        self.default_transfer = environ.get(wire.STORE_VAR, "")
        self.starts = StartLedger()  # how each request found this instance
        self.init_ms = (time.perf_counter() - started) * 1000.0

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        options = dict(event.get(wire.RESERVED) or {})
        transfer = self.default_transfer  # never the payload's: fixed at deploy
        # The signature covers the whole event, reserved options included; a payload passed
        # through the store is signed on its own and checked by the runtime.
        payload: Mapping[str, Any] = event
        try:
            self.runtime.authenticate(event)
        except PayloadRejected as exc:
            raise DaydreamComponentError(json.dumps(_rejected(event, exc))) from None
        if options.get(wire.OPT_PAYLOAD_KEY) and transfer:
            payload = json.loads(open_store(transfer).get(str(options[wire.OPT_PAYLOAD_KEY])))
        kind = str(payload.get("kind", ""))
        first, started = self.starts.record(kind)
        start = started.value
        identity = {
            "instance": str(getattr(context, "log_stream_name", "") or self.id),
            "first": first,
            "start": start,
            "init_ms": self.init_ms if first else 0.0,
        }
        timeout = options.get(wire.OPT_TIMEOUT)
        envelope = self._run(
            payload, float(timeout) if timeout is not None else None, platform_limits(context)
        )
        envelope.update(identity)
        if not envelope["ok"]:
            raise DaydreamComponentError(json.dumps(envelope))
        body = json.dumps(envelope)
        if len(body.encode()) > wire.MAX_SYNC_PAYLOAD_BYTES - 1024 and transfer:
            key = f"_transfer/result-{uuid.uuid4().hex}.json"
            open_store(transfer).put(key, body.encode())
            return {"ok": True, wire.RESULT_KEY: key, **identity}
        return envelope

    def _run(
        self, payload: Mapping[str, Any], timeout_s: float | None, platform: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Run the payload, interrupting it at `timeout_s` where signals allow (Lambda runs the
        handler on the main thread; elsewhere the caller's own timeout applies)."""
        if (
            timeout_s is None
            or timeout_s <= 0
            or threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer")
        ):
            return self.runtime.handle(payload, platform=platform)

        def alarm(signum: int, frame: Any) -> None:
            raise _DeadlineReached

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            return self.runtime.handle(payload, platform=platform)
        except _DeadlineReached:
            raise DaydreamTimeout(
                f"component {payload.get('kind')!r} ran past its {timeout_s:g} s timeout"
            ) from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _rejected(event: Mapping[str, Any], exc: PayloadRejected) -> dict[str, Any]:
    error = {"type": "rejected", "kind": str(event.get("kind", "")), "message": str(exc)}
    return {"ok": False, "error": {**error, "traceback": ""}}


_environment: ExecutionEnvironment | None = None
_environment_lock = threading.Lock()


def environment() -> ExecutionEnvironment:
    """This process's execution environment, built once (at import when deployed)."""
    global _environment
    with _environment_lock:
        if _environment is None:
            _environment = ExecutionEnvironment(os.environ)
            _renew_identity_after_restore(_environment)
        return _environment


def _renew_identity_after_restore(env: ExecutionEnvironment) -> None:
    """SnapStart restores one snapshot into many environments, the id made at init included:
    give each restored environment its own (Lambda's runtime hook; absent elsewhere)."""
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return

    def renew() -> None:
        env.id = uuid.uuid4().hex[:12]

    register_after_restore(renew)


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda's entry point (``daydream_aws.handler.handler``)."""
    return environment()(event, context)


if wire.RUNTIME_VAR in os.environ:  # inside Lambda: the init phase loads the runtime now
    environment()
