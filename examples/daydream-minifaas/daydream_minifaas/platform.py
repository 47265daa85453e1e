"""minifaas: functions, their instances and the bill, on one host.

A function is a handler module with a memory size, a CPU count and environment variables. An
instance is a process running `daydream_minifaas.runtime`; it serves one request at a time. A
request with no idle instance starts one on its critical path (a cold start); instances started
ahead with `provision` serve their first request as a provisioned start. Idle instances are
stopped after a keep-alive time, or when another function needs the room. Every request is
billed from the platform's own clock: duration plus init, rounded up to the millisecond.

This is the platform, not the daydream adapter: it knows nothing about workflows.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INIT_TIMEOUT_S = 120.0


class PlatformError(Exception):
    """A request the platform refuses or could not serve; `status` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Bill:
    """One request as the platform billed it."""

    function: str
    instance: str
    duration_ms: float
    init_ms: float
    billed_ms: float
    memory_mb: int


class Instance:
    """One process of a function: started → ready → busy/idle … → stopped."""

    def __init__(self, instance_id: str, function: Function, cpus: list[int], log: Path) -> None:
        self.id, self.function, self.cpus = instance_id, function.name, cpus
        self.memory_mb = function.memory_mb
        self.busy, self.provisioned = True, False
        self.requests = self.served = 0  # billed requests; invocations
        self.last_used = time.monotonic()
        self._replies: queue.Queue[str | None] = queue.Queue()
        variables = {
            "MINIFAAS_HANDLER": function.handler,
            "MINIFAAS_MEMORY_MB": str(function.memory_mb),
            "MINIFAAS_CPUS": ",".join(map(str, cpus)),
        }
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daydream_minifaas.runtime"],
                env={**os.environ, **function.environment, **variables},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=sink,
                text=True,
                cwd=log.parent,  # not the platform's working directory: nothing to shadow
                start_new_session=True,
            )
        self._started = time.monotonic()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._replies.put(line)
        self._replies.put(None)  # the process exited

    def _reply(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._replies.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            raise EOFError
        reply: dict[str, Any] = json.loads(line)
        return reply

    def wait_ready(self) -> float:
        """Block until the handler is imported; return the init time in ms."""
        try:
            ready = self._reply(INIT_TIMEOUT_S).get("ready")
        except (TimeoutError, EOFError):
            ready = False
        if not ready:
            self.stop()
            raise PlatformError(502, f"instance {self.id} failed its init (see its log)")
        return (time.monotonic() - self._started) * 1000.0

    def call(self, event: Any, context: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One request (TimeoutError, EOFError on failure)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"event": event, "context": context}) + "\n")
        self.process.stdin.flush()
        return self._reply(timeout)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)  # the instance and whatever it started
        self.process.wait()


@dataclass
class Function:
    name: str
    handler: str
    memory_mb: int
    cpus: int
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    instances: list[Instance] = field(default_factory=list)

    def config(self) -> dict[str, Any]:
        keys = ("name", "handler", "memory_mb", "cpus", "environment", "labels")
        return {key: getattr(self, key) for key in keys}


