"""SnapStart and provisioned concurrency for the Lambda fake (moto models neither).

moto keeps versions and aliases but reports every function as ``SnapStart: ApplyOn=None`` and
has no provisioned-concurrency API. `VersionsFake` adds both on botocore's event hooks, as
`LambdaFake` adds Invoke:

- the ``SnapStart`` setting of ``CreateFunction`` / ``UpdateFunctionConfiguration`` is kept and
  reported back in ``GetFunction``, ``GetFunctionConfiguration`` and ``PublishVersion``;
- publishing a version of a SnapStart function takes its snapshot: the init runs once then,
  and each new environment of that version *restores* instead (``Restore Duration`` in its
  REPORT, no ``Init Duration``);
- ``Put``/``Get``/``DeleteProvisionedConcurrencyConfig`` are answered here (``IN_PROGRESS``
  on the first read, then ``READY``); once ready, the version holds that many initialised
  environments, so invocations land on them without an init.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.awsrequest import AWSResponse

_PROVISIONED = (
    "PutProvisionedConcurrencyConfig",
    "GetProvisionedConcurrencyConfig",
    "DeleteProvisionedConcurrencyConfig",
)


@dataclass
class Snapshot:
    """A published SnapStart version's snapshot: when it was taken and its init's time."""

    init_ms: float
    taken_at: float = field(default_factory=time.time)


@dataclass
class Provisioned:
    requested: int
    polls: int = 0  # reads of its status so far

    @property
    def status(self) -> str:
        return "READY" if self.polls > 0 else "IN_PROGRESS"


class VersionsFake:
    """SnapStart settings and snapshots, and provisioned concurrency, per function version."""

    def __init__(
        self,
        resolve: Callable[[str, str | None], Any],
        take_snapshot: Callable[[Any], float],
        provision: Callable[[Any, int], None],
        respond: Callable[[Any, int, Mapping[str, str], bytes], AWSResponse],
    ) -> None:
        self._resolve = resolve  # (name, qualifier) -> moto's function version or None
        self._take_snapshot = take_snapshot  # runs one init; its time in ms
        self._provision = provision  # (function version, count): hold that many environments
        self._respond = respond
        self._lock = threading.Lock()
        self.snapstart: dict[str, str] = {}  # function name -> ApplyOn
        self.snapshots: dict[str, Snapshot] = {}  # "name:version" -> its snapshot
        self.provisioned: dict[str, Provisioned] = {}  # "name:version" -> requested
        self.handlers: list[tuple[str, Callable[..., Any]]] = [
            ("before-parameter-build.lambda.CreateFunction", self._remember),
            ("before-parameter-build.lambda.UpdateFunctionConfiguration", self._remember),
            ("after-call.lambda.GetFunction", self._report),
            ("after-call.lambda.GetFunctionConfiguration", self._report),
            ("after-call.lambda.PublishVersion", self._published),
            *((f"before-send.lambda.{op}", self._provisioned_call) for op in _PROVISIONED),
        ]

    # -- SnapStart -----------------------------------------------------------------------------

    def _remember(self, params: Mapping[str, Any], **_: Any) -> None:
        setting = params.get("SnapStart")
        if setting is not None:
            with self._lock:
                self.snapstart[str(params["FunctionName"])] = str(setting.get("ApplyOn", "None"))

    def _applies(self, name: str, version: str) -> bool:
        return version != "$LATEST" and self.snapstart.get(name) == "PublishedVersions"

    def _report(self, parsed: dict[str, Any], **_: Any) -> None:
        config = parsed.get("Configuration", parsed)
        name, version = config.get("FunctionName"), str(config.get("Version", "$LATEST"))
        if not name:
            return
        apply_on = self.snapstart.get(str(name), "None")
        status = "On" if self._applies(str(name), version) else "Off"
        config["SnapStart"] = {"ApplyOn": apply_on, "OptimizationStatus": status}

    def _published(self, parsed: dict[str, Any], **_: Any) -> None:
        self._report(parsed)
        name, version = str(parsed.get("FunctionName", "")), str(parsed.get("Version", ""))
        key = f"{name}:{version}"
        if not self._applies(name, version) or key in self.snapshots:
            return
        function = self._resolve(name, version)
        if function is not None:
            snapshot = Snapshot(self._take_snapshot(function))
            with self._lock:
                self.snapshots[key] = snapshot

    def snapshot(self, function: Any) -> Snapshot | None:
        """The snapshot new environments of this function version restore, if any."""
        with self._lock:
            return self.snapshots.get(f"{function.function_name}:{function.version}")

    # -- provisioned concurrency ---------------------------------------------------------------

    def _provisioned_call(self, request: Any, **_: Any) -> AWSResponse:
        parts = urlsplit(request.url)
        name = unquote(parts.path.split("/functions/", 1)[1].split("/", 1)[0])
        qualifier = parse_qs(parts.query).get("Qualifier", [None])[0]
        function = self._resolve(name, qualifier)
        if function is None or qualifier in (None, "$LATEST"):
            return self._error(request, 404, "ResourceNotFoundException", f"{name}:{qualifier}")
        key = f"{function.function_name}:{function.version}"
        with self._lock:
            held = self.provisioned.get(key)
        if request.method == "PUT":
            body = request.body.read() if hasattr(request.body, "read") else request.body
            count = int(json.loads(body or b"{}")["ProvisionedConcurrentExecutions"])
            with self._lock:
                self.provisioned[key] = Provisioned(count)
            return self._answer(request, 202, Provisioned(count))
        if held is None:
            return self._error(
                request, 404, "ProvisionedConcurrencyConfigNotFoundException", f"no config {key}"
            )
        if request.method == "DELETE":
            with self._lock:
                del self.provisioned[key]
            self._provision(function, 0)
            return self._respond(request, 204, {}, b"")
        held.polls += 1
        if held.status == "READY" and held.polls == 1:
            self._provision(function, held.requested)
        return self._answer(request, 200, held)

    def _answer(self, request: Any, status: int, held: Provisioned) -> AWSResponse:
        ready = held.requested if held.status == "READY" else 0
        body = {
            "RequestedProvisionedConcurrentExecutions": held.requested,
            "AvailableProvisionedConcurrentExecutions": ready,
            "AllocatedProvisionedConcurrentExecutions": ready,
            "Status": held.status,
            "LastModified": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime()),
        }
        headers = {"Content-Type": "application/json"}
        return self._respond(request, status, headers, json.dumps(body).encode())

    def _error(self, request: Any, status: int, code: str, message: str) -> AWSResponse:
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
        body = json.dumps({"Type": "User", "message": message}).encode()
        return self._respond(request, status, headers, body)
