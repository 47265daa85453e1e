"""Fault injection, for tests and benchmarks only: one switch, read in one place.

The switch is the environment variable ``DAYDREAM_FAULTS`` holding a small spec::

    DAYDREAM_FAULTS="seed=7,kill=0.1,oom=0.2,timeout=0.05,throttle=0.3,store_fail=0.05"

Nothing else turns it on: no option, no configuration file, no payload. It is honoured by the
local platform and by the cloud fakes (`daydream_aws.testing.LambdaFake`,
`daydream_gcp.testing.FunctionsFake`, `daydream_azure.testing.AzureFake`), never by a real
cloud's adapter, and the CLI prints a warning line whenever it is set. The plan reaches an
instance from its host (`FunctionRuntime(faults=...)`), never from the function's
configuration; where the instance is a process of its own (the GCP and Azure fakes), the
fake's launcher hands it over in that process (`hand_over`) before the handler's init reads
it (`handed_over`). Each rate is the fraction of its subjects that the fault strikes:

- ``kill``: the instance is killed after its component has run and written its outputs, before
  it answers (the worst moment for outputs). Per component attempt. On the local platform the
  instance process is SIGKILLed; on the AWS fake the runtime exits as Lambda reports it; on
  the GCP and Azure fakes the instance process SIGKILLs itself (`end_instance`).
- ``oom``: the component needs more memory than the low tier has: on any tier but high it runs
  out of memory before doing anything. Per component *kind* (a kind is memory-bound or not).
- ``timeout``: the instance hangs, doing nothing, for ``hang`` seconds (default 30), then
  ends as killed without running its component. Per component attempt. Give the run a shorter
  ``--timeout`` than ``hang``: the invocation then times out.
- ``throttle``: the platform refuses the request (HTTP 429), per request sent.
- ``store_fail`` / ``store_slow``: one object-store operation of a component fails transiently,
  or waits ``store_delay`` seconds (default 0.05) first. Per operation.

``attempts=N`` makes faults strike only a component's first N attempts (default: every
attempt), so a test can say "every component is killed once". ``seed`` seeds every decision.

Decisions are a hash of (seed, fault, subject), not draws from a shared random stream, so they
do not depend on thread scheduling: the same spec strikes the same components every time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from daydream_core.errors import ConfigurationError, StoreUnavailable
from daydream_core.objectstore import ObjectStore

ENV_VAR = "DAYDREAM_FAULTS"
FAULTS = ("kill", "oom", "timeout", "throttle", "store_fail", "store_slow")
MAX_HANG_S = 3600.0
MAX_STORE_DELAY_S = 10.0


class InstanceKill(BaseException):
    """Raised out of `FunctionRuntime.handle` when a kill fault strikes: the host ends the
    instance the way its platform would (a BaseException, so no component code swallows it)."""


@dataclass(frozen=True)
class FaultPlan:
    """Which faults strike what; parsed from the ``DAYDREAM_FAULTS`` spec."""

    rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    attempts: int | None = None  # strike only a component's first N attempts
    hang_s: float = 30.0
    store_delay_s: float = 0.05

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """The plan of `spec`; a `ConfigurationError` naming what is wrong and what is valid."""
        rates: dict[str, float] = {}
        settings: dict[str, float] = {}
        valid = ", ".join((*FAULTS, "seed", "attempts", "hang", "store_delay"))
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            name, sep, raw = item.partition("=")
            name = name.strip()
            if not sep or name not in (*FAULTS, "seed", "attempts", "hang", "store_delay"):
                raise ConfigurationError(
                    f"{ENV_VAR}: {item!r} is not NAME=VALUE with a known name; valid: {valid}"
                )
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if name in FAULTS:
                if not 0.0 <= value <= 1.0:
                    raise ConfigurationError(
                        f"{ENV_VAR}: {name}={raw.strip()!r} must be a fraction in [0, 1]"
                    )
                rates[name] = value
            else:
                settings[name] = value
        seed = settings.get("seed", 0.0)
        if not (math.isfinite(seed) and seed == int(seed) and 0 <= seed < 2**63):
            raise ConfigurationError(f"{ENV_VAR}: seed must be an integer in 0 to 2^63-1")
        attempts = settings.get("attempts")
        if attempts is not None and not (
            math.isfinite(attempts) and attempts == int(attempts) and attempts >= 1
        ):
            raise ConfigurationError(f"{ENV_VAR}: attempts must be a whole number, at least 1")
        hang = settings.get("hang", 30.0)
        if not (math.isfinite(hang) and 0 < hang <= MAX_HANG_S):
            raise ConfigurationError(f"{ENV_VAR}: hang must be seconds in (0, {MAX_HANG_S:g}]")
        delay = settings.get("store_delay", 0.05)
        if not (math.isfinite(delay) and 0 <= delay <= MAX_STORE_DELAY_S):
            raise ConfigurationError(
                f"{ENV_VAR}: store_delay must be seconds in [0, {MAX_STORE_DELAY_S:g}]"
            )
        return cls(
            rates=rates,
            seed=int(seed),
            attempts=int(attempts) if attempts is not None else None,
            hang_s=hang,
            store_delay_s=delay,
        )

    @property
    def spec(self) -> str:
        """The canonical spec (what instances are handed: `parse(plan.spec) == plan`)."""
        parts = [f"seed={self.seed}"]
        parts += [f"{name}={self.rates[name]!r}" for name in FAULTS if name in self.rates]
        if self.attempts is not None:
            parts.append(f"attempts={self.attempts}")
        parts += [f"hang={self.hang_s!r}", f"store_delay={self.store_delay_s!r}"]
        return ",".join(parts)

    def strikes(self, fault: str, subject: object, attempt: int = 1, *more: object) -> bool:
        """Whether `fault` strikes `subject` (a component id, a kind) at `attempt`."""
        rate = self.rates.get(fault, 0.0)
        if rate <= 0.0 or (self.attempts is not None and attempt > self.attempts):
            return False
        text = "\x1f".join(str(p) for p in (self.seed, fault, subject, attempt, *more))
        draw = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64
        return draw < rate


def from_environment(environ: Mapping[str, str] | None = None) -> FaultPlan | None:
    """The plan of ``DAYDREAM_FAULTS``, or None when it is unset or empty (production)."""
    spec = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    return FaultPlan.parse(spec) if spec else None


_handed_over: FaultPlan | None = None


def hand_over(plan: FaultPlan | None) -> None:
    """Give this process's instance `plan`: called by a fake's launcher (test code, in the
    instance's process) before the handler builds its execution environment. In-process state,
    so nothing a real platform carries (variables, settings, payloads) can turn faults on."""
    global _handed_over
    _handed_over = plan


def handed_over() -> FaultPlan | None:
    """The plan a launcher handed to this process; None in every deployed instance."""
    return _handed_over


def end_instance(kill: InstanceKill) -> NoReturn:
    """End this instance's process as its platform would end a killed one: SIGKILL, so the
    request it was serving gets no answer. Only a plan raises `InstanceKill`."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise kill  # not reached: SIGKILL cannot be caught


class PlatformFaults:
    """A platform's side of a plan (the local platform's, the cloud fakes'): the requests it
    throttles. Decided per (component, attempt, n-th request of that attempt), so an adapter
    that sends the same request again draws afresh. Thread-safe."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._requests: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def throttles(self, request: Mapping[str, Any] | bytes) -> bool:
        """Whether to answer `request` (a payload, or its JSON) with a 429."""
        if self.plan.rates.get("throttle", 0.0) <= 0.0:
            return False
        payload: Any = request
        if isinstance(request, bytes):
            try:
                payload = json.loads(request or b"{}")
            except ValueError:
                return False
        if not isinstance(payload, Mapping):
            return False
        subject = str(payload.get("component", payload.get("kind", "")))
        attempt = payload.get("attempt", 1)
        attempt = attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 1
        with self._lock:
            n = self._requests.get((subject, attempt), 0) + 1
            self._requests[(subject, attempt)] = n
        return self.plan.strikes("throttle", subject, attempt, n)


class FaultyStore(ObjectStore):
    """A component's view of its store under a plan: some operations fail or are slow."""

    def __init__(self, store: ObjectStore, plan: FaultPlan, component: str, attempt: int) -> None:
        self._store = store
        self._plan = plan
        self._subject = component
        self._attempt = attempt
        self._operations = 0
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        return self._store.uri

    def _operation(self, verb: str, key: str) -> None:
        with self._lock:
            self._operations += 1
            n = self._operations
        plan, subject, attempt = self._plan, self._subject, self._attempt
        if plan.strikes("store_slow", subject, attempt, n):
            threading.Event().wait(plan.store_delay_s)  # the injected latency itself
        if plan.strikes("store_fail", subject, attempt, n):
            raise StoreUnavailable(f"the object store failed to {verb} {key!r} (injected fault)")

    def put(self, key: str, data: bytes) -> None:
        self._operation("put", key)
        self._store.put(key, data)

    def get(self, key: str) -> bytes:
        self._operation("get", key)
        return self._store.get(key)

    def exists(self, key: str) -> bool:
        self._operation("check", key)
        return self._store.exists(key)

    def list(self, prefix: str = "") -> list[str]:
        self._operation("list", prefix)
        return self._store.list(prefix)

    def delete(self, prefix: str) -> int:
        self._operation("delete", prefix)
        return self._store.delete(prefix)
