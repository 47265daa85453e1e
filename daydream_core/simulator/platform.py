"""The platform model: instances in virtual time, their starts, reuse, reclaim and billing.

An instance is ready at `ready_at` (spawned + init), busy until `free_at`, and ends when the
platform reclaims it after an idle keep-alive (or the policy's own window). A component takes a
free ready instance of its tier (warm, or hot on first use), else a free hot start still in its
init (it waits for the rest), else it starts a new one (cold). The concurrency limit counts
instances busy at once, all tiers together; a component over the limit waits for the first
to free up.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from daydream_core.model import StartKind
from daydream_core.simulator.calibration import Calibration


@dataclass
class Instance:
    tier: str
    started_at: float
    ready_at: float
    init_s: float
    hot: bool  # hot started ahead by the policy
    free_at: float = 0.0
    served: int = 0
    ended: bool = False
    name: str = ""  # "<tier>-<n>", in order of creation on the platform

    def __post_init__(self) -> None:
        self.free_at = self.ready_at


@dataclass
class Billing:
    """What a run cost, and where."""

    cost: float = 0.0
    idle_hot_gb_s: float = 0.0  # hot starts that were never used (their billed GB-seconds)
    hot_starts: int = 0
    starts: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in StartKind})


class Platform:
    """One serverless platform, shared by the runs simulated on it (instances outlive runs)."""

    def __init__(self, calibration: Calibration, rng: np.random.Generator) -> None:
        self.cal = calibration
        self.rng = rng
        self.instances: dict[str, list[Instance]] = {t: [] for t in calibration.tiers}
        self._busy_until: list[float] = []  # heap of execution ends (concurrency accounting)
        self.idle_gb_s = 0.0  # billed GB-seconds of hot starts never used
        self._created = 0

    def init_draw(self, tier: str, z: float | None = None) -> tuple[float, float]:
        """A start's billed init and its latency (the init and any wait beyond it); `z`, its
        standard normal draw, where the start is a component's (else the platform's next)."""
        if z is None:
            z = float(self.rng.standard_normal())
        factor = math.exp(self.cal.init_spread * z)
        init = self.cal.init_s[tier] * factor
        return init, init + self.cal.start_wait_s.get(tier, 0.0) * factor

    def reclaim(self, now: float, window_s: float | None) -> None:
        """End instances idle longer than the keep-alive: the platform's, or the policy's
        window where the platform lets daydream set one."""
        keep = self.cal.keep_alive_s
        if window_s is not None and self.cal.policy_keep_alive:
            keep = window_s
        for tier, pool in self.instances.items():
            alive = []
            for instance in pool:
                if instance.free_at <= now and now - instance.free_at > keep:
                    instance.ended = True
                    if instance.hot and instance.served == 0:
                        self._idle(instance)
                else:
                    alive.append(instance)
            self.instances[tier] = alive

    def alive(self) -> dict[str, int]:
        return {t: len(pool) for t, pool in self.instances.items()}

    def ready(self, now: float) -> dict[str, int]:
        """Instances idle at `now` (started and not busy), per tier."""
        return {t: sum(i.free_at <= now for i in pool) for t, pool in self.instances.items()}

    def hot_start(
        self, tier: str, n: int, now: float, billing: Billing, ready_by: float | None = None
    ) -> None:
        """Start `n` instances ahead of need; their init (and hold) is billed now. With
        `ready_by` (only the oracle knows when the next phase starts), each starts as long
        before then as its start takes, so it is ready exactly when needed, however short
        this phase."""
        spec = self.cal.tiers[tier]
        room = max(0, self.cal.concurrency - sum(self.alive().values()))
        for _ in range(min(n, room)):
            init, latency = self.init_draw(tier)
            begins = now if ready_by is None else ready_by - latency
            self.instances[tier].append(
                Instance(tier, begins, begins + latency, init, hot=True, name=self._name(tier))
            )
            billing.cost += self.cal.prices.cost(
                spec.memory_mb, self.cal.hold_s * 1000.0, init_ms=init * 1000.0, vcpus=spec.vcpus
            ) + self.cal.start_charge(tier)
            billing.hot_starts += 1

    def _name(self, tier: str) -> str:
        self._created += 1
        return f"{tier}-{self._created:04d}"

    def _idle(self, instance: Instance) -> None:
        spec = self.cal.tiers[instance.tier]
        self.idle_gb_s += spec.memory_gb * (instance.init_s + self.cal.hold_s)

    def _throttle(self, arrival: float) -> float:
        """When a component may start executing under the concurrency limit."""
        busy = self._busy_until
        while busy and busy[0] <= arrival:
            heapq.heappop(busy)
        if len(busy) < self.cal.concurrency:
            return arrival
        return heapq.heappop(busy)

    def acquire(
        self, tier: str, arrival: float, z: float | None = None
    ) -> tuple[Instance, StartKind, float]:
        """The instance a component arriving at `arrival` runs on, how it started, and when
        its execution begins; `z`, the draw of its cold start's init, if it has one."""
        arrival = self._throttle(arrival)
        pool = self.instances[tier]
        ready = [i for i in pool if i.free_at <= arrival]
        if ready:
            instance = max(ready, key=lambda i: i.free_at)  # the most recently used: LIFO
            kind = StartKind.HOT if instance.hot and instance.served == 0 else StartKind.WARM
            return instance, kind, arrival
        pending = [i for i in pool if i.hot and i.served == 0 and i.ready_at > arrival]
        if pending:
            instance = min(pending, key=lambda i: i.ready_at)
            return instance, StartKind.HOT, instance.ready_at
        init, latency = self.init_draw(tier, z)
        ready_at = arrival + latency
        instance = Instance(tier, arrival, ready_at, init, hot=False, name=self._name(tier))
        pool.append(instance)
        return instance, StartKind.COLD, ready_at

    def run_on(self, instance: Instance, begins: float, seconds: float) -> float:
        end = begins + seconds
        instance.free_at = end
        instance.served += 1
        heapq.heappush(self._busy_until, end)
        return end

    def release_all(self) -> None:
        for tier in self.instances:
            for instance in self.instances[tier]:
                if instance.hot and instance.served == 0:
                    self._idle(instance)
            self.instances[tier] = []
