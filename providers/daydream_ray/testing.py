"""Test support for the ray provider: a real local Ray instance, and Ray's own view of it.

There is no fake: Ray itself is the platform. `local_ray` starts one small local instance
(logical CPUs beyond the physical ones, no dashboard, loopback only) and, on exit, shuts it
down and checks that none of its processes is left. `RayStateView` is the conformance suite's
`PlatformView`, read from Ray's own state and never from the adapter:

- environments: the actor table the GCS keeps (what ``ray.util.state.list_actors`` serves
  through the dashboard, which the minimal ``ray`` install has not got), with each actor's
  required resources and state;
- billing: none. Ray keeps no bill; what an on-premises run costs is the adapter's price
  table applied to its own measurements, so the suite's billing comparisons are skipped;
- leftovers: daydream's named actors still alive.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from daydream_core.provider import NAME_PREFIX, ProviderSettings

TEST_CPUS = 8  # logical CPUs of the test instance: 2 physical cores run them fine
TEST_OBJECT_STORE_MB = 256
EXIT_WAIT_S = 20.0


@contextmanager
def local_ray(num_cpus: int = TEST_CPUS) -> Iterator[Any]:
    """One local Ray instance for a test session; yields its `Cluster`. On exit it is shut
    down, and a process of it still running is an error. Where this process is connected to
    Ray already, that connection is used and left alone."""
    from daydream_ray.cluster import Cluster
    from daydream_ray.options import RayOptions

    options = RayOptions(num_cpus=num_cpus, object_store_mb=TEST_OBJECT_STORE_MB)
    cluster = Cluster.connect(options)
    import ray

    session = ray.get_runtime_context().get_session_name()
    try:
        yield cluster
    finally:
        cluster.shutdown()
        left = wait_for_no_processes(session) if cluster.owned else []
        if left:
            raise AssertionError(f"Ray processes left after shutdown: {left}")


def session_processes(session: str) -> list[str]:
    """Live (not zombie) processes whose command line names this Ray session."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if session in cmdline and state != "Z" and int(entry.name) != os.getpid():
            found.append(f"{entry.name} {cmdline[:80]}")
    return found


def wait_for_no_processes(session: str, timeout_s: float = EXIT_WAIT_S) -> list[str]:
    deadline = time.monotonic() + timeout_s
    left = session_processes(session)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = session_processes(session)
    return left


class RayStateView:
    """The conformance suite's view of Ray: the actor table its GCS keeps."""

    def _actors(self) -> list[Any]:
        """Every actor of daydream's namespace the GCS knows, in the order created."""
        import ray
        from ray._private.state import state
        from ray.core.generated import gcs_pb2

        from daydream_ray.options import NAMESPACE

        del ray  # imported so that the GCS connection exists
        accessor = state._connect_and_get_accessor()
        parse: Any = gcs_pb2.ActorTableData  # type: ignore[attr-defined]
        table = [parse.FromString(raw) for raw in accessor.get_actor_table(None, None)]
        ours = [a for a in table if a.ray_namespace == NAMESPACE and a.name.startswith(NAME_PREFIX)]
        return sorted(ours, key=lambda a: (a.start_time or a.timestamp, a.name))

    def environments(self, function: str) -> Sequence[Any]:
        from daydream_conformance.view import (  # type: ignore[import-untyped]
            EnvironmentView,
        )

        views = []
        for actor in self._actors():
            if actor.name.rpartition(":")[0] != function:
                continue
            resources = dict(actor.required_resources)
            views.append(
                EnvironmentView(
                    id=actor.actor_id.hex(),
                    function=function,
                    memory_mb=round(resources.get("memory", 0.0) / 2**20),
                    vcpus=float(resources.get("CPU", 0.0)),
                    requests=None,  # Ray counts an actor's calls only in its task events
                    alive=actor.state != actor.DEAD,
                )
            )
        return views

    def billing(self, function: str) -> Sequence[Any] | None:
        return None  # Ray bills nothing: the on-premises bill is the adapter's own

    def leftovers(self) -> list[str]:
        return [f"actor {a.name}" for a in self._actors() if a.state != a.DEAD]


@contextmanager
def conformance_environment(workdir: Path) -> Iterator[Any]:
    """The conformance suite's environment for ``--daydream-provider ray``: one local Ray
    instance for the session (the adapter borrows its connection) and Ray's own view."""
    from daydream_conformance.environment import (  # type: ignore[import-untyped]
        ConformanceEnvironment,
    )

    with local_ray() as cluster:
        yield ConformanceEnvironment(
            settings=ProviderSettings(state_dir=workdir, options={}),
            view=RayStateView(),
            fake=cluster,
        )
