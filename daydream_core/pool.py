"""The pool manager: hot starts ahead of phases, instance lives, release of the surplus.

Hot starts for phase k+1 are issued on background threads while phase k runs. Instances alive
now, busy in phase k or idle, will be free for phase k+1, so only the shortfall is hot started.
What is alive is the provider's word (`Provider.instances`), not a count kept here: platforms
end instances on their own (keep-alive expiry, eviction).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from daydream_core.errors import DaydreamError
from daydream_core.model import HotStartRecord, InvocationRecord, StartKind
from daydream_core.provider import Ending, FunctionHandle, Provider, WarmStart


@dataclass
class InstanceLife:
    """One instance, from its start to its end, as the engine saw it."""

    instance: str
    tier: str
    origin: str  # "hot" (started ahead by daydream) or "cold" (started by an invocation)
    started_in_run: int
    started_for_phase: int
    init_ms: float
    served: int = 0
    last_run: int = 0
    ended_after_phase: int | None = None
    # Why it ended: "daydream" (released as surplus), "keep-alive" (reclaimed after the
    # platform's keep-alive), "evicted" (for another function's request), "killed",
    # "out-of-memory", "failed-init", "closed" (the platform closed), where the provider says
    # (`Provider.endings`); else "platform" (ended on the platform's own schedule).
    ended_by: str | None = None
    # Where the provider says (`Provider.endings`): when it ended, in seconds from the start of
    # the run that recorded its end (negative: before that run), and how many requests of its
    # own function were then waiting at the platform for an instance (0 for one evicted).
    ended_s: float | None = None
    waiting_at_end: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class PoolManager:
    def __init__(self, provider: Provider, functions: Mapping[str, FunctionHandle]) -> None:
        self.provider = provider
        self.functions = dict(functions)
        self.prices = provider.prices()
        capabilities = provider.capabilities()
        # Releasing pays only where idling costs and daydream can stop instances.
        self.releases = capabilities.releases_instances and capabilities.idle_costs
        self.lives: dict[str, InstanceLife] = {}
        self.run_index = 0
        self.origin_s = time.perf_counter()  # the run's start: hot starts' offsets count from it
        self._last_phase = 0  # the phase of the latest invocation seen
        # Per phase: the hot starts issued for it (tier, issued at, their future, how many).
        self._pending: dict[int, list[tuple[str, float, Future[list[WarmStart]], int]]] = {}
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, len(self.functions)), thread_name_prefix="daydream-warm"
        )

    def begin_run(self, run_index: int, origin_s: float | None = None) -> None:
        self.run_index = run_index
        self.origin_s = time.perf_counter() if origin_s is None else origin_s
        self._last_phase = 0

    def lives_of_run(self, run_index: int) -> list[InstanceLife]:
        """Instances started in, or used by, a run."""
        return [
            life
            for life in self.lives.values()
            if run_index in (life.started_in_run, life.last_run)
        ]

    def live(self, tier: str, phase: int) -> int:
        """Instances of `tier` alive now; lives the platform ended are closed at `phase`, with
        the platform's reason where it gives one."""
        function = self.functions[tier]
        alive = set(self.provider.instances(function))
        endings: Mapping[str, Ending] | None = None
        reasons: Mapping[str, str] | None = None  # from a provider that gives reasons alone
        for life in self.lives.values():
            if life.tier == tier and life.ended_by is None and life.instance not in alive:
                if endings is None:
                    endings = self.provider.endings(function)
                life.ended_after_phase = phase
                if life.instance in endings:
                    self._end_life(life, endings[life.instance])
                    continue
                if reasons is None:
                    reasons = self.provider.ended(function)
                life.ended_by = reasons.get(life.instance, "platform")
        return len(alive)

    def _end_life(self, life: InstanceLife, ending: Ending) -> None:
        life.ended_by = ending.reason
        life.ended_s = ending.ended_at - self.origin_s
        life.waiting_at_end = ending.waiting

    def alive(self) -> dict[str, int]:
        """Instances alive now, per tier (the provider's word)."""
        return {tier: len(self.provider.instances(f)) for tier, f in self.functions.items()}

    def ready(self, phase: int) -> dict[str, int]:
        """Instances alive now that have started, per tier: those that served a component or
        whose hot start has returned. A hot start for `phase` still starting is not ready,
        whether or not the provider already lists its instance."""
        started = {i for i, life in self.lives.items() if life.ended_by is None}
        for issued in self._pending.values():  # for `phase`, or earlier and not yet recorded
            started |= self._returned(issued)
        return {
            tier: sum(i in started for i in self.provider.instances(function))
            for tier, function in self.functions.items()
        }

    def prewarm(self, phase: int, predicted: Mapping[str, int]) -> dict[str, int]:
        """Issue the hot starts `phase` is short of, without waiting; return them per tier.
        Called again for the same phase (a result taught the controller something new while
        a phase ran), hot starts issued for it and still starting count as there."""
        issued: dict[str, int] = {}
        for tier, wanted in predicted.items():
            if tier not in self.functions:
                continue
            shortfall = wanted - self.live(tier, phase - 1) - self._unlisted(tier, phase)
            if shortfall > 0:
                issued_at = time.perf_counter()
                future = self._executor.submit(self.provider.warm, self.functions[tier], shortfall)
                self._pending.setdefault(phase, []).append((tier, issued_at, future, shortfall))
                issued[tier] = shortfall
        return issued

    def _unlisted(self, tier: str, phase: int) -> int:
        """Hot starts of `tier` issued for `phase`, still starting, that the provider does not
        list yet (Lambda lists an instance once it has started, the local platform at once):
        those requested, less the listed instances the pool has not seen start."""
        requested = sum(
            n for t, _, f, n in self._pending.get(phase, []) if t == tier and not f.done()
        )
        if requested == 0:
            return 0
        seen = set(self.lives).union(*map(self._returned, self._pending.values()))
        listed = self.provider.instances(self.functions[tier])
        return max(0, requested - sum(i not in seen for i in listed))

    @staticmethod
    def _returned(issued: list[tuple[str, float, Future[list[WarmStart]], int]]) -> set[str]:
        """The instances of those hot starts that have returned."""
        return {
            warm.instance
            for _, _, future, _ in issued
            if future.done() and not future.cancelled() and future.exception() is None
            for warm in future.result()
        }

    def hot_starts(self, phase: int, wait: bool = False) -> list[HotStartRecord]:
        """The hot starts issued for `phase` or earlier that have returned (with `wait`, all
        of them, waited for): recorded and returned. Called as each phase ends (so instances
        that ended during it are closed there), which does not wait for hot starts nobody
        took: one still in its init (at idle priority on a busy host, or just slow) would
        hold up the next phase for nothing. On the local platform 4 hot starts left over
        from a CPU-bound phase lengthened `ccl`'s second phase by 1.1 s this way. They are
        recorded at a later phase's end, or at the run's, which waits for them all."""
        for tier in self.functions:
            self.live(tier, self._last_phase)
        returned = []
        for issued_for in sorted(k for k in self._pending if k <= phase):
            starting = []
            for item in self._pending.pop(issued_for):
                if wait or item[2].done():
                    returned.append((issued_for, *item))
                else:
                    starting.append(item)
            if starting:
                self._pending[issued_for] = starting
        records = []
        for issued_for, tier, issued_at, future, _ in returned:
            try:
                started = future.result()
            except DaydreamError as exc:
                # A failed hot start costs a cold start later, not the run.
                warnings.warn(f"hot start of {tier} instances failed: {exc}", stacklevel=2)
                continue
            spec = self.functions[tier].tier
            for warm in started:
                self.lives[warm.instance] = InstanceLife(
                    warm.instance, tier, "hot", self.run_index, issued_for, warm.init_ms
                )
                records.append(
                    HotStartRecord(
                        phase=issued_for,
                        tier=tier,
                        instance=warm.instance,
                        init_ms=warm.init_ms,
                        billed_ms=warm.billed_ms,
                        cost=self.prices.cost(spec.memory_mb, warm.billed_ms, vcpus=spec.vcpus)
                        + warm.surcharge,
                        started_s=issued_at - self.origin_s,
                    )
                )
        return records

    def observe(self, record: InvocationRecord) -> None:
        """Account for an invocation's instance (a cold start begins a life)."""
        if not record.instance:
            return
        life = self.lives.get(record.instance)
        if life is None or life.ended_by is not None:
            on_path = record.start in (StartKind.COLD, StartKind.RESTORED)
            origin = "cold" if on_path else "hot"
            life = InstanceLife(
                record.instance, record.tier, origin, self.run_index, record.phase, record.init_ms
            )
            self.lives[record.instance] = life
        life.served += 1
        life.last_run = self.run_index
        self._last_phase = record.phase

    def release(self, after_phase: int, keep: Mapping[str, int] | None) -> list[str]:
        """Release idle instances beyond `keep` per tier, where that pays (`releases`; None
        keeps them all and leaves it to the platform's own keep-alive)."""
        if keep is None or not self.releases:
            return []
        released: list[str] = []
        for tier, function in self.functions.items():
            ours = self.provider.release(function, keep.get(tier, 0))
            endings = self.provider.endings(function) if ours else {}
            for instance in ours:
                if instance in self.lives:
                    life = self.lives[instance]
                    life.ended_after_phase, life.ended_by = after_phase, "daydream"
                    if instance in endings:
                        self._end_life(life, endings[instance])
                released.append(instance)
        return released

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
