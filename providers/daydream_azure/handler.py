"""The function side: the function app every instance runs (Python v2 programming model).

The package's ``function_app.py`` imports `app` from here; the Functions host indexes it and
finds one HTTP-triggered function, ``run`` (POST ``/api/run``, function-key auth). Importing
this module inside an instance is its init: it builds one `ExecutionEnvironment`, which loads
the workflow's runtime environment (`FunctionRuntime`) from the app settings. Each request
then names a registered component; component code never travels in a request.

Every answer carries the instance's id as the platform names it (``WEBSITE_INSTANCE_ID``),
whether this request was the instance's first, and the start kind it observed:

- the first request of an instance is a cold start, unless it is a warm-up;
- an instance initialised by a warm-up is hot for the first component it serves;
- every later component on the same instance is a warm start.

A component's failure is answered as its failed envelope (HTTP 200: the function app worked,
the component did not); any other status is the platform's. Python functions run on worker
threads, where a component cannot be interrupted, so a component's timeout is the caller's
read timeout (and Azure's own 230 s limit on an HTTP request).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import azure.functions as func

from daydream_azure import wire
from daydream_core import faults as fault_injection
from daydream_core.faults import FaultPlan, InstanceKill
from daydream_core.model import Tier
from daydream_core.objectstore import ObjectStore
from daydream_core.runtime import FunctionRuntime, StartLedger
from daydream_core.workflow import RuntimeEnvironment


def open_store(uri: str) -> ObjectStore:
    """Blob stores directly (no plugin discovery inside an instance); others through the core."""
    if uri.startswith("azblob://"):
        from daydream_azure.store import BlobObjectStore

        return BlobObjectStore.from_uri(uri)
    from daydream_core.objectstore import open_store as core_open_store

    return core_open_store(uri)


def process_age_ms() -> float | None:
    """How long ago this process started (Linux's /proc), so that an instance's init counts
    its interpreter start and imports too, as the platform's cold start does."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    started_s = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime, in ticks
    return max(0.0, (uptime_s - started_s) * 1000.0)


def instance_id(environ: Mapping[str, str]) -> str:
    """The platform's name for this instance: ``WEBSITE_INSTANCE_ID`` on Azure, else the host
    name the platform gave the container."""
    return environ.get(wire.INSTANCE_ID_VAR) or socket.gethostname()


class ExecutionEnvironment:
    """One instance: the loaded runtime environment and what it has served."""

    def __init__(self, environ: Mapping[str, str], *, faults: FaultPlan | None = None) -> None:
        """`faults`: a fault plan, handed over by a test double only (the Azure fake's
        `fake_instance`); never read from `environ`, so a deployed app cannot be told to fail."""
        started = time.perf_counter()
        self.id = instance_id(environ)
        runtime = json.loads(environ[wire.RUNTIME_VAR])
        tier = json.loads(environ[wire.TIER_VAR])
        self.tier = Tier(tier["name"], int(tier["memory_mb"]), float(tier["vcpus"]))
        self.runtime = FunctionRuntime(
            RuntimeEnvironment(
                name=runtime["name"],
                module=runtime["module"],
                preload=tuple(runtime.get("preload", ())),
                requirements=tuple(runtime.get("requirements", ())),
            ),
            self.tier,
            threads=int(environ.get(wire.THREADS_VAR, "1")),
            open_store=open_store,
            store_uri=environ.get(wire.STORE_VAR) or None,  # fixed at deploy, not the payload's
            key=environ.get(wire.KEY_VAR) or None,
            faults=faults,
        )
        self.store_uri = environ.get(wire.STORE_VAR, "")
        memory = environ.get(wire.MEMORY_LIMIT_VAR)
        self.platform: dict[str, Any] = {
            "instance": self.id,
            "memory_mb": int(memory) if memory else None,
            "sku": environ.get(wire.SKU_VAR),
        }
        self.starts = StartLedger()  # how each request found this instance
        loaded_ms = (time.perf_counter() - started) * 1000.0
        self.init_ms = max(loaded_ms, process_age_ms() or 0.0)

    def serve(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Run one request's payload; the envelope plus this instance's identity."""
        options = dict(request.get(wire.RESERVED) or {})
        payload: Mapping[str, Any] = {k: v for k, v in request.items() if k != wire.RESERVED}
        if options.get(wire.OPT_PAYLOAD_KEY):
            payload = json.loads(open_store(self.store_uri).get(str(options[wire.OPT_PAYLOAD_KEY])))
        kind = str(payload.get("kind", ""))
        first, started = self.starts.record(kind)
        start = started.value
        envelope = self.runtime.handle(payload, self.platform)
        envelope.update(
            instance=self.id, first=first, start=start, init_ms=self.init_ms if first else 0.0
        )
        return envelope

    def respond(self, request: Mapping[str, Any]) -> bytes:
        """The answer's body: the envelope, or where to find it when it is too large."""
        envelope = self.serve(request)
        body = json.dumps(envelope).encode()
        if len(body) > wire.MAX_INLINE_BYTES and self.store_uri:
            key = f"_transfer/result-{uuid.uuid4().hex}.json"
            open_store(self.store_uri).put(key, body)
            identity = {k: envelope[k] for k in ("ok", "instance", "first", "start", "init_ms")}
            body = json.dumps({**identity, wire.RESULT_KEY: key}).encode()
        return body


_environment: ExecutionEnvironment | None = None
_environment_lock = threading.Lock()


def environment() -> ExecutionEnvironment:
    """This process's execution environment, built once (at import when deployed)."""
    global _environment
    with _environment_lock:
        if _environment is None:
            _environment = ExecutionEnvironment(os.environ, faults=fault_injection.handed_over())
        return _environment


app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route=wire.FUNCTION, methods=["POST"])
def run(req: func.HttpRequest) -> func.HttpResponse:
    """The function: one component (or warm-up) per request."""
    try:
        request = req.get_json()
    except ValueError:
        return func.HttpResponse(b'{"error": "the body is not JSON"}', status_code=400)
    if not isinstance(request, dict):
        return func.HttpResponse(b'{"error": "the body is not an object"}', status_code=400)
    try:
        body = environment().respond(request)
    except InstanceKill as kill:  # an injected kill: the instance dies without answering
        fault_injection.end_instance(kill)
    return func.HttpResponse(body, status_code=200, mimetype="application/json")


if wire.RUNTIME_VAR in os.environ:  # inside an instance: the init loads the runtime now
    environment()
