"""The ray adapter against a real local Ray instance (one for this module), checked through
Ray's own state (`RayStateView`) rather than the adapter's word."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from daydream_conformance.workflow import workflow  # noqa: E402
from daydream_ray.provider import RayProvider  # noqa: E402
from daydream_ray.testing import RayStateView, local_ray  # noqa: E402

from daydream_core.errors import (  # noqa: E402
    ConfigurationError,
    FunctionNotFound,
    FunctionTimeout,
    ProviderError,
)
from daydream_core.model import HIGH, LOW, StartKind  # noqa: E402
from daydream_core.provider import FunctionHandle, ProviderSettings  # noqa: E402
from daydream_core.workflow import RuntimeEnvironment  # noqa: E402

TIMEOUT_S = 120.0
SHADOW = "daydream_shadow_probe"  # a module that exists only in the driver's folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Ray instance, started from a folder holding a module instances must not see."""
    folder = tmp_path_factory.mktemp("driver-cwd")
    (folder / f"{SHADOW}.py").write_text("raise SystemExit('imported from the driver folder')\n")
    previous = os.getcwd()
    os.chdir(folder)
    try:
        with local_ray(num_cpus=8) as started:
            os.chdir(previous)
            yield started
    finally:
        os.chdir(previous)


@pytest.fixture
def make(cluster: Any, tmp_path: Path) -> Iterator[Any]:
    providers: list[RayProvider] = []

    def build(**options: str) -> RayProvider:
        provider = RayProvider(ProviderSettings(state_dir=tmp_path, options=options))
        providers.append(provider)
        return provider

    yield build
    for provider in providers:
        provider.cleanup()
        provider.close()
    assert ray.is_initialized(), "a provider that borrowed the connection closed it"


@pytest.fixture
def view() -> RayStateView:
    return RayStateView()


def runtime(extra: str) -> RuntimeEnvironment:
    """The conformance workflow under a fresh hashed name."""
    return replace(workflow.runtime, preload=(*workflow.runtime.preload, extra))


def payload(provider: RayProvider, kind: str, **args: Any) -> dict[str, Any]:
    return {
        "component": kind,
        "kind": kind,
        "args": args,
        "run_id": "test",
        "phase": 0,
        "store": provider.store().uri,
    }


def deploy(provider: RayProvider, tier: str, extra: str) -> FunctionHandle:
    return provider.deploy(runtime(extra), provider.tiers()[tier])


def test_cold_then_warm_on_one_actor_as_ray_sees_it(make: Any, view: RayStateView) -> None:
    provider = make()
    function = deploy(provider, LOW, "string")
    first = provider.invoke(function, payload(provider, "echo", value=1), TIMEOUT_S)
    second = provider.invoke(function, payload(provider, "echo", value=2), TIMEOUT_S)
    assert (first.start, second.start) == (StartKind.COLD, StartKind.WARM)
    assert first.init_ms > 0 and second.init_ms == 0
    assert first.instance == second.instance
    assert first.billed_ms == pytest.approx(first.duration_ms + first.init_ms, abs=1.0)
    environments = view.environments(function.name)
    assert [e.id for e in environments] == [first.instance], "one actor, Ray's own id"
    assert environments[0].alive and environments[0].memory_mb == 1024
    assert environments[0].vcpus == 0.5


def test_hot_starts_are_actors_created_ahead(make: Any, view: RayStateView) -> None:
    provider = make()
    function = deploy(provider, HIGH, "json")
    started = provider.warm(function, 2)
    assert len({w.instance for w in started}) == 2
    assert {e.id for e in view.environments(function.name)} == {w.instance for w in started}
    results = [provider.invoke(function, payload(provider, "echo"), TIMEOUT_S) for _ in range(3)]
    assert [r.start for r in results] == [StartKind.HOT, StartKind.HOT, StartKind.WARM]
    assert sorted(provider.instances(function)) == sorted(w.instance for w in started)


def test_the_instance_sees_the_resources_ray_assigned(make: Any) -> None:
    provider = make(high_cpus="1.5", high_memory_mb="1536")
    function = deploy(provider, HIGH, "base64")
    seen = provider.invoke(function, payload(provider, "observe"), TIMEOUT_S).output
    assert seen["platform"]["memory_mb"] == 1536
    assert seen["platform"]["vcpus"] == 1.5
    assert seen["platform"]["actor_id"] == provider.instances(function)[0]


