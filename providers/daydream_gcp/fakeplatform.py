"""The fake's instances: real processes running the uploaded source with functions-framework.

Each instance is what Cloud Run runs for a function: the built source in its own directory,
functions-framework serving ``main.daydream`` on its own port (``python -I``, so nothing
from any working directory is importable), the function's variables plus the ones Cloud Run
sets (``K_SERVICE``, ``K_REVISION``, ``PORT``, ``FUNCTION_TARGET``), its own metadata server
(the instance id comes from there, as on Cloud Run), an address-space limit of the function's
memory and CPU affinity for its vCPUs. The init is real: interpreter, framework and runtime
environment imported before the port answers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from daydream_gcp import wire

READY_TIMEOUT_S = 120.0
_LAUNCHER = """
import os, resource, sys
limit = int(sys.argv[1]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
os.sched_setaffinity(0, [int(c) for c in sys.argv[2].split(",")])
if sys.argv[3]:  # the fake's fault plan, handed to the packaged daydream before its init
    sys.path.insert(0, os.getcwd())
    from daydream_core import faults
    faults.hand_over(faults.FaultPlan.parse(sys.argv[3]))
from functions_framework._cli import _cli
_cli.main(args=sys.argv[4:], prog_name="functions-framework")
"""
# Cloud Run's answer (503) when the connection to an instance failed mid-request (it crashed,
# was killed, or ran out of memory).
LOST_MESSAGE = (
    "The request failed because either the HTTP response was malformed or connection to the "
    "instance had an error."
)
_ACCOUNT = "/computeMetadata/v1/instance/service-accounts/default"
_TOKEN = f"{_ACCOUNT}/token"
_KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class InstanceFailed(RuntimeError):
    """The instance did not start, or died while serving."""


class _MetadataHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _MetadataServer

    def do_GET(self) -> None:
        if self.headers.get("Metadata-Flavor") != "Google":
            self._answer(403, "Missing Metadata-Flavor:Google header.")
            return
        path = self.path.split("?", 1)[0]
        values = self.server.values
        if path == _TOKEN:  # the instance's service account, as ADC finds it on Cloud Run
            token = {"access_token": f"fake-{uuid.uuid4().hex}", "expires_in": 3599}
            self._answer(200, json.dumps({**token, "token_type": "Bearer"}), "application/json")
        elif path.rstrip("/") == _ACCOUNT:
            account = {"email": "default-compute@fake", "scopes": [], "aliases": ["default"]}
            self._answer(200, json.dumps(account), "application/json")
        elif path in values:
            self._answer(200, values[path])
        else:
            self._answer(404, "not found")

    def _answer(self, status: int, text: str, content_type: str = "application/text") -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _MetadataServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _MetadataHandler)
        self.values = values


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Instance:
    """One instance of one revision of a function."""

    id: str
    function: str
    revision: str
    memory_mb: int
    vcpus: float
    cpus: list[int]
    port: int = 0
    requests: int = 0
    busy: bool = False
    alive: bool = True
    init_ms: float = 0.0
    process: subprocess.Popen[bytes] | None = None
    metadata: _MetadataServer | None = None
    log: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: str = ""  # a fault plan's spec, handed to the instance by the launcher (tests only)

    def start(
        self,
        source: Path,
        environment: dict[str, str],
        project: str,
        region: str,
        platform_env: dict[str, str],
    ) -> None:
        """Spawn the instance and wait until it serves (its init)."""
        started = time.perf_counter()
        self.metadata = _MetadataServer(
            {
                "/": "ok",
                wire.INSTANCE_ID_PATH: self.id,
                "/computeMetadata/v1/project/project-id": project,
                "/computeMetadata/v1/instance/region": f"projects/0/regions/{region}",
            }
        )
        threading.Thread(target=self.metadata.serve_forever, daemon=True).start()
        self.port = free_port()
        env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
        env.update(environment)
        env.update(platform_env)
        env.update(
            {
                "PORT": str(self.port),
                "K_SERVICE": self.function,
                "K_REVISION": self.revision,
                "K_CONFIGURATION": self.function,
                "FUNCTION_TARGET": wire.ENTRY_POINT,
                wire.METADATA_HOST_VAR: f"127.0.0.1:{self.metadata.server_address[1]}",
                "GCE_METADATA_IP": f"127.0.0.1:{self.metadata.server_address[1]}",
            }
        )
        command = [sys.executable, "-I", "-c", _LAUNCHER, str(self.memory_mb)]
        command += [",".join(map(str, self.cpus)), self.faults, "--target", wire.ENTRY_POINT]
        command += ["--source", str(source / "main.py"), "--host", "127.0.0.1"]
        command += ["--port", str(self.port)]
        self.log = source.parent / f"instance-{self.id}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=source,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the framework's workers die with the instance
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.kill()
                raise InstanceFailed(f"instance {self.id} exited at start-up: {self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.02)
        else:
            self.kill()
            raise InstanceFailed(f"instance {self.id} did not serve within {READY_TIMEOUT_S} s")
        self.init_ms = (time.perf_counter() - started) * 1000.0

    def serve(self, body: bytes, timeout_s: float) -> tuple[int, bytes]:
        """Forward one request to the instance; (status, body) of its answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            connection.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            return answer.status, answer.read()
        except TimeoutError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            raise InstanceFailed(f"{LOST_MESSAGE} (instance {self.id}: {exc})") from None
        finally:
            connection.close()

    def tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace") if self.log else ""
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-3:])

    def kill(self) -> None:
        """End the instance (idempotent, from any thread)."""
        with self.lock:
            self.alive = False
            process = self.process
            metadata, self.metadata = self.metadata, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        if metadata is not None:
            metadata.shutdown()
            metadata.server_close()


def new_instance(
    function: str, revision: str, memory_mb: int, vcpus: float, index: int
) -> Instance:
    """An instance with the platform's id for it and its share of this machine's CPUs."""
    allowed = sorted(os.sched_getaffinity(0))
    count = max(1, min(len(allowed), math.ceil(vcpus)))
    cpus = [allowed[(index + i) % len(allowed)] for i in range(count)]
    # Cloud Run's instance ids are long opaque hex strings; so are these.
    return Instance(uuid.uuid4().hex + uuid.uuid4().hex, function, revision, memory_mb, vcpus, cpus)


def error_body(code: int, status: str, message: str) -> bytes:
    """A Google API error body."""
    return json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()
