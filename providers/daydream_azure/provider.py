"""The Azure Functions adapter: azure-mgmt-web and HTTPS behind the provider contract.

One Flex Consumption function app (and plan) per (runtime environment, tier), with the core's
hashed names and daydream's tags; the runtime environment is the app's zip package; each
instance serves one request at a time (``perInstanceConcurrency`` 1). Components run by HTTPS
POST to the trigger URL with the function key, throttling (429) and unavailability (503)
retried with bounded, jittered exponential backoff. Hot starts are concurrent warm-ups that
hold their instance, so n of them land on n instances. The object store is a prefix of a Blob
container. The Azure SDKs are imported here, and this module only when the provider is made.
"""

from __future__ import annotations

import builtins
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.exceptions import ResourceNotFoundError as ArmNotFound
from azure.identity import CredentialUnavailableError
from azure.mgmt.web import WebSiteManagementClient

from daydream_azure import wire
from daydream_azure.management import (
    DEPLOYMENT_CONNECTION_SETTING,
    PACKAGE_CONTAINER_PREFIX,
    Endpoint,
    Management,
    http_error,
    package_container,
    tags,
)
from daydream_azure.options import FLEX_INSTANCE_VCPUS, AzureOptions
from daydream_azure.packaging import Package, build_package
from daydream_azure.store import (
    BlobObjectStore,
    cleanup_containers,
    delete_container,
    ensure_container,
    service_client,
)
from daydream_core import auth
from daydream_core.backoff import Backoff
from daydream_core.errors import (
    ConfigurationError,
    FunctionNotFound,
    FunctionTimeout,
    InstanceLost,
    ProviderError,
    Throttled,
)
from daydream_core.model import StartKind, Tier
from daydream_core.objectstore import ObjectStore
from daydream_core.pricing import PriceTable
from daydream_core.provider import (
    NAME_PREFIX,
    Capabilities,
    FunctionHandle,
    Invocation,
    Provider,
    ProviderSettings,
    WarmStart,
    deployment_prefix,
    function_name,
)
from daydream_core.runtime import WARMUP, raise_for_envelope
from daydream_core.workflow import RuntimeEnvironment

_SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,58}[a-z0-9]$")
WARM_ROUNDS = 3  # warm-up rounds before settling for fewer distinct instances than asked
CONNECT_TIMEOUT_S = 10
RETRYABLE_STATUS = {429: "throttled", 503: "unavailable"}
NO_CREDENTIALS = (
    "azure: no credentials found; set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, "
    "sign in with `az login`, or run where a managed identity is available"
)


class _Retryable(Throttled):
    """A 429 or 503 from the front end: worth another attempt after a pause (a refusal
    before the function ran, recorded as throttling)."""


