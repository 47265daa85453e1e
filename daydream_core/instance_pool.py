"""The instances of a platform daydream runs itself, under one concurrency limit.

Used by the providers whose instances are daydream's own (the local platform's processes,
Ray's actors); the platform-specific part (starting and stopping an instance) is two
callables. What is shared is what decides who gets an instance:

- **Requests queue in arrival order**, across functions. Each waits on its own condition and
  is woken only when it has been granted an instance: no thundering herd at the limit.
- A request takes, in order: an idle instance of its function (a hot start before a warm one),
  a hot start of its function still initialising, a new instance if the limit leaves room (a
  cold start, as on Lambda), else an idle instance of **another function with no request
  waiting** is evicted to start one in its place. An instance whose own function has work
  queued is never evicted.
- Eviction also has to pay: while the request's own function has instances busy, it waits for
  one of them unless its queue's expected wait (its requests waiting, divided among its
  instances, times their execution time) exceeds the function's cold start. So a phase
  that drains unevenly across tiers does not trade warm instances for cold starts it would not
  need.
- Every instance that leaves the pool leaves with a reason, a time, and the number of its
  function's requests then waiting (an `Ending`, kept for `endings`): what lets a run's
  records show that no instance was evicted while its own function had requests waiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from daydream_core.errors import FunctionNotFound, FunctionTimeout, ProviderError
from daydream_core.model import StartKind
from daydream_core.provider import Ending, FunctionHandle

# Why an instance ended, as recorded in `run.json` (`InstanceLife.ended_by`).
RELEASED = "daydream"  # released by daydream as surplus (`Provider.release`)
KEEP_ALIVE = "keep-alive"  # reclaimed by the platform after its keep-alive time
EVICTED = "evicted"  # evicted to make room for another function's request
KILLED = "killed"  # its process or actor died, or was killed for overrunning its timeout
OUT_OF_MEMORY = "out-of-memory"  # it ran out of memory and is not reused (as on Lambda)
FAILED_INIT = "failed-init"  # its runtime environment did not load
CLOSED = "closed"  # the platform was closed, or the function deleted
ENDINGS = (RELEASED, KEEP_ALIVE, EVICTED, KILLED, OUT_OF_MEMORY, FAILED_INIT, CLOSED)

SMOOTHING = 0.2  # weight of the newest observation in the per-function averages
MAX_ENDED = 100_000  # endings remembered per function (a run's lives, not forever)
REWEIGH_S = 0.5  # how often a waiting request re-weighs a start against waiting


class PooledInstance(Protocol):
    """What the pool needs of an instance; the provider's own class carries the rest."""

    id: str
    function: FunctionHandle
    hot: bool  # started ahead by `warm`
    busy: bool  # reserved: initialising for its starter, or serving a component
    ready: bool  # its runtime environment is loaded
    claimed: bool  # a request took this hot start before its init finished
    served: int
    last_used: float

    @property
    def alive(self) -> bool: ...


Inst = TypeVar("Inst", bound=PooledInstance)


@dataclass
class _Request:
    """One invocation waiting in the queue for an instance."""

    function: str
    wakeup: threading.Condition
    granted: tuple[Any, StartKind] | None = None


@dataclass
class _Demand:
    """What the pool has learned of one function's instances (for "does eviction pay")."""

    execution_s: float | None = None  # smoothed time an instance is busy per invocation
    init_s: float | None = None  # smoothed cold-start time
    granted: dict[str, float] = field(default_factory=dict)  # busy instance -> since when

    def learn_execution(self, seconds: float) -> None:
        self.execution_s = _smooth(self.execution_s, seconds)

    def learn_init(self, seconds: float) -> None:
        self.init_s = _smooth(self.init_s, seconds)


def _smooth(average: float | None, value: float) -> float:
    return value if average is None else (1 - SMOOTHING) * average + SMOOTHING * value


