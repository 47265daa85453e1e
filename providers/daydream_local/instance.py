"""One instance of the local platform: a real process with its own runtime environment."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from daydream_core.errors import ProviderError
from daydream_core.provider import FunctionHandle
from daydream_local.envelope import Envelope
from daydream_local.protocol import read_frame, write_frame


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
        self.last_used = time.monotonic()
        config = {
            "runtime": dataclasses.asdict(function.runtime),
            "tier": dataclasses.asdict(function.tier),
            "cpus": list(envelope.cpus),
            "instance": instance_id,  # so the platform's own view (/proc) names it the same
        }
        to_child, self._to_child = os.pipe()
        self._from_child, from_child = os.pipe()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{instance_id}.log"
        self._spawned = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daydream_local.worker",
                    json.dumps(config),
                    str(to_child),
                    str(from_child),
                ],
                pass_fds=(to_child, from_child),
                env={**os.environ, **envelope.environment()},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                close_fds=True,
            )
        os.close(to_child)
        os.close(from_child)

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
        self.init_ms = (time.monotonic() - self._spawned) * 1000.0
        self.ready = True
        return self.init_ms

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
            self.process.kill()
        self.process.wait()
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._to_child = self._from_child = -1
