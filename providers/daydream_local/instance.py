"""One instance of the local platform: a real process with its own runtime environment."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from daydream_core.errors import ProviderError
from daydream_core.provider import FunctionHandle
from daydream_local import lifeline, priority
from daydream_local.envelope import Envelope
from daydream_local.protocol import read_frame, write_frame

# An instance is a process group of its own, killed as one; not a session of its own, which
# Linux's autogroup scheduling gives a CPU share of its own whatever the priority inside it (a
# hot start's SCHED_IDLE init took a third of the CPU from two running components), so every
# instance shares the controller's session. Python 3.10 has no `process_group`, and
# `preexec_fn` is not safe beside threads: there an instance keeps a session of its own.
_OWN_GROUP: dict[str, Any] = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
)


class Instance:
    """A worker process. Its life: spawned (hot or cold) → ready → busy/idle … → killed."""

    def __init__(
        self,
        instance_id: str,
        function: FunctionHandle,
        envelope: Envelope,
        *,
        hot: bool,
        log_dir: Path,
        store_uri: str = "",
        key: str = "",
        faults: str = "",
    ) -> None:
        self.id = instance_id
        self.function = function
        self.envelope = envelope
        self.hot = hot
        self.busy = True  # reserved by whoever spawned it until it is ready and released
        self.ready = False
        self.claimed = False  # an invocation took this hot start before its init finished
        self.served = 0
        self.init_ms = 0.0
        self.held_back_ms = 0.0  # of its init, runnable but waiting for a CPU (not billed)
        self.last_used = time.monotonic()
        # The configuration travels over the pipe, not argv or the environment: it holds the
        # function's payload key, which other users' `ps` must not see.
        config = {
            "runtime": dataclasses.asdict(function.runtime),
            "tier": dataclasses.asdict(function.tier),
            "cpus": list(envelope.cpus),
            "instance": instance_id,  # so the platform's own view (/proc) names it the same
            "store": store_uri,
            "key": key,
            "faults": faults,  # a fault plan's spec, tests only (daydream_core.faults)
            "controller": os.getpid(),
        }
        idle_init = hot and priority.can_restore()  # see daydream_local.priority
        # Its held-back time is taken once: when a component takes it, or when its init ends.
        # What the instance is, without secrets, on its command line: the platform's own view
        # (`daydream_local.testing.ProcessView`, like `ps`) names it from there.
        self._identity = json.dumps({k: config[k] for k in ("runtime", "tier", "instance")})
        to_child, self._to_child = os.pipe()
        self._from_child, from_child = os.pipe()
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_path = log_dir / f"{instance_id}.log"
        self._spawned = time.monotonic()
        try:
            self.process = lifeline.spawner().run(
                lambda: self._popen(envelope, to_child, from_child)
            )
        finally:
            os.close(to_child)
            os.close(from_child)
        if idle_init:
            priority.lower(self.process.pid)  # before its configuration: see `lower`
        write_frame(self._to_child, config)

    def _popen(self, envelope: Envelope, to_child: int, from_child: int) -> subprocess.Popen[bytes]:
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            return subprocess.Popen(
                lifeline.command(str(to_child), str(from_child), self._identity),
                pass_fds=(to_child, from_child),
                env={**os.environ, **envelope.environment()},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                close_fds=True,
                **_OWN_GROUP,
            )
        finally:
            os.close(log)

    def wait_ready(self, timeout: float) -> float:
        """Block until the runtime environment is loaded; return the cold-start time in ms."""
        try:
            message = read_frame(self._from_child, time.monotonic() + timeout)
        except (TimeoutError, EOFError):
            self.kill()
            raise ProviderError(
                f"instance {self.id} did not initialise: {self.log_tail()}"
            ) from None
        if not message.get("ready"):
            self.kill()
            raise ProviderError(
                f"instance {self.id} failed to load its runtime environment:\n"
                + message.get("traceback", "")
            )
        # When the instance said it was ready (hot starts are read one after another).
        ready_at = min(time.monotonic(), float(message.get("ready_at", time.monotonic())))
        self.init_ms = max(0.0, ready_at - self._spawned) * 1000.0
        self.held_back_ms = priority.held_back_ms(self.process.pid)  # all of its init
        self.ready = True
        return self.init_ms

    @property
    def billed_init_ms(self) -> float:
        """The init as billed: without the time it waited for a CPU. On the platform it models
        an instance initialises on its own CPU share; here instances share the machine's
        cores, and the wait for one (at idle priority for a hot start, at normal priority for
        a cold start beside running components) is contention, not the function's work. One
        rule for every start, so that hot and cold starts are billed alike."""
        return max(0.0, self.init_ms - self.held_back_ms)

    def promote(self) -> None:
        """A component took this hot start: its init (if still running) and its work run at
        normal priority from now on."""
        if self.hot and self.served == 0:
            priority.restore(self.process.pid)

    def call(self, payload: Any, timeout: float) -> Any:
        """Send one request and wait for its envelope (TimeoutError, EOFError on failure)."""
        write_frame(self._to_child, payload)
        return read_frame(self._from_child, time.monotonic() + timeout)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)  # the instance and what it started
            self.process.kill()
        self.process.wait()
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._to_child = self._from_child = -1
