"""The shared instance pool: FIFO queueing at the limit, eviction rules, why instances ended."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from daydream_core.errors import FunctionTimeout, ProviderError
from daydream_core.instance_pool import (
    CLOSED,
    EVICTED,
    FAILED_INIT,
    KEEP_ALIVE,
    KILLED,
    RELEASED,
    InstancePool,
)
from daydream_core.model import HIGH, LOW, StartKind, Tier
from daydream_core.provider import FunctionHandle
from daydream_core.workflow import RuntimeEnvironment

RUNTIME = RuntimeEnvironment("probe", "probe_workflow")
A = FunctionHandle("fake", "daydream-probe-high", RUNTIME, Tier(HIGH, 10240, 2))
B = FunctionHandle("fake", "daydream-probe-low", RUNTIME, Tier(LOW, 5120, 1))


class FakeInstance:
    def __init__(self, instance_id: str, function: FunctionHandle, hot: bool) -> None:
        self.id = instance_id
        self.function = function
        self.hot = hot
        self.busy = True
        self.ready = False
        self.claimed = False
        self.served = 0
        self.last_used = time.monotonic()
        self.stopped = False

    @property
    def alive(self) -> bool:
        return not self.stopped


class Platform:
    """A pool over fake instances; `starts` lists every instance it started."""

    def __init__(self, limit: int) -> None:
        self._ids = itertools.count(1)
        self.starts: list[FakeInstance] = []
        self.pool = InstancePool[FakeInstance]("fake", limit, self._start, self._stop)
        self.pool.add(A)
        self.pool.add(B)

    def _start(self, function: FunctionHandle, hot: bool) -> FakeInstance:
        instance = FakeInstance(f"{function.tier.name}-{next(self._ids)}", function, hot)
        self.starts.append(instance)
        return instance

    @staticmethod
    def _stop(instance: FakeInstance) -> None:
        instance.stopped = True

    def cold(self, function: FunctionHandle, init_ms: float = 500.0) -> FakeInstance:
        """One invocation's cold start, initialised and left busy."""
        instance, start = self.pool.acquire(function, time.monotonic() + 5)
        assert start is StartKind.COLD
        instance.ready = True
        self.pool.initialised(instance, init_ms)
        return instance

    def idle(self, function: FunctionHandle, n: int) -> list[FakeInstance]:
        instances = [self.cold(function) for _ in range(n)]
        for instance in instances:
            self.pool.release(instance, served=True)
        return instances

    def waiting(self) -> int:
        with self.pool.lock:
            return len(self.pool._queue)