class AzureProvider(Provider):
    """Azure Functions (Flex Consumption), as daydream uses it."""

    name = "azure"

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        credential: Any = None,
        backoff: Backoff | None = None,
        sleep: Any = None,
    ) -> None:
        options = AzureOptions.parse(settings.options)
        if settings.concurrency is not None:
            options = options.with_changes(max_concurrency=settings.concurrency)
        self.options = options
        self.deployment = settings.deployment
        subscription, self.group, self.location = options.require_account()
        options.require_storage()
        self._state_dir = Path(settings.state_dir) / "azure"
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        self._credential = credential
        self._scope = options.management_url.rstrip("/") + "/.default"
        self._token()  # fail now, in one line, rather than halfway through a deploy
        self._sleep = sleep or threading.Event().wait
        self._backoff = backoff or Backoff(
            options.max_attempts, options.backoff_base_s, options.backoff_cap_s, sleep=self._pause
        )
        self._http = requests.Session()
        pool = max(10, options.max_concurrency)
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool, pool_maxsize=pool)
        self._http.mount("https://", adapter)
        self._web = WebSiteManagementClient(
            credential,
            subscription,
            base_url=options.management_url,
            credential_scopes=[self._scope],
            connection_verify=options.verify,
        )
        self._manage = Management(self._web, options, self._token, self._http, self._sleep)
        self._blob = service_client(
            options.storage_account_url,
            options.storage_connection_string,
            credential,
            options.verify,
        )
        self._lock = threading.RLock()
        self._store: BlobObjectStore | None = None
        self._packages: dict[RuntimeEnvironment, Package] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._keys: dict[str, str] = {}  # payload keys by function app (never logged)
        self._seen: dict[str, dict[str, float]] = {}  # instance id -> last answer, per app

    def _pause(self, seconds: float) -> None:
        self._sleep(seconds)

    def _token(self) -> str:
        # The credential chain logs a many-line warning before it raises: this one line is ours.
        chain_log = logging.getLogger("azure.identity")
        level = chain_log.level
        chain_log.setLevel(logging.ERROR)
        try:
            return str(self._credential.get_token(self._scope).token)
        except ClientAuthenticationError as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            if isinstance(exc, CredentialUnavailableError) or "failed to retrieve" in first:
                raise ConfigurationError(NO_CREDENTIALS) from None
            raise ConfigurationError(f"azure: the credentials were refused: {first}") from None
        finally:
            chain_log.setLevel(level)

    # -- what the provider declares ------------------------------------------------------------

    def tiers(self) -> Mapping[str, Tier]:
        return self.options.tiers()

    def prices(self) -> PriceTable:
        return self.options.prices()

    def capabilities(self) -> Capabilities:
        return Capabilities(
            max_payload_bytes=wire.MAX_INLINE_BYTES,
            max_concurrency=self.options.max_concurrency,
            releases_instances=False,  # Flex Consumption scales in on its own; idling is free
        )

    # -- the store -----------------------------------------------------------------------------

    def store(self) -> ObjectStore:
        with self._lock:
            if self._store is None:
                ensure_container(self._blob, self.options.container)
                self._store = BlobObjectStore(
                    self._blob, self.options.container, self.options.prefix
                )
            return self._store

    # -- deploy --------------------------------------------------------------------------------

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        name = function_name(runtime, tier, self.deployment)
        if not _SITE_NAME.match(name):
            raise ConfigurationError(
                f"azure: function app name {name!r} is not valid (2-60 lowercase letters, "
                "digits or '-'); shorten the workflow's name"
            )
        if tier.memory_mb not in FLEX_INSTANCE_VCPUS:
            raise ConfigurationError(
                f"azure: tier {tier.name!r} has {tier.memory_mb} MB, not a Flex Consumption "
                f"instance size ({', '.join(map(str, FLEX_INSTANCE_VCPUS))})"
            )
        store = self.store()
        package = self._package(runtime)
        labels = tags(runtime, tier, self.deployment)
        container = package_container(name)
        ensure_container(self._blob, container)
        identity = not self.options.storage_connection_string
        try:
            plan = self._manage.ensure_plan(name, labels)
            container_url = f"{str(self._blob.url).rstrip('/')}/{container}"
            desired = self._manage.desired_site(plan, tier, labels, container_url, identity)
            site = self._manage.ensure_site(name, desired)
            settings = self._settings(runtime, tier, store.uri)
            current = self._manage.settings(name)
            # An existing app keeps its payload key: runs using it meanwhile stay valid.
            settings[wire.KEY_VAR] = current.get(wire.KEY_VAR) or auth.new_key()
            if current.get(wire.PACKAGE_VAR) != package.sha256:
                self._manage.publish(site, package)
            settings[wire.PACKAGE_VAR] = package.sha256
            if current != settings:
                self._manage.put_settings(name, settings)
            endpoint = self._manage.endpoint(name, wait=True)
        except HttpResponseError as exc:
            raise ProviderError(
                f"deploying function app {name!r} failed: {http_error(exc)}"
            ) from None
        with self._lock:
            self._endpoints[name] = endpoint
            self._keys[name] = settings[wire.KEY_VAR]
        return FunctionHandle(self.name, name, runtime, tier)

    def _key(self, name: str) -> str:
        """The app's payload key, from its settings (read once)."""
        with self._lock:
            key = self._keys.get(name)
        if key is None:
            try:
                key = self._manage.settings(name).get(wire.KEY_VAR)
            except ArmNotFound:
                raise FunctionNotFound(f"function app {name!r} does not exist") from None
            except HttpResponseError as exc:
                raise ProviderError(f"looking up {name!r} failed: {http_error(exc)}") from None
            if not key:
                raise ProviderError(
                    f"function app {name!r} has no payload key; deploy it again with this daydream"
                )
            with self._lock:
                self._keys[name] = key
        return key

    def _settings(self, runtime: RuntimeEnvironment, tier: Tier, store_uri: str) -> dict[str, str]:
        settings = {
            wire.RUNTIME_VAR: json.dumps(asdict(runtime)),
            wire.TIER_VAR: json.dumps(asdict(tier)),
            wire.STORE_VAR: store_uri,
            wire.THREADS_VAR: str(max(1, math.ceil(tier.vcpus))),
        }
        connection = self.options.storage_connection_string
        if connection:
            settings.update(
                {
                    "AzureWebJobsStorage": connection,
                    DEPLOYMENT_CONNECTION_SETTING: connection,
                    wire.STORAGE_CONNECTION_VAR: connection,
                }
            )
        else:
            account = str(self._blob.account_name)
            settings["AzureWebJobsStorage__accountName"] = account
        return settings

    def _package(self, runtime: RuntimeEnvironment) -> Package:
        with self._lock:
            if runtime not in self._packages:
                self._packages[runtime] = build_package(
                    runtime,
                    python_version=self.options.python_version,
                    install=self.options.install_requirements,
                    cache_dir=self._state_dir / "packages",
                )
            return self._packages[runtime]

    def _endpoint(self, name: str) -> Endpoint:
        with self._lock:
            endpoint = self._endpoints.get(name)
        if endpoint is not None:
            return endpoint
        try:
            endpoint = self._manage.endpoint(name, wait=False)
        except ArmNotFound:
            raise FunctionNotFound(f"function app {name!r} does not exist") from None
        except HttpResponseError as exc:
            raise ProviderError(f"looking up {name!r} failed: {http_error(exc)}") from None
        with self._lock:
            self._endpoints[name] = endpoint
        return endpoint

    # -- invoke and warm -----------------------------------------------------------------------

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        envelope = self._call(function, payload, timeout)
        raise_for_envelope(envelope)
        execution_ms = float(envelope.get("execution_ms", 0.0))
        return Invocation(
            output=envelope.get("output"),
            instance=str(envelope.get("instance", "")),
            start=StartKind(envelope.get("start", StartKind.COLD.value)),
            init_ms=float(envelope.get("init_ms", 0.0)),
            duration_ms=execution_ms,
            billed_ms=self.prices().billed_ms(execution_ms),
            memory_mb=function.tier.memory_mb,
            max_memory_used_mb=float(envelope.get("max_memory_mb", 0.0)),
        )

    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        """n concurrent warm-ups that initialise and hold, so they occupy n distinct instances
        (one request per instance); a round that landed on fewer is repeated (WARM_ROUNDS)."""
        if n <= 0:
            return []
        payload = {"kind": WARMUP, "hold_ms": self.options.warm_hold_ms}
        timeout = float(self.options.function_timeout_s)
        started: dict[str, WarmStart] = {}
        failures: list[Exception] = []

        def one(_: int) -> dict[str, Any] | Exception:
            try:
                return self._call(function, payload, timeout)
            except FunctionNotFound:
                raise
            except ProviderError as exc:
                return exc

        workers = min(n, self.options.max_concurrency)
        for _ in range(WARM_ROUNDS):
            with ThreadPoolExecutor(workers, thread_name_prefix="daydream-azure-warm") as pool:
                outcomes = list(pool.map(one, range(n)))
            answers = [o for o in outcomes if isinstance(o, dict)]
            failures.extend(o for o in outcomes if isinstance(o, Exception))
            for envelope in answers:
                instance = str(envelope.get("instance", ""))
                if envelope.get("first") and instance not in started:
                    init_ms = float(envelope.get("init_ms", 0.0))
                    billed = self.prices().billed_ms(float(envelope.get("execution_ms", 0.0)))
                    started[instance] = WarmStart(instance, init_ms, billed)
            if not answers or len({a.get("instance") for a in answers}) >= n:
                break
        if not started and failures:
            raise failures[0]
        return list(started.values())

    def _call(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> dict[str, Any]:
        """One request (retried on 429/503), its envelope decoded; typed errors."""
        kind = str(payload.get("kind", ""))
        endpoint = self._endpoint(function.name)
        signed = auth.sign(payload, self._key(function.name), ttl_s=timeout + auth.DEFAULT_TTL_S)
        body = json.dumps({**signed, wire.RESERVED: {}}).encode()
        transfer_key = None
        if len(body) > wire.MAX_INLINE_BYTES:
            store = self.store()
            transfer_key = f"_transfer/payload-{uuid.uuid4().hex}.json"
            store.put(transfer_key, json.dumps(signed).encode())  # verified where it is read
            body = json.dumps(
                {"kind": kind, wire.RESERVED: {wire.OPT_PAYLOAD_KEY: transfer_key}}
            ).encode()
        try:
            answer = self._backoff.call(
                lambda: self._post(function.name, endpoint, body, timeout),
                lambda exc: isinstance(exc, _Retryable),
            )
        except _Retryable as exc:
            raise Throttled(str(exc)) from None
        finally:
            if transfer_key is not None:
                self.store().delete(transfer_key)
        try:
            envelope = json.loads(answer)
        except ValueError:
            raise ProviderError(
                f"{function.name!r} answered with no JSON: {answer[:200]!r}"
            ) from None
        if not isinstance(envelope, dict) or "ok" not in envelope:
            raise ProviderError(f"{function.name!r} answered with no envelope: {answer[:200]!r}")
        if wire.RESULT_KEY in envelope:
            store = self.store()
            key = str(envelope.pop(wire.RESULT_KEY))
            try:
                stored = json.loads(store.get(key))
            finally:
                store.delete(key)
            envelope = {**stored, **envelope}
        if envelope.get("instance"):
            with self._lock:
                self._seen.setdefault(function.name, {})[str(envelope["instance"])] = (
                    time.monotonic()
                )
        return envelope

    def _post(self, name: str, endpoint: Endpoint, body: bytes, timeout: float) -> bytes:
        read_timeout = timeout + self.options.timeout_slack_s
        try:
            response = self._http.post(
                endpoint.url,
                verify=self.options.verify,  # per call: REQUESTS_CA_BUNDLE beats Session.verify
                data=body,
                headers={wire.KEY_HEADER: endpoint.key, "Content-Type": "application/json"},
                timeout=(CONNECT_TIMEOUT_S, read_timeout),
            )
        except requests.ReadTimeout:
            raise FunctionTimeout(
                f"no answer from {name!r} within {read_timeout:g} s (the component may run on "
                f"until Azure's {self.options.function_timeout_s} s limit)"
            ) from None
        except requests.ConnectionError as exc:
            raise ProviderError(f"cannot reach {name!r}: {exc}") from None
        status = response.status_code
        if status == 200:
            return bytes(response.content)
        if status in RETRYABLE_STATUS:
            raise _Retryable(
                f"{name!r} is {RETRYABLE_STATUS[status]} (HTTP {status}) after "
                f"{self.options.max_attempts} attempts"
            )
        if status == 500:  # the handler answers every failure in a 200: its worker died
            detail = response.text[:300].strip() or "no details"
            raise InstanceLost(f"{name!r} lost its instance mid-request (HTTP 500): {detail}")
        if status == 404:
            with self._lock:
                self._endpoints.pop(name, None)
            raise FunctionNotFound(f"function app {name!r} does not exist (HTTP 404)")
        if status in (401, 403):
            with self._lock:
                self._endpoints.pop(name, None)  # a rotated key: look it up again next time
        raise ProviderError(f"{name!r} answered HTTP {status}: {response.text[:300]}")

    def instances(self, function: FunctionHandle) -> list[str]:
        """Instances seen within the time Flex Consumption is taken to keep an idle one."""
        horizon = time.monotonic() - self.options.keep_alive_estimate_s
        with self._lock:
            seen = self._seen.get(function.name, {})
            for instance in [i for i, at in seen.items() if at < horizon]:
                del seen[instance]
            return sorted(seen)

    def release(self, function: FunctionHandle, keep: int) -> list[str]:
        return []  # the platform scales idle instances in on its own, at no cost on demand

    # -- delete, list, cleanup -----------------------------------------------------------------

    def _forget(self, name: str) -> None:
        """Drop what is cached about function app `name` (caller holds the lock)."""
        self._seen.pop(name, None)
        self._endpoints.pop(name, None)
        self._keys.pop(name, None)

    def delete(self, function: FunctionHandle) -> None:
        with self._lock:
            self._forget(function.name)
        try:
            self._manage.delete_app(function.name)
        except HttpResponseError as exc:
            raise ProviderError(f"deleting {function.name!r} failed: {http_error(exc)}") from None
        delete_container(self._blob, package_container(function.name))

    def list(self, prefix: str = NAME_PREFIX) -> list[str]:
        return sorted(str(site.name) for site in self._manage.managed_apps(prefix))

    def cleanup(self, dry_run: bool = False) -> builtins.list[str]:
        """What daydream created (by tags or container metadata and name prefix), nothing
        else; for one deployment, its apps, plans and package containers only."""
        prefix = deployment_prefix(self.deployment)
        apps, removed = self._manage.cleanup(prefix, self.deployment, dry_run)
        if self.deployment is not None:
            removed += [f"package container {package_container(app)}" for app in apps]
            for app in [] if dry_run else apps:
                delete_container(self._blob, package_container(app))
                with self._lock:
                    self._forget(app)
            return removed
        options = self.options
        removed += cleanup_containers(
            self._blob, options.container, options.prefix, PACKAGE_CONTAINER_PREFIX, dry_run
        )
        if not dry_run:
            with self._lock:
                self._endpoints.clear()
                self._seen.clear()
                self._store = None
        return removed

    def close(self) -> None:
        self._http.close()
        self._web.close()
        self._blob.close()
