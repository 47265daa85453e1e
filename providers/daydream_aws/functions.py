"""Lambda functions: created or brought to the desired configuration (deploy is
idempotent), with daydream's tags; deleted, listed, and cleaned up with their layers and
bucket."""

from __future__ import annotations

import builtins
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from botocore.exceptions import ClientError

from daydream_aws import wire
from daydream_aws.account import _code, _message
from daydream_aws.layers import AwsLayers
from daydream_aws.options import MAX_MEMORY_MB, MIN_MEMORY_MB
from daydream_aws.packaging import function_zip
from daydream_aws.plan import ALIAS
from daydream_aws.store import S3ObjectStore
from daydream_core import auth
from daydream_core.errors import ConfigurationError, FunctionNotFound, ProviderError
from daydream_core.model import Tier
from daydream_core.provider import NAME_PREFIX, FunctionHandle, deployment_prefix, function_name
from daydream_core.workflow import RuntimeEnvironment

_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
READY_POLLS = 120  # polls (1 s apart) for a function to become Active / finish an update


class AwsFunctions(AwsLayers):
    """Deploy, delete, list and cleanup of daydream's Lambda functions."""

    # -- deploy --------------------------------------------------------------------------------

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        name = function_name(runtime, tier, self.deployment)
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
            Tags=self._tags(runtime, tier),
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

    def _tags(self, runtime: RuntimeEnvironment, tier: Tier) -> dict[str, str]:
        tags = {wire.TAG_MANAGED: "true", wire.TAG_RUNTIME: runtime.name, wire.TAG_TIER: tier.name}
        if self.deployment is not None:
            tags[wire.TAG_DEPLOYMENT] = self.deployment
        return tags

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

    # -- delete, list, cleanup -----------------------------------------------------------------

    def delete(self, function: FunctionHandle) -> None:
        self._delete(function.name)

    def _delete(self, name: str) -> None:
        with self._lock:
            self._seen.pop(name, None)
            self._keys.pop(name, None)
            self._qualified.pop(name, None)
            self._held.pop(name, None)
        try:
            self._lambda.delete_function(FunctionName=name)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise ProviderError(f"deleting {name!r} failed: {exc}") from None

    def _functions(self, prefix: str) -> builtins.list[dict[str, Any]]:
        found: builtins.list[dict[str, Any]] = []
        for page in self._lambda.get_paginator("list_functions").paginate():
            functions = page.get("Functions", [])
            found.extend(f for f in functions if f["FunctionName"].startswith(prefix))
        return found

    def list(self, prefix: str = NAME_PREFIX) -> list[str]:
        return sorted(f["FunctionName"] for f in self._functions(prefix))

    def cleanup(self, dry_run: bool = False) -> builtins.list[str]:
        """Every function, layer version and object daydream created (and its bucket); for a
        provider confined to a deployment, that deployment's functions (name prefix and tag)
        and the layer versions it published that no other function uses, nothing shared."""
        removed: builtins.list[str] = []
        in_use: set[str] = set()  # layer versions that functions staying behind still use
        for function in self._functions(NAME_PREFIX):
            if not self._owned(function):
                in_use.update(layer["Arn"] for layer in function.get("Layers", []))
                continue
            removed.append(f"function {function['FunctionName']}")
            if not dry_run:
                self._delete(function["FunctionName"])
        removed.extend(self._cleanup_layers(dry_run, in_use))
        if self.deployment is not None:
            return removed  # the image repository, objects and bucket are shared
        removed.extend(self._images().cleanup(dry_run))
        removed.extend(self._cleanup_bucket(dry_run))
        if not dry_run:
            with self._lock:
                self._code.clear()
                self._bucket = None
                self._store = None
        return removed

    def _owned(self, function: Mapping[str, Any]) -> bool:
        """Whether `cleanup` may remove `function`: daydream's tag, and this deployment's
        prefix and tag when confined to one."""
        if not function["FunctionName"].startswith(deployment_prefix(self.deployment)):
            return False
        tags = self._lambda.list_tags(Resource=function["FunctionArn"]).get("Tags", {})
        if tags.get(wire.TAG_MANAGED) != "true":
            return False
        return self.deployment is None or tags.get(wire.TAG_DEPLOYMENT) == self.deployment

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


def _configured_key(config: Mapping[str, Any] | None) -> str | None:
    """The payload key kept in a function's configuration, if it has one."""
    if not config:
        return None
    variables = config.get("Environment", {}).get("Variables", {})
    return variables.get(wire.KEY_VAR) or None
