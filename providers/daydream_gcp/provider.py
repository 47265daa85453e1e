"""The Google Cloud Functions (2nd gen) adapter: the v2 API behind the provider contract.

One function per (runtime environment, tier), with the core's hashed names and daydream's
labels; the runtime environment is the function's source (a zip uploaded through
``generateUploadUrl``, built by Cloud Functions); one request per instance, so instances
behave like Lambda's; creation, update and deletion are long-running operations polled to
completion within a bound. Invocations are HTTPS POSTs to the function's URL with an ID token,
retried with bounded, jittered backoff on 429, 503 and connection resets; hot starts are
concurrent warm-ups that hold their instance. The object store is a prefix of a private GCS
bucket. The Google libraries are imported here (and in `store` and `auth`) only.
"""

from __future__ import annotations

import builtins
import json
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
from google.api_core import exceptions as api
from google.api_core.client_options import ClientOptions
from google.cloud import functions_v2

from daydream_core import auth
from daydream_core.backoff import Backoff
from daydream_core.errors import ConfigurationError, FunctionNotFound, ProviderError
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
from daydream_gcp import faults, wire
from daydream_gcp.auth import IdTokens, default_credentials
from daydream_gcp.functions import FunctionsApi, desired_function, differences
from daydream_gcp.options import GcpOptions, check_resources
from daydream_gcp.packaging import Source, build_source
from daydream_gcp.store import GcsObjectStore, storage_client

_FUNCTION_ID = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
WARM_ROUNDS = 3  # warm-up rounds before settling for fewer distinct instances than asked
CONNECT_TIMEOUT_S = 10.0


