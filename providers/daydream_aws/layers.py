"""Runtime environments on Lambda: a layer version (uploaded directly or through S3) or a
container image, chosen by size and built once per runtime environment."""

from __future__ import annotations

import builtins
import re
from typing import Any

from botocore.exceptions import ClientError

from daydream_aws import wire
from daydream_aws.account import AwsAccount, _code, _message
from daydream_aws.ecr import ImagePublisher
from daydream_aws.packaging import (
    UNZIPPED_MAX_BYTES,
    Bundle,
    Package,
    build_layer,
    choose_package_why,
)
from daydream_aws.plan import describe
from daydream_aws.store import S3ObjectStore
from daydream_core.errors import ConfigurationError, ProviderError
from daydream_core.provider import NAME_PREFIX, function_name
from daydream_core.workflow import RuntimeEnvironment

_LAYER_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class AwsLayers(AwsAccount):
    """The runtime environment's code for a function: a layer version or an image."""

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
        tiers = self.tiers().values()
        functions = {function_name(runtime, tier, self.deployment): tier for tier in tiers}
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
        content_mark = f"{wire.DESCRIPTION_MARK} {runtime.name} sha256={bundle.sha256}"
        for version in self._layer_versions(layer):  # any deployment's: layers are shared
            found = str(version.get("Description", ""))
            if found == content_mark[:256] or found.startswith(content_mark + wire.DEPLOYMENT_MARK):
                return str(version["LayerVersionArn"])
        description = content_mark
        if self.deployment is not None:  # who published it: what its cleanup may remove
            description += f"{wire.DEPLOYMENT_MARK}{self.deployment}"
        description = description[:256]
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

    def _cleanup_layers(self, dry_run: bool, in_use: set[str]) -> builtins.list[str]:
        """daydream's layer versions: every one, or, confined to a deployment, those it
        published that no function in `in_use` (layer version ARNs) still uses."""
        removed: builtins.list[str] = []
        for page in self._lambda.get_paginator("list_layers").paginate():
            for layer in page.get("Layers", []):
                if not layer["LayerName"].startswith(NAME_PREFIX):
                    continue
                for version in self._layer_versions(layer["LayerName"]):
                    if not self._ours(str(version.get("Description", ""))):
                        continue
                    if self.deployment is not None and version["LayerVersionArn"] in in_use:
                        continue
                    removed.append(f"layer {version['LayerVersionArn']}")
                    if not dry_run:
                        self._lambda.delete_layer_version(
                            LayerName=layer["LayerName"], VersionNumber=version["Version"]
                        )
        return removed

    def _ours(self, description: str) -> bool:
        """Whether a layer version's description says daydream (this deployment) made it."""
        if not description.startswith(wire.DESCRIPTION_MARK):
            return False
        return self.deployment is None or description.endswith(
            f"{wire.DEPLOYMENT_MARK}{self.deployment}"
        )

    def _layer_versions(self, layer: str) -> builtins.list[dict[str, Any]]:
        versions: builtins.list[dict[str, Any]] = []
        try:
            for page in self._lambda.get_paginator("list_layer_versions").paginate(LayerName=layer):
                versions.extend(page.get("LayerVersions", []))
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
        return versions
