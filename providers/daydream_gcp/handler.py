"""The function side: what every Cloud Functions (2nd gen) instance runs.

The source's ``main.py`` imports this module at the instance's start-up (its init): that
builds one `ExecutionEnvironment`, which asks the metadata server for the instance's id and
loads the workflow's runtime environment (`FunctionRuntime`). Each HTTP request then carries
one payload naming a registered component; component code never travels in a payload.
Functions are deployed with one request per instance, so an instance serves one at a time.

Every answer carries the instance's id, given by the platform, and whether this request ran
the init, so the adapter measures hot, warm and cold starts instead of assuming them:

- the first request of an instance ran its init: a cold start, unless it is a warm-up;
- an instance initialised by a warm-up is hot for the first component it serves;
- every later component on the same instance is a warm start.

A failed component answers 200 with its failed envelope (traceback included): the request
reached the handler and the adapter turns the envelope into the typed error. The Flask
request object is used only through ``get_data``, so the handler runs under
functions-framework as Google runs it, and in tests without it.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daydream_core import faults as fault_injection
from daydream_core.faults import FaultPlan, InstanceKill
from daydream_core.model import Tier
from daydream_core.objectstore import ObjectStore
from daydream_core.runtime import FunctionRuntime, StartLedger
from daydream_core.workflow import RuntimeEnvironment
from daydream_gcp import wire

METADATA_TIMEOUT_S = 5.0


class PlatformError(RuntimeError):
    """The instance could not learn from the platform what it must (its id)."""


def open_store(uri: str) -> ObjectStore:
    """GCS stores directly (no plugin discovery inside an instance); others through the core."""
    if uri.startswith("gs://"):
        from daydream_gcp.store import GcsObjectStore

        return GcsObjectStore.from_uri(uri)
    from daydream_core.objectstore import open_store as core_open_store

    return core_open_store(uri)


def instance_id(environ: Mapping[str, str]) -> str:
    """The instance's id from the metadata server, as Cloud Run gives it to each instance."""
    host = environ.get(wire.METADATA_HOST_VAR) or wire.METADATA_HOST
    request = urllib.request.Request(
        f"http://{host}{wire.INSTANCE_ID_PATH}", headers={"Metadata-Flavor": "Google"}
    )
    try:
        with urllib.request.urlopen(request, timeout=METADATA_TIMEOUT_S) as answer:
            value: str = answer.read().decode().strip()
    except OSError as exc:
        raise PlatformError(
            f"the metadata server at {host} did not give an instance id: {exc}"
        ) from None
    if not value:
        raise PlatformError(f"the metadata server at {host} gave an empty instance id")
    return value


def platform_limits() -> dict[str, Any]:
    """What the platform enforces on this instance: the cgroup's memory and CPU limits where
    it sets them (Cloud Run does), else the address-space limit."""
    limits: dict[str, Any] = {}
    memory = _read("/sys/fs/cgroup/memory.max")
    if memory and memory != "max":
        limits["memory_mb"] = int(memory) // 2**20
    else:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits["memory_mb"] = soft // 2**20
    cpu = (_read("/sys/fs/cgroup/cpu.max") or "max").split()
    if len(cpu) == 2 and cpu[0] != "max":  # a CPU set is not a share: say nothing then
        limits["vcpus"] = round(int(cpu[0]) / int(cpu[1]), 3)
    for name, variable in (("service", "K_SERVICE"), ("revision", "K_REVISION")):
        if os.environ.get(variable):
            limits[name] = os.environ[variable]
    return limits


def process_age_ms() -> float | None:
    """How long ago this process started (the instance's start-up so far), from /proc."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    started_s = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return max(0.0, (uptime_s - started_s) * 1000.0)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


class ExecutionEnvironment:
    """One instance: its id, the loaded runtime environment, and what it has served."""

    def __init__(self, environ: Mapping[str, str], *, faults: FaultPlan | None = None) -> None:
        """`faults`: a fault plan, handed over by a test double only (`daydream_gcp.fakeplatform`'s
        launcher); never read from `environ`, so a deployed function cannot be told to fail."""
        started = time.perf_counter()
        self.id = instance_id(environ)
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
            store_uri=environ.get(wire.STORE_VAR) or None,  # fixed at deploy, not the payload's
            key=environ.get(wire.KEY_VAR) or None,
            faults=faults,
        )
        self.store_uri = environ.get(wire.STORE_VAR, "")
        self.platform = platform_limits()
        self.starts = StartLedger()  # how each request found this instance
        age = process_age_ms()
        self.init_ms = age if age is not None else (time.perf_counter() - started) * 1000.0

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        options = dict(event.get(wire.RESERVED) or {})
        payload: Mapping[str, Any] = {k: v for k, v in event.items() if k != wire.RESERVED}
        if options.get(wire.OPT_PAYLOAD_KEY):
            payload = json.loads(open_store(self.store_uri).get(str(options[wire.OPT_PAYLOAD_KEY])))
        kind = str(payload.get("kind", ""))
        first, started = self.starts.record(kind)
        start = started.value
        identity = {
            "instance": self.id,
            "first": first,
            "start": start,
            "init_ms": self.init_ms if first else 0.0,
        }
        envelope = self.runtime.handle(payload, platform=self.platform)
        envelope.update(identity)
        body = json.dumps(envelope)
        if len(body.encode()) > wire.MAX_INLINE_BYTES and self.store_uri:
            key = f"_transfer/result-{uuid.uuid4().hex}.json"
            open_store(self.store_uri).put(key, body.encode())
            timing = {"execution_ms": envelope.get("execution_ms", 0.0)}
            return {"ok": envelope["ok"], wire.RESULT_KEY: key, **timing, **identity}
        return envelope


_environment: ExecutionEnvironment | None = None
_environment_lock = threading.Lock()


def environment() -> ExecutionEnvironment:
    """This process's execution environment, built once (at import when deployed)."""
    global _environment
    with _environment_lock:
        if _environment is None:
            _environment = ExecutionEnvironment(os.environ, faults=fault_injection.handed_over())
        return _environment


def entry(request: Any) -> tuple[str, int, dict[str, str]]:
    """The HTTP function Cloud Functions calls (``main.daydream`` in the deployed source)."""
    try:
        event = json.loads(request.get_data() or b"{}")
    except ValueError:
        return json.dumps({"error": "the request body is not JSON"}), 400, _JSON
    if not isinstance(event, dict):
        return json.dumps({"error": "the request body is not a JSON object"}), 400, _JSON
    try:
        envelope = environment()(event)
    except InstanceKill as kill:  # an injected kill: the instance dies without answering
        fault_injection.end_instance(kill)
    return json.dumps(envelope), 200, _JSON


_JSON = {"Content-Type": "application/json"}

if wire.RUNTIME_VAR in os.environ:  # inside an instance: the init loads the runtime now
    environment()
