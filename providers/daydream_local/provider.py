"""The local platform: deploy, hot start, invoke, release, on real processes.

Instances follow Lambda's model: one invocation at a time per instance; a request with no idle
instance starts one on its critical path (a cold start); idle instances are reclaimed after a
keep-alive time. Billing follows a price table (AWS Lambda x86 by default: per-ms, init billed),
so local numbers compare with cloud ones.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import math
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daydream_core import auth
from daydream_core import faults as fault_injection
from daydream_core.errors import (
    ConfigurationError,
    FunctionNotFound,
    FunctionTimeout,
    InstanceLost,
    ProviderError,
    Throttled,
)
from daydream_core.instance_pool import FAILED_INIT, KILLED, OUT_OF_MEMORY, InstancePool
from daydream_core.model import HIGH, LOW, StartKind, Tier
from daydream_core.objectstore import LocalObjectStore, ObjectStore
from daydream_core.params import writable_dir
from daydream_core.pricing import AWS_LAMBDA_ARM, AWS_LAMBDA_X86, PriceTable
from daydream_core.provider import (
    NAME_PREFIX,
    Capabilities,
    Ending,
    FunctionHandle,
    Invocation,
    Provider,
    ProviderSettings,
    WarmStart,
    function_name,
)
from daydream_core.runtime import raise_for_envelope
from daydream_core.workflow import RuntimeEnvironment
from daydream_local.envelope import CpuAllocator, host_cpus
from daydream_local.instance import Instance

PRICE_TABLES = {"aws-x86_64": AWS_LAMBDA_X86, "aws-arm64": AWS_LAMBDA_ARM}
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous limit, so apps behave alike
INSTANCE_BUDGET_MB = 1024  # resident memory planned per instance for the default limit
REFERENCE_MEMORY_MB = 10240  # the memory at which an instance gets every host CPU
INIT_TIMEOUT_S = 300.0
EXIT_WAIT_S = 2.0  # how long a process whose pipe closed may take to end on its own


MIN_MEMORY_MB = 128  # as Lambda: below it an interpreter does not start
MAX_KEEP_ALIVE_S = 24 * 3600.0


def max_memory_mb() -> int:
    """The largest tier: Lambda's 10240 MB, or the host's memory where it has more."""
    return max(10240, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20)


def _integer(options: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigurationError(f"local option {key}={raw!r} must be an integer in {low}-{high}")
    return value


def _seconds(options: Mapping[str, str], key: str, default: float, high: float) -> float:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= high):
        raise ConfigurationError(
            f"local option {key}={raw!r} must be a number of seconds in (0, {high:g}]"
        )
    return value


def _store_dir(raw: str | None) -> Path | None:
    if not raw:
        return None
    try:
        return writable_dir(raw)
    except ValueError as exc:
        raise ConfigurationError(f"local option store: {exc}") from None


def default_concurrency() -> int:
    """Instances mostly wait for CPUs on a small host; what bounds them is memory."""
    memory_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    return max(8, min(64, memory_mb // INSTANCE_BUDGET_MB))


class LocalProvider(Provider):
    name = "local"

    def __init__(
        self,
        state_dir: Path,
        *,
        concurrency: int | None = None,
        keep_alive_s: float = 60.0,
        high_memory_mb: int = 10240,
        low_memory_mb: int = 5120,
        prices: PriceTable = AWS_LAMBDA_X86,
        store_dir: Path | None = None,
        faults: fault_injection.FaultPlan | None = None,
    ) -> None:
        self._faults = faults  # tests only (DAYDREAM_FAULTS, see daydream_core.faults)
        self._platform_faults = fault_injection.PlatformFaults(faults) if faults else None
        cpus = host_cpus()
        self._tiers = {
            HIGH: self._tier(HIGH, high_memory_mb, len(cpus)),
            LOW: self._tier(LOW, low_memory_mb, len(cpus)),
        }
        self._prices = prices
        self._concurrency = concurrency or default_concurrency()
        self._keep_alive_s = keep_alive_s
        self._cpus = CpuAllocator(cpus)
        self._log_dir = Path(state_dir) / "instances"
        try:
            Path(state_dir).mkdir(mode=0o700, parents=True, exist_ok=True)  # private
            self._store = LocalObjectStore(store_dir or Path(state_dir) / "store")
        except OSError as exc:
            raise ConfigurationError(
                f"local: cannot create the store in {store_dir or state_dir}: {exc.strerror}"
            ) from None
        self._keys: dict[str, str] = {}  # payload keys, per deployed function (never logged)
        self._ids = itertools.count(1)
        # Instance ids name their log files in <out>/instances/: unique across the commands
        # that share one results folder, not only within one.
        self._platform_id = secrets.token_hex(2)
        self._pool = InstancePool[Instance]("local", self._concurrency, self._spawn, _stop)
        self._instances = self._pool.instances  # by function name (tests look inside)
        self._closed = threading.Event()
        self._reaper = threading.Thread(
            target=self._reap, name="daydream-local-reaper", daemon=True
        )
        self._reaper.start()

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> LocalProvider:
        options = dict(settings.options)
        known = {"keep_alive_s", "high_memory_mb", "low_memory_mb", "prices", "store"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown local option {unknown[0]!r}; valid options: {', '.join(sorted(known))}"
            )
        prices = options.get("prices", "aws-x86_64")
        if prices not in PRICE_TABLES:
            raise ConfigurationError(
                f"unknown local price table {prices!r}; valid: {', '.join(PRICE_TABLES)}"
            )
        top = max_memory_mb()
        high = _integer(options, "high_memory_mb", 10240, MIN_MEMORY_MB, top)
        low = _integer(options, "low_memory_mb", 5120, MIN_MEMORY_MB, top)
        if low > high:
            raise ConfigurationError(
                f"local option low_memory_mb={low} exceeds high_memory_mb={high}"
            )
        return cls(
            settings.state_dir,
            concurrency=settings.concurrency,
            keep_alive_s=_seconds(options, "keep_alive_s", 60.0, MAX_KEEP_ALIVE_S),
            high_memory_mb=high,
            low_memory_mb=low,
            prices=PRICE_TABLES[prices],
            store_dir=_store_dir(options.get("store")),
            faults=fault_injection.from_environment(),
        )

    @staticmethod
    def _tier(name: str, memory_mb: int, host: int) -> Tier:
        # CPU share grows with memory, as on Lambda; scaled so the reference size gets the host.
        vcpus = max(1, min(host, round(host * memory_mb / REFERENCE_MEMORY_MB)))
        return Tier(name, memory_mb, float(vcpus))

    # -- the contract ---------------------------------------------------------------------

    def tiers(self) -> Mapping[str, Tier]:
        return dict(self._tiers)

    def prices(self) -> PriceTable:
        return self._prices

    def capabilities(self) -> Capabilities:
        return Capabilities(
            max_payload_bytes=MAX_PAYLOAD_BYTES,
            max_concurrency=self._concurrency,
            releases_instances=True,
        )

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        handle = FunctionHandle(self.name, function_name(runtime, tier), runtime, tier)
        with self._pool.lock:
            self._keys.setdefault(handle.name, auth.new_key())
            return self._pool.add(handle)

    def warm(self, function: FunctionHandle, n: int) -> builtins.list[WarmStart]:
        spawned = self._pool.start_hot(function, n)
        started: builtins.list[WarmStart] = []
        failures: builtins.list[str] = []
        for instance in spawned:
            try:
                init_ms = instance.wait_ready(INIT_TIMEOUT_S)
            except ProviderError as exc:
                self._pool.discard(instance, FAILED_INIT)
                failures.append(str(exc))
                continue
            # Its init as it ran, without the time it was held back at idle priority: that
            # is what is reported and billed (see daydream_local.priority).
            init_ms = instance.billed_init_ms
            self._pool.initialised(instance, init_ms)
            started.append(WarmStart(instance.id, init_ms, self._prices.billed_ms(init_ms)))
        if failures and not started:
            raise ProviderError(failures[0])
        return started

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        deadline = time.monotonic() + timeout
        self._throttle(payload)
        instance, start, queued_ms = self._acquire(function, deadline)
        init_ms = 0.0
        if start is StartKind.COLD:
            try:
                instance.wait_ready(INIT_TIMEOUT_S)
            except ProviderError:
                self._pool.discard(instance, FAILED_INIT)
                raise
            # As a hot start's: without its wait for a CPU (what is billed is what is reported).
            init_ms = instance.billed_init_ms
            self._pool.initialised(instance, init_ms)
        signed = auth.sign(payload, self._key(function), ttl_s=timeout + auth.DEFAULT_TTL_S)
        try:
            envelope = instance.call(signed, timeout)
        except TimeoutError:
            self._pool.discard(instance, KILLED)
            raise FunctionTimeout(
                f"{payload.get('kind')!r} on {instance.id} ran past its {timeout:g} s timeout"
            ) from None
        except EOFError:
            died = _died(instance)
            self._pool.discard(instance, KILLED)
            raise died from None
        if not envelope.get("ok") and envelope["error"]["type"] == "memory":
            # like Lambda: an environment that ran out is not reused
            self._pool.discard(instance, OUT_OF_MEMORY)
        else:
            self._pool.release(instance, served=True)
        raise_for_envelope(envelope)
        duration_ms = float(envelope["execution_ms"])
        return Invocation(
            output=envelope["output"],
            instance=instance.id,
            start=start,
            init_ms=init_ms,
            duration_ms=duration_ms,
            billed_ms=self._prices.billed_ms(duration_ms + init_ms),
            memory_mb=function.tier.memory_mb,
            max_memory_used_mb=float(envelope.get("max_memory_mb", 0.0)),
            queued_ms=queued_ms,
        )

    def instances(self, function: FunctionHandle) -> builtins.list[str]:
        with self._pool.lock:
            return [i.id for i in self._instances.get(function.name, []) if i.alive]

    def endings(self, function: FunctionHandle) -> dict[str, Ending]:
        return self._pool.endings(function)

    def keep_idle(self, seconds: float | None) -> bool:
        self._pool.keep_idle_s = seconds  # the reaper's next pass applies it
        return True

    def release(self, function: FunctionHandle, keep: int) -> builtins.list[str]:
        return [i.id for i in self._pool.surplus(function, keep)]

    def delete(self, function: FunctionHandle) -> None:
        with self._pool.lock:
            self._keys.pop(function.name, None)
        self._pool.remove(function)

    def list(self, prefix: str = NAME_PREFIX) -> builtins.list[str]:
        return sorted(f.name for f in self._pool.functions() if f.name.startswith(prefix))

    def cleanup(self, dry_run: bool = False) -> builtins.list[str]:
        functions = self._pool.functions()
        removed = [f.name for f in functions]
        if not dry_run:
            for function in functions:
                self.delete(function)
        return removed

    def store(self) -> ObjectStore:
        return self._store

    def close(self) -> None:
        self._closed.set()
        self._pool.close()
        self._reaper.join(timeout=5)

    def _throttle(self, payload: Mapping[str, Any]) -> None:
        """A throttling storm, when a fault plan asks for one (tests only)."""
        if self._platform_faults is not None and self._platform_faults.throttles(payload):
            raise Throttled("local: too many requests (429, injected fault)")

    # -- instances --------------------------------------------------------------------------

    def instance_pids(self) -> dict[str, int]:
        """Live instance processes by id (for tests and diagnostics)."""
        return {i.id: i.process.pid for i in self._pool.everything()}

    def _key(self, function: FunctionHandle) -> str:
        with self._pool.lock:
            try:
                return self._keys[function.name]
            except KeyError:
                raise FunctionNotFound(f"no local function {function.name!r}") from None

    def _spawn(self, function: FunctionHandle, hot: bool) -> Instance:
        """Start an instance (the pool holds its lock); it stays reserved until released."""
        return Instance(
            f"{function.tier.name}-{self._platform_id}-{next(self._ids):04d}",
            function,
            self._cpus.envelope(function.tier),
            hot=hot,
            log_dir=self._log_dir,
            store_uri=self._store.uri,
            key=self._keys[function.name],
            faults=self._faults.spec if self._faults is not None else "",
        )

    def _acquire(
        self, function: FunctionHandle, deadline: float
    ) -> tuple[Instance, StartKind, float]:
        """An instance from the pool's queue, and the ms the request waited in it (to the
        last grant, on the engine's clock); a hot start it claimed before its init finished
        is waited for (and the request queues again if that init failed)."""
        queued_at = time.perf_counter()
        while True:
            instance, start = self._pool.acquire(function, deadline)
            # Not the wait for a claimed hot start's init: the pool no longer counts the
            # request as waiting then.
            queued_ms = (time.perf_counter() - queued_at) * 1000.0
            if start is StartKind.HOT:
                instance.promote()  # its init (if still running) and its work: normal priority
                if not self._pool.await_ready(instance, deadline):
                    continue
            return instance, start, queued_ms

    def _reap(self) -> None:
        """Reclaim instances idle for longer than the keep-alive time."""
        while not self._closed.wait(0.5):
            self._pool.reclaim(self._keep_alive_s)


def _died(instance: Instance) -> ProviderError:
    """Why an instance's process ended mid-component. Its memory is capped by RLIMIT_AS, so
    running out of it is a MemoryError answered as such, never a signal: a signal means
    someone (or something) killed it."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        instance.process.wait(timeout=EXIT_WAIT_S)  # its pipe closes a moment before it ends
    code = instance.process.returncode
    if code is None:
        return ProviderError(f"instance {instance.id} stopped answering: {instance.log_tail()}")
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return InstanceLost(f"instance {instance.id} was killed by {name}", signal=-code)
    return ProviderError(f"instance {instance.id} exited with status {code}: {instance.log_tail()}")


def _stop(instance: Instance) -> None:
    instance.kill()
