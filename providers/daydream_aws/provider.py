"""The AWS Lambda adapter: boto3 behind the provider contract.

One function per (runtime environment, tier), with deterministic hashed names and daydream's
tags; the runtime environment is one layer (or a container image when it is too large);
synchronous invocations with the log tail, whose REPORT line gives what was measured and
billed; hot starts as concurrent warm-up invocations that hold their instance; the object
store is a prefix of a private S3 bucket. boto3 is imported here only, and this module only
when the provider is created.
"""

from __future__ import annotations

import builtins
import json
import math
import re
import threading
import time
import uuid
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
    ReadTimeoutError,
)

from daydream_aws import faults, wire
from daydream_aws import provisioned as provisioning
from daydream_aws.aliases import Aliases
from daydream_aws.ecr import ImagePublisher
from daydream_aws.facts import PROVISIONED_PRICES, SNAPSTART_PRICES
from daydream_aws.options import MAX_MEMORY_MB, MIN_MEMORY_MB, AwsOptions, check_region
from daydream_aws.packaging import (
    UNZIPPED_MAX_BYTES,
    Bundle,
    Package,
    build_layer,
    choose_package_why,
    function_zip,
)
from daydream_aws.plan import ALIAS, describe
from daydream_aws.report import Report, decode_log_result, parse_report
from daydream_aws.store import S3ObjectStore, s3_client
from daydream_core import auth
from daydream_core.backoff import Backoff
from daydream_core.errors import (
    ConfigurationError,
    FunctionNotFound,
    FunctionTimeout,
    ProviderError,
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
    function_name,
)
from daydream_core.runtime import WARMUP, raise_for_envelope
from daydream_core.workflow import RuntimeEnvironment

_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LAYER_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
WARM_ROUNDS = 3  # warm-up rounds before settling for fewer distinct instances than asked
READY_POLLS = 120  # polls (1 s apart) for a function to become Active / finish an update
CONNECT_TIMEOUT_S = 10
MAX_POOL_CONNECTIONS = 256


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


@dataclass(frozen=True)
class _Answer:
    """A successful invocation, decoded."""

    envelope: dict[str, Any]
    report: Report | None


