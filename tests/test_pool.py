"""The pool manager: shortfall hot starts, instance lives, release of the surplus."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from daydream_core.errors import ProviderError
from daydream_core.model import HIGH, LOW, InvocationRecord, StartKind, Tier
from daydream_core.objectstore import LocalObjectStore, ObjectStore
from daydream_core.pool import PoolManager
from daydream_core.pricing import AWS_LAMBDA_X86, PriceTable
from daydream_core.provider import (
    Capabilities,
    Ending,
    FunctionHandle,
    Invocation,
    Provider,
    WarmStart,
    function_name,
)
from daydream_core.workflow import RuntimeEnvironment

TIERS = {HIGH: Tier(HIGH, 10240, 2), LOW: Tier(LOW, 5120, 1)}


class RecordingProvider(Provider):
    """Counts what the pool asks for; instances are names."""

    name = "recording"

    def __init__(self, tmp: Path, releases: bool = True, failing_warm: bool = False) -> None:
        self.warms: list[tuple[str, int]] = []
        self.releases: list[tuple[str, int]] = []
        self.releases_instances = releases
        self.failing_warm = failing_warm
        self._ids = itertools.count(1)
        self.alive: dict[str, list[str]] = {HIGH: [], LOW: []}  # all idle in this fake
        self.reasons: dict[str, str] = {}  # what `ended` says
        self._store = LocalObjectStore(tmp)

    def tiers(self) -> Mapping[str, Tier]:
        return TIERS

    def prices(self) -> PriceTable:
        return AWS_LAMBDA_X86

    def capabilities(self) -> Capabilities:
        return Capabilities(
            6_000_000, 10, releases_instances=self.releases_instances, idle_costs=True
        )

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        return FunctionHandle(self.name, function_name(runtime, tier), runtime, tier)

    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        if self.failing_warm:
            raise ProviderError("no capacity")
        self.warms.append((function.tier.name, n))
        started = [f"{function.tier.name}-{next(self._ids)}" for _ in range(n)]
        self.alive[function.tier.name] += started
        return [WarmStart(i, 800.0, 800.0) for i in started]

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        raise AssertionError("the pool never invokes")

    def instances(self, function: FunctionHandle) -> list[str]:
        return list(self.alive[function.tier.name])

    def ended(self, function: FunctionHandle) -> Mapping[str, str]:
        return self.reasons

    def release(self, function: FunctionHandle, keep: int) -> list[str]:
        self.releases.append((function.tier.name, keep))
        idle = self.alive[function.tier.name]
        surplus, self.alive[function.tier.name] = idle[keep:], idle[:keep]
        return surplus

    def delete(self, function: FunctionHandle) -> None: ...

    def list(self, prefix: str = "daydream-") -> list[str]:
        return []

    def cleanup(self, dry_run: bool = False) -> list[str]:
        return []

    def store(self) -> ObjectStore:
        return self._store

    def close(self) -> None: ...


def _pool(provider: RecordingProvider) -> PoolManager:
    runtime = RuntimeEnvironment("demo", "demo_workflow")
    return PoolManager(provider, {t: provider.deploy(runtime, TIERS[t]) for t in TIERS})


def _record(instance: str, tier: str, start: StartKind, phase: int = 0) -> InvocationRecord:
    return InvocationRecord("c", "k", phase, tier, instance, start, 900.0, 10, 910, 0.0, 950)


def test_only_the_shortfall_is_hot_started(tmp_path: Path) -> None:
    provider = RecordingProvider(tmp_path)
    pool = _pool(provider)
    # Phase 0 ran two cold high instances; they will be free for phase 1.
    for instance in ("cold-1", "cold-2"):
        provider.alive[HIGH].append(instance)
        pool.observe(_record(instance, HIGH, StartKind.COLD))
    assert pool.prewarm(1, {HIGH: 5, LOW: 1}) == {HIGH: 3, LOW: 1}
    records = pool.hot_starts(1, wait=True)
    assert sorted((r.tier, r.phase) for r in records) == [(HIGH, 1)] * 3 + [(LOW, 1)]
    assert all(
        r.cost == pytest.approx(AWS_LAMBDA_X86.cost(TIERS[r.tier].memory_mb, 800.0))
        for r in records
    )
    assert pool.live(HIGH, 1) == 5
    assert pool.prewarm(2, {HIGH: 5}) == {}


def test_lives_record_origin_use_and_release(tmp_path: Path) -> None:
    provider = RecordingProvider(tmp_path)
    pool = _pool(provider)
    pool.prewarm(1, {LOW: 2})
    hot = [r.instance for r in pool.hot_starts(1, wait=True)]
    pool.observe(_record(hot[0], LOW, StartKind.HOT, phase=1))
    pool.observe(_record(hot[0], LOW, StartKind.WARM, phase=2))
    released = pool.release(2, {LOW: 1})
    assert released == [hot[1]]
    life = pool.lives[hot[0]]
    assert (life.origin, life.served, life.started_for_phase) == ("hot", 2, 1)
    assert (pool.lives[hot[1]].ended_after_phase, pool.lives[hot[1]].ended_by) == (2, "daydream")
    assert pool.live(LOW, 2) == 1


def test_release_is_skipped_where_the_platform_reclaims(tmp_path: Path) -> None:
    provider = RecordingProvider(tmp_path, releases=False)
    pool = _pool(provider)
    pool.prewarm(1, {HIGH: 1})
    pool.hot_starts(1, wait=True)
    assert pool.release(1, {}) == []
    assert provider.releases == []


def test_a_failed_hot_start_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    pool = _pool(RecordingProvider(tmp_path, failing_warm=True))
    pool.prewarm(1, {HIGH: 2})
    with pytest.warns(UserWarning, match="no capacity"):
        assert pool.hot_starts(1, wait=True) == []


def test_instances_the_platform_ended_are_not_counted(tmp_path: Path) -> None:
    provider = RecordingProvider(tmp_path)
    pool = _pool(provider)
    pool.prewarm(1, {LOW: 3})
    started = [r.instance for r in pool.hot_starts(1, wait=True)]
    provider.alive[LOW].remove(started[0])  # e.g. its keep-alive expired
    assert pool.prewarm(2, {LOW: 3}) == {LOW: 1}
    assert (pool.lives[started[0]].ended_after_phase, pool.lives[started[0]].ended_by) == (
        1,
        "platform",
    )


def test_lives_end_with_the_reason_the_provider_gives(tmp_path: Path) -> None:
    provider = RecordingProvider(tmp_path)
    pool = _pool(provider)
    pool.prewarm(1, {LOW: 2})
    evicted, kept = [r.instance for r in pool.hot_starts(1, wait=True)]
    pool.observe(_record(kept, LOW, StartKind.HOT, phase=1))
    provider.alive[LOW].remove(evicted)
    provider.reasons[evicted] = "evicted"
    pool.hot_starts(2)  # as each phase ends, lives that ended during it are closed
    assert (pool.lives[evicted].ended_after_phase, pool.lives[evicted].ended_by) == (1, "evicted")
    assert (pool.lives[evicted].ended_s, pool.lives[evicted].waiting_at_end) == (None, None)
    assert pool.lives[kept].ended_by is None


class EndingProvider(RecordingProvider):
    """Says how its instances ended (`endings`); the reasons alone follow from it."""

    ended = Provider.ended

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.told: dict[str, Ending] = {}

    def endings(self, function: FunctionHandle) -> Mapping[str, Ending]:
        return self.told


def test_lives_end_when_the_provider_says_with_what_was_waiting(tmp_path: Path) -> None:
    provider = EndingProvider(tmp_path)
    pool = _pool(provider)
    pool.prewarm(1, {LOW: 2})
    evicted, released = [r.instance for r in pool.hot_starts(1, wait=True)]
    provider.alive[LOW].remove(evicted)
    provider.told[evicted] = Ending("evicted", pool.origin_s + 2.5, 0)
    provider.told[released] = Ending("daydream", pool.origin_s + 4.0, 3)
    assert provider.ended(pool.functions[LOW]) == {evicted: "evicted", released: "daydream"}
    pool.hot_starts(2)
    life = pool.lives[evicted]
    assert (life.ended_by, life.waiting_at_end) == ("evicted", 0)
    assert life.ended_s == pytest.approx(2.5)  # from the run's start
    assert pool.release(2, {LOW: 0}) == [released]
    life = pool.lives[released]
    assert (life.ended_by, life.waiting_at_end) == ("daydream", 3)
    assert life.ended_s == pytest.approx(4.0)


class SlowWarmProvider(RecordingProvider):
    """Its instances are listed as soon as they start (as the local platform's are), but
    warm only when `go` is set."""

    def __init__(self, tmp: Path, listed: bool = True) -> None:
        super().__init__(tmp)
        self.go = threading.Event()
        self.listed = listed  # False: listed once started, as Lambda's are
        self.requests: list[int] = []

    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        started = [f"{function.tier.name}-{next(self._ids)}" for _ in range(n)]
        if self.listed:
            self.alive[function.tier.name] += started
        self.requests.append(n)
        assert self.go.wait(timeout=10)
        if not self.listed:
            self.alive[function.tier.name] += started
        return [WarmStart(i, 800.0, 800.0) for i in started]


def test_hot_starts_still_starting_are_not_ready(tmp_path: Path) -> None:
    provider = SlowWarmProvider(tmp_path)
    pool = _pool(provider)
    provider.alive[HIGH].append("cold-1")  # phase 0 ran on it
    pool.observe(_record("cold-1", HIGH, StartKind.COLD))
    pool.prewarm(1, {HIGH: 3, LOW: 2})
    deadline = time.monotonic() + 10
    while sum(len(v) for v in provider.alive.values()) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.alive() == {HIGH: 3, LOW: 2}
    assert pool.ready(1) == {HIGH: 1, LOW: 0}  # what placement may count on
    provider.go.set()
    pool.hot_starts(1, wait=True)
    assert pool.ready(2) == {HIGH: 3, LOW: 2}
    pool.close()


def test_predicting_a_phase_again_counts_its_hot_starts_still_starting(tmp_path: Path) -> None:
    # Mid-phase, the controller moved the next phase's hot starts: what was issued for it and
    # is still starting is not issued again, whether the provider lists it yet or not.
    for listed in (True, False):
        provider = SlowWarmProvider(tmp_path / str(listed), listed=listed)
        pool = _pool(provider)
        assert pool.prewarm(1, {HIGH: 3, LOW: 0}) == {HIGH: 3}
        deadline = time.monotonic() + 10
        while len(provider.requests) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.prewarm(1, {HIGH: 3, LOW: 2}) == {LOW: 2}, listed
        assert pool.prewarm(1, {HIGH: 4, LOW: 2}) == {HIGH: 1}, listed
        provider.go.set()
        assert len(pool.hot_starts(1, wait=True)) == 6
        pool.close()


class _SlowWarm(RecordingProvider):
    """Hot starts that return only when the test lets them (an init still running)."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.go = threading.Event()

    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        assert self.go.wait(timeout=30)
        return super().warm(function, n)


def test_a_phase_end_does_not_wait_for_hot_starts_still_starting(tmp_path: Path) -> None:
    # Nobody took them and their init runs on: the next phase must not wait for them. They
    # are recorded, as issued for their phase, once they return (or when the run ends).
    provider = _SlowWarm(tmp_path)
    pool = _pool(provider)
    pool.prewarm(1, {HIGH: 2})
    assert pool.hot_starts(1) == []  # waiting, it would fail after the fake's 30 s
    provider.go.set()
    records = pool.hot_starts(2, wait=True)
    assert [(r.tier, r.phase) for r in records] == [(HIGH, 1)] * 2
    assert pool.ready(3)[HIGH] == 2
