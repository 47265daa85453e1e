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
from daydream_core.model import HIGH, LOW, StartKind, Tier
from daydream_core.objectstore import LocalObjectStore, ObjectStore
from daydream_core.params import writable_dir
from daydream_core.pricing import AWS_LAMBDA_ARM, AWS_LAMBDA_X86, PriceTable
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
        self._functions: dict[str, FunctionHandle] = {}
        self._keys: dict[str, str] = {}  # payload keys, per deployed function (never logged)
        self._instances: dict[str, builtins.list[Instance]] = {}
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
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
        with self._cond:
            self._functions.setdefault(handle.name, handle)
            self._keys.setdefault(handle.name, auth.new_key())
            self._instances.setdefault(handle.name, [])
            return self._functions[handle.name]

    def warm(self, function: FunctionHandle, n: int) -> builtins.list[WarmStart]:
        with self._cond:
            self._pool(function)
            room = self._concurrency - self._live()
            spawned = [self._spawn(function, hot=True) for _ in range(min(n, room))]
        started: builtins.list[WarmStart] = []
        failures: builtins.list[str] = []
        for instance in spawned:
            try:
                init_ms = instance.wait_ready(INIT_TIMEOUT_S)
            except ProviderError as exc:
                self._discard(instance)
                failures.append(str(exc))
                continue
            with self._cond:
                if instance.claimed:
                    self._cond.notify_all()  # an invocation is waiting for this very instance
                else:
                    self._release(instance, served=False)
            started.append(WarmStart(instance.id, init_ms, self._prices.billed_ms(init_ms)))
        if failures and not started:
            raise ProviderError(failures[0])
        return started

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        deadline = time.monotonic() + timeout
        self._throttle(payload)
        instance, start = self._acquire(function, deadline)
        while not self._await_hot_start(instance, deadline):
            instance, start = self._acquire(function, deadline)  # its init failed
        init_ms = 0.0
        if start is StartKind.COLD:
            try:
                init_ms = instance.wait_ready(INIT_TIMEOUT_S)
            except ProviderError:
                self._discard(instance)
                raise
        signed = auth.sign(payload, self._key(function), ttl_s=timeout + auth.DEFAULT_TTL_S)
        try:
            envelope = instance.call(signed, timeout)
        except TimeoutError:
            self._discard(instance)
            raise FunctionTimeout(
                f"{payload.get('kind')!r} on {instance.id} ran past its {timeout:g} s timeout"
            ) from None
        except EOFError:
            died = _died(instance)
            self._discard(instance)
            raise died from None
        if not envelope.get("ok") and envelope["error"]["type"] == "memory":
            self._discard(instance)  # like Lambda: an environment that ran out is not reused
        else:
            self._release(instance, served=True)
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
        )

    def instances(self, function: FunctionHandle) -> builtins.list[str]:
        with self._cond:
            return [i.id for i in self._instances.get(function.name, []) if i.alive]

    def release(self, function: FunctionHandle, keep: int) -> builtins.list[str]:
        with self._cond:
            idle = sorted(
                (i for i in self._pool(function) if i.ready and not i.busy),
                key=lambda i: i.last_used,
            )
            surplus = idle[: max(0, len(idle) - keep)]
            for instance in surplus:
                self._pool(function).remove(instance)
        for instance in surplus:
            instance.kill()
        return [i.id for i in surplus]

    def delete(self, function: FunctionHandle) -> None:
        with self._cond:
            self._functions.pop(function.name, None)
            self._keys.pop(function.name, None)
            doomed = self._instances.pop(function.name, [])
            self._cond.notify_all()
        for instance in doomed:
            instance.kill()

    def list(self, prefix: str = NAME_PREFIX) -> builtins.list[str]:
        with self._cond:
            return sorted(name for name in self._functions if name.startswith(prefix))

    def cleanup(self, dry_run: bool = False) -> builtins.list[str]:
        with self._cond:
            functions = list(self._functions.values())
        removed = [f.name for f in functions]
        if not dry_run:
            for function in functions:
                self.delete(function)
        return removed

    def store(self) -> ObjectStore:
        return self._store

    def close(self) -> None:
        self._closed.set()
        with self._cond:
            doomed = [i for pool in self._instances.values() for i in pool]
            for pool in self._instances.values():
                pool.clear()
            self._cond.notify_all()
        for instance in doomed:
            instance.kill()
        self._reaper.join(timeout=5)

    def _throttle(self, payload: Mapping[str, Any]) -> None:
        """A throttling storm, when a fault plan asks for one (tests only)."""
        if self._platform_faults is not None and self._platform_faults.throttles(payload):
            raise Throttled("local: too many requests (429, injected fault)")

    # -- instances --------------------------------------------------------------------------

    def instance_pids(self) -> dict[str, int]:
        """Live instance processes by id (for tests and diagnostics)."""
        with self._cond:
            return {i.id: i.process.pid for pool in self._instances.values() for i in pool}

    def _pool(self, function: FunctionHandle) -> builtins.list[Instance]:
        try:
            return self._instances[function.name]
        except KeyError:
            raise FunctionNotFound(f"no local function {function.name!r}") from None

    def _key(self, function: FunctionHandle) -> str:
        with self._cond:
            try:
                return self._keys[function.name]
            except KeyError:
                raise FunctionNotFound(f"no local function {function.name!r}") from None

    def _live(self) -> int:
        return sum(len(pool) for pool in self._instances.values())

    def _spawn(self, function: FunctionHandle, *, hot: bool) -> Instance:
        """Start an instance (caller holds the lock); it stays reserved until released."""
        instance = Instance(
            f"{function.tier.name}-{next(self._ids):04d}",
            function,
            self._cpus.envelope(function.tier),
            hot=hot,
            log_dir=self._log_dir,
            store_uri=self._store.uri,
            key=self._keys[function.name],
            faults=self._faults.spec if self._faults is not None else "",
        )
        self._pool(function).append(instance)
        return instance

    def _acquire(self, function: FunctionHandle, deadline: float) -> tuple[Instance, StartKind]:
        """An idle instance (hot first, then the most recently used), else a new one."""
        with self._cond:
            while True:
                if self._closed.is_set():
                    raise ProviderError("the local platform is closed")
                pool = self._pool(function)
                idle = [i for i in pool if i.ready and not i.busy and i.alive]
                if idle:
                    fresh = [i for i in idle if i.hot and i.served == 0]
                    chosen = fresh[0] if fresh else max(idle, key=lambda i: i.last_used)
                    chosen.busy = True
                    chosen.promote()
                    return chosen, StartKind.HOT if chosen.served == 0 else StartKind.WARM
                # A hot start still initialising is nearer to ready than a new instance.
                warming = [i for i in pool if i.hot and not i.ready and not i.claimed and i.alive]
                if warming:
                    warming[0].claimed = True
                    warming[0].promote()
                    return warming[0], StartKind.HOT
                if self._live() >= self._concurrency:
                    self._evict_idle_elsewhere(function)
                if self._live() < self._concurrency:
                    return self._spawn(function, hot=False), StartKind.COLD
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FunctionTimeout(
                        f"no local instance became free within the timeout "
                        f"(concurrency limit {self._concurrency})"
                    )
                self._cond.wait(min(remaining, 1.0))

    def _await_hot_start(self, instance: Instance, deadline: float) -> bool:
        """Wait for a claimed hot start to finish its init; False if its init failed."""
        if not instance.claimed:
            return True
        with self._cond:
            while not instance.ready:
                if instance not in self._instances.get(instance.function.name, []):
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FunctionTimeout(f"hot start {instance.id} was not ready in time")
                self._cond.wait(min(remaining, 1.0))
        return True

    def _evict_idle_elsewhere(self, function: FunctionHandle) -> None:
        for name, pool in self._instances.items():
            if name == function.name:
                continue
            for instance in pool:
                if instance.ready and not instance.busy:
                    pool.remove(instance)
                    instance.kill()
                    return

    def _release(self, instance: Instance, *, served: bool) -> None:
        with self._cond:
            instance.busy = False
            instance.served += int(served)
            instance.last_used = time.monotonic()
            self._cond.notify_all()

    def _discard(self, instance: Instance) -> None:
        with self._cond:
            pool = self._instances.get(instance.function.name, [])
            if instance in pool:
                pool.remove(instance)
            self._cond.notify_all()
        instance.kill()

    def _reap(self) -> None:
        """Reclaim instances idle for longer than the keep-alive time."""
        while not self._closed.wait(0.5):
            now = time.monotonic()
            with self._cond:
                expired = [
                    i
                    for pool in self._instances.values()
                    for i in pool
                    if i.ready and not i.busy and now - i.last_used > self._keep_alive_s
                ]
                for instance in expired:
                    self._instances[instance.function.name].remove(instance)
            for instance in expired:
                instance.kill()


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