class AwsProvider(Provider):
    """AWS Lambda, as daydream uses it."""

    name = "aws"

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        session: Any = None,
        backoff: Backoff | None = None,
        sleep: Any = None,
    ) -> None:
        options = AwsOptions.parse(settings.options)
        if settings.concurrency is not None:
            options = options.with_changes(max_concurrency=settings.concurrency)
        self.options = options
        self._state_dir = Path(settings.state_dir) / "aws"
        try:
            self._session = session or boto3.session.Session(
                profile_name=options.profile, region_name=options.region
            )
        except ProfileNotFound as exc:
            raise ConfigurationError(f"aws: {exc}") from None
        self.region: str = self._session.region_name or ""
        if not self.region:
            raise ConfigurationError(
                "aws: no region configured; set AWS_REGION (or AWS_DEFAULT_REGION), a region in "
                "~/.aws/config, or -o region=NAME"
            )
        check_region(self.region, "aws: region")
        if self._session.get_credentials() is None:
            raise ConfigurationError(
                "aws: no credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, or sign in with `aws configure` / `aws sso login`"
            )
        self._backoff = backoff or Backoff(
            options.max_attempts, options.backoff_base_s, options.backoff_cap_s
        )
        self._sleep = sleep or threading.Event().wait
        pool = min(MAX_POOL_CONNECTIONS, max(10, options.max_concurrency))
        self._control_config = Config(
            retries={"mode": "standard", "total_max_attempts": 5},
            connect_timeout=CONNECT_TIMEOUT_S,
            max_pool_connections=pool,
        )
        self._pool_connections = pool
        self._lambda = self._client("lambda")
        self._invoke_clients: dict[int, Any] = {}
        self._lock = threading.RLock()
        self._account: tuple[str, str] | None = None
        self._role_arn: str | None = None
        self._bucket: str | None = None
        self._store: S3ObjectStore | None = None
        self._bundles: dict[RuntimeEnvironment, Bundle] = {}
        # Execution environments seen answering, per function: id -> when last seen.
        self._seen: dict[str, dict[str, float]] = {}
        self._code: dict[RuntimeEnvironment, tuple[str, str]] = {}
        self._keys: dict[str, str] = {}  # payload keys by function (never logged)
        # SnapStart and provisioned concurrency: functions invoked through daydream's alias,
        # the warm-up inits paid per function (when), and provisioned capacity (count, since).
        self._aliases = Aliases(self._lambda, self._sleep)
        self._qualified: dict[str, str] = {}
        self._warm_inits: dict[str, list[tuple[float, float]]] = {}
        self._held: dict[str, tuple[int, float]] = {}

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> AwsProvider:
        return cls(settings)

    # -- clients -------------------------------------------------------------------------------

    def _client(self, service: str, config: Any = None) -> Any:
        return self._session.client(
            service,
            endpoint_url=self.options.endpoint_url,
            config=config or self._control_config,
        )

    def _invoke_client(self, timeout: float) -> Any:
        """A Lambda client that waits `timeout` plus the slack; botocore retries nothing (a
        retried Invoke would run a component twice): throttling is retried by our backoff."""
        read_timeout = max(1, math.ceil(timeout + self.options.timeout_slack_s))
        with self._lock:
            client = self._invoke_clients.get(read_timeout)
            if client is None:
                config = Config(
                    read_timeout=read_timeout,
                    connect_timeout=CONNECT_TIMEOUT_S,
                    retries={"mode": "standard", "total_max_attempts": 1},
                    max_pool_connections=self._pool_connections,
                    tcp_keepalive=True,
                )
                client = self._client("lambda", config)
                self._invoke_clients[read_timeout] = client
            return client

    # -- what the provider declares ------------------------------------------------------------

    def tiers(self) -> Mapping[str, Tier]:
        return self.options.tiers()

    def prices(self) -> PriceTable:
        return self.options.prices()

    def capabilities(self) -> Capabilities:
        return Capabilities(
            max_payload_bytes=wire.MAX_SYNC_PAYLOAD_BYTES,
            max_concurrency=self.options.max_concurrency,
            releases_instances=False,  # Lambda reclaims idle environments; idling is free
        )

    # -- account, role, bucket (checked before anything is created) ----------------------------

    def _identity(self) -> tuple[str, str]:
        """(account id, partition) of the credentials, checked once."""
        with self._lock:
            if self._account is None:
                try:
                    arn = self._client("sts").get_caller_identity()["Arn"]
                except NoCredentialsError:
                    raise ConfigurationError("aws: no credentials found") from None
                except ClientError as exc:
                    raise ConfigurationError(
                        f"aws: the credentials were refused ({_code(exc)}): {_message(exc)}"
                    ) from None
                except BotoCoreError as exc:
                    raise ConfigurationError(f"aws: cannot reach AWS: {exc}") from None
                _, partition, _, _, account, _ = arn.split(":", 5)
                self._account = (account, partition)
            return self._account

    def _role(self) -> str:
        """The execution role's ARN, required and checked before the first deploy."""
        with self._lock:
            if self._role_arn is not None:
                return self._role_arn
            account, partition = self._identity()
            arn = self.options.role_arn(account, partition)
            if arn is None:
                raise ConfigurationError(
                    "aws: no execution role; pass -o role=ARN (or set DAYDREAM_AWS_ROLE): a role "
                    "Lambda can assume, with logs and S3 access (see docs/aws.md)"
                )
            role_name = arn.rsplit("/", 1)[-1]
            try:
                self._client("iam").get_role(RoleName=role_name)
            except ClientError as exc:
                if _code(exc) == "NoSuchEntity":
                    raise ConfigurationError(
                        f"aws: the execution role {arn} does not exist"
                    ) from None
                # No iam:GetRole permission: Lambda itself checks the role at create time.
            self._role_arn = arn
            return arn

    def _bucket_name(self) -> str:
        if self.options.bucket:
            return self.options.bucket
        account, _ = self._identity()
        return f"daydream-{account}-{self.region}"[:63]

    def _ensure_bucket(self) -> str:
        """Create the private bucket if missing, or check the one given."""
        with self._lock:
            if self._bucket is not None:
                return self._bucket
            name = self._bucket_name()
            s3 = self._s3()
            try:
                s3.head_bucket(Bucket=name)
            except ClientError as exc:
                if _code(exc) in ("403", "AccessDenied", "Forbidden"):
                    raise ConfigurationError(
                        f"aws: bucket {name!r} exists but these credentials cannot use it; "
                        "choose another with -o bucket=NAME"
                    ) from None
                if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise ProviderError(f"checking bucket {name!r} failed: {exc}") from None
                self._create_bucket(s3, name)
            else:
                self._check_private(s3, name)
            self._bucket = name
            return name

    def _create_bucket(self, s3: Any, name: str) -> None:
        request: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            s3.create_bucket(**request)
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":
                raise ConfigurationError(
                    f"aws: cannot create bucket {name!r} ({_code(exc)}); choose another with "
                    "-o bucket=NAME"
                ) from None
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_tagging(
            Bucket=name, Tagging={"TagSet": [{"Key": wire.TAG_MANAGED, "Value": "true"}]}
        )

    def _check_private(self, s3: Any, name: str) -> None:
        try:
            block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        except ClientError:
            block = {}
        if not all(
            block.get(k)
            for k in (
                "BlockPublicAcls",
                "IgnorePublicAcls",
                "BlockPublicPolicy",
                "RestrictPublicBuckets",
            )
        ):
            warnings.warn(
                f"aws: bucket {name!r} does not block public access itself; make sure the "
                "account does (S3 Block Public Access)",
                stacklevel=3,
            )

    def _s3(self) -> Any:
        return s3_client(self.options.endpoint_url, self._session)

    def store(self) -> ObjectStore:
        with self._lock:
            if self._store is None:
                self._store = S3ObjectStore(self._ensure_bucket(), self.options.prefix, self._s3())
            return self._store

    # -- deploy --------------------------------------------------------------------------------

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        name = function_name(runtime, tier)
        if not _FUNCTION_NAME.match(name):
            raise ConfigurationError(
                f"aws: function name {name!r} is not a valid Lambda name (at most 64 letters, "
                "digits, '-' or '_'); shorten the workflow's name"
            )
        if not MIN_MEMORY_MB <= tier.memory_mb <= MAX_MEMORY_MB:
            raise ConfigurationError(
                f"aws: tier {tier.name!r} has {tier.memory_mb} MB, outside Lambda's "
                f"{MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB"
            )
        role = self._role()
        self._ensure_bucket()
        package, code = self._runtime_code(runtime)
        try:
            current = self._lambda.get_function(FunctionName=name)["Configuration"]
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise ProviderError(f"looking up function {name!r} failed: {exc}") from None
            current = None
        environment = {
            wire.RUNTIME_VAR: json.dumps(asdict(runtime)),
            wire.TIER_VAR: json.dumps(asdict(tier)),
            wire.STORE_VAR: self.store().uri,
            wire.THREADS_VAR: str(max(1, math.ceil(tier.vcpus))),
            # An existing function keeps its key: runs using it meanwhile stay valid.
            wire.KEY_VAR: _configured_key(current) or auth.new_key(),
        }
        desired: dict[str, Any] = {
            "Role": role,
            "MemorySize": tier.memory_mb,
            "Timeout": self.options.function_timeout_s,
            "Environment": {"Variables": environment},
            "Description": f"daydream {runtime.name} ({tier.name} tier)",
        }
        if package == "image":
            desired["ImageConfig"] = {"Command": [wire.HANDLER]}
        else:
            desired.update(Handler=wire.HANDLER, Runtime=self.options.python_runtime, Layers=[code])
            apply_on = "PublishedVersions" if self.options.snapstart else "None"
            desired["SnapStart"] = {"ApplyOn": apply_on}
        if current is None:
            current = self._create_function(name, runtime, tier, package, code, desired)
            if _configured_key(current):  # created meanwhile by another controller: its key
                environment[wire.KEY_VAR] = str(_configured_key(current))
        if current is not None:
            self._update_function(name, runtime, tier, package, code, desired, current)
        self._wait_ready(name)
        with self._lock:
            self._keys[name] = _configured_key(current) or environment[wire.KEY_VAR]
        if self.options.snapstart or self.options.provisioned_concurrency:
            self._aliases.publish(name)
            with self._lock:
                self._qualified[name] = ALIAS
        return FunctionHandle(self.name, name, runtime, tier)

    def _key(self, name: str) -> str:
        """The payload key of function `name`, from its configuration (read once)."""
        with self._lock:
            key = self._keys.get(name)
        if key is None:
            try:
                config = self._lambda.get_function_configuration(FunctionName=name)
            except ClientError as exc:
                if _code(exc) == "ResourceNotFoundException":
                    raise FunctionNotFound(f"no function {name!r}") from None
                raise ProviderError(f"looking up function {name!r} failed: {exc}") from None
            key = _configured_key(config)
            if key is None:
                raise ProviderError(
                    f"function {name!r} has no payload key; deploy it again with this daydream"
                )
            with self._lock:
                self._keys[name] = key
        return key

    def _create_function(
        self,
        name: str,
        runtime: RuntimeEnvironment,
        tier: Tier,
        package: str,
        code: str,
        desired: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Create the function; None when created, its configuration when it already existed."""
        request = dict(desired)
        request.update(
            FunctionName=name,
            Architectures=[self.options.architecture],
            Tags={
                wire.TAG_MANAGED: "true",
                wire.TAG_RUNTIME: runtime.name,
                wire.TAG_TIER: tier.name,
            },
            Publish=False,
        )
        if package == "image":
            request.update(PackageType="Image", Code={"ImageUri": code})
        else:
            request.update(PackageType="Zip", Code={"ZipFile": function_zip(runtime, tier)})
        try:
            self._lambda.create_function(**request)
        except ClientError as exc:
            if _code(exc) == "ResourceConflictException":  # created meanwhile, elsewhere
                return dict(self._lambda.get_function(FunctionName=name)["Configuration"])
            if _code(exc) in ("InvalidParameterValueException", "AccessDeniedException"):
                raise ConfigurationError(
                    f"aws: cannot create function {name!r}: {_message(exc)}"
                ) from None
            raise ProviderError(f"creating function {name!r} failed: {exc}") from None
        return None

    def _update_function(
        self,
        name: str,
        runtime: RuntimeEnvironment,
        tier: Tier,
        package: str,
        code: str,
        desired: dict[str, Any],
        current: Mapping[str, Any],
    ) -> None:
        """Bring an existing function to the desired configuration (deploy is idempotent)."""
        if current.get("PackageType", "Zip") != ("Image" if package == "image" else "Zip"):
            raise ProviderError(
                f"function {name!r} exists with another package type; run `daydream --provider "
                "aws cleanup` first"
            )
        changes: dict[str, Any] = {}
        for key, value in desired.items():
            if key == "Layers":
                if [layer["Arn"] for layer in current.get("Layers", [])] != value:
                    changes[key] = value
            elif key == "ImageConfig":
                response = current.get("ImageConfigResponse", {}).get("ImageConfig", {})
                if response.get("Command") != value["Command"]:
                    changes[key] = value
            elif key == "SnapStart":
                if current.get("SnapStart", {}).get("ApplyOn", "None") != value["ApplyOn"]:
                    changes[key] = value
            elif key == "Environment":
                if current.get("Environment", {}).get("Variables", {}) != value["Variables"]:
                    changes[key] = value
            elif current.get(key) != value:
                changes[key] = value
        if changes:
            self._wait_ready(name)
            self._lambda.update_function_configuration(FunctionName=name, **changes)
        architectures = current.get("Architectures", ["x86_64"])
        if package == "image":
            self._wait_ready(name)
            self._lambda.update_function_code(
                FunctionName=name, ImageUri=code, Architectures=[self.options.architecture]
            )
        elif architectures != [self.options.architecture]:
            self._wait_ready(name)
            self._lambda.update_function_code(
                FunctionName=name,
                ZipFile=function_zip(runtime, tier),
                Architectures=[self.options.architecture],
            )

    def _wait_ready(self, name: str) -> None:
        """Wait (bounded) until the function is Active and not being updated."""
        for _ in range(READY_POLLS):
            config = self._lambda.get_function_configuration(FunctionName=name)
            state = config.get("State", "Active")
            update = config.get("LastUpdateStatus", "Successful")
            if state == "Failed" or update == "Failed":
                reason = config.get("StateReason") or config.get("LastUpdateStatusReason", "")
                raise ProviderError(f"function {name!r} failed to deploy: {reason}")
            if state == "Active" and update in ("Successful", None):
                return
            self._sleep(1.0)
        raise ProviderError(f"function {name!r} did not become ready in {READY_POLLS} s")

    def _runtime_code(self, runtime: RuntimeEnvironment) -> tuple[str, str]:
        """("layer", layer version ARN) or ("image", image URI) for `runtime`, made once."""
        with self._lock:
            if runtime in self._code:
                return self._code[runtime]
            if self.options.image_uri:
                self._code[runtime] = ("image", self.options.image_uri)
                return self._code[runtime]
            bundle = self._bundle(runtime)
            package, _ = self._package(bundle)
            if package == "image":
                self._code[runtime] = ("image", self._images().publish(runtime.name, bundle))
            else:
                self._code[runtime] = ("layer", self._publish_layer(runtime, bundle, package))
            return self._code[runtime]

    def _package(self, bundle: Bundle) -> tuple[Package, str]:
        """The path for `bundle` (layer, layer through S3, image) and why, per `package`."""
        package, why = choose_package_why(bundle, self.options.image_uri)
        if self.options.package == "image" and package != "image":
            return "image", "package=image asked for an image"
        if self.options.package == "layer" and package == "image":
            raise ConfigurationError(
                f"aws: package=layer, but the runtime environment is "
                f"{bundle.unzipped_bytes / 2**20:.0f} MB unzipped, over Lambda's "
                f"{UNZIPPED_MAX_BYTES // 2**20} MB for layers; use package=auto or image"
            )
        if self.options.snapstart and package == "image":
            raise ConfigurationError(
                f"aws: snapstart needs a layer deployment, but {why}; drop -o snapstart"
            )
        return package, why

    def _images(self) -> ImagePublisher:
        return ImagePublisher(self._client("ecr"), self.options, self._state_dir)

    def plan_deploy(self, runtime: RuntimeEnvironment) -> builtins.list[str]:
        """What deploying `runtime` would create, sizes and the path chosen; creates nothing
        and calls no AWS API (the layer is built locally, as deploy would build it)."""
        if self.options.image_uri:
            bundle = Bundle(self._state_dir / "none", "", 0, 0)
        else:
            bundle = self._bundle(runtime)
        package, why = self._package(bundle)
        functions = {function_name(runtime, tier): tier for tier in self.tiers().values()}
        return describe(
            runtime.name,
            bundle,
            package,
            why,
            self.options,
            functions,
            self.layer_name(runtime),
            ImagePublisher(None, self.options, self._state_dir).tag(runtime.name, bundle),
        )

    def _bundle(self, runtime: RuntimeEnvironment) -> Bundle:
        if runtime not in self._bundles:
            self._bundles[runtime] = build_layer(
                runtime,
                architecture=self.options.architecture,
                python_runtime=self.options.python_runtime,
                install=self.options.install_requirements,
                cache_dir=self._state_dir / "layers",
            )
        return self._bundles[runtime]

    def layer_name(self, runtime: RuntimeEnvironment) -> str:
        safe = _LAYER_UNSAFE.sub("-", runtime.name)
        return f"{NAME_PREFIX}{safe}-{self.options.architecture}"[:140]

    def _publish_layer(self, runtime: RuntimeEnvironment, bundle: Bundle, package: str) -> str:
        """The layer version holding `bundle`: found by its digest, else published."""
        layer = self.layer_name(runtime)
        description = f"{wire.DESCRIPTION_MARK} {runtime.name} sha256={bundle.sha256}"[:256]
        for version in self._layer_versions(layer):
            if version.get("Description") == description:
                return str(version["LayerVersionArn"])
        transfer_key = None
        content: dict[str, Any]
        if package == "layer-via-s3":
            transfer_key = f"_deploy/{layer}-{bundle.sha256[:16]}.zip"
            store = self.store()
            store.put(transfer_key, bundle.path.read_bytes())
            assert isinstance(store, S3ObjectStore)
            content = {"S3Bucket": store.bucket, "S3Key": store._key(transfer_key)}
        else:
            content = {"ZipFile": bundle.path.read_bytes()}
        try:
            published = self._lambda.publish_layer_version(
                LayerName=layer,
                Description=description,
                Content=content,
                CompatibleRuntimes=[self.options.python_runtime],
                CompatibleArchitectures=[self.options.architecture],
            )
        except ClientError as exc:
            raise ProviderError(f"publishing layer {layer!r} failed: {_message(exc)}") from None
        finally:
            if transfer_key is not None:
                self.store().delete(transfer_key)
        return str(published["LayerVersionArn"])

    def _layer_versions(self, layer: str) -> list[dict[str, Any]]:
        versions: list[dict[str, Any]] = []
        try:
            for page in self._lambda.get_paginator("list_layer_versions").paginate(LayerName=layer):
                versions.extend(page.get("LayerVersions", []))
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
        return versions

    # -- invoke and warm -----------------------------------------------------------------------

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        answer = self._call(function, payload, timeout, enforce=True)
        envelope = answer.envelope
        raise_for_envelope(envelope)
        report = answer.report
        start = StartKind(envelope.get("start", StartKind.COLD.value))
        if report is not None:
            init_ms, billed_ms, surcharge = self._startup(report)
            if report.restore_ms is not None and start is StartKind.COLD:
                start = StartKind.RESTORED
            return Invocation(
                output=envelope.get("output"),
                instance=str(envelope.get("instance", "")),
                start=start,
                init_ms=init_ms,
                duration_ms=report.duration_ms,
                billed_ms=billed_ms,
                memory_mb=report.memory_mb,
                max_memory_used_mb=report.max_memory_used_mb,
                surcharge=surcharge,
            )
        # A compatible endpoint without the log tail: the instance's own measurements.
        init_ms = float(envelope.get("init_ms", 0.0))
        duration_ms = float(envelope.get("execution_ms", 0.0))
        return Invocation(
            output=envelope.get("output"),
            instance=str(envelope.get("instance", "")),
            start=start,
            init_ms=init_ms,
            duration_ms=duration_ms,
            billed_ms=self.prices().billed_ms(duration_ms + init_ms),
            memory_mb=function.tier.memory_mb,
            max_memory_used_mb=float(envelope.get("max_memory_mb", 0.0)),
        )

    def _startup(self, report: Report) -> tuple[float, float, float]:
        """(init ms, billed ms, surcharge) of a report: a SnapStart restore counts as the
        environment's init, its hooks' time is billed as duration (daydream adds Billed
        Restore Duration to Billed Duration), and the restore is charged per GB restored."""
        if report.restore_ms is None:
            return report.init_ms or 0.0, report.billed_ms, 0.0
        billed = report.billed_ms + (report.billed_restore_ms or 0.0)
        restore = SNAPSTART_PRICES[self.options.architecture].restore_cost(report.memory_mb)
        return report.restore_ms, billed, restore

    def _hold_with_provisioned_concurrency(self, function: FunctionHandle, n: int) -> float:
        """Provision `n` more environments on the alias when that is cheaper than warm-ups
        over the horizon; the held capacity's cost per new environment (0: warm-ups)."""
        name, tier = function.name, function.tier
        horizon = self.options.provisioned_horizon_s
        now = time.monotonic()
        with self._lock:
            inits = [i for i in self._warm_inits.get(name, []) if i[0] > now - horizon]
            held, since = self._held.get(name, (0, now))
        if held and now - since > horizon:  # the horizon paid for has passed: start afresh
            self._aliases.unprovision(name)
            held = 0
        init_ms = max((ms for _, ms in inits), default=0.0) or provisioning.ASSUMED_INIT_MS
        choice = provisioning.choose(
            held + n,
            tier.memory_mb,
            init_ms=init_ms,
            hold_ms=float(self.options.warm_hold_ms),
            warm_ups_per_horizon=float(len(inits) + n),
            horizon_s=horizon,
            on_demand=self.prices(),
            provisioned=PROVISIONED_PRICES[self.options.architecture],
        )
        if not choice.provisioned:
            return 0.0
        self._aliases.provision(name, held + n)
        with self._lock:
            self._held[name] = (held + n, now)
        return choice.provisioned_cost / (held + n)

    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        """n concurrent warm-ups that initialise and hold, so they occupy n distinct instances;
        a round whose warm-ups landed on fewer instances is repeated (at most WARM_ROUNDS)."""
        if n <= 0:
            return []
        payload = {"kind": WARMUP, "hold_ms": self.options.warm_hold_ms}
        timeout = float(self.options.function_timeout_s)
        held_cost = 0.0
        if self.options.provisioned_concurrency and function.name in self._qualified:
            held_cost = self._hold_with_provisioned_concurrency(function, n)
        started: dict[str, WarmStart] = {}
        failures: list[Exception] = []

        def one(_: int) -> _Answer | Exception:
            try:
                return self._call(function, payload, timeout, enforce=False)
            except FunctionNotFound:
                raise
            except ProviderError as exc:
                return exc

        workers = min(n, self.options.max_concurrency)
        for _ in range(WARM_ROUNDS):
            with ThreadPoolExecutor(workers, thread_name_prefix="daydream-aws-warm") as pool:
                outcomes = list(pool.map(one, range(n)))
            answers = [o for o in outcomes if isinstance(o, _Answer)]
            failures.extend(o for o in outcomes if isinstance(o, Exception))
            for answer in answers:
                envelope = answer.envelope
                if envelope.get("first") and envelope.get("instance") not in started:
                    started[str(envelope["instance"])] = self._warm_start(
                        function, answer, held_cost
                    )
            if not answers or len({a.envelope.get("instance") for a in answers}) >= n:
                break
        if not started and failures:
            raise failures[0]
        return list(started.values())

    def _warm_start(self, function: FunctionHandle, answer: _Answer, held_cost: float) -> WarmStart:
        """What one warm-up started: its init (or restore) and what it cost. An environment
        of provisioned concurrency ran its init when provisioned, paid by `held_cost`."""
        envelope, report = answer.envelope, answer.report
        surcharge = held_cost
        if report is not None:
            init_ms, billed, restore = self._startup(report)
            surcharge += restore
        else:
            init_ms = float(envelope.get("init_ms", 0.0))
            billed = self.prices().billed_ms(init_ms + float(envelope.get("execution_ms", 0.0)))
        if init_ms > 0:
            with self._lock:
                self._warm_inits.setdefault(function.name, []).append((time.monotonic(), init_ms))
        return WarmStart(str(envelope["instance"]), init_ms, billed, surcharge)

    def _call(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float, *, enforce: bool
    ) -> _Answer:
        """One synchronous invocation (retried when throttled), decoded; typed errors."""
        kind = str(payload.get("kind", ""))
        key = self._key(function.name)
        ttl = timeout + self.options.timeout_slack_s + auth.DEFAULT_TTL_S
        options: dict[str, Any] = {}
        if enforce:
            options[wire.OPT_TIMEOUT] = timeout
        body = json.dumps(auth.sign({**payload, wire.RESERVED: options}, key, ttl_s=ttl)).encode()
        transfer_key = None
        if len(body) > wire.MAX_SYNC_PAYLOAD_BYTES:
            store = self.store()
            transfer_key = f"_transfer/payload-{uuid.uuid4().hex}.json"
            store.put(transfer_key, json.dumps(auth.sign(payload, key, ttl_s=ttl)).encode())
            options.update({wire.OPT_TRANSFER: store.uri, wire.OPT_PAYLOAD_KEY: transfer_key})
            wrapper = {"kind": kind, wire.RESERVED: options}
            body = json.dumps(auth.sign(wrapper, key, ttl_s=ttl)).encode()
        try:
            response = self._backoff.call(
                lambda: self._invoke_once(function.name, body, timeout), faults.retryable
            )
        except faults.Transient as exc:
            raise ProviderError(str(exc)) from None
        finally:
            if transfer_key is not None:
                self.store().delete(transfer_key)
        raw = response["Payload"].read()
        report = parse_report(decode_log_result(response.get("LogResult")))
        if response.get("FunctionError"):
            raise faults.function_error(kind, str(response["FunctionError"]), raw, report)
        try:
            envelope = json.loads(raw)
        except ValueError:
            raise ProviderError(f"{function.name!r} answered with no JSON: {raw[:200]!r}") from None
        if not isinstance(envelope, dict) or "ok" not in envelope:
            raise ProviderError(f"{function.name!r} answered with no envelope: {raw[:200]!r}")
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
        return _Answer(envelope, report)

    def _invoke_once(self, name: str, body: bytes, timeout: float) -> dict[str, Any]:
        client = self._invoke_client(timeout)
        qualifier = {"Qualifier": self._qualified[name]} if name in self._qualified else {}
        try:
            response: dict[str, Any] = client.invoke(
                FunctionName=name,
                InvocationType="RequestResponse",
                LogType="Tail",
                Payload=body,
                **qualifier,
            )
        except ClientError as exc:
            raise faults.api_error(_code(exc), _message(exc), _status(exc), name) from None
        except ReadTimeoutError:
            wait = timeout + self.options.timeout_slack_s
            raise FunctionTimeout(
                f"no answer from {name!r} within {wait:g} s (the function may run on until "
                f"its own {self.options.function_timeout_s} s limit)"
            ) from None
        except EndpointConnectionError as exc:
            raise faults.Transient(f"cannot reach Lambda: {exc}") from None
        except (NoCredentialsError, NoRegionError) as exc:
            raise ConfigurationError(f"aws: {exc}") from None
        except BotoCoreError as exc:
            raise ProviderError(f"invoking {name!r} failed: {exc}") from None
        return response

    def instances(self, function: FunctionHandle) -> list[str]:
        """Environments seen within the time Lambda is expected to keep an idle one."""
        horizon = time.monotonic() - self.options.keep_alive_estimate_s
        with self._lock:
            seen = self._seen.get(function.name, {})
            for instance in [i for i, at in seen.items() if at < horizon]:
                del seen[instance]
            return sorted(seen)

    def release(self, function: FunctionHandle, keep: int) -> list[str]:
        return []  # Lambda reclaims idle environments on its own schedule, at no cost

    # -- delete, list, cleanup -----------------------------------------------------------------

    def delete(self, function: FunctionHandle) -> None:
        with self._lock:
            self._seen.pop(function.name, None)
            self._keys.pop(function.name, None)
            self._qualified.pop(function.name, None)
            self._held.pop(function.name, None)
        try:
            self._lambda.delete_function(FunctionName=function.name)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise ProviderError(f"deleting {function.name!r} failed: {exc}") from None

    def _functions(self, prefix: str) -> builtins.list[dict[str, Any]]:
        found: builtins.list[dict[str, Any]] = []
        for page in self._lambda.get_paginator("list_functions").paginate():
            functions = page.get("Functions", [])
            found.extend(f for f in functions if f["FunctionName"].startswith(prefix))
        return found

    def list(self, prefix: str = NAME_PREFIX) -> list[str]:
        return sorted(f["FunctionName"] for f in self._functions(prefix))

    def cleanup(self, dry_run: bool = False) -> builtins.list[str]:
        """Every function, layer version and object daydream created (and its bucket)."""
        removed: builtins.list[str] = []
        for function in self._functions(NAME_PREFIX):
            tags = self._lambda.list_tags(Resource=function["FunctionArn"]).get("Tags", {})
            if tags.get(wire.TAG_MANAGED) != "true":
                continue
            removed.append(f"function {function['FunctionName']}")
            if not dry_run:
                self._lambda.delete_function(FunctionName=function["FunctionName"])
        for page in self._lambda.get_paginator("list_layers").paginate():
            for layer in page.get("Layers", []):
                if not layer["LayerName"].startswith(NAME_PREFIX):
                    continue
                for version in self._layer_versions(layer["LayerName"]):
                    if not str(version.get("Description", "")).startswith(wire.DESCRIPTION_MARK):
                        continue
                    removed.append(f"layer {version['LayerVersionArn']}")
                    if not dry_run:
                        self._lambda.delete_layer_version(
                            LayerName=layer["LayerName"], VersionNumber=version["Version"]
                        )
        removed.extend(self._images().cleanup(dry_run))
        removed.extend(self._cleanup_bucket(dry_run))
        if not dry_run:
            with self._lock:
                self._code.clear()
                self._bucket = None
                self._store = None
        return removed

    def _cleanup_bucket(self, dry_run: bool) -> builtins.list[str]:
        name = self._bucket_name()
        s3 = self._s3()
        try:
            s3.head_bucket(Bucket=name)
        except ClientError:
            return []
        removed = []
        store = S3ObjectStore(name, self.options.prefix, s3)
        keys = store.list()
        if keys:
            removed.append(f"objects {store.uri}/ ({len(keys)})")
            if not dry_run:
                store.delete("")
        try:
            tags = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
        except ClientError:
            tags = []
        if {"Key": wire.TAG_MANAGED, "Value": "true"} in tags:
            others = s3.list_objects_v2(Bucket=name, MaxKeys=1).get("KeyCount", 0)
            if dry_run or not others:
                removed.append(f"bucket {name}")
                if not dry_run:
                    s3.delete_bucket(Bucket=name)
        return removed

    def close(self) -> None:
        """Also ends provisioned concurrency: held capacity is billed until removed."""
        with self._lock:
            held, self._held = list(self._held), {}
        for name in held:
            self._aliases.unprovision(name)
        with self._lock:
            clients = [self._lambda, *self._invoke_clients.values()]
            self._invoke_clients.clear()
        for client in clients:
            client.close()


def _configured_key(config: Mapping[str, Any] | None) -> str | None:
    """The payload key kept in a function's configuration, if it has one."""
    if not config:
        return None
    variables = config.get("Environment", {}).get("Variables", {})
    return variables.get(wire.KEY_VAR) or None
