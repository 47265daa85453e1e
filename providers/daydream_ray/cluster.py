"""Where the instances run: a local Ray instance started for the run, or a cluster joined.

Ray allows one connection per process. If this process is already connected (a user's own
program, a test session), the provider uses that connection and leaves it open; otherwise it
starts or joins Ray itself and shuts it down on close. A local instance is started with no
dashboard, no usage statistics, bound to 127.0.0.1, within a bounded time.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ray
from ray._private import ray_constants

from daydream_core.errors import ConfigurationError
from daydream_core.model import Tier
from daydream_ray.options import NAMESPACE, RayOptions

# Set before Ray starts: no usage statistics; a single-node instance bound to the loopback
# address (Ray otherwise binds the machine's routable address).
LOCAL_ENVIRONMENT = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
CONNECT_PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class NodeOffer:
    """What one alive node of the cluster offers: its total resources and its labels."""

    node_id: str
    resources: Mapping[str, float]
    labels: Mapping[str, str]

    def fits(self, request: Mapping[str, float], labels: Mapping[str, str]) -> bool:
        return all(self.resources.get(k, 0.0) >= v for k, v in request.items()) and all(
            self.labels.get(k) == v for k, v in labels.items()
        )

    def how_many(self, request: Mapping[str, float]) -> int:
        counts = [int(self.resources.get(k, 0.0) // v) for k, v in request.items() if v > 0]
        return min(counts) if counts else 0


class Cluster:
    """A connection to Ray, owned (started or joined here) or borrowed (already connected).

    An owned connection is made, held and closed by one thread of its own: Ray's local
    processes die with the thread that started them (Linux parent-death signals follow the
    thread), so that thread lives as long as the connection does.
    """

    def __init__(self, owned: bool, started_locally: bool, address: str) -> None:
        self.owned = owned
        self.started_locally = started_locally
        self.address = address  # the GCS address of the cluster ('' for a ray:// client)
        self._stop = threading.Event()
        self._owner: threading.Thread | None = None

    @classmethod
    def connect(cls, options: RayOptions) -> Cluster:
        if ray.is_initialized():
            return cls(owned=False, started_locally=False, address=_current_address())
        local = options.address is None
        if local:
            os.environ.update(LOCAL_ENVIRONMENT)
            # The same switch as the variable above, read when Ray was imported.
            ray_constants.ENABLE_RAY_CLUSTER = False
        elif options.address != "auto":
            _probe(str(options.address))
        kwargs: dict[str, Any] = {
            "namespace": NAMESPACE,
            "log_to_driver": options.log_to_driver,
            "logging_level": "ERROR",  # Ray's start-up warnings are not ours to show
        }
        if local:
            kwargs.update(
                include_dashboard=False,
                num_cpus=options.num_cpus,
                object_store_memory=options.object_store_mb * 2**20,
                # Ray would prestart one idle worker process per logical CPU for tasks; every
                # instance is an actor that gets a worker when it is created (its cold start).
                _system_config={"prestart_worker_first_driver": False},
            )
        else:
            kwargs["address"] = options.address
        cluster = cls(owned=True, started_locally=local, address="")
        cluster._start(options.start_timeout_s, options.address, kwargs)
        cluster.address = _current_address()
        return cluster

    def _start(self, timeout_s: float, address: str | None, kwargs: dict[str, Any]) -> None:
        """`ray.init` on the owner thread, with a deadline (then Ray is shut down again)."""
        outcome: dict[str, BaseException | None] = {}
        started = threading.Event()

        def own() -> None:
            try:
                ray.init(**kwargs)
                outcome["error"] = None
            except BaseException as exc:  # reported on the caller's thread
                outcome["error"] = exc
            started.set()
            if outcome["error"] is None:
                self._stop.wait()
            _quiet_shutdown()

        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        self._owner = threading.Thread(target=own, name="daydream-ray-owner", daemon=True)
        self._owner.start()
        if not started.wait(timeout_s):
            self.shutdown()
            raise ConfigurationError(
                f"ray: starting or joining {where} took more than {timeout_s:g} s; raise "
                "-o start_timeout_s=SECONDS or check the cluster (`ray status`)"
            )
        error = outcome.get("error")
        if error is not None:
            self._owner.join(timeout=30)
            if isinstance(error, ModuleNotFoundError) and address and address.startswith("ray://"):
                raise ConfigurationError(
                    "ray: a ray:// address needs the Ray client: pip install 'ray[client]'"
                ) from None
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ConfigurationError(f"ray: cannot start or join {where}: {first_line}") from None

    def nodes(self) -> list[NodeOffer]:
        return [
            NodeOffer(
                str(node["NodeID"]),
                {str(k): float(v) for k, v in node.get("Resources", {}).items()},
                {str(k): str(v) for k, v in (node.get("Labels") or {}).items()},
            )
            for node in ray.nodes()  # type: ignore[no-untyped-call]
            if node.get("Alive")
        ]

    def shutdown(self, timeout_s: float = 60.0) -> None:
        """Disconnect (and stop a local instance) if this connection is owned; else nothing."""
        if self._owner is None:
            return
        self._stop.set()
        self._owner.join(timeout_s)


def _current_address() -> str:
    context = ray.get_runtime_context()
    return str(getattr(context, "gcs_address", "") or "")


def _probe(address: str) -> None:
    """A quick TCP connect, so that a wrong address is one line now, not a long retry loop."""
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigurationError(
            f"ray: cannot reach a Ray cluster at {address} ({reason}); valid: address=auto or "
            "ray://HOST:PORT (HOST:PORT) of a running cluster, see `ray status`"
        ) from None


def _quiet_shutdown() -> None:
    try:
        ray.shutdown()
    except Exception as exc:  # nothing more to do: the error that got us here is reported
        print(f"daydream: ray shutdown failed: {exc}", file=sys.stderr)


def tier_request(tier: Tier, custom: Mapping[str, float]) -> dict[str, float]:
    """The resources one instance of `tier` holds, in Ray's units (memory in bytes)."""
    return {"CPU": tier.vcpus, "memory": tier.memory_mb * 2**20, **custom}


