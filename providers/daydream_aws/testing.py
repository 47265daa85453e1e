"""An offline AWS for tests and the conformance suite: moto, plus Lambda's execution model.

moto (Lambda's docker use off) serves STS, IAM, S3 and Lambda's control plane, in process
(`mock_aws`) or as a server on 127.0.0.1 (`ThreadedMotoServer`, reached through
``AWS_ENDPOINT_URL`` like any compatible endpoint). moto's Invoke only echoes its payload: no
REPORT log tail, no throttling, no cold or warm starts. So `LambdaFake` answers Invoke itself,
from botocore's ``before-send.lambda.Invoke`` event, before any bytes leave the process:

- it finds the function in moto (a missing one is a 404 ``ResourceNotFoundException``) and
  checks that its zip and layers really hold the handler and the workflow module;
- it keeps execution environments per function: an idle one serves the next invocation, else a
  new one runs the init (the real `ExecutionEnvironment` of `daydream_aws.handler`, built from
  the function's own environment variables); each runs one invocation at a time, in a thread;
- it answers in Lambda's wire format: the result, or ``X-Amz-Function-Error: Unhandled`` with
  the runtime's error JSON; the base64 log tail in ``X-Amz-Log-Result`` ending in the REPORT
  line (Duration, Billed Duration, Memory Size, Max Memory Used, Init Duration); 429
  ``TooManyRequestsException`` past the concurrency limit or when `throttle` asks; 413 for a
  request over 6 MB; ``Function.ResponseSizeTooLarge`` for a result over 6 MB;
- it enforces the function's own timeout (``Sandbox.Timedout``; the environment is then
  discarded) and the client's read timeout (botocore's ``ReadTimeoutError``, raised where the
  HTTP layer would raise it).
- under a fault plan (``faults=``, or ``DAYDREAM_FAULTS``; see `daydream_core.faults`; thread
  isolation) it throttles that fraction of requests with 429 and hands the plan to each
  environment's runtime, whose injected kill it answers as Lambda answers a runtime killed by a
  signal (``Runtime.ExitError``), the environment discarded.

botocore therefore parses every answer, and the adapter's retries run, as against AWS. Use it as
a context manager; it sets fake credentials and a region for its lifetime::

    with LambdaFake() as fake:
        provider = AwsProvider(ProviderSettings(state_dir=tmp, options=fake.options()))

Third-party provider authors: this is one way to fake a cloud below its SDK; see
docs/conformance.md.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import math
import os
import threading
import time
import traceback
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore import handlers as botocore_handlers
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from daydream_conformance.view import BillingView, EnvironmentView

from daydream_aws import wire
from daydream_aws.options import vcpus as lambda_vcpus
from daydream_aws.report import Report
from daydream_core import faults as fault_injection
from daydream_core.provider import ProviderSettings
from daydream_core.runtime import max_rss_mb

DEFAULT_REGION = "us-east-1"
ROLE_NAME = "daydream-fake-execution-role"
LOG_TAIL_BYTES = 4096
INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit for on-demand functions
_ASSUME_ROLE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_CLEARED_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_IAM",
)


class _RawBody(io.BytesIO):
    """What botocore reads a response body from (urllib3's `stream` and `read`)."""

    def stream(self, amt: int = 65536, decode_content: bool | None = None) -> Iterator[bytes]:
        while chunk := self.read(amt):
            yield chunk


class _Context:
    """The Lambda context object handed to a handler."""

    def __init__(
        self, function: Any, request_id: str, deadline: float, instance: _Instance
    ) -> None:
        self.function_name = function.function_name
        self.function_version = str(function.version)
        self.invoked_function_arn = function.function_arn
        self.memory_limit_in_mb = str(instance.memory_mb)  # as configured when it started
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function.function_name}"
        self.log_stream_name = instance.id  # one log stream per execution environment
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _log_stream_name() -> str:
    """A new environment's log stream, named as Lambda names them."""
    return f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"


@dataclass
class _Instance:
    """One simulated execution environment."""

    memory_mb: int = 0  # the function's memory size when the environment started
    id: str = field(default_factory=_log_stream_name)
    handler: Callable[[Any, Any], Any] | None = None
    init_ms: float = 0.0
    requests: int = 0
    alive: bool = True
    provisioned: bool = False  # held by provisioned concurrency, initialised in advance


