"""The Cloud Functions v2 API as the adapter uses it: functions, uploads, operations.

A thin layer over ``FunctionServiceClient`` (REST transport): API errors become the shared
typed errors, each long-running operation is polled to completion within a bound (and fails
with the operation's own message), and the desired function is built in one place so that
`deploy` can tell what changed.
"""

from __future__ import annotations

import builtins
import concurrent.futures
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as api
from google.api_core.future import polling
from google.auth.exceptions import GoogleAuthError
from google.cloud import functions_v2
from google.protobuf import field_mask_pb2

from daydream_core.errors import ConfigurationError, ProviderError
from daydream_core.model import Tier
from daydream_core.workflow import RuntimeEnvironment
from daydream_gcp import wire
from daydream_gcp.options import GcpOptions, available_cpu, available_memory, parse_memory_mb
from daydream_gcp.packaging import Source

T = TypeVar("T")
LABEL_SOURCE = "daydream-source"  # the source zip's digest, so a changed source redeploys
UPLOAD_TIMEOUT_S = 300.0
_LABEL_UNSAFE = str.maketrans({c: "-" for c in ".:/ "})


def label_value(text: str) -> str:
    """A label value: at most 63 lowercase letters, digits, '-' or '_'."""
    return text.lower().translate(_LABEL_UNSAFE)[:63]


def desired_function(
    path: str,
    runtime: RuntimeEnvironment,
    tier: Tier,
    source: Source,
    storage_source: functions_v2.StorageSource,
    environment: Mapping[str, str],
    options: GcpOptions,
    deployment: str | None = None,
) -> functions_v2.Function:
    """The function daydream wants for (runtime, tier): 2nd gen, HTTP, one request each;
    labelled with the deployment that makes it, if any."""
    labels = {
        wire.LABEL_MANAGED: "true",
        wire.LABEL_RUNTIME: label_value(runtime.name),
        wire.LABEL_TIER: label_value(tier.name),
        LABEL_SOURCE: source.sha256[:16],
    }
    if deployment is not None:
        labels[wire.LABEL_DEPLOYMENT] = deployment
    service = functions_v2.ServiceConfig(
        available_memory=available_memory(tier.memory_mb),
        available_cpu=available_cpu(tier.vcpus),
        timeout_seconds=options.function_timeout_s,
        max_instance_count=options.max_instances,
        min_instance_count=0,
        max_instance_request_concurrency=1,
        environment_variables=dict(environment),
        ingress_settings=functions_v2.ServiceConfig.IngressSettings.ALLOW_ALL,
        all_traffic_on_latest_revision=True,
    )
    if options.service_account:
        service.service_account_email = options.service_account
    return functions_v2.Function(
        name=path,
        description=f"daydream {runtime.name} ({tier.name} tier)",
        environment=functions_v2.Environment.GEN_2,
        labels=labels,
        build_config=functions_v2.BuildConfig(
            runtime=options.python_runtime,
            entry_point=wire.ENTRY_POINT,
            source=functions_v2.Source(storage_source=storage_source),
        ),
        service_config=service,
    )


def differences(
    current: functions_v2.Function,
    runtime: RuntimeEnvironment,
    tier: Tier,
    source: Source,
    environment: Mapping[str, str],
    options: GcpOptions,
) -> list[str]:
    """The update-mask paths where `current` is not what daydream wants."""
    service = current.service_config
    changed = []
    if current.labels.get(LABEL_SOURCE) != source.sha256[:16]:
        changed += ["build_config.source", "labels"]
    if current.build_config.runtime != options.python_runtime:
        changed.append("build_config.runtime")
    try:
        memory = parse_memory_mb(service.available_memory)
    except ValueError:
        memory = -1
    if memory != tier.memory_mb:
        changed.append("service_config.available_memory")
    if float(service.available_cpu or 0) != float(tier.vcpus):
        changed.append("service_config.available_cpu")
    if dict(service.environment_variables) != dict(environment):
        changed.append("service_config.environment_variables")
    if service.timeout_seconds != options.function_timeout_s:
        changed.append("service_config.timeout_seconds")
    if service.max_instance_count != options.max_instances:
        changed.append("service_config.max_instance_count")
    if service.max_instance_request_concurrency != 1:
        changed.append("service_config.max_instance_request_concurrency")
    return changed