def test_release_and_keep_alive_end_actors_exactly(make: Any, view: RayStateView) -> None:
    provider = make(keep_alive_s="1")
    function = deploy(provider, LOW, "textwrap")
    started = {w.instance for w in provider.warm(function, 3)}
    released = provider.release(function, keep=1)
    assert len(released) == 2 and set(released) <= started
    assert provider.instances(function) == sorted(started - set(released))
    deadline = time.monotonic() + 30
    while provider.instances(function) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert provider.instances(function) == [], "the keep-alive reaper did not end the actor"
    deadline = time.monotonic() + 10
    while any(e.alive for e in view.environments(function.name)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(e.alive for e in view.environments(function.name))


def test_a_killed_actor_process_is_a_typed_error(make: Any) -> None:
    provider = make()
    function = deploy(provider, LOW, "difflib")
    pid = provider.invoke(function, payload(provider, "observe"), TIMEOUT_S).output["pid"]
    killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        with pytest.raises(ProviderError, match="died") as error:
            provider.invoke(function, payload(provider, "sleep", seconds=30), TIMEOUT_S)
    finally:
        killer.cancel()
    assert type(error.value) is ProviderError
    assert provider.instances(function) == []
    after = provider.invoke(function, payload(provider, "echo", value=3), TIMEOUT_S)
    assert after.start is StartKind.COLD and after.output["value"] == 3


def test_an_idle_actor_that_ray_ended_is_not_listed(make: Any) -> None:
    provider = make()
    function = deploy(provider, LOW, "shlex")
    first = provider.invoke(function, payload(provider, "observe"), TIMEOUT_S)
    os.kill(first.output["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while provider.instances(function) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert provider.instances(function) == []
    again = provider.invoke(function, payload(provider, "echo"), TIMEOUT_S)
    assert again.start is StartKind.COLD and again.instance != first.instance


def test_timeout_kills_the_actor(make: Any, view: RayStateView) -> None:
    provider = make()
    function = deploy(provider, LOW, "fnmatch")
    with pytest.raises(FunctionTimeout):
        provider.invoke(function, payload(provider, "sleep", seconds=20), 1.0)
    assert provider.instances(function) == []
    deadline = time.monotonic() + 10
    while any(e.alive for e in view.environments(function.name)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(e.alive for e in view.environments(function.name))


def test_instances_never_import_from_the_drivers_folder(make: Any) -> None:
    provider = make()
    function = deploy(provider, LOW, SHADOW)
    with pytest.raises(ProviderError, match=f"No module named '{SHADOW}'"):
        provider.invoke(function, payload(provider, "echo"), TIMEOUT_S)


def test_missing_function_is_not_found(make: Any) -> None:
    provider = make()
    function = deploy(provider, LOW, "calendar")
    provider.delete(function)
    with pytest.raises(FunctionNotFound):
        provider.invoke(function, payload(provider, "echo"), TIMEOUT_S)


def test_cleanup_finds_actors_another_driver_left(make: Any, view: RayStateView) -> None:
    other = make()
    function = deploy(other, LOW, "colorsys")
    left = other.warm(function, 1)[0].instance
    name = other.instance_names()[left]
    cleaner = make()
    preview = cleaner.cleanup(dry_run=True)
    assert f"actor {name}" in preview
    assert cleaner.named_actors().count(name) == 1, "a dry run removed something"
    assert f"actor {name}" in cleaner.cleanup()
    deadline = time.monotonic() + 10
    while view.leftovers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert view.leftovers() == []


def test_tiers_are_checked_against_what_the_cluster_offers(make: Any) -> None:
    with pytest.raises(ConfigurationError, match="no node fits the high tier"):
        make(high_cpus="64")
    with pytest.raises(ConfigurationError, match="no node fits the low tier"):
        make(low_resource="gpu_node")


def test_concurrency_is_what_the_cluster_holds(make: Any) -> None:
    provider = make()
    cpus = ray.cluster_resources()["CPU"]
    memory_mb = ray.cluster_resources()["memory"] / 2**20
    expected = min(int(cpus // 0.5), int(memory_mb // 1024))
    assert provider.capabilities().max_concurrency == expected
    assert make(max_concurrency="3").capabilities().max_concurrency == 3


def test_a_failed_deployment_ends_only_its_own_actors(cluster: Any, view: RayStateView) -> None:
    """Three deployments on one cluster: the failing one's removal, and the cleanup of a
    killed one by its deployment id, end exactly their own actors; the third keeps serving."""
    from daydream_core.deployments import Deployments

    made: dict[str, tuple[RayProvider, Deployments]] = {}
    actors: dict[str, set[str]] = {}
    try:
        for deployment in ("draaaaaa", "drbbbbbb", "drcccccc"):
            adapter = RayProvider(ProviderSettings(state_dir=Path("."), deployment=deployment))
            deployments = Deployments(adapter)
            made[deployment] = (adapter, deployments)
            function = deployments.deploy(runtime("fractions"), adapter.tiers()[LOW])
            assert function.name.startswith(f"daydream-{deployment}-")
            adapter.warm(function, 1)
            actors[deployment] = set(adapter.instance_names().values())
        # drbbbbbb fails: its controller removes what it created.
        _, failed_run = made["drbbbbbb"]
        created = [function.name for function in failed_run.created]
        assert failed_run.remove_created() == created and len(created) == 1
        # drcccccc's controller was killed: `daydream cleanup --deployment drcccccc`.
        cleaner = RayProvider(ProviderSettings(state_dir=Path("."), deployment="drcccccc"))
        made["cleaner"] = (cleaner, Deployments(cleaner))
        assert cleaner.cleanup() == [f"actor {name}" for name in sorted(actors["drcccccc"])]
        everyone = set().union(*actors.values())
        deadline = time.monotonic() + 10
        while True:
            alive = {entry.split(" ", 1)[1] for entry in view.leftovers()} & everyone
            if alive == actors["draaaaaa"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert alive == actors["draaaaaa"]
        running, ran = made["draaaaaa"]
        (function,) = ran.created
        answer = running.invoke(function, payload(running, "echo", value=3), TIMEOUT_S)
        assert answer.output["value"] == 3 and answer.start is StartKind.HOT
    finally:
        for adapter, _ in made.values():
            adapter.cleanup()
            adapter.close()
