"""The Ray adapter: an instance is a Ray actor holding one tier's resources.

An actor's constructor loads the workflow's runtime environment (`daydream_ray.handler`), then
it serves components by name, one call at a time. A cold start is an actor created on the
invocation's critical path; a hot start is an actor created ahead by `warm`; a warm start is an
idle actor reused. Tiers are actor resource requests (CPUs, memory, optionally a custom
resource or a node label), checked against the cluster when the provider starts. Idle actors
are killed after the keep-alive time, or by `release`. Every actor is named after its hashed
function name in daydream's namespace, so `cleanup` finds exactly what daydream created. Ray is
imported here only, and this module only when the provider is created.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import math
import os
import re
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from daydream_core.errors import FunctionNotFound, FunctionTimeout, OutOfMemory, ProviderError
from daydream_core.model import StartKind, Tier
from daydream_core.objectstore import ObjectStore
from daydream_core.pricing import PriceTable
from daydream_core.provider import (
    NAME_PREFIX,
    Capabilities,
    FunctionHandle,
    Invocation,
    Provider,
    ProviderSettings,
    WarmStart,
    deployment_prefix,
    function_name,
)
from daydream_core.runtime import raise_for_envelope
from daydream_core.workflow import RuntimeEnvironment
from daydream_ray.cluster import Cluster, check_tiers, fitting_instances, tier_request
from daydream_ray.handler import RayInstance
from daydream_ray.options import NAMESPACE, RayOptions
from daydream_ray.store import choose_store, warn_if_not_shared

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous limit, so apps behave alike
REAP_INTERVAL_S = 0.5
END_WAIT_S = 10.0  # how long release/delete wait for Ray to confirm that actors ended
END_POLL_S = 0.05
# How Ray's memory monitor words the death of an actor it killed (a kernel OOM kill looks like
# any other killed process).
_OOM_MARKERS = ("running low on memory", "memory usage threshold")
MAX_CAUSE_CHARS = 400
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ID_FIELDS = {"class_name", "actor_id", "pid", "name", "namespace", "ip"}


class _Instance:
    """One actor. Its life: created (hot or cold) → ready → busy/idle … → killed."""

    def __init__(self, name: str, function: FunctionHandle, actor: Any, *, hot: bool) -> None:
        self.name = name
        self.function = function
        self.actor = actor
        self.id: str = actor._actor_id.hex()  # Ray's own id of the actor (no public getter)
        self.hot = hot
        self.busy = True  # reserved by whoever created it until it is ready and released
        self.ready = False
        self.claimed = False  # an invocation took this hot start before its init finished
        self.served = 0
        self.init_ms = 0.0
        self.created = time.monotonic()
        self.last_used = self.created
        self.ready_ref = actor.ready.remote()


class RayProvider(Provider):
    """Ray, as daydream uses it."""

    name = "ray"

    def __init__(self, settings: ProviderSettings, cluster: Cluster | None = None) -> None:
        self.options = RayOptions.parse(settings.options)
        self.deployment = settings.deployment
        self._runtime_env = self.options.runtime_env_dict()
        self._store = choose_store(self.options.store, Path(settings.state_dir))
        self._tiers = self.options.tiers()
        self._custom = {t: self.options.custom_resources(t) for t in self._tiers}
        self._labels = {t: self.options.label_selector(t) for t in self._tiers}
        self._prices = self.options.price_table()
        self.cluster = cluster or Cluster.connect(self.options)
        try:
            nodes = self.cluster.nodes()
            check_tiers(nodes, self._tiers, self._custom, self._labels)
        except BaseException:
            self.cluster.shutdown()
            raise
        warn_if_not_shared(self._store, len(nodes), self.options.store)
        # What the cluster holds in all; instances are created only while theirs fit in it.
        self._budget: dict[str, float] = {}
        for node in nodes:
            for key, value in node.resources.items():
                self._budget[key] = self._budget.get(key, 0.0) + value
        low = tier_request(self._tiers["low"], self._custom["low"])
        self._concurrency = (
            settings.concurrency
            or self.options.max_concurrency
            or max(1, fitting_instances(nodes, low))
        )
        self._actor_class = ray.remote(RayInstance)
        self._untrusted = [os.getcwd(), os.path.dirname(os.path.realpath(sys.argv[0] or "."))]
        self._functions: dict[str, FunctionHandle] = {}
        self._instances: dict[str, list[_Instance]] = {}
        self._killed: set[str] = set()  # actor names this provider ended itself
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="daydream-ray-reaper", daemon=True)
        self._reaper.start()

    # -- what the provider declares ---------------------------------------------------------

    def tiers(self) -> Mapping[str, Tier]:
        return dict(self._tiers)

    def prices(self) -> PriceTable:
        return self._prices

    def capabilities(self) -> Capabilities:
        return Capabilities(
            max_payload_bytes=MAX_PAYLOAD_BYTES,
            max_concurrency=self._concurrency,
            releases_instances=True,
            idle_costs=True,  # an idle actor holds cluster resources others could use
        )

    # -- functions ----------------------------------------------------------------------------

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        name = function_name(runtime, tier, self.deployment)
        handle = FunctionHandle(self.name, name, runtime, tier)
        with self._cond:
            self._functions.setdefault(handle.name, handle)
            self._instances.setdefault(handle.name, [])
            return self._functions[handle.name]

    def delete(self, function: FunctionHandle) -> None:
        with self._cond:
            self._functions.pop(function.name, None)
            doomed = self._instances.pop(function.name, [])
            self._cond.notify_all()
        self._end(doomed)

    def list(self, prefix: str = NAME_PREFIX) -> list[str]:
        with self._cond:
            return sorted(name for name in self._functions if name.startswith(prefix))

    def cleanup(self, dry_run: bool = False) -> builtins.list[str]:
        """This provider's functions and their instances, and every other actor in daydream's
        namespace named after a daydream function (left by another driver on the cluster);
        confined to a deployment, only actors under its prefix (actors carry no tags)."""
        with self._cond:
            functions = builtins.list(self._functions.values())
            ours = {i.name for pool in self._instances.values() for i in pool} | self._killed
        foreign = [name for name in self.named_actors() if name not in ours]
        removed = [f.name for f in functions] + [f"actor {name}" for name in foreign]
        if not dry_run:
            for function in functions:
                self.delete(function)
            for name in foreign:
                with contextlib.suppress(ValueError):  # it ended meanwhile
                    ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
                self._killed.add(name)
            self._await_ended(set(foreign))
        return removed

    def named_actors(self) -> builtins.list[str]:
        """Alive actors in daydream's namespace named like daydream's instances (Ray's word),
        under this deployment's prefix when confined to one."""
        prefix = deployment_prefix(self.deployment)
        return sorted(
            entry["name"]
            for entry in ray.util.list_named_actors(all_namespaces=True)
            if entry["namespace"] == NAMESPACE and entry["name"].startswith(prefix)
        )

    def store(self) -> ObjectStore:
        return self._store

    def close(self) -> None:
        self._closed.set()
        with self._cond:
            doomed = [i for pool in self._instances.values() for i in pool]
            for pool in self._instances.values():
                pool.clear()
            self._cond.notify_all()
        if ray.is_initialized():
            self._end(doomed)
        self._reaper.join(timeout=5)
        self.cluster.shutdown()

    # -- instances ----------------------------------------------------------------------------

    def warm(self, function: FunctionHandle, n: int) -> builtins.list[WarmStart]:
        with self._cond:
            self._pool(function)
            created = []
            for _ in range(n):
                if self._live() >= self._concurrency or not self._fits(function.tier):
                    break
                created.append(self._create(function, hot=True))
        started: list[WarmStart] = []
        failures: list[str] = []
        for instance in created:
            try:
                init_ms = self._wait_ready(instance)
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
        instance, start = self._acquire(function, deadline)
        while not self._await_hot_start(instance, deadline):
            instance, start = self._acquire(function, deadline)  # its init failed
        init_ms = 0.0
        if start is StartKind.COLD:
            try:
                init_ms = self._wait_ready(instance)
            except ProviderError:
                self._discard(instance)
                raise
        envelope = self._call(instance, payload, timeout)
        if not envelope.get("ok") and envelope["error"]["type"] == "memory":
            self._discard(instance)  # like Lambda: an instance that ran out is not reused
        else:
            self._release(instance, served=True)
        raise_for_envelope(envelope)
        duration_ms = float(envelope["execution_ms"])
        billed_init = init_ms if self._prices.init_billed else 0.0
        return Invocation(
            output=envelope["output"],
            instance=instance.id,
            start=start,
            init_ms=init_ms,
            duration_ms=duration_ms,
            billed_ms=self._prices.billed_ms(duration_ms + billed_init),
            memory_mb=function.tier.memory_mb,
            max_memory_used_mb=float(envelope.get("max_memory_mb", 0.0)),
        )

    def instances(self, function: FunctionHandle) -> builtins.list[str]:
        """Exact: an idle actor that Ray ended on its own (its process killed, its node lost)
        is dropped here, by Ray's own list of alive actors."""
        alive = set(self.named_actors())
        with self._cond:
            pool = self._instances.get(function.name, [])
            for gone in [i for i in pool if i.ready and not i.busy and i.name not in alive]:
                pool.remove(gone)
                self._killed.add(gone.name)
            return [i.id for i in pool]

    def release(self, function: FunctionHandle, keep: int) -> builtins.list[str]:
        with self._cond:
            idle = sorted(
                (i for i in self._pool(function) if i.ready and not i.busy),
                key=lambda i: i.last_used,
            )
            surplus = idle[: max(0, len(idle) - keep)]
            for instance in surplus:
                self._pool(function).remove(instance)
            self._cond.notify_all()
        self._end(surplus)
        return [i.id for i in surplus]

    def instance_names(self) -> dict[str, str]:
        """Live instances' actor names by instance id (for tests and diagnostics)."""
        with self._cond:
            return {i.id: i.name for pool in self._instances.values() for i in pool}

    # -- the actors ---------------------------------------------------------------------------

    def _pool(self, function: FunctionHandle) -> builtins.list[_Instance]:
        try:
            return self._instances[function.name]
        except KeyError:
            raise FunctionNotFound(f"no ray function {function.name!r}") from None

    def _live(self) -> int:
        return sum(len(pool) for pool in self._instances.values())

    def _held(self) -> dict[str, float]:
        held: dict[str, float] = {}
        for pool in self._instances.values():
            for instance in pool:
                tier = instance.function.tier
                for key, value in tier_request(tier, self._custom.get(tier.name, {})).items():
                    held[key] = held.get(key, 0.0) + value
        return held

    def _fits(self, tier: Tier) -> bool:
        """Whether one more instance of `tier` fits beside those this provider holds."""
        held = self._held()
        request = tier_request(tier, self._custom.get(tier.name, {}))
        return all(
            held.get(k, 0.0) + v <= self._budget.get(k, 0.0) + 1e-9 for k, v in request.items()
        )

    def _create(self, function: FunctionHandle, *, hot: bool) -> _Instance:
        """Create an actor (caller holds the lock); it stays reserved until released."""
        tier = function.tier
        name = f"{function.name}:{uuid.uuid4().hex[:8]}"
        options: dict[str, Any] = {
            "name": name,
            "namespace": NAMESPACE,
            "num_cpus": tier.vcpus,
            "memory": tier.memory_mb * 2**20,
            "max_restarts": 0,
            "max_task_retries": 0,
            "max_concurrency": 1,
        }
        if self._custom.get(tier.name):
            options["resources"] = self._custom[tier.name]
        if self._labels.get(tier.name):
            options["label_selector"] = self._labels[tier.name]
        if self._runtime_env is not None:
            options["runtime_env"] = self._runtime_env
        actor = self._actor_class.options(**options).remote(
            dataclasses.asdict(function.runtime),
            dataclasses.asdict(tier),
            max(1, math.ceil(tier.vcpus)),
            self._untrusted,
            self.store().uri,
        )
        instance = _Instance(name, function, actor, hot=hot)
        self._pool(function).append(instance)
        return instance

    def _wait_ready(self, instance: _Instance) -> float:
        """Block until the actor's runtime environment is loaded; the cold-start time in ms,
        from its creation (scheduling, worker start, init) as the driver saw it."""
        remaining = self.options.init_timeout_s - (time.monotonic() - instance.created)
        try:
            ray.get(instance.ready_ref, timeout=max(0.001, remaining))
        except GetTimeoutError:
            raise ProviderError(
                f"ray instance {instance.name} was not ready within "
                f"{self.options.init_timeout_s:g} s (does the cluster have room for "
                f"{instance.function.tier.vcpus:g} CPU and {instance.function.tier.memory_mb} "
                "MB? see `ray status`)"
            ) from None
        except RayActorError as exc:
            raise ProviderError(
                f"ray instance {instance.name} failed to load its runtime environment: "
                f"{_last_line(exc)}"
            ) from None
        except RayError as exc:
            raise ProviderError(f"ray instance {instance.name} failed to start: {exc}") from None
        with self._cond:
            instance.init_ms = (time.monotonic() - instance.created) * 1000.0
            instance.ready = True
            self._cond.notify_all()
        return instance.init_ms

    def _call(
        self, instance: _Instance, payload: Mapping[str, Any], timeout: float
    ) -> dict[str, Any]:
        """One component on the instance; its failures as the shared typed errors."""
        reference = instance.actor.serve.remote(dict(payload))
        try:
            envelope: dict[str, Any] = ray.get(reference, timeout=timeout)
        except GetTimeoutError:
            self._discard(instance)
            raise FunctionTimeout(
                f"{payload.get('kind')!r} on {instance.name} ran past its {timeout:g} s timeout"
            ) from None
        except RayActorError as exc:
            self._discard(instance)
            cause = _cause(exc)
            if any(marker in str(exc).lower() for marker in _OOM_MARKERS):
                raise OutOfMemory(f"ray instance {instance.name} was killed: {cause}") from None
            raise ProviderError(f"ray instance {instance.name} died: {cause}") from None
        except RayError as exc:
            self._discard(instance)
            raise ProviderError(f"ray instance {instance.name} failed: {exc}") from None
        return envelope

    def _acquire(self, function: FunctionHandle, deadline: float) -> tuple[_Instance, StartKind]:
        """An idle instance (hot first, then the most recently used), else a new one."""
        with self._cond:
            while True:
                if self._closed.is_set():
                    raise ProviderError("the ray provider is closed")
                pool = self._pool(function)
                idle = [i for i in pool if i.ready and not i.busy]
                if idle:
                    fresh = [i for i in idle if i.hot and i.served == 0]
                    chosen = fresh[0] if fresh else max(idle, key=lambda i: i.last_used)
                    chosen.busy = True
                    return chosen, StartKind.HOT if chosen.served == 0 else StartKind.WARM
                # A hot start still initialising is nearer to ready than a new instance.
                warming = [i for i in pool if i.hot and not i.ready and not i.claimed]
                if warming:
                    warming[0].claimed = True
                    return warming[0], StartKind.HOT
                if self._live() >= self._concurrency or not self._fits(function.tier):
                    self._evict_idle_elsewhere(function)
                if self._live() < self._concurrency and self._fits(function.tier):
                    return self._create(function, hot=False), StartKind.COLD
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FunctionTimeout(
                        f"no ray instance became free within the timeout (concurrency limit "
                        f"{self._concurrency})"
                    )
                self._cond.wait(min(remaining, 1.0))

    def _await_hot_start(self, instance: _Instance, deadline: float) -> bool:
        """Wait for a claimed hot start to finish its init; False if its init failed."""
        if not instance.claimed:
            return True
        with self._cond:
            while not instance.ready:
                if instance not in self._instances.get(instance.function.name, []):
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FunctionTimeout(f"hot start {instance.name} was not ready in time")
                self._cond.wait(min(remaining, 1.0))
        return True

    def _evict_idle_elsewhere(self, function: FunctionHandle) -> None:
        """Make room for `function`: kill the least recently used idle instance of another
        function (caller holds the lock)."""
        idle = [
            i
            for name, pool in self._instances.items()
            if name != function.name
            for i in pool
            if i.ready and not i.busy
        ]
        if idle:
            victim = min(idle, key=lambda i: i.last_used)
            self._instances[victim.function.name].remove(victim)
            self._kill(victim)

    def _release(self, instance: _Instance, *, served: bool) -> None:
        with self._cond:
            instance.busy = False
            instance.served += int(served)
            instance.last_used = time.monotonic()
            self._cond.notify_all()

    def _discard(self, instance: _Instance) -> None:
        with self._cond:
            pool = self._instances.get(instance.function.name, [])
            if instance in pool:
                pool.remove(instance)
            self._cond.notify_all()
        self._end([instance])

    def _end(self, instances: builtins.list[_Instance]) -> None:
        """Kill actors and return once Ray itself no longer lists them as alive, so that
        `instances`, `release` and `delete` say what the cluster runs."""
        for instance in instances:
            self._kill(instance)
        self._await_ended({i.name for i in instances})

    def _await_ended(self, names: set[str]) -> None:
        if not names:
            return
        deadline = time.monotonic() + END_WAIT_S
        while names & set(self.named_actors()):
            if time.monotonic() > deadline:
                warnings.warn(
                    f"ray: {len(names)} killed actor(s) still listed after {END_WAIT_S:g} s",
                    stacklevel=3,
                )
                return
            time.sleep(END_POLL_S)

    def _kill(self, instance: _Instance) -> None:
        self._killed.add(instance.name)
        with contextlib.suppress(RayError):  # already dead: the goal is reached
            ray.kill(instance.actor, no_restart=True)

    def _reap(self) -> None:
        """Reclaim instances idle for longer than the keep-alive time."""
        while not self._closed.wait(REAP_INTERVAL_S):
            now = time.monotonic()
            with self._cond:
                expired = [
                    i
                    for pool in self._instances.values()
                    for i in pool
                    if i.ready and not i.busy and now - i.last_used > self.options.keep_alive_s
                ]
                for instance in expired:
                    self._instances[instance.function.name].remove(instance)
                if expired:
                    self._cond.notify_all()
            for instance in expired:
                self._kill(instance)


def _last_line(exc: BaseException) -> str:
    """The exception a creation task raised: the last line of its remote traceback."""
    lines = [_ANSI.sub("", line).strip() for line in str(exc).splitlines()]
    return next((line for line in reversed(lines) if line), type(exc).__name__)


def _cause(exc: BaseException) -> str:
    """The useful part of a Ray error: its message lines without the actor's id fields,
    shortened (the full text is in Ray's logs)."""
    lines = [_ANSI.sub("", line).strip() for line in str(exc).strip().splitlines()]
    kept = [line for line in lines if line and line.split(":", 1)[0] not in _ID_FIELDS]
    text = " | ".join(kept or lines[-1:]) or type(exc).__name__
    return text if len(text) <= MAX_CAUSE_CHARS else text[: MAX_CAUSE_CHARS - 1] + "…"