class InstancePool(Generic[Inst]):
    """Instances per function, a FIFO queue of requests, and the reasons instances ended.

    `start(function, hot)` creates an instance, reserved (`busy`) for whoever started it; the
    pool calls it with its lock held. `stop(instance)` ends one; the pool calls it without the
    lock. `fits(function)` says whether one more instance of the function fits the platform's
    resources beside those alive (Ray's cluster budget); the count limit is the pool's own.
    The provider reports an instance's init with `initialised` and its end of use with
    `release` or `discard`.
    """

    def __init__(
        self,
        platform: str,
        limit: int,
        start: Callable[[FunctionHandle, bool], Inst],
        stop: Callable[[Inst], None],
        fits: Callable[[FunctionHandle], bool] | None = None,
    ) -> None:
        self.platform = platform
        self.limit = limit
        self._start = start
        self._stop = stop
        self._fits = fits or (lambda function: True)
        self.lock = threading.RLock()
        self.closed = False
        # A policy's keep-alive window, where it set one: it replaces the platform's own.
        self.keep_idle_s: float | None = None
        self._functions: dict[str, FunctionHandle] = {}
        self.instances: dict[str, list[Inst]] = {}  # by function name (read with the lock)
        self._demand: dict[str, _Demand] = {}
        self._ended: dict[str, dict[str, Ending]] = {}
        self._queue: deque[_Request] = deque()
        self._initialising: set[str] = set()
        self._claims: dict[str, _Request] = {}  # hot starts taken while still initialising
        self._doomed: list[Inst] = []  # removed under the lock, stopped once it is let go

    # -- functions ----------------------------------------------------------------------------

    def add(self, function: FunctionHandle) -> FunctionHandle:
        """Register a deployed function (idempotent); return the registered handle."""
        with self.lock:
            handle = self._functions.setdefault(function.name, function)
            self.instances.setdefault(function.name, [])
            self._demand.setdefault(function.name, _Demand())
            self._ended.setdefault(function.name, {})
            return handle

    def remove(self, function: FunctionHandle) -> None:
        """The function is deleted: its instances end; its waiting requests fail."""
        with self._changing():
            for instance in list(self.instances.get(function.name, [])):
                self._end(instance, CLOSED)
            for name in (self._functions, self.instances, self._demand, self._ended):
                name.pop(function.name, None)
            self._wake_all()

    def functions(self) -> list[FunctionHandle]:
        with self.lock:
            return list(self._functions.values())

    def pool(self, function: FunctionHandle) -> list[Inst]:
        """The function's instances (caller holds the lock)."""
        try:
            return self.instances[function.name]
        except KeyError:
            raise FunctionNotFound(f"no {self.platform} function {function.name!r}") from None

    def everything(self) -> list[Inst]:
        with self.lock:
            return [i for pool in self.instances.values() for i in pool]

    def endings(self, function: FunctionHandle) -> dict[str, Ending]:
        """How the function's instances that left the pool ended, by instance id."""
        with self.lock:
            return dict(self._ended.get(function.name, {}))

    def ended(self, function: FunctionHandle) -> dict[str, str]:
        """Why the function's instances that left the pool ended, by instance id."""
        return {instance: e.reason for instance, e in self.endings(function).items()}

    # -- hot starts ---------------------------------------------------------------------------

    def start_hot(self, function: FunctionHandle, n: int) -> list[Inst]:
        """Start up to `n` hot starts, as many as the limit leaves room for now. They evict
        nothing: an idle instance is worth as much to its own function's next phase."""
        with self.lock:
            self.pool(function)
            started: list[Inst] = []
            while len(started) < n and self._has_room(function):
                started.append(self._spawn(function, hot=True))
            return started

    def initialised(self, instance: Inst, init_ms: float) -> None:
        """An instance's init finished. A hot start goes to the request that claimed it, else
        joins the idle instances; a cold start stays with the request that started it."""
        with self._changing():
            self._initialising.discard(instance.id)
            demand = self._demand.get(instance.function.name)
            # A hot start's init ran at idle priority: a cold start's says what one costs.
            if demand is not None and (not instance.hot or demand.init_s is None):
                demand.learn_init(init_ms / 1000.0)
            request = self._claims.pop(instance.id, None)
            if demand is not None and (request is not None or not instance.hot):
                demand.granted[instance.id] = time.monotonic()  # its request's work begins
            if request is not None:
                request.wakeup.notify()
            elif instance.hot:
                self._free(instance, served=False)

    # -- invocations --------------------------------------------------------------------------

    def acquire(self, function: FunctionHandle, deadline: float) -> tuple[Inst, StartKind]:
        """Queue for an instance of `function`; return it, reserved, and how it started. A
        hot start still initialising comes back claimed: wait for it with `await_ready`."""
        with self._changing():
            self._check_open(function)
            request = _Request(function.name, threading.Condition(self.lock))
            self._queue.append(request)
            self._dispatch()
            try:
                while request.granted is None:
                    self._check_open(function)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise FunctionTimeout(
                            f"no {self.platform} instance became free within the timeout "
                            f"(concurrency limit {self.limit})"
                        )
                    # Woken when granted; the timeout re-weighs eviction as work runs long.
                    request.wakeup.wait(min(remaining, REWEIGH_S))
                    if request.granted is None:
                        self._dispatch()
            finally:
                if request.granted is None:
                    self._queue.remove(request)
                    self._dispatch()
            instance, start = request.granted
            if instance.id not in self._initialising:  # else its work starts at `initialised`
                self._demand[function.name].granted[instance.id] = time.monotonic()
            return instance, start

    def await_ready(self, instance: Inst, deadline: float) -> bool:
        """Wait for a claimed hot start to finish its init; False if its init failed (the
        caller queues again). Anything else it was granted is the caller's already."""
        if not instance.claimed:
            return True
        with self.lock:
            request = self._claims.get(instance.id)
            while instance.id in self._initialising:
                if request is None or instance not in self.instances.get(
                    instance.function.name, []
                ):
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FunctionTimeout(f"hot start {instance.id} was not ready in time")
                request.wakeup.wait(min(remaining, 1.0))
            return instance in self.instances.get(instance.function.name, [])

    def release(self, instance: Inst, *, served: bool) -> None:
        """An invocation is done with its instance: it goes to the next request, or idles."""
        with self._changing():
            demand = self._demand.get(instance.function.name)
            began = demand.granted.pop(instance.id, None) if demand else None
            if demand is not None and began is not None and served:
                demand.learn_execution(time.monotonic() - began)
            self._free(instance, served=served)

    def discard(self, instance: Inst, reason: str) -> None:
        """The instance is unusable (it died, overran its timeout, ran out of memory, or its
        init failed); it ends for `reason`."""
        with self._changing():
            self._initialising.discard(instance.id)
            demand = self._demand.get(instance.function.name)
            if demand is not None:
                demand.granted.pop(instance.id, None)
            self._end(instance, reason)
            self._dispatch()

    # -- release and reclaim ------------------------------------------------------------------

    def surplus(self, function: FunctionHandle, keep: int) -> list[Inst]:
        """End idle instances beyond `keep`, least recently used first."""
        with self._changing():
            idle = sorted(
                (i for i in self.pool(function) if i.ready and not i.busy),
                key=lambda i: i.last_used,
            )
            doomed = idle[: max(0, len(idle) - keep)]
            for instance in doomed:
                self._end(instance, RELEASED)
            self._dispatch()
            return doomed

    def reclaim(self, keep_alive_s: float) -> list[Inst]:
        """End instances idle for longer than `keep_alive_s` (or the policy's window)."""
        if self.keep_idle_s is not None:
            keep_alive_s = self.keep_idle_s
        now = time.monotonic()
        with self._changing():
            expired = [
                i
                for pool in self.instances.values()
                for i in pool
                if i.ready and not i.busy and now - i.last_used > keep_alive_s
            ]
            for instance in expired:
                self._end(instance, KEEP_ALIVE)
            if expired:
                self._dispatch()
            return expired

    def close(self) -> list[Inst]:
        """End every instance; waiting requests fail."""
        with self._changing():
            self.closed = True
            doomed = [i for pool in self.instances.values() for i in pool]
            for instance in doomed:
                self._end(instance, CLOSED)
            self._wake_all()
            return doomed

    # -- the mechanism (the caller holds the lock) ------------------------------------------------

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the lock; stop what was removed meanwhile once it is let go."""
        with self.lock:
            yield
            doomed, self._doomed = self._doomed, []
        for instance in doomed:
            self._stop(instance)

    def _check_open(self, function: FunctionHandle) -> None:
        if self.closed:
            raise ProviderError(f"the {self.platform} platform is closed")
        self.pool(function)

    def _live(self) -> int:
        return sum(len(pool) for pool in self.instances.values())

    def _has_room(self, function: FunctionHandle) -> bool:
        return self._live() < self.limit and self._fits(function)

    def _spawn(self, function: FunctionHandle, *, hot: bool) -> Inst:
        instance = self._start(function, hot)
        self.pool(function).append(instance)
        self._initialising.add(instance.id)
        return instance

    def _free(self, instance: Inst, *, served: bool) -> None:
        instance.busy = False
        instance.served += int(served)
        instance.last_used = time.monotonic()
        self._dispatch()

    def _end(self, instance: Inst, reason: str) -> None:
        """Take the instance out of the pool for `reason` (it is stopped after the lock)."""
        pool = self.instances.get(instance.function.name, [])
        if instance not in pool:
            return
        pool.remove(instance)
        name = instance.function.name
        ended = self._ended.setdefault(name, {})
        if len(ended) >= MAX_ENDED:
            ended.pop(next(iter(ended)))
        # Requests granted in a `_dispatch` pass stay queued until it ends: they wait no more.
        waiting = sum(1 for r in self._queue if r.function == name and r.granted is None)
        ended[instance.id] = Ending(reason, time.perf_counter(), waiting)
        self._doomed.append(instance)
        request = self._claims.pop(instance.id, None)
        if request is not None:
            request.wakeup.notify()  # the hot start it claimed is gone: it queues again

    def _wake_all(self) -> None:
        for request in [*self._queue, *self._claims.values()]:
            request.wakeup.notify()

    def _dispatch(self) -> None:
        """Grant what can be granted, in arrival order. Once a function's request cannot be
        served, its later requests are not either: they wait behind it."""
        if not self._queue:
            return
        waiting: dict[str, int] = {}
        for request in self._queue:
            waiting[request.function] = waiting.get(request.function, 0) + 1
        blocked: set[str] = set()
        granted: list[_Request] = []
        for request in self._queue:
            if request.function in blocked:
                continue
            grant = self._grant(request, waiting)
            if grant is None:
                blocked.add(request.function)
                continue
            request.granted = grant
            granted.append(request)
            waiting[request.function] -= 1
        for request in granted:
            self._queue.remove(request)
            request.wakeup.notify()

    def _grant(self, request: _Request, waiting: dict[str, int]) -> tuple[Inst, StartKind] | None:
        function = self._functions.get(request.function)
        if function is None:
            return None
        pool = self.instances[request.function]
        for dead in [i for i in pool if i.ready and not i.busy and not i.alive]:
            self._end(dead, KILLED)  # an idle instance that died on its own
        idle = [i for i in pool if i.ready and not i.busy]
        if idle:
            fresh = [i for i in idle if i.hot and i.served == 0]
            chosen = fresh[0] if fresh else max(idle, key=lambda i: i.last_used)
            chosen.busy = True
            return chosen, StartKind.HOT if chosen.served == 0 else StartKind.WARM
        # A hot start still initialising is nearer to ready than a new instance.
        for instance in pool:
            if instance.hot and instance.id in self._initialising and not instance.claimed:
                instance.claimed = True
                self._claims[instance.id] = request
                return instance, StartKind.HOT
        if not self._has_room(function) and self._starting_pays(request.function, waiting):
            self._evict_for(function, waiting)
        if self._has_room(function):
            return self._spawn(function, hot=False), StartKind.COLD
        return None

    def _starting_pays(self, name: str, waiting: dict[str, int]) -> bool:
        """Whether a new instance for the function's queue beats waiting for its own: the
        queue drains through its instances in `ceil(waiting / instances)` executions."""
        instances = len(self.instances[name])
        if instances == 0:
            return True  # nothing of its own will come free
        demand = self._demand[name]
        if demand.init_s is None:
            return False  # no cold start seen yet: its own instances are starting
        now = time.monotonic()
        # What an invocation takes: what was learned, and at least what is running now.
        execution = max([demand.execution_s or 0.0, *(now - t for t in demand.granted.values())])
        return math.ceil(waiting[name] / instances) * execution > demand.init_s

    def _evict_for(self, function: FunctionHandle, waiting: dict[str, int]) -> None:
        """End the least valuable idle instance of a function with no request waiting: a used
        one before a fresh hot start, the least recently used first."""
        idle = [
            i
            for name, pool in self.instances.items()
            if name != function.name and not waiting.get(name)
            for i in pool
            if i.ready and not i.busy
        ]
        if idle:
            victim = min(idle, key=lambda i: (i.hot and i.served == 0, i.last_used))
            self._end(victim, EVICTED)
