"""The daydream adapter for minifaas: the provider contract, method by method, in terms of
the platform's HTTP API (`daydream_minifaas.server`). The core does the rest: the function side
is `daydream_core.runtime.FunctionRuntime` (`daydream_minifaas.handler`), payloads are signed
by `daydream_core.auth`, options read by `daydream_core.provider_options`."""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from daydream_core import auth, errors
from daydream_core.model import HIGH, LOW, StartKind, Tier
from daydream_core.objectstore import LocalObjectStore, ObjectStore
from daydream_core.pricing import PriceTable
from daydream_core.provider import (
    NAME_PREFIX,
    Capabilities,
    FunctionHandle,
    Invocation,
    Provider,
    ProviderSettings,
    WarmStart,
    function_name,
)
from daydream_core.provider_options import read_options
from daydream_core.runtime import raise_for_envelope
from daydream_core.workflow import RuntimeEnvironment

# minifaas bills its own clock per millisecond, init included; the rates are Lambda's (x86),
# so that numbers compare with a cloud's.
PRICES = PriceTable("minifaas", 0.0000166667, 0.20e-6, source="minifaas: per ms, init billed")
MAX_PAYLOAD_BYTES = 6 * 2**20  # Lambda's limit, so workflows behave alike (minifaas: 32 MiB)
STARTS = {"cold": StartKind.COLD, "provisioned": StartKind.HOT, "warm": StartKind.WARM}
ERRORS = {404: errors.FunctionNotFound, 429: errors.Throttled, 504: errors.FunctionTimeout}
LABELS = {"managed-by": "daydream"}  # cleanup removes only functions labelled so
INIT_S = 120.0  # how long an invocation may wait beyond its timeout: a cold start's init


@dataclass(frozen=True)
class Options:
    """``-o KEY=VALUE``, else ``DAYDREAM_MINIFAAS_<KEY>``, else these defaults."""

    endpoint: str = "http://127.0.0.1:8765"
    high_memory_mb: int = 10240
    low_memory_mb: int = 5120
    store: str = ""  # a folder the platform's instances can read too [default: in state_dir]