def check_tiers(
    nodes: list[NodeOffer],
    tiers: Mapping[str, Tier],
    custom: Mapping[str, Mapping[str, float]],
    labels: Mapping[str, Mapping[str, str]],
) -> None:
    """Every tier must fit on at least one alive node: a one-line error naming what does not."""
    for name, tier in tiers.items():
        request = tier_request(tier, custom.get(name, {}))
        if any(node.fits(request, labels.get(name, {})) for node in nodes):
            continue
        offers = "; ".join(
            f"{n.node_id[:8]}: {n.resources.get('CPU', 0):g} CPU, "
            f"{n.resources.get('memory', 0) / 2**20:.0f} MB"
            + "".join(f", {k}={v:g}" for k, v in custom.get(name, {}).items() if k in n.resources)
            for n in nodes
        )
        wanted = ", ".join(f"{k}={v:g}" for k, v in custom.get(name, {}).items())
        label = ", ".join(f"label {k}={v}" for k, v in labels.get(name, {}).items())
        extra = "".join(f", {part}" for part in (wanted, label) if part)
        raise ConfigurationError(
            f"ray: no node fits the {name} tier ({tier.vcpus:g} CPU, {tier.memory_mb} MB{extra});"
            f" the cluster offers {offers or 'no alive nodes'}; set {name}_cpus / "
            f"{name}_memory_mb / {name}_resource / {name}_label to what a node has"
        )


def fitting_instances(nodes: list[NodeOffer], request: Mapping[str, float]) -> int:
    """How many instances of this request the whole cluster holds at once."""
    return sum(node.how_many(request) for node in nodes)