@dataclass
class _FunctionState:
    revision: tuple[Any, ...]
    idle: list[_Instance] = field(default_factory=list)
    busy: int = 0
    created: int = 0
    package_error: str | None = None


@dataclass
class _Run:
    """One invocation running in its instance's thread."""

    done: threading.Event = field(default_factory=threading.Event)
    initialised: threading.Event = field(default_factory=threading.Event)
    handler_started: float = 0.0  # time.monotonic() when the handler was called
    value: Any = None
    error: BaseException | None = None
    error_trace: list[str] = field(default_factory=list)
    init_error: bool = False
    cold: bool = False
    init_ms: float = 0.0
    duration_ms: float = 0.0
    abandoned: bool = False
    restored: bool = False  # the environment restored a SnapStart snapshot instead of an init
    instance: _Instance | None = None


class LambdaFake:
    """moto plus a Lambda execution model on botocore's send path (see the module docs)."""

    def __init__(
        self,
        *,
        server: bool = False,
        region: str = DEFAULT_REGION,
        max_concurrency: int = 1000,
        isolation: str = "thread",
        faults: fault_injection.FaultPlan | None = None,
    ) -> None:
        if isolation not in ("thread", "serial", "process"):
            raise ValueError(f"isolation must be thread, serial or process, not {isolation!r}")
        if isolation == "process" and not server:
            raise ValueError("process isolation needs server=True (instances reach moto by HTTP)")
        self.server = server
        self.isolation = isolation
        self._processes: list[_ProcessHandler] = []
        self._serial = threading.Lock()
        self.region = region
        self.max_concurrency = max_concurrency
        self.endpoint_url: str | None = None
        self.role_arn = ""
        self.invocations = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._functions: dict[str, _FunctionState] = {}
        # The platform's own view (daydream_conformance.view): every environment a function
        # has had, with the revision it ran, and every request as billed from its REPORT.
        self._environments: dict[str, list[tuple[tuple[Any, ...], _Instance]]] = {}
        self._billing: dict[str, list[BillingView]] = {}
        self._throttle = 0
        self._transient = 0
        self.faults = faults if faults is not None else fault_injection.from_environment()
        self._platform_faults = fault_injection.PlatformFaults(self.faults) if self.faults else None
        self._saved_env: dict[str, str | None] = {}
        self._mock: Any = None
        self._server: Any = None
        self._handlers: list[tuple[Any, ...]] = [
            ("before-call.lambda.Invoke", self._before_call),
            ("before-send.lambda.Invoke", self._before_send, botocore_handlers.REGISTER_FIRST),
        ]
        self._handlers += self._versions_handlers()

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> LambdaFake:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from moto.core.models import DEFAULT_ACCOUNT_ID

        self.account = DEFAULT_ACCOUNT_ID
        if self.server:
            from moto.server import ThreadedMotoServer

            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._server.start()
            host, port = self._server.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
            self._moto_api("reset", {})
            self._moto_api("config", {"lambda": {"use_docker": False}})
        else:
            from moto import mock_aws

            self._mock = mock_aws(config={"lambda": {"use_docker": False}})
            self._mock.start()
        env = dict(_FAKE_ENV, AWS_DEFAULT_REGION=self.region, AWS_REGION=self.region)
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        for key in (*env, *_CLEARED_ENV):
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ.pop(key, None)
        os.environ.update(env)
        botocore_handlers.BUILTIN_HANDLERS.extend(self._handlers)
        import boto3

        iam = boto3.session.Session().client("iam")
        try:
            self.role_arn = iam.create_role(
                RoleName=ROLE_NAME, AssumeRolePolicyDocument=_ASSUME_ROLE
            )["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            self.role_arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
        self._start_registry()

    # -- the image registry (ECR's OCI API) ----------------------------------------------------

    def _start_registry(self) -> None:
        from daydream_aws.testing_registry import RegistryFake

        self.registry = RegistryFake(self.account, self.region)
        self.registry.start()

    def _stop_registry(self) -> None:
        registry = getattr(self, "registry", None)
        if registry is not None:
            registry.stop()

    def _image_leftovers(self, session: Any) -> list[str]:
        from daydream_aws.testing_registry import BASE_REPOSITORY

        ecr = session.client("ecr")
        return [
            f"repository {r['repositoryName']}"
            for r in ecr.describe_repositories().get("repositories", [])
            if r["repositoryName"] != BASE_REPOSITORY
        ]

    def _check_image(self, function: Any) -> str | None:
        """Why Lambda could not run the image's handler and workflow module, if so."""
        uri = str(function.code.get("ImageUri", ""))
        path, _, digest = uri.partition("/")[2].partition("@")
        if path.partition(":")[0] not in self.registry.repositories():
            return None  # an image daydream did not push (-o image_uri): taken on trust
        files = self.registry.image_files(path, digest) if digest else set()
        if not files:
            return f"Image {uri} not found in the registry"
        runtime = function.environment_vars.get(wire.RUNTIME_VAR)
        wanted = [wire.HANDLER.rsplit(".", 1)[0]]
        if runtime:
            wanted.append(json.loads(runtime)["module"])
        for module in wanted:
            path = "var/task/" + module.replace(".", "/")
            if f"{path}.py" not in files and f"{path}/__init__.py" not in files:
                return f"Unable to import module '{module}': No module named '{module}'"
        return None

    def stop(self) -> None:
        self._stop_registry()
        for spec in self._handlers:
            if spec in botocore_handlers.BUILTIN_HANDLERS:
                botocore_handlers.BUILTIN_HANDLERS.remove(spec)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        if self._server is not None:
            self._moto_api("reset", {})
            self._server.stop()
            self._server = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        with self._lock:
            self._functions.clear()
            self._environments.clear()
            self._billing.clear()
            processes, self._processes = self._processes, []
        for process in processes:
            process.close()

    def _moto_api(self, path: str, body: Mapping[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    # -- what tests and the suite use ----------------------------------------------------------

    def options(self) -> dict[str, str]:
        """Provider options for an `AwsProvider` against this fake (quick warm-ups and backoff;
        credentials, region and endpoint come from the environment, as with AWS)."""
        return {
            "role": self.role_arn,
            "install_requirements": "false",
            "warm_hold_ms": "300",
            "timeout_slack_s": "0.5",
            "backoff_base_s": "0.01",
            "backoff_cap_s": "0.05",
            "registry_url": self.registry.url,
        }

    def throttle(self, count: int) -> None:
        """Answer the next `count` invocations with 429 TooManyRequestsException."""
        with self._lock:
            self._throttle = count

    def fail_transiently(self, count: int) -> None:
        """Answer the next `count` invocations with 500 ServiceException."""
        with self._lock:
            self._transient = count

    def environments_created(self, function: str) -> int:
        """How many execution environments `function` has had (each one ran an init)."""
        with self._lock:
            states = [s for k, s in self._functions.items() if k.split(":")[0] == function]
            return sum(state.created for state in states)

    def leftovers(self) -> list[str]:
        """Everything on the fake besides its own IAM role: functions, layers, buckets."""
        import boto3

        session = boto3.session.Session()
        lam = session.client("lambda")
        found = [
            f"function {f['FunctionName']}"
            for page in lam.get_paginator("list_functions").paginate()
            for f in page["Functions"]
        ]
        for page in lam.get_paginator("list_layers").paginate():
            for layer in page["Layers"]:
                versions = lam.list_layer_versions(LayerName=layer["LayerName"])
                found += [f"layer {v['LayerVersionArn']}" for v in versions["LayerVersions"]]
        s3 = session.client("s3")
        for bucket in s3.list_buckets().get("Buckets", []):
            found.append(f"bucket {bucket['Name']}")
            objects = s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", [])
            found += [f"object s3://{bucket['Name']}/{o['Key']}" for o in objects]
        found += self._image_leftovers(session)
        return found

    # -- the platform's own view (daydream_conformance.view.PlatformView) ----------------------

    def environments(self, function: str) -> list[EnvironmentView]:
        """Every execution environment `function` has had, by its log stream name, with the
        memory it was started with; those of a deleted or changed function have ended."""
        current = self._function(function)
        with self._lock:
            revision = self._revision(current) if current is not None else None
            return [
                EnvironmentView(
                    id=instance.id,
                    function=function,
                    memory_mb=instance.memory_mb,
                    vcpus=lambda_vcpus(instance.memory_mb),
                    requests=instance.requests,
                    alive=instance.alive and started == revision,
                )
                for started, instance in self._environments.get(function, [])
            ]

    def billing(self, function: str) -> list[BillingView]:
        """Every request of `function` as its REPORT line billed it, in the order answered."""
        with self._lock:
            return list(self._billing.get(function, []))

    def _bill(self, function: str, run: _Run, report: Report) -> None:
        record = BillingView(
            function=function,
            environment=run.instance.id if run.instance else "",
            duration_ms=report.duration_ms,
            init_ms=report.init_ms or 0.0,
            billed_ms=report.billed_ms,
            memory_mb=report.memory_mb,
        )
        with self._lock:
            self._billing.setdefault(function, []).append(record)

    # -- the Invoke path -----------------------------------------------------------------------

    def _before_call(self, context: Mapping[str, Any] | None = None, **_: Any) -> None:
        config = (context or {}).get("client_config")
        self._local.read_timeout = getattr(config, "read_timeout", None)

    def _before_send(self, request: Any, **_: Any) -> AWSResponse:
        with self._lock:
            self.invocations += 1
        request_id = str(uuid.uuid4())
        path = urlsplit(request.url).path
        name = unquote(path.split("/functions/", 1)[1].rsplit("/invocations", 1)[0])
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        body = body or b""
        if isinstance(body, str):
            body = body.encode()
        with self._lock:
            if self._throttle > 0 or self._fault_throttles(body):
                self._throttle = max(0, self._throttle - 1)
                return self._api_error(
                    request,
                    429,
                    "TooManyRequestsException",
                    "Rate Exceeded.",
                    request_id,
                    reason="ConcurrentInvocationLimitExceeded",
                )
            if self._transient > 0:
                self._transient -= 1
                return self._api_error(
                    request, 500, "ServiceException", "Internal failure (fake)", request_id
                )
        function = self._function(name, parse_qs(urlsplit(request.url).query).get("Qualifier"))
        if function is None:
            return self._api_error(
                request,
                404,
                "ResourceNotFoundException",
                f"Function not found: arn:aws:lambda:{self.region}:{self.account}:function:{name}",
                request_id,
            )
        if len(body) > wire.MAX_SYNC_PAYLOAD_BYTES:
            return self._api_error(
                request,
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {wire.MAX_SYNC_PAYLOAD_BYTES} bytes for the "
                "InvokeFunction operation",
                request_id,
            )
        headers = request.headers
        invocation_type = headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if isinstance(invocation_type, bytes):
            invocation_type = invocation_type.decode()
        tail = headers.get("X-Amz-Log-Type") in ("Tail", b"Tail")
        if invocation_type == "DryRun":
            return self._response(request, 204, {}, b"")
        with self._lock:
            state = self._state(function)
            limit = function.reserved_concurrency
            limit = self.max_concurrency if limit is None else int(limit)
            if state.busy >= limit:
                return self._api_error(
                    request,
                    429,
                    "TooManyRequestsException",
                    "Rate Exceeded.",
                    request_id,
                    reason="ReservedFunctionConcurrentInvocationLimitExceeded",
                )
            instance = state.idle.pop() if state.idle else None
            if instance is None:
                instance = _Instance(memory_mb=int(function.memory_size))
                state.created += 1
                self._environments.setdefault(function.function_name, []).append(
                    (state.revision, instance)
                )
            instance.requests += 1
            state.busy += 1
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            with self._lock:
                state.busy -= 1
                state.idle.append(instance)
            return self._api_error(
                request,
                400,
                "InvalidRequestContentException",
                "Could not parse request body into json",
                request_id,
            )
        run = self._start(function, state, instance, event, request_id)
        if invocation_type == "Event":
            return self._response(request, 202, {"x-amzn-RequestId": request_id}, b"")
        return self._finish(request, function, run, request_id, tail)

    def _fault_throttles(self, body: bytes) -> bool:
        """Whether the fault plan throttles this request (see `PlatformFaults`)."""
        return self._platform_faults is not None and self._platform_faults.throttles(body)

    def _backend(self) -> Any:
        """moto's Lambda backend (the docker-free one here, as configured)."""
        from moto.awslambda.utils import get_backend

        return get_backend(self.account, self.region)

    def _function(self, name: str, qualifier: list[str] | None = None) -> Any:
        backend = self._backend()
        name = name.split(":")[-1] if name.startswith("arn:") else name
        try:
            return backend.get_function(name, qualifier[0] if qualifier else None)
        except Exception:
            return None

    # -- SnapStart and provisioned concurrency (see testing_versions) -------------------------

    def _versions_handlers(self) -> list[tuple[Any, ...]]:
        from daydream_aws.testing_versions import VersionsFake

        self.versions = VersionsFake(
            lambda name, qualifier: self._function(name, [qualifier] if qualifier else None),
            self._snapshot_init,
            self._hold,
            self._response,
        )
        return [(*h, botocore_handlers.REGISTER_FIRST) for h in self.versions.handlers]

    def _snapshot_init(self, function: Any) -> float:
        """Publishing a SnapStart version runs its init once, for the snapshot."""
        started = time.perf_counter()
        handler = self._load_handler(function)
        elapsed = (time.perf_counter() - started) * 1000.0
        _close(_Instance(handler=handler))
        return elapsed

    def _hold(self, function: Any, count: int) -> None:
        """Provisioned concurrency: `count` initialised environments held for the version."""
        with self._lock:
            state = self._state(function)
            held = [i for i in state.idle if i.provisioned]
            for instance in held[count:]:
                state.idle.remove(instance)
                _close(instance)
            missing = max(0, count - len(held))
            state.created += missing
        for _ in range(missing):
            started = time.perf_counter()
            instance = _Instance(
                memory_mb=int(function.memory_size),
                handler=self._load_handler(function),
                provisioned=True,
            )
            instance.init_ms = (time.perf_counter() - started) * 1000.0
            with self._lock:
                state.idle.append(instance)
                self._environments.setdefault(function.function_name, []).append(
                    (state.revision, instance)
                )

    def _state(self, function: Any) -> _FunctionState:
        """The function's environments; a changed function starts afresh, as on Lambda."""
        revision = self._revision(function)
        key = _state_key(function)
        state = self._functions.get(key)
        if state is None or state.revision != revision:
            if state is not None:
                for instance in state.idle:
                    _close(instance)
                for revision_seen, instance in self._environments.get(function.function_name, []):
                    if revision_seen == state.revision:  # this version's, not another's
                        instance.alive = False  # Lambda starts a changed function's afresh
            state = _FunctionState(revision, package_error=self._check_package(function))
            self._functions[key] = state
        return state

    @staticmethod
    def _revision(function: Any) -> tuple[Any, ...]:
        return (
            function.code_sha_256,
            function.last_modified,
            function.memory_size,
            json.dumps(function.environment_vars, sort_keys=True),
            tuple(layer["Arn"] for layer in function.layers),
        )

    def _check_package(self, function: Any) -> str | None:
        """Why Lambda could not import the handler or the workflow from this package, if so."""
        if function.package_type == "Image":
            return self._check_image(function)
        backend = self._backend()
        names: set[str] = set(_zip_names(function.code_bytes))
        for layer in function.layers:
            version = backend.layers_versions_by_arn(layer["Arn"])
            if version is not None:
                names |= {n.removeprefix("python/") for n in _zip_names(version.code_bytes)}
        wanted = [function.handler.rsplit(".", 1)[0]]
        runtime = function.environment_vars.get(wire.RUNTIME_VAR)
        if runtime:
            wanted.append(json.loads(runtime)["module"])
        for module in wanted:
            path = module.replace(".", "/")
            if f"{path}.py" not in names and f"{path}/__init__.py" not in names:
                return f"Unable to import module '{module}': No module named '{module}'"
        return None

    def _start(
        self,
        function: Any,
        state: _FunctionState,
        instance: _Instance,
        event: Any,
        request_id: str,
    ) -> _Run:
        run = _Run(cold=instance.handler is None, instance=instance)
        run.restored = run.cold and self.versions.snapshot(function) is not None
        deadline = time.monotonic() + float(function.timeout)
        context = _Context(function, request_id, deadline, instance)

        def work() -> None:
            if self.isolation == "serial":
                with self._serial:
                    execute()
            else:
                execute()

        def execute() -> None:
            try:
                if instance.handler is None:
                    started = time.perf_counter()
                    try:
                        if state.package_error is not None:
                            raise ImportError(state.package_error)
                        instance.handler = self._load_handler(function)
                    except BaseException as exc:
                        run.init_error = True
                        run.error = exc
                        run.error_trace = traceback.format_tb(exc.__traceback__)
                        return
                    finally:
                        instance.init_ms = (time.perf_counter() - started) * 1000.0
                        run.init_ms = instance.init_ms
                started = time.perf_counter()
                run.handler_started = time.monotonic()
                run.initialised.set()
                try:
                    run.value = instance.handler(event, context)
                except BaseException as exc:
                    run.error = exc
                    run.error_trace = traceback.format_list(traceback.extract_tb(exc.__traceback__))
                finally:
                    run.duration_ms = (time.perf_counter() - started) * 1000.0
            finally:
                killed = isinstance(run.error, fault_injection.InstanceKill)
                with self._lock:
                    state.busy -= 1
                    if (
                        not run.abandoned
                        and not run.init_error
                        and not killed
                        and instance.handler is not None
                    ):
                        state.idle.append(instance)
                    else:
                        instance.alive = False
                run.initialised.set()
                run.done.set()

        threading.Thread(target=work, name=f"fake-lambda-{request_id[:8]}", daemon=True).start()
        return run

    def _finish(
        self, request: Any, function: Any, run: _Run, request_id: str, tail: bool
    ) -> AWSResponse:
        read_timeout = getattr(self._local, "read_timeout", None)
        now = time.monotonic()
        client_deadline = now + float(read_timeout) if read_timeout is not None else math.inf
        # The init phase has its own 10 s; an init that takes longer goes on (suppressed, as
        # Lambda says) under the function's timeout, which otherwise starts with the handler.
        init_limit = INIT_TIMEOUT_S + float(function.timeout)
        if not run.initialised.wait(min(init_limit, client_deadline - now)):
            if client_deadline <= now + init_limit:
                raise ReadTimeoutError(endpoint_url=request.url)
            return self._timed_out(request, function, run, request_id, tail, function.timeout)
        function_deadline = run.handler_started + float(function.timeout)
        if not run.done.wait(max(0.0, min(function_deadline, client_deadline) - time.monotonic())):
            if client_deadline < function_deadline:
                # The client gives up first; the function runs on, as on Lambda.
                raise ReadTimeoutError(endpoint_url=request.url)
            return self._timed_out(request, function, run, request_id, tail, function.timeout)
        duration = run.duration_ms
        if run.error is not None:
            payload = {
                "errorMessage": str(run.error),
                "errorType": getattr(run.error, "error_type", type(run.error).__name__),
                "requestId": request_id,
                "stackTrace": getattr(run.error, "stack", run.error_trace),
            }
            if run.init_error:
                payload["errorType"] = "Runtime.ImportModuleError"
            if isinstance(run.error, fault_injection.InstanceKill):  # as Lambda reports a kill
                payload["errorType"] = "Runtime.ExitError"
                payload["errorMessage"] = (
                    f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
                )
                payload["stackTrace"] = []
            report = self._report(function, run, request_id, duration, status="error")
            return self._invocation(request, payload, report, tail, unhandled=True)
        try:
            result = json.dumps(run.value).encode()
        except (TypeError, ValueError) as exc:
            payload = {
                "errorMessage": f"Unable to marshal response: {exc}",
                "errorType": "Runtime.MarshalError",
                "requestId": request_id,
                "stackTrace": [],
            }
            report = self._report(function, run, request_id, duration, status="error")
            return self._invocation(request, payload, report, tail, unhandled=True)
        if len(result) > wire.MAX_SYNC_PAYLOAD_BYTES:
            payload = {
                "errorMessage": f"Response payload size ({len(result)} bytes) exceeded maximum "
                f"allowed payload size ({wire.MAX_SYNC_PAYLOAD_BYTES} bytes).",
                "errorType": "Function.ResponseSizeTooLarge",
            }
            report = self._report(function, run, request_id, duration, status="error")
            return self._invocation(request, payload, report, tail, unhandled=True)
        report = self._report(function, run, request_id, duration)
        return self._invocation(request, result, report, tail, unhandled=False)

    def _load_handler(self, function: Any) -> Callable[[Any, Any], Any]:
        """The function's handler in one new execution environment (runs its init)."""
        environ = {
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            **{k: str(v) for k, v in function.environment_vars.items()},
        }
        handler = function.handler
        if function.package_type == "Image":
            handler = (function.image_config.cmd or [wire.HANDLER])[0]
        if self.isolation == "process":
            process = _ProcessHandler(environ, handler)
            with self._lock:
                self._processes.append(process)
            return process
        if handler == wire.HANDLER:
            from daydream_aws.handler import ExecutionEnvironment

            return ExecutionEnvironment(environ, faults=self.faults)
        # Another handler, in threads: imported once, so environments share its module state.
        module_name, _, attribute = handler.rpartition(".")
        fn: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), attribute)
        return fn

    def _timed_out(
        self, request: Any, function: Any, run: _Run, request_id: str, tail: bool, limit: float
    ) -> AWSResponse:
        with self._lock:
            run.abandoned = True  # Lambda resets an environment that timed out
            if run.instance is not None:
                run.instance.alive = False
        _close(run.instance)
        payload = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after "
            f"{float(limit):.2f} seconds",
        }
        report = self._report(function, run, request_id, float(limit) * 1000.0, status="timeout")
        return self._invocation(request, payload, report, tail, unhandled=True)

    def _report(
        self,
        function: Any,
        run: _Run,
        request_id: str,
        duration_ms: float,
        status: str | None = None,
    ) -> Report:
        init_ms = run.init_ms if run.cold and not run.restored else None
        restore_ms = run.init_ms if run.cold and run.restored else None
        memory_mb = run.instance.memory_mb if run.instance else int(function.memory_size)
        used = run.value.get("max_memory_mb") if isinstance(run.value, dict) else None
        used = float(used) if isinstance(used, (int, float)) else max_rss_mb()
        report = Report(
            request_id=request_id,
            duration_ms=duration_ms,
            billed_ms=float(math.ceil(duration_ms + (init_ms or 0.0))),  # init billed since 2025
            memory_mb=memory_mb,
            max_memory_used_mb=float(min(memory_mb, math.ceil(used))),
            init_ms=init_ms,
            status=status,
            restore_ms=restore_ms,
            billed_restore_ms=0.0 if restore_ms is not None else None,  # no runtime hooks here
        )
        self._bill(function.function_name, run, report)
        return report

    def _invocation(
        self, request: Any, payload: Any, report: Report, tail: bool, *, unhandled: bool
    ) -> AWSResponse:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": report.request_id,
            "X-Amz-Executed-Version": "$LATEST",
        }
        lines = []
        if report.init_ms is not None:
            lines.append("INIT_START Runtime Version: python:fake\tRuntime Version ARN: fake")
        lines.append(f"START RequestId: {report.request_id} Version: $LATEST")
        if unhandled:
            headers["X-Amz-Function-Error"] = "Unhandled"
            error = payload if isinstance(payload, dict) else {}
            lines.append(f"[ERROR] {error.get('errorType')}: {error.get('errorMessage')}")
        lines.append(f"END RequestId: {report.request_id}")
        lines.append(report.line())
        if tail:
            log = ("\n".join(lines) + "\n").encode()[-LOG_TAIL_BYTES:]
            headers["X-Amz-Log-Result"] = base64.b64encode(log).decode()
        return self._response(request, 200, headers, body)

    def _api_error(
        self,
        request: Any,
        status: int,
        code: str,
        message: str,
        request_id: str,
        reason: str | None = None,
    ) -> AWSResponse:
        body: dict[str, Any] = {"Type": "User", "message": message}
        if reason:
            body["Reason"] = reason
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": request_id,
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.awslambda/",
        }
        return self._response(request, status, headers, json.dumps(body).encode())

    @staticmethod
    def _response(
        request: Any, status: int, headers: Mapping[str, str], body: bytes
    ) -> AWSResponse:
        return AWSResponse(request.url, status, dict(headers), _RawBody(body))


