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

from daydream_core.errors import FunctionTimeout, OutOfMemory, ProviderError
from daydream_core.instance_pool import FAILED_INIT, KILLED, OUT_OF_MEMORY, InstancePool
from daydream_core.model import StartKind, Tier
from daydream_core.objectstore import ObjectStore
from daydream_core.pricing import PriceTable
from daydream_core.provider import (
    NAME_PREFIX,
    Capabilities,
    Ending,
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

    @property
    def alive(self) -> bool:
        return True  # what Ray ended on its own is found by Ray's own list, in `instances`


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
        self._pool = InstancePool[_Instance](
            "ray", self._concurrency, self._create, self._kill, fits=lambda f: self._fits(f.tier)
        )
        self._instances = self._pool.instances  # by function name
        self._killed: set[str] = set()  # actor names this provider ended itself
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
        handle = FunctionHandle(
            self.name, function_name(runtime, tier, self.deployment), runtime, tier
        )
        return self._pool.add(handle)

    def delete(self, function: FunctionHandle) -> None:
        with self._pool.lock:
            doomed = {i.name for i in self._instances.get(function.name, [])}
        self._pool.remove(function)
        self._await_ended(doomed)

    def list(self, prefix: str = NAME_PREFIX) -> list[str]:
        return sorted(f.name for f in self._pool.functions() if f.name.startswith(prefix))

    def cleanup(self, dry_run: bool = False) -> builtins.list[str]:
        """This provider's functions and their instances, and every other actor in daydream's
        namespace named after a daydream function (left by another driver on the cluster);
        confined to a deployment, only actors under its prefix (actors carry no tags)."""
        functions = self._pool.functions()
        with self._pool.lock:
            ours = {i.name for i in self._pool.everything()} | self._killed
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
        ended = self._pool.close()
        if ray.is_initialized():
            self._await_ended({i.name for i in ended})
        self._reaper.join(timeout=5)
        self.cluster.shutdown()

    # -- instances ----------------------------------------------------------------------------

    def warm(self, function: FunctionHandle, n: int) -> builtins.list[WarmStart]:
        created = self._pool.start_hot(function, n)
        started: list[WarmStart] = []
        failures: list[str] = []
        for instance in created:
            try:
                init_ms = self._wait_ready(instance)
            except ProviderError as exc:
                self._discard(instance, FAILED_INIT)
                failures.append(str(exc))
                continue
            self._pool.initialised(instance, init_ms)
            started.append(WarmStart(instance.id, init_ms, self._prices.billed_ms(init_ms)))
        if failures and not started:
            raise ProviderError(failures[0])
        return started

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        deadline = time.monotonic() + timeout
        queued_at = time.perf_counter()  # the wait in the pool's queue, as the local one's
        instance, start = self._pool.acquire(function, deadline)
        queued_ms = (time.perf_counter() - queued_at) * 1000.0
        while not self._pool.await_ready(instance, deadline):
            instance, start = self._pool.acquire(function, deadline)  # its init failed
            queued_ms = (time.perf_counter() - queued_at) * 1000.0
        init_ms = 0.0
        if start is StartKind.COLD:
            try:
                init_ms = self._wait_ready(instance)
            except ProviderError:
                self._discard(instance, FAILED_INIT)
                raise
            self._pool.initialised(instance, init_ms)
        envelope = self._call(instance, payload, timeout)
        if not envelope.get("ok") and envelope["error"]["type"] == "memory":
            # like Lambda: an instance that ran out is not reused
            self._discard(instance, OUT_OF_MEMORY)
        else:
            self._pool.release(instance, served=True)
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
            queued_ms=queued_ms,
        )

    def instances(self, function: FunctionHandle) -> builtins.list[str]:
        """Exact: an idle actor that Ray ended on its own (its process killed, its node lost)
        is dropped here, by Ray's own list of alive actors."""
        alive = set(self.named_actors())
        with self._pool.lock:
            pool = self._instances.get(function.name, [])
            for gone in [i for i in pool if i.ready and not i.busy and i.name not in alive]:
                self._pool.discard(gone, KILLED)
            return [i.id for i in self._instances.get(function.name, [])]

    def endings(self, function: FunctionHandle) -> dict[str, Ending]:
        return self._pool.endings(function)

    def keep_idle(self, seconds: float | None) -> bool:
        self._pool.keep_idle_s = seconds  # the reaper's next pass applies it
        return True

    def release(self, function: FunctionHandle, keep: int) -> builtins.list[str]:
        surplus = self._pool.surplus(function, keep)
        self._await_ended({i.name for i in surplus})
        return [i.id for i in surplus]

    def instance_names(self) -> dict[str, str]:
        """Live instances' actor names by instance id (for tests and diagnostics)."""
        return {i.id: i.name for i in self._pool.everything()}

    # -- the actors ---------------------------------------------------------------------------

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

    def _create(self, function: FunctionHandle, hot: bool) -> _Instance:
        """Create an actor (the pool holds its lock); it stays reserved until released."""
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
        return _Instance(name, function, actor, hot=hot)

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
        instance.init_ms = (time.monotonic() - instance.created) * 1000.0
        instance.ready = True
        return instance.init_ms

    def _call(
        self, instance: _Instance, payload: Mapping[str, Any], timeout: float
    ) -> dict[str, Any]:
        """One component on the instance; its failures as the shared typed errors."""
        reference = instance.actor.serve.remote(dict(payload))
        try:
            envelope: dict[str, Any] = ray.get(reference, timeout=timeout)
        except GetTimeoutError:
            self._discard(instance, KILLED)
            raise FunctionTimeout(
                f"{payload.get('kind')!r} on {instance.name} ran past its {timeout:g} s timeout"
            ) from None
        except RayActorError as exc:
            cause = _cause(exc)
            if any(marker in str(exc).lower() for marker in _OOM_MARKERS):
                self._discard(instance, OUT_OF_MEMORY)
                raise OutOfMemory(f"ray instance {instance.name} was killed: {cause}") from None
            self._discard(instance, KILLED)
            raise ProviderError(f"ray instance {instance.name} died: {cause}") from None
        except RayError as exc:
            self._discard(instance, KILLED)
            raise ProviderError(f"ray instance {instance.name} failed: {exc}") from None
        return envelope

    def _discard(self, instance: _Instance, reason: str) -> None:
        self._pool.discard(instance, reason)
        self._await_ended({instance.name})

    def _await_ended(self, names: set[str]) -> None:
        """Return once Ray itself no longer lists these actors as alive, so that `instances`,
        `release` and `delete` say what the cluster runs."""
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
        if not ray.is_initialized():
            return  # the cluster is gone, and its actors with it
        with contextlib.suppress(RayError):  # already dead: the goal is reached
            ray.kill(instance.actor, no_restart=True)

    def _reap(self) -> None:
        """Reclaim instances idle for longer than the keep-alive time."""
        while not self._closed.wait(REAP_INTERVAL_S):
            self._pool.reclaim(self.options.keep_alive_s)


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