class FunctionsApi:
    """One project and region's functions, through the v2 client."""

    def __init__(self, client: Any, parent: str, timeout_s: float, poll_s: float) -> None:
        self.client = client
        self.parent = parent
        self.timeout_s = timeout_s
        self._polling = polling.DEFAULT_POLLING.with_delay(
            initial=poll_s, maximum=max(poll_s, 30.0), multiplier=1.5
        ).with_timeout(timeout_s)
        self._upload = requests.Session()

    def path(self, name: str) -> str:
        return f"{self.parent}/functions/{name}"

    def get(self, name: str) -> functions_v2.Function | None:
        try:
            found: functions_v2.Function = _call(
                lambda: self.client.get_function(name=self.path(name)), "looking up", name
            )
        except _Missing:
            return None
        return found

    def list(self, prefix: str) -> builtins.list[functions_v2.Function]:
        def every() -> builtins.list[functions_v2.Function]:
            return list(self.client.list_functions(parent=self.parent))

        functions = _call(every, "listing", self.parent)
        return [f for f in functions if f.name.rsplit("/", 1)[-1].startswith(prefix)]

    def upload(self, data: bytes) -> functions_v2.StorageSource:
        """Upload a source zip to the signed URL ``generateUploadUrl`` gives; where it went."""
        answer = _call(
            lambda: self.client.generate_upload_url(request={"parent": self.parent}),
            "getting an upload URL in",
            self.parent,
        )
        headers = {"Content-Type": "application/zip"}
        try:
            response = self._upload.put(
                answer.upload_url, data=data, headers=headers, timeout=UPLOAD_TIMEOUT_S
            )
        except requests.exceptions.RequestException as exc:
            raise ProviderError(f"gcp: uploading the function source failed: {exc}") from None
        if response.status_code >= 300:
            raise ProviderError(
                f"gcp: uploading the function source failed ({response.status_code}): "
                f"{response.text[:200]}"
            )
        source: functions_v2.StorageSource = answer.storage_source
        return source

    def create(self, name: str, function: functions_v2.Function) -> functions_v2.Function:
        operation = _call(
            lambda: self.client.create_function(
                parent=self.parent, function=function, function_id=name
            ),
            "creating",
            name,
        )
        created: functions_v2.Function = self._wait(operation, "creating", name)
        return created

    def update(
        self, function: functions_v2.Function, paths: builtins.list[str]
    ) -> functions_v2.Function:
        name = function.name.rsplit("/", 1)[-1]
        mask = field_mask_pb2.FieldMask(paths=paths)
        operation = _call(
            lambda: self.client.update_function(function=function, update_mask=mask),
            "updating",
            name,
        )
        updated: functions_v2.Function = self._wait(operation, "updating", name)
        return updated

    def delete(self, name: str) -> None:
        try:
            operation = _call(
                lambda: self.client.delete_function(name=self.path(name)), "deleting", name
            )
        except _Missing:
            return
        try:
            self._wait(operation, "deleting", name)
        except _Missing:
            return

    def check_active(self, function: functions_v2.Function) -> None:
        if function.state == functions_v2.Function.State.ACTIVE:
            return
        messages = "; ".join(m.message for m in function.state_messages) or "no message"
        state = functions_v2.Function.State(function.state).name
        raise ProviderError(f"gcp: function {function.name!r} is {state}, not ACTIVE: {messages}")

    def _wait(self, operation: Any, what: str, name: str) -> Any:
        """The operation's result, polled within the bound; its own error if it failed."""
        try:
            return _call(
                lambda: operation.result(timeout=self.timeout_s, polling=self._polling), what, name
            )
        except concurrent.futures.TimeoutError:
            raise ProviderError(
                f"gcp: {what} function {name!r} did not finish within {self.timeout_s:g} s "
                f"(operation {operation.operation.name}); raise -o operation_timeout_s"
            ) from None

    def close(self) -> None:
        self._upload.close()
        transport = getattr(self.client, "transport", None)
        if transport is not None:
            transport.close()


class _Missing(ProviderError):
    """The resource does not exist (the API's 404)."""


def _call(operation: Callable[[], T], what: str, name: str) -> T:
    """Run one API call; its errors become the shared typed ones."""
    try:
        return operation()
    except api.NotFound:
        raise _Missing(f"gcp: {name} does not exist") from None
    except (api.Unauthenticated, GoogleAuthError) as exc:
        raise ConfigurationError(
            f"gcp: the credentials were refused while {what} {name}: {exc}"
        ) from None
    except api.PermissionDenied as exc:
        raise ConfigurationError(
            f"gcp: permission denied while {what} {name}: {exc.message} (see docs/gcp.md for "
            "the roles daydream needs)"
        ) from None
    except api.GoogleAPICallError as exc:
        raise ProviderError(f"gcp: {what} {name} failed: {exc.message or exc}") from None