class MiniFaasProvider(Provider):
    name = "minifaas"

    def __init__(self, settings: ProviderSettings) -> None:
        given = read_options(Options, self.name, settings.options, os.environ, "DAYDREAM_MINIFAAS_")
        options = Options(**given)
        if not 128 <= options.low_memory_mb <= options.high_memory_mb:
            raise errors.ConfigurationError("minifaas needs 128 <= low_memory_mb <= high_memory_mb")
        self._endpoint = options.endpoint.rstrip("/")
        self._http = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy
        try:
            platform = self._call("GET", "/", timeout=10.0)
        except (errors.ProviderError, ValueError) as exc:  # ValueError: not minifaas's JSON
            raise errors.ConfigurationError(f"minifaas endpoint={self._endpoint}: {exc}") from None
        cpus = int(platform["cpus"])  # high: every CPU of the platform's host; low: half
        self._tiers = {
            HIGH: Tier(HIGH, options.high_memory_mb, float(cpus)),
            LOW: Tier(LOW, options.low_memory_mb, float(max(1, cpus // 2))),
        }
        self._concurrency = min(settings.concurrency or 10**6, int(platform["max_instances"]))
        self._store = LocalObjectStore(options.store or Path(settings.state_dir) / "store")
        self._keys: dict[str, str] = {}  # payload key per function, from its configuration

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
        """One request to the platform; its errors as the shared typed errors."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._endpoint + path, data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with self._http.open(request, timeout=timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            message = json.loads(exc.read() or b"{}").get("error", exc.reason)
            raise ERRORS.get(exc.code, errors.ProviderError)(f"minifaas: {message}") from None
        except TimeoutError:
            raise errors.FunctionTimeout(f"minifaas did not answer {method} {path}") from None
        except OSError as exc:  # URLError included: nothing listens there
            raise errors.ProviderError(f"unreachable ({getattr(exc, 'reason', exc)})") from None

    # -- the contract -----------------------------------------------------------------------

    def tiers(self) -> Mapping[str, Tier]:
        return dict(self._tiers)

    def prices(self) -> PriceTable:
        return PRICES

    def capabilities(self) -> Capabilities:
        return Capabilities(MAX_PAYLOAD_BYTES, self._concurrency, releases_instances=True)

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        handle = FunctionHandle(self.name, function_name(runtime, tier), runtime, tier)
        path = f"/functions/{handle.name}"
        try:
            current = self._call("GET", path)
            key = current["environment"]["DAYDREAM_PAYLOAD_KEY"]
        except errors.FunctionNotFound:
            current, key = None, auth.new_key()
        wanted = {
            "handler": "daydream_minifaas.handler",  # imported by each instance: its init
            "memory_mb": tier.memory_mb,
            "cpus": int(tier.vcpus),
            "labels": LABELS,
            "environment": {
                "DAYDREAM_RUNTIME": json.dumps(asdict(runtime)),
                "DAYDREAM_TIER": json.dumps(asdict(tier)),
                "DAYDREAM_STORE": self._store.uri,
                "DAYDREAM_PAYLOAD_KEY": key,  # in the function's configuration, never a payload
            },
        }
        if current is None or any(current[k] != v for k, v in wanted.items()):
            self._call("PUT", path, wanted)
        self._keys[handle.name] = key
        return handle

    def warm(self, function: FunctionHandle, n: int) -> builtins.list[WarmStart]:
        path = f"/functions/{function.name}/provision"
        started = self._call("POST", path, {"count": n}, timeout=INIT_S * max(n, 1))["started"]
        return [WarmStart(s["instance"], s["init_ms"], s["billed_ms"]) for s in started]

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        event = auth.sign(payload, self._key(function), ttl_s=timeout + auth.DEFAULT_TTL_S)
        body = {"event": event, "timeout_s": timeout}
        reply = self._call("POST", f"/functions/{function.name}/invoke", body, timeout + INIT_S)
        raise_for_envelope(reply["result"])
        return Invocation(
            output=reply["result"]["output"],
            instance=reply["instance"],
            start=STARTS[reply["start"]],
            init_ms=reply["init_ms"],
            duration_ms=reply["duration_ms"],
            billed_ms=reply["billed_ms"],
            memory_mb=reply["memory_mb"],
            max_memory_used_mb=reply["max_memory_mb"],
        )

    def _key(self, function: FunctionHandle) -> str:
        if function.name not in self._keys:  # deployed by another daydream process
            config = self._call("GET", f"/functions/{function.name}")
            self._keys[function.name] = config["environment"]["DAYDREAM_PAYLOAD_KEY"]
        return self._keys[function.name]

    def instances(self, function: FunctionHandle) -> builtins.list[str]:
        try:
            return list(self._call("GET", f"/functions/{function.name}/instances")["instances"])
        except errors.FunctionNotFound:
            return []

    def release(self, function: FunctionHandle, keep: int) -> builtins.list[str]:
        try:
            path = f"/functions/{function.name}/release"
            return list(self._call("POST", path, {"keep": keep})["stopped"])
        except errors.FunctionNotFound:
            return []

    def delete(self, function: FunctionHandle) -> None:
        self._delete(function.name)

    def _delete(self, name: str) -> None:
        self._keys.pop(name, None)
        with contextlib.suppress(errors.FunctionNotFound):  # deleting a missing one is no error
            self._call("DELETE", f"/functions/{name}")

    def list(self, prefix: str = NAME_PREFIX) -> builtins.list[str]:
        """daydream's functions: by prefix, and by the label only daydream gives."""
        functions = self._call("GET", "/functions")["functions"]
        ours = [f["name"] for f in functions if f["labels"] == LABELS]
        return [name for name in ours if name.startswith(prefix)]

    def cleanup(self, dry_run: bool = False) -> builtins.list[str]:
        names = self.list()
        for name in [] if dry_run else names:
            self._delete(name)
        return names

    def store(self) -> ObjectStore:
        return self._store

    def close(self) -> None:
        """Nothing held open: every request has its own connection."""