class Requests:
    """Invocations waiting on their own threads; `order` is the order they were served."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.order: list[tuple[str, str, StartKind]] = []
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def submit(self, label: str, function: FunctionHandle, timeout: float = 10) -> None:
        def wait() -> None:
            try:
                instance, start = self.platform.pool.acquire(function, time.monotonic() + timeout)
            except BaseException as exc:
                self.errors.append(exc)
                return
            self.order.append((label, instance.id, start))

        queued = self.platform.waiting()
        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        self.threads.append(thread)
        _until(
            lambda: (
                self.platform.waiting() > queued
                or len(self.order) + len(self.errors) >= len(self.threads)
            )
        )

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=10)
        assert not any(t.is_alive() for t in self.threads)


def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):  # bounded: a few seconds at most
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("condition not reached")


@pytest.fixture
def platform() -> Iterator[Platform]:
    platform = Platform(limit=2)
    yield platform
    platform.pool.close()


def test_requests_at_the_limit_are_served_in_arrival_order(platform: Platform) -> None:
    a1, a2 = platform.cold(A), platform.cold(A)
    requests = Requests(platform)
    for label in ("first", "second", "third"):
        requests.submit(label, A)
    assert requests.order == []  # at the limit, all busy: they queue
    platform.pool.release(a2, served=True)
    _until(lambda: len(requests.order) == 1)
    platform.pool.release(a1, served=True)
    _until(lambda: len(requests.order) == 2)
    assert [(label, start) for label, _, start in requests.order] == [
        ("first", StartKind.WARM),
        ("second", StartKind.WARM),
    ]
    assert requests.order[0][1] == a2.id
    platform.pool.release(a2, served=True)
    requests.join()
    assert [label for label, _, _ in requests.order] == ["first", "second", "third"]
    assert len(platform.starts) == 2  # no cold start beyond the limit


def test_an_idle_instance_whose_function_has_work_waiting_is_not_evicted(
    platform: Platform,
) -> None:
    a1, a2 = platform.cold(A), platform.cold(A)
    requests = Requests(platform)
    requests.submit("a", A)  # waits for one of A's own instances
    requests.submit("b", B)  # B has nothing: it may evict only an A with nothing waiting
    platform.pool.release(a1, served=True)
    _until(lambda: len(requests.order) == 1)
    assert requests.order[0][:2] == ("a", a1.id), "A's freed instance went to A's request"
    assert platform.pool.ended(A) == {}
    platform.pool.release(a2, served=True)  # now nothing of A waits: B evicts it
    requests.join()
    assert requests.order[1][0] == "b" and requests.order[1][2] is StartKind.COLD
    assert platform.pool.ended(A) == {a2.id: EVICTED}
    assert a2.stopped


def test_a_function_waits_for_its_own_instances_where_a_start_would_not_pay(
    platform: Platform,
) -> None:
    [b1] = platform.idle(B, 1)  # B idle, nothing of B waiting: evictable
    a1 = platform.cold(A, init_ms=60_000.0)  # A's cold start takes a minute
    platform.pool.release(a1, served=True)
    a1, start = platform.pool.acquire(A, time.monotonic() + 5)
    assert start is StartKind.WARM
    requests = Requests(platform)
    requests.submit("a", A)  # A's instance will be free long before a new one is ready
    assert requests.order == [] and not b1.stopped
    platform.pool.release(a1, served=True)
    requests.join()
    assert requests.order == [("a", a1.id, StartKind.WARM)]
    assert platform.pool.ended(B) == {}


def test_hot_starts_are_taken_first_even_while_initialising(platform: Platform) -> None:
    hot, spare = platform.pool.start_hot(A, 5)  # the limit leaves room for two
    assert platform.pool.start_hot(B, 1) == []
    instance, start = platform.pool.acquire(A, time.monotonic() + 5)
    assert (instance, start) == (hot, StartKind.HOT) and hot.claimed
    ready = threading.Thread(
        target=lambda: (setattr(hot, "ready", True), platform.pool.initialised(hot, 900.0))
    )
    ready.start()
    assert platform.pool.await_ready(hot, time.monotonic() + 5)
    ready.join(timeout=5)
    spare.ready = True
    platform.pool.initialised(spare, 900.0)  # unclaimed: it joins the idle instances
    assert platform.pool.acquire(A, time.monotonic() + 5) == (spare, StartKind.HOT)


def test_every_end_has_its_reason(platform: Platform) -> None:
    a1, a2 = platform.idle(A, 2)
    assert platform.pool.surplus(A, keep=1) == [a1]
    assert platform.pool.reclaim(keep_alive_s=0.0) == [a2]
    [b1] = platform.idle(B, 1)
    platform.pool.close()
    assert platform.pool.ended(A) == {a1.id: RELEASED, a2.id: KEEP_ALIVE}
    assert platform.pool.ended(B) == {b1.id: CLOSED}
    assert all(i.stopped for i in (a1, a2, b1))
    with pytest.raises(ProviderError, match="closed"):
        platform.pool.acquire(A, time.monotonic() + 1)


def test_every_end_records_when_and_how_many_of_its_functions_requests_waited(
    platform: Platform,
) -> None:
    before = time.perf_counter()
    a1, a2 = platform.cold(A), platform.cold(A)
    requests = Requests(platform)
    requests.submit("a", A)  # at the limit: it waits for one of A's instances
    platform.pool.discard(a1, KILLED)  # it dies with A's request waiting, which then starts one
    _until(lambda: len(requests.order) == 1)
    requests.submit("b", B)  # it waits for an A with nothing waiting
    platform.pool.release(a2, served=True)
    requests.join()
    after = time.perf_counter()
    killed, evicted = platform.pool.endings(A)[a1.id], platform.pool.endings(A)[a2.id]
    assert (killed.reason, killed.waiting) == (KILLED, 1)
    assert (evicted.reason, evicted.waiting) == (EVICTED, 0)
    assert before <= killed.ended_at <= evicted.ended_at <= after  # the engine's clock
    assert platform.pool.ended(A) == {a1.id: KILLED, a2.id: EVICTED}  # the reasons alone


def test_a_request_that_is_never_served_times_out_and_leaves_the_queue(
    platform: Platform,
) -> None:
    platform.cold(A), platform.cold(A)
    with pytest.raises(FunctionTimeout, match="concurrency limit 2"):
        platform.pool.acquire(A, time.monotonic() + 0.05)
    assert platform.waiting() == 0


def test_a_request_whose_claimed_hot_start_failed_its_init_queues_again(
    platform: Platform,
) -> None:
    [hot] = platform.pool.start_hot(A, 1)
    assert platform.pool.acquire(A, time.monotonic() + 5) == (hot, StartKind.HOT)
    platform.pool.discard(hot, FAILED_INIT)
    assert not platform.pool.await_ready(hot, time.monotonic() + 5)
    assert platform.pool.ended(A) == {hot.id: FAILED_INIT}
    instance, start = platform.pool.acquire(A, time.monotonic() + 5)
    assert start is StartKind.COLD and instance is not hot