class GcpProvider(Provider):
    """Google Cloud Functions (2nd gen), as daydream uses it."""

    name = "gcp"

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        credentials: Any = None,
        backoff: Backoff | None = None,
    ) -> None:
        options = GcpOptions.parse(settings.options)
        if settings.concurrency is not None:
            options = options.with_changes(max_concurrency=settings.concurrency)
        if credentials is None:
            credentials, adc_project = default_credentials()
            if options.project is None and adc_project:
                options = options.with_changes(project=adc_project)
        if not options.project:
            raise ConfigurationError(
                "gcp: no project configured; set GOOGLE_CLOUD_PROJECT, or -o project=ID"
            )
        self.options = options
        self.deployment = settings.deployment
        self.project: str = options.project
        self.region: str = options.region or ""
        self._state_dir = Path(settings.state_dir) / "gcp"
        self._credentials = credentials
        client_options = ClientOptions(api_endpoint=options.endpoint) if options.endpoint else None
        client = functions_v2.FunctionServiceClient(
            credentials=credentials, transport="rest", client_options=client_options
        )
        self._api = FunctionsApi(
            client,
            f"projects/{self.project}/locations/{self.region}",
            options.operation_timeout_s,
            options.operation_poll_s,
        )
        self._tokens = IdTokens(credentials)
        self._backoff = backoff or Backoff(
            options.max_attempts, options.backoff_base_s, options.backoff_cap_s
        )
        self._http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=8, pool_maxsize=min(256, max(10, options.max_concurrency))
        )
        self._http.mount("https://", adapter)
        self._http.mount("http://", adapter)
        self._lock = threading.RLock()
        self._storage: Any = None
        self._bucket: str | None = None
        self._store: GcsObjectStore | None = None
        self._sources: dict[RuntimeEnvironment, Source] = {}
        self._uris: dict[str, str] = {}
        self._keys: dict[str, str] = {}  # payload keys by function (never logged)
        # Instances seen answering, per function: id -> when last seen.
        self._seen: dict[str, dict[str, float]] = {}

    # -- what the provider declares ------------------------------------------------------------

    def tiers(self) -> Mapping[str, Tier]:
        return self.options.tiers()

    def prices(self) -> PriceTable:
        return self.options.prices()

    def capabilities(self) -> Capabilities:
        return Capabilities(
            max_payload_bytes=wire.MAX_INLINE_BYTES,
            max_concurrency=self.options.max_concurrency,
            releases_instances=False,  # Cloud Run reclaims idle instances; idling is free
        )

    # -- the bucket ----------------------------------------------------------------------------

    def _gcs(self) -> Any:
        with self._lock:
            if self._storage is None:
                self._storage = storage_client(
                    self.project, self._credentials, self.options.storage_endpoint
                )
            return self._storage

    def bucket_name(self) -> str:
        return self.options.bucket or f"daydream-{self.project}-{self.region}"[:63]

    def _ensure_bucket(self) -> str:
        """Create the private, labelled bucket if missing, or check the one given."""
        with self._lock:
            if self._bucket is not None:
                return self._bucket
            name = self.bucket_name()
            gcs = self._gcs()
            try:
                gcs.get_bucket(name)
            except api.NotFound:
                bucket = gcs.bucket(name)
                bucket.labels = {wire.LABEL_MANAGED: "true"}
                bucket.iam_configuration.uniform_bucket_level_access_enabled = True
                bucket.iam_configuration.public_access_prevention = "enforced"
                try:
                    created = gcs.create_bucket(bucket, location=self.region)
                    if (created.labels or {}).get(wire.LABEL_MANAGED) != "true":
                        created.labels = {wire.LABEL_MANAGED: "true"}  # where insert drops them
                        created.patch()
                except api.Conflict:
                    raise ConfigurationError(
                        f"gcp: bucket {name!r} belongs to someone else; choose another with "
                        "-o bucket=NAME"
                    ) from None
            except api.Forbidden:
                raise ConfigurationError(
                    f"gcp: bucket {name!r} exists but these credentials cannot use it; choose "
                    "another with -o bucket=NAME"
                ) from None
            except api.GoogleAPICallError as exc:
                raise ProviderError(f"gcp: checking bucket {name!r} failed: {exc}") from None
            self._bucket = name
            return name

    def store(self) -> ObjectStore:
        with self._lock:
            if self._store is None:
                bucket = self._ensure_bucket()
                self._store = GcsObjectStore(bucket, self.options.prefix, self._gcs())
            return self._store

    # -- deploy --------------------------------------------------------------------------------

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        name = function_name(runtime, tier, self.deployment)
        if not _FUNCTION_ID.match(name):
            raise ConfigurationError(
                f"gcp: function name {name!r} is not a valid Cloud Functions id (at most 63 "
                "lowercase letters, digits or '-'); rename the workflow"
            )
        check_resources(f"tier {tier.name!r}", tier.memory_mb, tier.vcpus)
        source = self._source(runtime)
        current = self._api.get(name)
        environment = {
            wire.RUNTIME_VAR: json.dumps(asdict(runtime)),
            wire.TIER_VAR: json.dumps(asdict(tier)),
            wire.STORE_VAR: self.store().uri,
            wire.THREADS_VAR: str(max(1, math.ceil(tier.vcpus))),
            # An existing function keeps its key: runs using it meanwhile stay valid.
            wire.KEY_VAR: _configured_key(current) or auth.new_key(),
        }
        if current is None:
            storage_source = self._api.upload(source.data)
            desired = desired_function(
                self._api.path(name),
                runtime,
                tier,
                source,
                storage_source,
                environment,
                self.options,
                self.deployment,
            )
            try:
                deployed = self._api.create(name, desired)
            except ProviderError:
                self._delete_source(storage_source.bucket, storage_source.object_)
                raise
        else:
            fields = differences(current, runtime, tier, source, environment, self.options)
            if fields:
                storage_source = current.build_config.source.storage_source
                if "build_config.source" in fields:
                    storage_source = self._api.upload(source.data)
                desired = desired_function(
                    current.name,
                    runtime,
                    tier,
                    source,
                    storage_source,
                    environment,
                    self.options,
                    self.deployment,
                )
                deployed = self._api.update(desired, fields)
            else:
                deployed = current
        self._api.check_active(deployed)
        with self._lock:
            self._uris[name] = deployed.service_config.uri
            self._keys[name] = _configured_key(deployed) or environment[wire.KEY_VAR]
        return FunctionHandle(self.name, name, runtime, tier)

    def _source(self, runtime: RuntimeEnvironment) -> Source:
        with self._lock:
            if runtime not in self._sources:
                self._sources[runtime] = build_source(runtime)
            return self._sources[runtime]

    def _delete_source(self, bucket: str, name: str) -> bool:
        """Delete an uploaded source object; False where it is gone or not ours to reach."""
        if not bucket or not name:
            return False
        try:
            self._gcs().bucket(bucket).blob(name).delete()
        except (api.NotFound, api.Forbidden):
            return False
        return True

    def _key(self, function: FunctionHandle) -> str:
        """The function's payload key, from its configuration (read once)."""
        with self._lock:
            key = self._keys.get(function.name)
        if key is None:
            key = _configured_key(self._api.get(function.name))
            if key is None:
                raise FunctionNotFound(
                    f"gcp: function {function.name!r} does not exist, or has no payload key "
                    "(deploy it again with this daydream)"
                )
            with self._lock:
                self._keys[function.name] = key
        return key

    def _uri(self, function: FunctionHandle) -> str:
        with self._lock:
            uri = self._uris.get(function.name)
        if uri:
            return uri
        current = self._api.get(function.name)
        if current is None or not current.service_config.uri:
            raise FunctionNotFound(f"gcp: function {function.name!r} does not exist")
        with self._lock:
            self._uris[function.name] = current.service_config.uri
        return str(current.service_config.uri)

    # -- invoke and warm -----------------------------------------------------------------------

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        envelope = self._call(function, payload, timeout)
        raise_for_envelope(envelope)
        init_ms = float(envelope.get("init_ms", 0.0))
        duration_ms = float(envelope.get("execution_ms", 0.0))
        return Invocation(
            output=envelope.get("output"),
            instance=str(envelope.get("instance", "")),
            start=StartKind(envelope.get("start", StartKind.COLD.value)),
            init_ms=init_ms,
            duration_ms=duration_ms,
            billed_ms=self.prices().billed_ms(duration_ms + init_ms),
            memory_mb=function.tier.memory_mb,
            max_memory_used_mb=float(envelope.get("max_memory_mb", 0.0)),
        )

    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        """n concurrent warm-ups that initialise and hold, so they occupy n distinct instances;
        a round whose warm-ups landed on fewer instances is repeated (at most WARM_ROUNDS)."""
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
            with ThreadPoolExecutor(workers, thread_name_prefix="daydream-gcp-warm") as pool:
                outcomes = list(pool.map(one, range(n)))
            answers = [o for o in outcomes if isinstance(o, dict)]
            failures.extend(o for o in outcomes if isinstance(o, Exception))
            for envelope in answers:
                instance = str(envelope.get("instance", ""))
                if envelope.get("first") and instance and instance not in started:
                    init_ms = float(envelope.get("init_ms", 0.0))
                    billed = self.prices().billed_ms(
                        init_ms + float(envelope.get("execution_ms", 0.0))
                    )
                    started[instance] = WarmStart(instance, init_ms, billed)
            if not answers or len({a.get("instance") for a in answers}) >= n:
                break
        if not started and failures:
            raise failures[0]
        return list(started.values())

    def _call(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> dict[str, Any]:
        """One request (retried when throttled or transiently refused), decoded."""
        kind = str(payload.get("kind", ""))
        signed = auth.sign(payload, self._key(function), ttl_s=timeout + auth.DEFAULT_TTL_S)
        body = json.dumps(signed).encode()
        transfer_key = None
        if len(body) > wire.MAX_INLINE_BYTES:
            store = self.store()
            transfer_key = f"_transfer/payload-{uuid.uuid4().hex}.json"
            store.put(transfer_key, body)  # signed: the handler verifies what it reads back
            reserved = {wire.OPT_PAYLOAD_KEY: transfer_key}
            body = json.dumps({"kind": kind, wire.RESERVED: reserved}).encode()
        uri = self._uri(function)
        try:
            envelope = self._backoff.call(
                lambda: self._post(function.name, uri, body, timeout), faults.retryable
            )
        except faults.Transient as exc:
            raise ProviderError(str(exc)) from None
        finally:
            if transfer_key is not None:
                self.store().delete(transfer_key)
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
                seen = self._seen.setdefault(function.name, {})
                seen[str(envelope["instance"])] = time.monotonic()
        return envelope

    def _post(self, name: str, uri: str, body: bytes, timeout: float) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {self._tokens.token(uri)}",
            "Content-Type": "application/json",
        }
        wait = timeout + self.options.timeout_slack_s
        try:
            response = self._http.post(
                uri, data=body, headers=headers, timeout=(CONNECT_TIMEOUT_S, wait)
            )
        except requests.exceptions.RequestException as exc:
            raise faults.request_error(name, exc, wait, self.options.function_timeout_s) from None
        return faults.decode(name, response)

    def instances(self, function: FunctionHandle) -> list[str]:
        """Instances seen within the time Cloud Run is expected to keep an idle one."""
        horizon = time.monotonic() - self.options.keep_alive_estimate_s
        with self._lock:
            seen = self._seen.get(function.name, {})
            for instance in [i for i, at in seen.items() if at < horizon]:
                del seen[instance]
            return sorted(seen)

    def release(self, function: FunctionHandle, keep: int) -> list[str]:
        return []  # Cloud Run reclaims idle instances on its own schedule, at no cost

    # -- delete, list, cleanup -----------------------------------------------------------------

    def delete(self, function: FunctionHandle) -> None:
        with self._lock:
            self._seen.pop(function.name, None)
            self._uris.pop(function.name, None)
            self._keys.pop(function.name, None)
        current = self._api.get(function.name)
        if current is None:
            return
        self._api.delete(function.name)
        source = current.build_config.source.storage_source
        self._delete_source(source.bucket, source.object_)

    def list(self, prefix: str = NAME_PREFIX) -> list[str]:
        return sorted(f.name.rsplit("/", 1)[-1] for f in self._api.list(prefix))

    def cleanup(self, dry_run: bool = False) -> builtins.list[str]:
        """Every function daydream created (by label and name prefix), its uploaded source,
        and daydream's objects and bucket; confined to a deployment, only its functions (its
        prefix and label) with their sources: the objects and bucket are shared."""
        removed: builtins.list[str] = []
        for function in self._api.list(deployment_prefix(self.deployment)):
            labels = function.labels
            if labels.get(wire.LABEL_MANAGED) != "true":
                continue
            if self.deployment is not None and labels.get(wire.LABEL_DEPLOYMENT) != self.deployment:
                continue
            short = function.name.rsplit("/", 1)[-1]
            removed.append(f"function {short}")
            source = function.build_config.source.storage_source
            if source.bucket and source.object_:
                removed.append(f"source gs://{source.bucket}/{source.object_} ({short})")
            if not dry_run:
                self._api.delete(short)
                self._delete_source(source.bucket, source.object_)
                with self._lock:
                    self._uris.pop(short, None)
                    self._seen.pop(short, None)
                    self._keys.pop(short, None)
        if self.deployment is not None:
            return removed
        removed.extend(self._cleanup_bucket(dry_run))
        if not dry_run:
            with self._lock:
                self._bucket = None
                self._store = None
        return removed

    def _cleanup_bucket(self, dry_run: bool) -> builtins.list[str]:
        name = self.bucket_name()
        gcs = self._gcs()
        try:
            bucket = gcs.get_bucket(name)
        except (api.NotFound, api.Forbidden):
            return []
        removed = []
        store = GcsObjectStore(name, self.options.prefix, gcs)
        keys = store.list()
        if keys:
            removed.append(f"objects {store.uri}/ ({len(keys)})")
            if not dry_run:
                store.delete("")
        if (bucket.labels or {}).get(wire.LABEL_MANAGED) == "true":
            others = list(gcs.list_blobs(name, max_results=1))
            if dry_run or not others:
                removed.append(f"bucket {name}")
                if not dry_run:
                    bucket.delete()
        return removed

    def close(self) -> None:
        self._http.close()
        self._api.close()


def _configured_key(function: Any) -> str | None:
    """The payload key in a deployed function's environment, if it has one."""
    if function is None:
        return None
    key = dict(function.service_config.environment_variables).get(wire.KEY_VAR)
    return str(key) if key else None
