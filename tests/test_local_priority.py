"""Hot starts initialise at idle CPU priority and run their components at normal priority."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daydream_local import priority
from daydream_local.provider import LocalProvider

from daydream_core.model import LOW, StartKind
from daydream_core.workflow import RuntimeEnvironment

RUNTIME = RuntimeEnvironment("probe", "probe_workflow", preload=("numpy",))

pytestmark = pytest.mark.skipif(
    not priority.can_restore(), reason="this host does not let a process leave SCHED_IDLE"
)


@pytest.fixture
def provider(tmp_path: Path, demo_workflows: Path) -> Iterator[LocalProvider]:
    platform = LocalProvider(tmp_path, concurrency=4, keep_alive_s=30)
    yield platform
    platform.close()


def _policies(pid: int) -> set[int]:
    return {os.sched_getscheduler(int(t)) for t in os.listdir(f"/proc/{pid}/task")}


def test_a_hot_start_idles_until_a_component_takes_it(provider: LocalProvider) -> None:
    function = provider.deploy(RUNTIME, provider.tiers()[LOW])
    (warm,) = provider.warm(function, 1)
    pid = provider.instance_pids()[warm.instance]
    assert _policies(pid) == {os.SCHED_IDLE}  # every thread its imports started, too
    result = provider.invoke(function, {"kind": "whoami", "args": {}}, 30)
    assert result.start is StartKind.HOT and result.instance == warm.instance
    assert _policies(pid) == {os.SCHED_OTHER}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Python 3.10 has no process_group")
def test_instances_share_the_controller_s_session_so_idle_priority_holds(
    provider: LocalProvider,
) -> None:
    # Linux's autogroup scheduling gives each session a CPU share of its own: a hot start in
    # a session of its own took a third of two busy cores at SCHED_IDLE. Each instance is its
    # own process group (killed as one), in the controller's session.
    function = provider.deploy(RUNTIME, provider.tiers()[LOW])
    (warm,) = provider.warm(function, 1)
    pid = provider.instance_pids()[warm.instance]
    assert os.getsid(pid) == os.getsid(0)
    assert os.getpgid(pid) == pid


def test_a_hot_start_taken_in_its_init_runs_its_component_at_normal_priority(
    provider: LocalProvider,
) -> None:
    import threading

    # The platform lowers the instance as it spawns it, before anyone can take it: lowered
    # by itself, an instance taken first stayed at idle priority for its component too.
    slow = RuntimeEnvironment("probe", "probe_workflow", preload=("numpy", "slow_import"))
    function = provider.deploy(slow, provider.tiers()[LOW])
    warming = threading.Thread(target=provider.warm, args=(function, 1))
    warming.start()
    for _ in range(100):  # bounded: until the hot start's process exists
        if provider.instance_pids():
            break
        time.sleep(0.01)
    (pid,) = provider.instance_pids().values()
    assert _policies(pid) == {os.SCHED_IDLE}
    result = provider.invoke(function, {"kind": "whoami", "args": {}}, 60)
    warming.join(timeout=60)
    assert result.start is StartKind.HOT
    assert result.output["policy"] == os.SCHED_OTHER


def test_a_cold_start_runs_at_normal_priority(provider: LocalProvider) -> None:
    function = provider.deploy(RUNTIME, provider.tiers()[LOW])
    result = provider.invoke(function, {"kind": "whoami", "args": {}}, 30)
    assert result.start is StartKind.COLD
    assert _policies(provider.instance_pids()[result.instance]) == {os.SCHED_OTHER}


def test_the_time_a_hot_start_is_held_back_at_idle_priority_is_not_billed(
    provider: LocalProvider,
) -> None:
    import subprocess

    function = provider.deploy(RUNTIME, provider.tiers()[LOW])
    spin = (
        "import os, sys, time\nos.sched_setaffinity(0, {int(sys.argv[1])})\n"
        "print('spinning', flush=True)\n"
        "end = time.monotonic() + 1.5\nwhile time.monotonic() < end: pass"
    )
    # Every CPU busy at normal priority for 1.5 s (one spinning process pinned to each): the
    # hot start's init waits for them.
    hogs = [
        subprocess.Popen([sys.executable, "-c", spin, str(cpu)], stdout=subprocess.PIPE, text=True)
        for cpu in sorted(os.sched_getaffinity(0))
    ]
    try:
        for hog in hogs:
            assert hog.stdout is not None and hog.stdout.readline().strip() == "spinning"
        began = time.monotonic()
        (warm,) = provider.warm(function, 1)
        wall_ms = (time.monotonic() - began) * 1000
    finally:
        for hog in hogs:
            hog.wait(timeout=30)
            if hog.stdout is not None:
                hog.stdout.close()
    # The time its init waited for the busy CPUs at idle priority (the kernel's run delay,
    # taken as it said ready) is neither reported nor billed.
    [instance] = provider._instances[function.name]
    assert 0 < instance.held_back_ms <= priority.held_back_ms(instance.process.pid)
    assert warm.init_ms == pytest.approx(instance.init_ms - instance.held_back_ms, abs=0.01)
    assert warm.init_ms < wall_ms - instance.held_back_ms + 1.0
    assert warm.billed_ms == pytest.approx(warm.init_ms, abs=1.0)
    result = provider.invoke(function, {"kind": "whoami", "args": {}}, 30)
    assert result.start is StartKind.HOT and result.billed_ms >= result.duration_ms
