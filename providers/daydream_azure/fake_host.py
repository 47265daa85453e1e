"""The fake's function host: deployed packages, instances, requests and their billing.

Each function app's package (written by OneDeploy into its deployment container) is extracted
once per digest and indexed by a real import (`fake_instance` with ``--index``). A request to
the trigger goes to an idle instance of the app, else to a new one: a real process spawned
with the app settings and the platform's own variables (``WEBSITE_INSTANCE_ID``, a 64-digit
hex id as on Azure; ``WEBSITE_MEMORY_LIMIT_MB``, the app's instance memory, which the instance
also applies to itself as RLIMIT_AS). Each instance serves one request at a time (the apps are
configured with ``perInstanceConcurrency`` 1); its first request waits for its init, a real
cold start. Every request is billed like Flex Consumption's on-demand mode.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import secrets
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daydream_conformance.view import BillingView, EnvironmentView

from daydream_azure import fake_instance
from daydream_azure.options import FLEX_CONSUMPTION, FLEX_INSTANCE_VCPUS
from daydream_core.faults import FaultPlan

INIT_TIMEOUT_S = 120.0
SCRIPT = Path(fake_instance.__file__)


class InstanceGone(Exception):
    """The instance's process ended while serving (killed, or out of memory)."""


@dataclass
class Instance:
    """One instance process of a function app."""

    id: str
    app: str
    memory_mb: int
    process: subprocess.Popen[bytes]
    init_ms: float = 0.0
    requests: int = 0
    busy: bool = False
    alive: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, request: Mapping[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            fake_instance.write_frame(self.process.stdin, request)  # type: ignore[arg-type]
            answer: dict[str, Any] = fake_instance.read_frame(self.process.stdout)  # type: ignore[arg-type]
        except (EOFError, OSError, ValueError):
            self.alive = False
            raise InstanceGone(f"instance {self.id[:12]} ended") from None
        return answer

    def end(self) -> None:
        self.alive = False
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@dataclass
class App:
    """What the host knows of one function app."""

    name: str
    memory_mb: int
    max_instances: int
    settings: dict[str, str]
    root: Path | None = None  # the extracted package
    instances: list[Instance] = field(default_factory=list)


class FunctionHost:
    """Instances of every function app on the fake, with their billing."""

    def __init__(self, workdir: Path, *, faults: FaultPlan | None = None) -> None:
        self.workdir = workdir
        self.faults = faults  # handed to every instance process (tests only)
        self._apps: dict[str, App] = {}
        self._ended: dict[str, list[Instance]] = {}  # instances of deleted or restarted apps
        self._billing: dict[str, list[BillingView]] = {}
        self._next_cpu = 0
        self._lock = threading.Lock()

    # -- apps and packages ---------------------------------------------------------------------

    def configure(
        self, name: str, memory_mb: int, max_instances: int, settings: dict[str, str]
    ) -> None:
        """Create or reconfigure an app; running instances restart (as on a settings change)."""
        with self._lock:
            app = self._apps.get(name)
            if app is None:
                self._apps[name] = App(name, memory_mb, max_instances, dict(settings))
                return
            changed = (app.memory_mb, app.settings) != (memory_mb, settings)
            app.memory_mb, app.max_instances, app.settings = (
                memory_mb,
                max_instances,
                dict(settings),
            )
        if changed:
            self.restart(name)

    def extract(self, name: str, sha256: str, data: bytes) -> dict[str, str]:
        """Unpack a deployed package and index it by a real import; {route: function}."""
        root = self.workdir / "packages" / sha256[:16]
        if not root.is_dir():
            staging = root.with_name(f".{root.name}-{os.getpid()}-{threading.get_ident()}")
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(staging)
            with contextlib.suppress(OSError):  # extracted meanwhile
                staging.rename(root)
        with self._lock:
            settings = dict(self._apps[name].settings) if name in self._apps else {}
        process = self._spawn(root, settings, index=True)
        try:
            ready = fake_instance.read_frame(process.stdout)
        except EOFError:
            ready = {"error": "the package's function app did not start"}
        finally:
            process.wait(timeout=INIT_TIMEOUT_S)
            assert process.stdout is not None and process.stdin is not None
            process.stdout.close()
            process.stdin.close()
        if "error" in ready:
            raise RuntimeError(str(ready["error"]))
        with self._lock:
            if name in self._apps:
                self._apps[name].root = root
        self.restart(name)
        return dict(ready["functions"])

    def _spawn(
        self, root: Path, environ: Mapping[str, str], index: bool = False, memory_mb: int = 0
    ) -> Any:
        command = [sys.executable, "-I", str(SCRIPT), str(root)]
        if index:
            command.append("--index")
        else:
            command += ["--cpus", ",".join(map(str, self._cpus(memory_mb)))]
            if self.faults is not None:
                command += ["--faults", self.faults.spec]
        return subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**_base_environment(), **environ},
            cwd=root,
        )

    def _cpus(self, memory_mb: int) -> list[int]:
        """This machine's CPUs for one instance: its tier's share, at least one CPU, taken in
        turn so that instances spread over the machine."""
        available = sorted(os.sched_getaffinity(0))
        share = FLEX_INSTANCE_VCPUS.get(memory_mb, 1.0)
        count = max(1, min(len(available), math.floor(share)))
        with self._lock:
            first = self._next_cpu
            self._next_cpu += count
        return [available[(first + i) % len(available)] for i in range(count)]

    def remove(self, name: str) -> None:
        self.restart(name)
        with self._lock:
            self._apps.pop(name, None)

    def restart(self, name: str) -> None:
        """End the app's instances (a deployment, a settings change or a delete)."""
        with self._lock:
            app = self._apps.get(name)
            instances = list(app.instances) if app else []
            if app is not None:
                app.instances.clear()
            self._ended.setdefault(name, []).extend(instances)
        for instance in instances:
            instance.end()

    # -- requests ------------------------------------------------------------------------------

    def acquire(self, name: str) -> tuple[Instance, bool] | None:
        """An idle instance of `name`, else a new one (cold: True); None at the scale limit."""
        with self._lock:
            app = self._apps[name]
            for instance in app.instances:
                if instance.alive and not instance.busy:
                    instance.busy = True
                    return instance, False
            if sum(i.alive for i in app.instances) >= app.max_instances or app.root is None:
                return None
            root, settings, memory_mb = app.root, dict(app.settings), app.memory_mb
        instance_id = secrets.token_hex(32)
        environ = {
            **settings,
            "WEBSITE_INSTANCE_ID": instance_id,
            "WEBSITE_MEMORY_LIMIT_MB": str(memory_mb),
            "WEBSITE_SKU": "FlexConsumption",
            "WEBSITE_SITE_NAME": name,
            "FUNCTIONS_WORKER_RUNTIME": "python",
        }
        started = time.perf_counter()
        process = self._spawn(root, environ, memory_mb=memory_mb)
        instance = Instance(instance_id, name, memory_mb, process, busy=True)
        with self._lock:
            self._apps[name].instances.append(instance)
        try:
            ready = fake_instance.read_frame(process.stdout)
        except EOFError:
            ready = {"error": "the instance ended during its init"}
        instance.init_ms = (time.perf_counter() - started) * 1000.0
        if "error" in ready:
            instance.end()
            raise InstanceGone(f"the instance's init failed: {ready['error']}")
        return instance, True

    def serve(self, instance: Instance, cold: bool, request: Mapping[str, Any]) -> dict[str, Any]:
        """One request on `instance`, billed; the instance is idle again afterwards."""
        started = time.perf_counter()
        try:
            with instance.lock:
                instance.requests += 1
                answer = instance.call(request)
        finally:
            instance.busy = False
        duration_ms = (time.perf_counter() - started) * 1000.0
        with self._lock:
            self._billing.setdefault(instance.app, []).append(
                BillingView(
                    function=instance.app,
                    environment=instance.id,
                    duration_ms=duration_ms,
                    init_ms=instance.init_ms if cold else 0.0,
                    billed_ms=FLEX_CONSUMPTION.billed_ms(duration_ms),
                    memory_mb=instance.memory_mb,
                )
            )
        return answer

    def kill(self, instance_id: str) -> bool:
        """End one instance as the platform might (a crash, a scale-in); True if found."""
        with self._lock:
            found = [i for a in self._apps.values() for i in a.instances if i.id == instance_id]
        for instance in found:
            instance.end()
        return bool(found)

    def close(self) -> None:
        for name in list(self._apps):
            self.remove(name)

    # -- the platform's view -------------------------------------------------------------------

    def environments(self, name: str) -> list[EnvironmentView]:
        with self._lock:
            app = self._apps.get(name)
            instances = [*self._ended.get(name, []), *(app.instances if app else [])]
        return [
            EnvironmentView(
                id=i.id,
                function=name,
                memory_mb=i.memory_mb,
                vcpus=FLEX_INSTANCE_VCPUS.get(i.memory_mb, 0.0),
                requests=i.requests,
                alive=i.alive and i.process.poll() is None,
            )
            for i in instances
        ]

    def billing(self, name: str) -> list[BillingView]:
        """Each request of `name` as the platform metered it (Azure sums these into the app's
        execution units; no caller sees them one by one)."""
        with self._lock:
            return list(self._billing.get(name, []))

    def instance_ids(self, name: str) -> list[str]:
        return [e.id for e in self.environments(name) if e.alive]


def _base_environment() -> dict[str, str]:
    """What every instance inherits from the machine: no Azure credentials, no PYTHON* tweaks
    (``-I`` ignores them anyway), only what a process needs to run."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    return {k: v for k, v in os.environ.items() if k in keep}
