"""An offline Google Cloud for tests and the conformance suite.

`FunctionsFake` is one HTTP server on 127.0.0.1 serving what the adapter uses:

- the Cloud Functions v2 REST surface, reached by the real ``FunctionServiceClient`` (REST
  transport, ``api_endpoint="http://127.0.0.1:PORT"``): create, get, list, patch and delete
  functions, ``generateUploadUrl``, and ``/v2/projects/*/locations/*/operations/*``. Requests
  arrive with ``$alt=json;enum-encoding=int``; every body is read (keep-alive connections).
  Create, update and delete answer a pending operation that completes when it is polled: the
  "build" then checks the uploaded zip (``main.py`` defining the entry point, a
  ``requirements.txt``) and unpacks it; a bad source fails the operation as Google does;
- the metadata server of the caller's machine (``GCE_METADATA_HOST``), so Application
  Default Credentials, access tokens and ID tokens come from google-auth's own code paths;
- each function's URL: a POST with a valid ID token for that URL runs on an idle instance,
  else on a new one (a real cold start, `daydream_gcp.fakeplatform`), waits a while for one
  to free up when the function is at its instance limit, then answers 429, as Cloud Run does.

`gcp-storage-emulator` serves GCS (``STORAGE_EMULATOR_HOST``); ``generateUploadUrl`` hands
out signed-URL-style PUT addresses on it. Tests inject 429s (`throttle`), 503s
(`fail_transiently`) and instance kills (`kill_instances`). The fake is the suite's
`PlatformView`: environments, billing (rounded up to 100 ms, init included) and leftovers.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from daydream_conformance.view import BillingView, EnvironmentView

from daydream_core import faults as fault_injection
from daydream_core.provider import ProviderSettings
from daydream_gcp import wire
from daydream_gcp.fakeplatform import Instance, InstanceFailed, error_body, new_instance
from daydream_gcp.fakerules import check_source, error, get, invalid, not_found, set_field
from daydream_gcp.options import parse_memory_mb

PROJECT = "daydream-fake-project"
PROJECT_NUMBER = "123456789012"
REGION = "us-central1"
PENDING_S = 10.0  # how long a request waits for an instance before a 429
BILLING_STEP_MS = 100.0
_FUNCTION_ID = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_TYPE = "type.googleapis.com/google.cloud.functions.v2."
_ACTIVE, _FAILED, _DEPLOYING, _DELETING = 1, 2, 3, 4
_FAKE_ENV_CLEARED = ("GOOGLE_APPLICATION_CREDENTIALS", "NO_GCE_CHECK", "GCE_METADATA_ROOT")


@dataclass
class _Function:
    resource: dict[str, Any]
    revision: int = 0
    source_dir: Path | None = None
    instances: list[Instance] = field(default_factory=list)
    billing: list[BillingView] = field(default_factory=list)

    @property
    def short(self) -> str:
        return str(self.resource["name"]).rsplit("/", 1)[-1]


@dataclass
class _Operation:
    name: str
    verb: str
    target: str
    apply: Any  # what completing the operation does: returns (response, error)
    result: dict[str, Any] | None = None


class FunctionsFake:
    """Cloud Functions v2, its metadata server and function URLs, on 127.0.0.1."""

    def __init__(
        self,
        workdir: Path,
        *,
        project: str = PROJECT,
        region: str = REGION,
        faults: fault_injection.FaultPlan | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        # A fault plan (tests only; DAYDREAM_FAULTS): the fake throttles that fraction of
        # requests, and each instance's launcher hands the plan to its handler (kill, oom,
        # timeout, store faults strike inside the instance).
        plan = faults if faults is not None else fault_injection.from_environment()
        self.faults = plan
        self._platform_faults = fault_injection.PlatformFaults(plan) if plan else None
        self.project = project
        self.region = region
        self.invocations = 0
        self._lock = threading.RLock()
        self._freed = threading.Condition(self._lock)
        self._functions: dict[str, _Function] = {}
        self._operations: dict[str, _Operation] = {}
        self._instances: dict[str, list[Instance]] = {}  # by function, deleted ones too
        self._billed: dict[str, list[BillingView]] = {}
        self._tokens: dict[str, str] = {}  # ID token -> audience
        self._throttle = 0
        self._unavailable = 0
        self._spawned = 0
        self._saved_env: dict[str, str | None] = {}
        self._saved_metadata: tuple[str | None, bool] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._storage: Any = None
        self.endpoint = ""
        self.storage_endpoint = ""

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> FunctionsFake:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from gcp_storage_emulator.server import create_server

        self.workdir.mkdir(parents=True, exist_ok=True)
        self._storage = create_server("127.0.0.1", 0, in_memory=True)
        self._storage.start()
        # The emulator binds port 0 in its own thread; its server knows the port it got.
        storage_port = self._storage._api._httpd.server_address[1]
        self.storage_endpoint = f"http://127.0.0.1:{storage_port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        host = self.endpoint.removeprefix("http://")
        config = tempfile.mkdtemp(prefix="gcloud-", dir=self.workdir)  # no gcloud credentials
        env = {
            "GCE_METADATA_HOST": host,
            "GCE_METADATA_IP": host,
            "STORAGE_EMULATOR_HOST": self.storage_endpoint,
            "CLOUDSDK_CONFIG": config,
        }
        for key in (*env, *_FAKE_ENV_CLEARED):
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ.pop(key, None)
        os.environ.update(env)
        # google-auth reads GCE_METADATA_HOST and NO_GCE_CHECK once, at import: point an
        # already imported copy at the fake too (and back at stop).
        from google.auth.compute_engine import _metadata

        self._saved_metadata = (_metadata._GCE_METADATA_HOST, _metadata._NO_GCE_CHECK)
        _metadata._GCE_METADATA_HOST, _metadata._NO_GCE_CHECK = host, False

    def stop(self) -> None:
        with self._lock:
            instances = [i for history in self._instances.values() for i in history]
            self._functions.clear()
        for instance in instances:
            instance.kill()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._storage is not None:
            self._storage.stop()
            self._storage = None
        if self._saved_metadata is not None:
            from google.auth.compute_engine import _metadata

            _metadata._GCE_METADATA_HOST, _metadata._NO_GCE_CHECK = self._saved_metadata
            self._saved_metadata = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    # -- what tests and the suite use ----------------------------------------------------------

    def options(self) -> dict[str, str]:
        """Provider options for a `GcpProvider` against this fake (quick warm-ups, backoff and
        operation polls; credentials come from the fake's metadata server, as on Google Cloud)."""
        return {
            "project": self.project,
            "region": self.region,
            "endpoint": self.endpoint,
            "storage_endpoint": self.storage_endpoint,
            "max_instances": "8",
            "warm_hold_ms": "300",
            "timeout_slack_s": "0.5",
            "backoff_base_s": "0.01",
            "backoff_cap_s": "0.05",
            "operation_poll_s": "0.05",
        }

    def throttle(self, count: int) -> None:
        """Answer the next `count` function requests with 429."""
        with self._lock:
            self._throttle = count

    def fail_transiently(self, count: int) -> None:
        """Answer the next `count` function requests with 503."""
        with self._lock:
            self._unavailable = count

    def kill_instances(self, function: str) -> int:
        """Kill every live instance of `function` (busy ones lose their request: 503)."""
        with self._lock:
            state = self._functions.get(function)
            victims = [i for i in (state.instances if state else []) if i.alive]
        for instance in victims:
            instance.kill()
        return len(victims)

    def environments(self, function: str) -> list[EnvironmentView]:
        with self._lock:
            instances = list(self._instances.get(function, []))
        return [
            EnvironmentView(
                i.id, function, i.memory_mb, i.vcpus, i.requests, i.alive and _running(i)
            )
            for i in instances
        ]

    def billing(self, function: str) -> list[BillingView]:
        with self._lock:
            return list(self._billed.get(function, []))

    def leftovers(self) -> list[str]:
        """Functions, and every bucket and object in GCS (the platform's own upload bucket is
        not daydream's, but what daydream uploaded to it is)."""
        with self._lock:
            found = [f"function {name}" for name in sorted(self._functions)]
        client = self.storage_client()
        for bucket in client.list_buckets():
            if bucket.name != self.upload_bucket:
                found.append(f"bucket {bucket.name}")
            found += [f"object gs://{bucket.name}/{b.name}" for b in client.list_blobs(bucket)]
        return found

    def storage_client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage  # type: ignore[attr-defined]

        return storage.Client(
            project=self.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.storage_endpoint},
        )

    @property
    def upload_bucket(self) -> str:
        return f"gcf-v2-uploads-{PROJECT_NUMBER}-{self.region}"

    # -- the admin API -------------------------------------------------------------------------

    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def generate_upload_url(self) -> dict[str, Any]:
        client = self.storage_client()
        if client.lookup_bucket(self.upload_bucket) is None:
            client.create_bucket(self.upload_bucket)
        name = f"{uuid.uuid4()}.zip"
        url = f"{self.storage_endpoint}/{self.upload_bucket}/{name}"
        query = f"GoogleAccessId=service-{PROJECT_NUMBER}&Expires={int(time.time()) + 900}"
        return {
            "uploadUrl": f"{url}?{query}&Signature=fake",
            "storageSource": {"bucket": self.upload_bucket, "object": name},
        }

    def create(self, function_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not _FUNCTION_ID.match(function_id):
            return 400, error(400, "INVALID_ARGUMENT", f"Invalid function id {function_id!r}")
        problem = invalid(body)
        if problem:
            return 400, error(400, "INVALID_ARGUMENT", problem)
        name = f"{self.parent()}/functions/{function_id}"
        with self._lock:
            if function_id in self._functions:
                return 409, error(409, "ALREADY_EXISTS", f"Function {name} already exists.")
            resource = {**body, "name": name, "state": _DEPLOYING, "environment": 2}
            # What the platform saw of a name outlives the function (the view keeps history).
            self._functions[function_id] = _Function(
                resource,
                instances=self._instances.setdefault(function_id, []),
                billing=self._billed.setdefault(function_id, []),
            )
        return 200, self._operation("create", name, lambda: self._build(function_id, body))

    def update(
        self, function_id: str, body: dict[str, Any], mask: list[str]
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            state = self._functions.get(function_id)
            if state is None:
                return 404, not_found(f"{self.parent()}/functions/{function_id}")
            merged = json.loads(json.dumps(state.resource))
        for path in mask:
            set_field(merged, path, get(body, path))
        problem = invalid(merged)
        if problem:
            return 400, error(400, "INVALID_ARGUMENT", problem)
        name = str(state.resource["name"])
        return 200, self._operation("update", name, lambda: self._build(function_id, merged))

    def delete(self, function_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            state = self._functions.get(function_id)
            if state is None:
                return 404, not_found(f"{self.parent()}/functions/{function_id}")
            state.resource["state"] = _DELETING
        name = str(state.resource["name"])
        return 200, self._operation("delete", name, lambda: self._remove(function_id))

    def get(self, function_id: str) -> dict[str, Any] | None:
        with self._lock:
            state = self._functions.get(function_id)
            return json.loads(json.dumps(state.resource)) if state else None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(json.dumps(f.resource)) for _, f in sorted(self._functions.items())]

    def poll(self, name: str) -> dict[str, Any] | None:
        """The operation, completed on its first poll."""
        with self._lock:
            operation = self._operations.get(name)
        if operation is None:
            return None
        with self._lock:
            if operation.result is None:
                response, error = operation.apply()
                done: dict[str, Any] = {"name": name, "done": True, "metadata": _meta(operation)}
                if error is not None:
                    done["error"] = error
                else:
                    done["response"] = response
                operation.result = done
            return operation.result

    def _operation(self, verb: str, target: str, apply: Any) -> dict[str, Any]:
        name = f"{self.parent()}/operations/operation-{uuid.uuid4().hex[:20]}"
        operation = _Operation(name, verb, target, apply)
        with self._lock:
            self._operations[name] = operation
        return {"name": name, "done": False, "metadata": _meta(operation)}

    def _build(self, function_id: str, body: dict[str, Any]) -> tuple[Any, Any]:
        """Check and unpack the source; the function becomes ACTIVE, or FAILED with why."""
        state = self._functions.get(function_id)
        if state is None:
            return None, {"code": 5, "message": f"function {function_id} was deleted"}
        problem, files = self._fetch_source(body)
        if problem is None:
            problem = check_source(files, str(body["buildConfig"]["entryPoint"]))
        if problem is not None:
            state.resource.update(
                state=_FAILED, stateMessages=[{"severity": 1, "type": "Build", "message": problem}]
            )
            return None, {"code": 3, "message": f"Build failed: {problem}"}
        state.revision += 1
        source_dir = self.workdir / function_id / f"revision-{state.revision}"
        with zipfile.ZipFile(io.BytesIO(files)) as archive:
            archive.extractall(source_dir)
        for old in [i for i in state.instances if i.alive]:  # traffic moves to the new revision
            old.kill()
        state.source_dir = source_dir
        uri = f"{self.endpoint}/fn/{self.project}/{self.region}/{function_id}"
        resource = {**body, "name": state.resource["name"], "environment": 2}
        resource["state"] = _ACTIVE
        resource["stateMessages"] = []
        resource["url"] = uri
        resource["updateTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        service = dict(resource.get("serviceConfig", {}))
        service["uri"] = uri
        service["service"] = f"{self.parent()}/services/{function_id}"
        service["revision"] = f"{function_id}-{state.revision:05d}"
        resource["serviceConfig"] = service
        state.resource = resource
        return {"@type": f"{_TYPE}Function", **resource}, None

    def _fetch_source(self, body: dict[str, Any]) -> tuple[str | None, bytes]:
        source = body.get("buildConfig", {}).get("source", {}).get("storageSource", {})
        bucket, name = source.get("bucket", ""), source.get("object", "")
        blob = self.storage_client().bucket(bucket).blob(name)
        try:
            return None, bytes(blob.download_as_bytes())
        except Exception:
            return f"the source gs://{bucket}/{name} does not exist", b""

    def _remove(self, function_id: str) -> tuple[Any, Any]:
        with self._lock:
            state = self._functions.pop(function_id, None)
        for instance in state.instances if state else []:
            instance.kill()
        return {"@type": "type.googleapis.com/google.protobuf.Empty"}, None

    # -- the function URL ----------------------------------------------------------------------

    def identity_token(self, audience: str) -> str:
        """A JWT-shaped ID token for `audience` (google-auth reads its expiry unverified)."""
        now = int(time.time())
        claims = {"aud": audience, "iss": "https://accounts.google.com", "iat": now}
        claims.update(exp=now + 3600, sub="fake-service-account", azp="fake")
        parts = [{"alg": "RS256", "typ": "JWT"}, claims]
        encoded = [base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=") for p in parts]
        token = b".".join([*encoded, base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=")])
        with self._lock:
            self._tokens[token.decode()] = audience
        return token.decode()

    def invoke(self, function_id: str, token: str | None, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.invocations += 1
            state = self._functions.get(function_id)
            uri = f"{self.endpoint}/fn/{self.project}/{self.region}/{function_id}"
            if token is None or self._tokens.get(token) != uri:
                return 401 if token is None else 403, error_body(401, "UNAUTHENTICATED", "")
            if state is None or state.resource.get("state") != _ACTIVE:
                return 404, b"<html><body>Error: Page not found</body></html>"
            if self._throttle > 0 or (
                self._platform_faults is not None and self._platform_faults.throttles(body)
            ):
                self._throttle = max(0, self._throttle - 1)
                return 429, error_body(429, "RESOURCE_EXHAUSTED", "Rate exceeded.")
            if self._unavailable > 0:
                self._unavailable -= 1
                return 503, error_body(503, "UNAVAILABLE", "Service Unavailable")
        if len(body) > wire.MAX_REQUEST_BYTES:
            return 413, error_body(413, "FAILED_PRECONDITION", "Request too large")
        instance, cold = self._acquire(state)
        if instance is None:
            return 429, error_body(429, "RESOURCE_EXHAUSTED", "no available instance")
        service = state.resource["serviceConfig"]
        started = time.perf_counter()
        try:
            if cold:
                assert state.source_dir is not None
                instance.start(
                    state.source_dir,
                    dict(service.get("environmentVariables", {})),
                    self.project,
                    self.region,
                    # The fake's GCS is the emulator, which google-cloud-storage finds here.
                    {"STORAGE_EMULATOR_HOST": self.storage_endpoint},
                )
            status, answer = instance.serve(body, float(service.get("timeoutSeconds", 60)))
        except TimeoutError:
            self._release(state, instance, started, cold, b"")
            return 504, b"upstream request timeout"
        except InstanceFailed as exc:
            instance.kill()
            self._release(state, instance, started, cold, b"")
            return 503, error_body(503, "UNAVAILABLE", str(exc))
        self._release(state, instance, started, cold, answer)
        return status, answer

    def _acquire(self, state: _Function) -> tuple[Instance | None, bool]:
        """An idle instance of the current revision, else a new one, else (after waiting
        for one to free up) None."""
        service = state.resource["serviceConfig"]
        limit = int(service.get("maxInstanceCount", 100))
        revision = str(service.get("revision", ""))
        deadline = time.monotonic() + PENDING_S
        with self._freed:
            while True:
                for instance in state.instances:
                    if instance.alive and not instance.busy and instance.revision == revision:
                        instance.busy = True
                        instance.requests += 1
                        return instance, False
                if sum(1 for i in state.instances if i.alive) < limit:
                    memory = parse_memory_mb(str(service.get("availableMemory", "256Mi")))
                    cpu = float(service.get("availableCpu", 1))
                    instance = new_instance(state.short, revision, memory, cpu, self._spawned)
                    instance.faults = self.faults.spec if self.faults else ""
                    self._spawned += 1
                    instance.busy = True
                    instance.requests += 1
                    state.instances.append(instance)
                    return instance, True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None, False
                self._freed.wait(remaining)

    def _release(
        self, state: _Function, instance: Instance, started: float, cold: bool, answer: bytes
    ) -> None:
        """Free the instance and bill the request: the time the instance measured for itself
        where it answered (its init on the request that ran it, its handler's run), else the
        time the platform waited; rounded up to 100 ms, init included."""
        duration_ms = (time.perf_counter() - started) * 1000.0
        init_ms = instance.init_ms if cold else 0.0
        duration_ms = max(0.0, duration_ms - init_ms)
        measured = _measured(answer)
        if measured is not None:
            duration_ms, first_init_ms = measured
            init_ms = first_init_ms if first_init_ms is not None else 0.0
        billed = math.ceil((duration_ms + init_ms) / BILLING_STEP_MS - 1e-9) * BILLING_STEP_MS
        with self._freed:
            instance.busy = False
            state.billing.append(
                BillingView(
                    state.short, instance.id, duration_ms, init_ms, billed, instance.memory_mb
                )
            )
            self._freed.notify_all()


def _measured(answer: bytes) -> tuple[float, float | None] | None:
    """(run time, init time if this request ran it) as the instance measured them."""
    try:
        envelope = json.loads(answer) if answer else None
    except ValueError:
        return None
    if not isinstance(envelope, dict) or "execution_ms" not in envelope:
        return None
    init = float(envelope.get("init_ms", 0.0)) if envelope.get("first") else None
    return float(envelope["execution_ms"]), init


def _running(instance: Instance) -> bool:
    return instance.process is None or instance.process.poll() is None


def _meta(operation: _Operation) -> dict[str, Any]:
    return {
        "@type": f"{_TYPE}OperationMetadata",
        "target": operation.target,
        "verb": operation.verb,
        "apiVersion": "v2",
    }


def _handler(fake: FunctionsFake) -> type[BaseHTTPRequestHandler]:
    from daydream_gcp.fakeapi import FakeRequestHandler

    return type("Handler", (FakeRequestHandler,), {"fake": fake})


@contextmanager
def conformance_environment(workdir: Path) -> Iterator[Any]:
    """The conformance suite's environment for ``--daydream-provider gcp``: the fake on
    127.0.0.1, the real client reaching it through ``-o endpoint``."""
    from daydream_conformance.environment import ConformanceEnvironment

    with FunctionsFake(workdir / "fake") as fake:
        yield ConformanceEnvironment(
            settings=ProviderSettings(state_dir=workdir, options=fake.options()),
            view=fake,
            fake=fake,
        )


def fake_provider(fake: FunctionsFake, state_dir: Path, **options: str) -> Any:
    """A `GcpProvider` against `fake` (its options, overridden by `options`)."""
    from daydream_gcp.provider import GcpProvider

    settings = ProviderSettings(state_dir=state_dir, options={**fake.options(), **options})
    return GcpProvider(settings)