def _zip_names(data: bytes) -> list[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, TypeError):
        return []


class _RemoteError(Exception):
    """An exception raised inside an instance process, as the Lambda runtime reports it."""

    def __init__(self, error_type: str, message: str, stack: list[str]) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.stack = stack


class _ProcessHandler:
    """An execution environment in its own process, as on Lambda: its own module state, its
    own native libraries' globals; the init is the process start and the handler's import."""

    def __init__(self, environ: Mapping[str, str], handler: str) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=_environment_main, args=(child, dict(environ), handler), daemon=True
        )
        self.process.start()
        child.close()
        reply = self._receive()
        if reply[0] != "ready":
            self.close()
            raise _RemoteError(reply[1], reply[2], reply[3])

    def _receive(self) -> tuple[Any, ...]:
        try:
            reply: tuple[Any, ...] = self._conn.recv()
        except (EOFError, OSError):
            code = self.process.exitcode
            return ("error", "Runtime.ExitError", f"Runtime exited with status {code}", [])
        return reply

    def __call__(self, event: Any, context: Any) -> Any:
        remaining = context.get_remaining_time_in_millis()
        try:
            self._conn.send(
                (
                    json.dumps(event),
                    context.aws_request_id,
                    remaining,
                    context.log_stream_name,
                    context.memory_limit_in_mb,
                )
            )
        except (OSError, ValueError):
            raise _RemoteError("Runtime.ExitError", "Runtime exited", []) from None
        reply = self._receive()
        if reply[0] == "ok":
            return json.loads(reply[1])
        raise _RemoteError(reply[1], reply[2], reply[3])

    def close(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self._conn.close()


def _close(instance: _Instance | None) -> None:
    if instance is not None and isinstance(instance.handler, _ProcessHandler):
        instance.handler.close()


class _ChildContext:
    def __init__(
        self, request_id: str, remaining_ms: int, log_stream_name: str, memory_limit_in_mb: str
    ) -> None:
        self.aws_request_id = request_id
        self.log_stream_name = log_stream_name
        self.memory_limit_in_mb = memory_limit_in_mb
        self._deadline = time.monotonic() + remaining_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _pin_cpu_share(memory_mb: int) -> None:
    """Give the environment the CPUs its memory size buys on Lambda, as far as this host has
    them (a whole CPU per started vCPU), before any import can start a thread."""
    cpus = sorted(os.sched_getaffinity(0))
    share = max(1, min(len(cpus), math.ceil(lambda_vcpus(memory_mb))))
    os.sched_setaffinity(0, cpus[:share])


def _environment_main(conn: Any, environ: dict[str, str], handler: str) -> None:
    """An instance process: the function's variables, its handler imported (the init), then
    one invocation at a time until the fake closes the pipe."""
    os.environ.update(environ)
    _pin_cpu_share(int(environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]))
    module_name, _, attribute = handler.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module_name), attribute)
    except BaseException as exc:
        stack = traceback.format_list(traceback.extract_tb(exc.__traceback__))
        conn.send(("init_error", type(exc).__name__, str(exc), stack))
        return
    conn.send(("ready",))
    while True:
        try:
            event, *context = conn.recv()
        except (EOFError, OSError):
            return
        try:
            value = json.dumps(fn(json.loads(event), _ChildContext(*context)))
        except BaseException as exc:
            stack = traceback.format_list(traceback.extract_tb(exc.__traceback__))
            conn.send(("error", type(exc).__name__, str(exc), stack))
        else:
            conn.send(("ok", value))


@contextmanager
def conformance_environment(workdir: Path) -> Iterator[Any]:
    """The conformance suite's environment for ``--daydream-provider aws``: a moto server on
    127.0.0.1 reached through ``AWS_ENDPOINT_URL``, with `LambdaFake` answering Invoke."""
    from daydream_conformance.environment import ConformanceEnvironment

    with LambdaFake(server=True, isolation="process") as fake:
        yield ConformanceEnvironment(
            settings=ProviderSettings(state_dir=workdir, options=fake.options()),
            view=fake,
            fake=fake,
        )


def fake_provider(fake: LambdaFake, state_dir: Path, **options: str) -> Any:
    """An `AwsProvider` against `fake` (its options, overridden by `options`)."""
    from daydream_aws.provider import AwsProvider

    settings = ProviderSettings(state_dir=state_dir, options={**fake.options(), **options})
    return AwsProvider(settings)


def _state_key(function: Any) -> str:
    """Environments are per function version: ``name`` for $LATEST, else ``name:version``."""
    version = str(function.version)
    return function.function_name if version == "$LATEST" else f"{function.function_name}:{version}"
