"""The local platform's own view for the conformance suite, read from /proc, not from the
adapter: its instances are real processes, so the kernel says which are alive, with which
address-space limit and on which CPUs.

An instance process is recognised by its command line (the worker's configuration names its
runtime environment, tier and instance id) and by being a child of this process. The local
platform bills in its adapter, so there is no independent bill: `billing` answers None and the
suite skips its billing cases, saying why. Linux only (/proc).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from daydream_conformance.view import BillingView, EnvironmentView

from daydream_core.model import Tier
from daydream_core.provider import ProviderSettings, function_name
from daydream_core.workflow import RuntimeEnvironment

PROC = Path("/proc")
WORKER_MODULE = "daydream_local.worker"


@dataclass(frozen=True)
class _Process:
    pid: int
    started: int  # clock ticks after boot: with the pid, the process's identity
    config: dict[str, Any]


class ProcessView:
    """`daydream_conformance.view.PlatformView` of the local platform, from /proc."""

    def __init__(self, parent: int | None = None) -> None:
        self.parent = os.getpid() if parent is None else parent
        self._lock = threading.Lock()
        self._seen: dict[tuple[int, int], EnvironmentView] = {}  # every one ever seen

    def environments(self, function: str) -> list[EnvironmentView]:
        """Every instance process of `function` seen so far; those gone have ended."""
        with self._lock:
            live = {}
            for process in _worker_processes(self.parent):
                live[(process.pid, process.started)] = _environment(process)
            for key, environment in self._seen.items():
                if key not in live:
                    self._seen[key] = replace(environment, alive=False)
            self._seen.update(live)
            return [e for e in self._seen.values() if e.function == function]

    def billing(self, function: str) -> list[BillingView] | None:
        return None  # the local platform's bill is its adapter's: nothing independent

    def leftovers(self) -> list[str]:
        """Instance processes still running."""
        return [
            f"instance process {p.pid} ({p.config.get('instance', '?')})"
            for p in _worker_processes(self.parent)
        ]


def _worker_processes(parent: int) -> Iterator[_Process]:
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        # Fields after the parenthesised command name: state, ppid, ..., starttime (22nd).
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) != parent or fields[0] in ("Z", "X"):
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if WORKER_MODULE not in args:
            continue
        config = _config(args)
        if config is not None:
            yield _Process(int(entry.name), int(fields[19]), config)


def _config(args: list[str]) -> dict[str, Any] | None:
    for arg in args:
        if arg.startswith("{"):
            try:
                config = json.loads(arg)
            except ValueError:
                continue
            if isinstance(config, dict) and {"runtime", "tier", "instance"} <= set(config):
                return config
    return None


def _environment(process: _Process) -> EnvironmentView:
    runtime = process.config["runtime"]
    tier = Tier(**process.config["tier"])
    name = function_name(
        RuntimeEnvironment(
            name=runtime["name"],
            module=runtime["module"],
            preload=tuple(runtime["preload"]),
            requirements=tuple(runtime["requirements"]),
        ),
        tier,
    )
    return EnvironmentView(
        id=str(process.config["instance"]),
        function=name,
        memory_mb=_address_space_mb(process.pid),
        vcpus=float(_cpus_allowed(process.pid)),
        requests=None,  # the kernel does not count them
        alive=True,
    )


def _address_space_mb(pid: int) -> int:
    """The process's RLIMIT_AS (soft), in MB; 0 when it has none (or is not set yet)."""
    try:
        text = (PROC / str(pid) / "limits").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Max address space"):
            soft = line.split()[3]
            return 0 if soft == "unlimited" else int(soft) // 2**20
    return 0


def _cpus_allowed(pid: int) -> int:
    try:
        return len(os.sched_getaffinity(pid))
    except OSError:
        return 0


@contextmanager
def conformance_environment(workdir: Path) -> Iterator[Any]:
    """The suite's environment for ``--daydream-provider local``: the platform as it is, seen
    from /proc."""
    from daydream_conformance.environment import ConformanceEnvironment

    view = ProcessView()
    yield ConformanceEnvironment(ProviderSettings(state_dir=workdir), view=view, fake=view)
