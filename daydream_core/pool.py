"""The pool manager: hot starts ahead of phases, instance lives, release of the surplus.

Hot starts for phase k+1 are issued on background threads while phase k runs. Instances that
will be free after phase k count toward phase k+1's need, so only the shortfall is hot started.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from daydream_core.errors import DaydreamError
from daydream_core.model import HotStartRecord, InvocationRecord, StartKind
from daydream_core.provider import FunctionHandle, Provider, WarmStart


@dataclass
class InstanceLife:
    """One instance, from its start to its release, as the engine saw it."""

    instance: str
    tier: str
    origin: str  # "hot" (started ahead by daydream) or "cold" (started by an invocation)
    started_in_run: int
    started_for_phase: int
    init_ms: float
    served: int = 0
    last_run: int = 0
    released_after_phase: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class PoolManager:
    def __init__(self, provider: Provider, functions: Mapping[str, FunctionHandle]) -> None:
        self.provider = provider
        self.functions = dict(functions)
        self.prices = provider.prices()
        self.lives: dict[str, InstanceLife] = {}
        self.run_index = 0
        self._pending: dict[int, list[tuple[str, Future[list[WarmStart]]]]] = {}
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, len(self.functions)), thread_name_prefix="daydream-warm"
        )

    def begin_run(self, run_index: int) -> None:
        self.run_index = run_index

    def lives_of_run(self, run_index: int) -> list[InstanceLife]:
        """Instances started in, or used by, a run."""
        return [
            life
            for life in self.lives.values()
            if run_index in (life.started_in_run, life.last_run)
        ]

    def live(self, tier: str) -> int:
        """Instances of `tier` started and not released (busy or idle)."""
        return sum(
            1
            for life in self.lives.values()
            if life.tier == tier and life.released_after_phase is None
        )

    def prewarm(self, phase: int, predicted: Mapping[str, int]) -> dict[str, int]:
        """Issue hot starts for `phase` without waiting; return how many per tier."""
        issued: dict[str, int] = {}
        for tier, wanted in predicted.items():
            shortfall = wanted - self.live(tier)
            if shortfall > 0 and tier in self.functions:
                future = self._executor.submit(self.provider.warm, self.functions[tier], shortfall)
                self._pending.setdefault(phase, []).append((tier, future))
                issued[tier] = shortfall
        return issued

    def hot_starts(self, phase: int) -> list[HotStartRecord]:
        """Wait for the hot starts issued for `phase`; record and return them."""
        records = []
        for tier, future in self._pending.pop(phase, []):
            try:
                started = future.result()
            except DaydreamError as exc:
                # A failed hot start costs a cold start later, not the run.
                warnings.warn(f"hot start of {tier} instances failed: {exc}", stacklevel=2)
                continue
            memory_mb = self.functions[tier].tier.memory_mb
            for warm in started:
                self.lives[warm.instance] = InstanceLife(
                    warm.instance, tier, "hot", self.run_index, phase, warm.init_ms
                )
                records.append(
                    HotStartRecord(
                        phase=phase,
                        tier=tier,
                        instance=warm.instance,
                        init_ms=warm.init_ms,
                        billed_ms=warm.billed_ms,
                        cost=self.prices.cost(memory_mb, warm.billed_ms),
                    )
                )
        return records

    def observe(self, record: InvocationRecord) -> None:
        """Account for an invocation's instance (a cold start creates a life)."""
        if not record.instance:
            return
        life = self.lives.get(record.instance)
        if life is None or life.released_after_phase is not None:
            origin = "cold" if record.start is StartKind.COLD else "hot"
            life = InstanceLife(
                record.instance, record.tier, origin, self.run_index, record.phase, record.init_ms
            )
            self.lives[record.instance] = life
        life.served += 1
        life.last_run = self.run_index

    def release(self, after_phase: int, keep: Mapping[str, int]) -> list[str]:
        """Keep what the next phase is predicted to need; release the rest where it costs."""
        if not self.provider.capabilities().releases_instances:
            return []
        released: list[str] = []
        for tier, function in self.functions.items():
            for instance in self.provider.release(function, keep.get(tier, 0)):
                if instance in self.lives:
                    self.lives[instance].released_after_phase = after_phase
                released.append(instance)
        return released

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
