"""The local platform: real processes, real cold and hot starts, real resource envelopes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from daydream_local.envelope import host_cpus
from daydream_local.provider import LocalProvider

from daydream_core.errors import (
    ComponentFailed,
    ConfigurationError,
    FunctionNotFound,
    FunctionTimeout,
    OutOfMemory,
)
from daydream_core.model import HIGH, LOW, StartKind
from daydream_core.provider import FunctionHandle, Invocation, ProviderSettings
from daydream_core.workflow import RuntimeEnvironment

RUNTIME = RuntimeEnvironment("probe", "probe_workflow", preload=("numpy",))


@pytest.fixture
def provider(tmp_path: Path, demo_workflows: Path) -> Iterator[LocalProvider]:
    platform = LocalProvider(tmp_path, concurrency=4, keep_alive_s=30)
    yield platform
    platform.close()


def _payload(kind: str, **args: object) -> dict[str, object]:
    return {"kind": kind, "args": args, "component": "c1"}  # the store is fixed at deploy


def _deploy(provider: LocalProvider, tier: str) -> FunctionHandle:
    return provider.deploy(RUNTIME, provider.tiers()[tier])


def test_cold_then_warm_then_hot(provider: LocalProvider) -> None:
    function = _deploy(provider, HIGH)
    cold = provider.invoke(function, _payload("whoami"), timeout=60)
    warm = provider.invoke(function, _payload("whoami"), timeout=60)
    assert (cold.start, warm.start) == (StartKind.COLD, StartKind.WARM)
    assert cold.init_ms > 0 and warm.init_ms == 0
    assert cold.instance == warm.instance
    assert cold.billed_ms >= cold.init_ms + cold.duration_ms
    [started] = provider.warm(function, 1)
    hot = provider.invoke(function, _payload("whoami"), timeout=60)
    assert hot.start is StartKind.HOT
    assert hot.instance == started.instance
    assert hot.output["pid"] != cold.output["pid"]


def test_tiers_are_real_resource_envelopes(provider: LocalProvider) -> None:
    high = provider.invoke(_deploy(provider, HIGH), _payload("whoami"), timeout=60).output
    low = provider.invoke(_deploy(provider, LOW), _payload("whoami"), timeout=60).output
    cpus = host_cpus()
    assert high["cpus"] == cpus
    assert high["omp_threads"] == str(len(cpus)) == str(high["ctx_threads"])
    assert len(low["cpus"]) == max(1, round(len(cpus) / 2))
    assert provider.tiers()[HIGH].memory_mb == 10240
    assert provider.tiers()[LOW].memory_mb == 5120


def test_memory_limit_is_enforced(tmp_path: Path, demo_workflows: Path) -> None:
    platform = LocalProvider(tmp_path, low_memory_mb=1024)
    try:
        function = platform.deploy(RUNTIME, platform.tiers()[LOW])
        assert platform.invoke(function, _payload("allocate", megabytes=64), 60).output > 0
        with pytest.raises(OutOfMemory):
            platform.invoke(function, _payload("allocate", megabytes=2048), 60)
    finally:
        platform.close()


def test_component_errors_carry_the_remote_traceback(provider: LocalProvider) -> None:
    function = _deploy(provider, LOW)
    with pytest.raises(ComponentFailed) as failure:
        provider.invoke(function, _payload("fail", message="bad input 42"), timeout=60)
    assert failure.value.kind == "fail"
    assert "bad input 42" in failure.value.message
    assert "probe_workflow.py" in failure.value.remote_traceback
    # The instance survives a component's exception and serves again.
    assert provider.invoke(function, _payload("whoami"), timeout=60).start is StartKind.WARM


def test_timeout_kills_the_instance(provider: LocalProvider) -> None:
    function = _deploy(provider, LOW)
    with pytest.raises(FunctionTimeout):
        provider.invoke(function, _payload("spin", seconds=20), timeout=0.5)
    assert provider.instance_pids() == {}
    assert list(provider.ended(function).values()) == ["killed"]


def test_missing_function_and_idempotent_delete(provider: LocalProvider) -> None:
    function = _deploy(provider, HIGH)
    assert provider.list() == [function.name]
    provider.delete(function)
    provider.delete(function)
    assert provider.list() == []
    with pytest.raises(FunctionNotFound):
        provider.invoke(function, _payload("whoami"), timeout=60)


def test_release_keeps_what_is_asked(provider: LocalProvider) -> None:
    function = _deploy(provider, LOW)
    started = provider.warm(function, 3)
    assert len(started) == 3
    released = provider.release(function, keep=1)
    assert len(released) == 2
    assert len(provider.instance_pids()) == 1
    assert provider.ended(function) == dict.fromkeys(released, "daydream")


def _used_then_idle(platform: LocalProvider) -> tuple[FunctionHandle, Invocation]:
    """A function invoked once, then left idle until its instance is reclaimed (at most
    about 10 s)."""
    function = platform.deploy(RUNTIME, platform.tiers()[LOW])
    served = platform.invoke(function, _payload("whoami"), timeout=60)
    for _ in range(100):
        if not platform.instance_pids():
            break
        time.sleep(0.1)
    return function, served


def test_idle_instances_are_reclaimed_after_keep_alive(
    tmp_path: Path, demo_workflows: Path
) -> None:
    platform = LocalProvider(tmp_path, keep_alive_s=0.5)
    try:
        function, served = _used_then_idle(platform)
        assert platform.instance_pids() == {}
        assert platform.ended(function) == {served.instance: "keep-alive"}
    finally:
        platform.close()


def test_a_policy_sets_how_long_idle_instances_are_kept(
    tmp_path: Path, demo_workflows: Path
) -> None:
    platform = LocalProvider(tmp_path, keep_alive_s=3600)
    try:
        assert platform.keep_idle(0.2)  # a policy's window replaces the platform's hour
        function, served = _used_then_idle(platform)
        assert platform.ended(function) == {served.instance: "keep-alive"}
        platform.keep_idle(None)  # the platform's own again: an hour
        again = platform.invoke(function, _payload("whoami"), timeout=60)
        time.sleep(1.2)  # two passes of the reaper
        assert again.instance in platform.instances(function)
    finally:
        platform.close()


def test_a_request_at_the_limit_reports_its_wait_at_the_platform(
    tmp_path: Path, demo_workflows: Path
) -> None:
    platform = LocalProvider(tmp_path, concurrency=1)
    try:
        function = platform.deploy(RUNTIME, platform.tiers()[HIGH])
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(platform.invoke, function, _payload("spin", seconds=0.2), 60)
            for _ in range(200):  # bounded: until the first holds the only instance
                if platform.instance_pids():
                    break
                time.sleep(0.05)
            second = platform.invoke(function, _payload("whoami"), timeout=60)
        assert (second.start, second.instance) == (StartKind.WARM, first.result().instance)
        assert second.queued_ms > 0  # it queued for the instance the first held
    finally:
        platform.close()


def test_an_idle_instance_is_evicted_only_for_a_function_with_nothing_of_its_own(
    tmp_path: Path, demo_workflows: Path
) -> None:
    platform = LocalProvider(tmp_path, concurrency=1)
    try:
        high, low = (platform.deploy(RUNTIME, platform.tiers()[t]) for t in (HIGH, LOW))
        first = platform.invoke(high, _payload("whoami"), timeout=60)
        second = platform.invoke(low, _payload("whoami"), timeout=60)  # at the limit
        assert second.start is StartKind.COLD
        assert platform.ended(high) == {first.instance: "evicted"}
        assert platform.endings(high)[first.instance].waiting == 0  # nothing of high waited
        assert platform.instances(high) == [] and platform.instances(low) == [second.instance]
        platform.close()
        assert platform.ended(low) == {second.instance: "closed"}
    finally:
        platform.close()


def test_concurrency_limit_queues_instead_of_spawning(tmp_path: Path, demo_workflows: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    platform = LocalProvider(tmp_path, concurrency=2)
    try:
        function = platform.deploy(RUNTIME, platform.tiers()[LOW])
        with ThreadPoolExecutor(6) as pool:
            results = list(
                pool.map(
                    lambda _: platform.invoke(function, _payload("spin", seconds=0.2), 60), range(6)
                )
            )
        assert len({r.instance for r in results}) <= 2
        assert sum(r.start is StartKind.COLD for r in results) <= 2
    finally:
        platform.close()


def test_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="keep_alive_s"):
        LocalProvider.from_settings(ProviderSettings(tmp_path, options={"keep_alive_s": "-1"}))
    with pytest.raises(ConfigurationError, match="valid options"):
        LocalProvider.from_settings(ProviderSettings(tmp_path, options={"colour": "red"}))


def test_an_invocation_takes_a_hot_start_still_initialising(
    provider: LocalProvider,
) -> None:
    import threading

    slow = RuntimeEnvironment("probe", "probe_workflow", preload=("numpy", "slow_import"))
    function = provider.deploy(slow, provider.tiers()[LOW])
    started: list[object] = []
    warming = threading.Thread(target=lambda: started.extend(provider.warm(function, 1)))
    warming.start()
    for _ in range(100):  # bounded: until the hot start's process exists
        if provider.instances(function):
            break
        time.sleep(0.01)
    result = provider.invoke(function, _payload("whoami"), timeout=60)
    warming.join(timeout=60)
    assert result.start is StartKind.HOT, "it waited for the hot start instead of a cold one"
    assert [w.instance for w in started] == [result.instance]  # type: ignore[attr-defined]
    assert len(provider.instances(function)) == 1