class Platform:
    """The platform's state, shared by its HTTP threads under one lock."""

    def __init__(
        self, state_dir: Path, *, max_instances: int = 32, keep_alive_s: float = 60.0
    ) -> None:
        self.max_instances, self.keep_alive_s = max_instances, keep_alive_s
        self.host_cpus = sorted(os.sched_getaffinity(0))
        self.logs = Path(state_dir) / "logs"
        self.logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.functions: dict[str, Function] = {}
        self.history: list[Instance] = []  # every instance ever started, in order
        self.bills: list[Bill] = []
        self._ids = itertools.count(1)
        self._next_cpu = itertools.cycle(self.host_cpus)
        self._cond = threading.Condition()
        self._closed = threading.Event()
        threading.Thread(target=self._reap, daemon=True).start()

    # -- functions --------------------------------------------------------------------------

    def put(self, name: str, config: dict[str, Any]) -> Function:
        """Create or replace a function (a replaced one's instances are stopped)."""
        cpus = int(config.get("cpus", 1))
        if not 1 <= cpus <= len(self.host_cpus) or int(config["memory_mb"]) < 128:
            raise PlatformError(400, f"cpus must be 1-{len(self.host_cpus)}, memory_mb >= 128")
        function = Function(
            name,
            str(config["handler"]),
            int(config["memory_mb"]),
            cpus,
            dict(config.get("environment", {})),
            dict(config.get("labels", {})),
        )
        with self._cond:
            old = self.functions.get(name)
            self.functions[name] = function
        for instance in old.instances if old else []:
            instance.stop()
        return function

    def get(self, name: str) -> Function:
        with self._cond:
            if name not in self.functions:
                raise PlatformError(404, f"no function {name!r}")
            return self.functions[name]

    def delete(self, name: str) -> None:
        with self._cond:
            function = self.functions.pop(name, None)
            self._cond.notify_all()
        if function is None:
            raise PlatformError(404, f"no function {name!r}")
        for instance in function.instances:
            instance.stop()

    # -- instances --------------------------------------------------------------------------

    def provision(self, name: str, count: int) -> list[Bill]:
        """Start up to `count` instances ahead of requests (within the instance limit) and
        bill each one's init; an error only if every init failed."""
        with self._cond:
            function = self.get(name)
            room = self.max_instances - self._live()
            started = [self._start(function) for _ in range(max(0, min(count, room)))]
        bills, failure = [], None
        for instance in started:
            try:
                init_ms = self._init(instance)
            except PlatformError as exc:
                failure = exc
                continue
            instance.provisioned = True
            bills.append(self._bill(instance, 0.0, init_ms))
            self._idle(instance)
        if failure is not None and not bills:
            raise failure
        return bills

    def invoke(self, name: str, event: Any, timeout_s: float) -> dict[str, Any]:
        instance, start = self._acquire(name, time.monotonic() + timeout_s)
        init_ms = self._init(instance) if start == "cold" else 0.0
        context = {"instance": instance.id, "memory_mb": instance.memory_mb}
        context["vcpus"] = len(instance.cpus)
        began = time.monotonic()
        try:
            reply = instance.call(event, context, timeout_s)
        except (TimeoutError, EOFError, BrokenPipeError) as exc:
            instance.stop()  # a timed-out or crashed instance is not reused
            self._bill(instance, (time.monotonic() - began) * 1000.0, init_ms)
            self._idle(instance)
            if isinstance(exc, TimeoutError):
                raise PlatformError(504, f"{instance.id} ran past its {timeout_s:g} s") from None
            code = instance.process.returncode
            raise PlatformError(502, f"instance {instance.id} exited with status {code}") from None
        bill = self._bill(instance, (time.monotonic() - began) * 1000.0, init_ms)
        self._idle(instance)
        if "error" in reply:
            raise PlatformError(502, f"the handler raised:\n{reply['error']}")
        metrics = {
            k: getattr(bill, k) for k in ("duration_ms", "init_ms", "billed_ms", "memory_mb")
        }
        return {
            "result": reply["result"],
            "instance": instance.id,
            "start": start,
            "max_memory_mb": reply["max_memory_mb"],
            **metrics,
        }

    def release(self, name: str, keep: int) -> list[str]:
        """Stop the idle instances of `name` beyond the `keep` most recently used."""
        with self._cond:
            idle = [i for i in self.get(name).instances if not i.busy]
            idle.sort(key=lambda i: i.last_used, reverse=True)
            doomed = idle[max(keep, 0) :]
            for instance in doomed:
                self._drop(instance)  # under the lock: no request can take it now
        for instance in doomed:
            instance.stop()
        return [i.id for i in doomed]

    def live(self, name: str) -> list[str]:
        return [i.id for i in self.get(name).instances if i.alive]

    def close(self) -> None:
        self._closed.set()
        with self._cond:
            doomed = [i for f in self.functions.values() for i in f.instances]
            self.functions.clear()
        for instance in doomed:
            instance.stop()

    # -- inside -----------------------------------------------------------------------------

    def _live(self) -> int:
        return sum(len(f.instances) for f in self.functions.values())

    def _start(self, function: Function) -> Instance:
        cpus = sorted({next(self._next_cpu) for _ in range(function.cpus)})
        instance_id = f"i-{next(self._ids):05d}"
        instance = Instance(instance_id, function, cpus, self.logs / f"{instance_id}.log")
        function.instances.append(instance)
        self.history.append(instance)
        return instance

    def _init(self, instance: Instance) -> float:
        try:
            return instance.wait_ready()
        except PlatformError:
            self._remove(instance)
            raise

    def _acquire(self, name: str, deadline: float) -> tuple[Instance, str]:
        """An idle instance (a provisioned one not used yet first), else a new one, else
        wait for room until the deadline."""
        with self._cond:
            while True:
                function = self.get(name)
                idle = [i for i in function.instances if not i.busy and i.alive]
                if idle:
                    fresh = [i for i in idle if i.provisioned and not i.served]
                    chosen = fresh[0] if fresh else max(idle, key=lambda i: i.last_used)
                    chosen.busy = True
                    chosen.served += 1
                    return chosen, "provisioned" if chosen in fresh else "warm"
                if self._live() >= self.max_instances:
                    self._evict_idle()
                if self._live() < self.max_instances:
                    instance = self._start(function)
                    instance.served = 1
                    return instance, "cold"
                if not self._cond.wait(deadline - time.monotonic()):
                    raise PlatformError(429, f"all {self.max_instances} instances are busy")

    def _evict_idle(self) -> None:
        idle = [i for f in self.functions.values() for i in f.instances if not i.busy]
        if idle:
            victim = min(idle, key=lambda i: i.last_used)
            self.functions[victim.function].instances.remove(victim)
            victim.stop()

    def _bill(self, instance: Instance, duration_ms: float, init_ms: float) -> Bill:
        duration_ms, init_ms = round(duration_ms, 2), round(init_ms, 2)
        billed_ms = float(math.ceil(duration_ms + init_ms - 1e-9))
        bill = Bill(
            instance.function, instance.id, duration_ms, init_ms, billed_ms, instance.memory_mb
        )
        with self._cond:
            instance.requests += 1
            self.bills.append(bill)
        return bill

    def _idle(self, instance: Instance) -> None:
        with self._cond:
            instance.busy = False
            instance.last_used = time.monotonic()
            if not instance.alive:
                self._drop(instance)
            self._cond.notify_all()

    def _drop(self, instance: Instance) -> None:
        function = self.functions.get(instance.function)
        if function is not None and instance in function.instances:
            function.instances.remove(instance)

    def _remove(self, instance: Instance) -> None:
        with self._cond:
            self._drop(instance)
            self._cond.notify_all()
        instance.stop()

    def _reap(self) -> None:
        """Stop instances idle for longer than the keep-alive time."""
        while not self._closed.wait(1.0):
            now = time.monotonic()
            with self._cond:
                expired = [
                    i
                    for f in self.functions.values()
                    for i in f.instances
                    if not i.busy and now - i.last_used > self.keep_alive_s
                ]
                for instance in expired:
                    self._drop(instance)  # under the lock: no request can take it now
            for instance in expired:
                instance.stop()
