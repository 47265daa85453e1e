"""The image path: a runtime environment too large for a layer becomes an image in ECR.

daydream's repository (`AwsOptions.repository`, tagged ``daydream:managed=true``) receives one
image per runtime environment and architecture, tagged ``<runtime>-<arch>-<digest of the
layer zip>`` and deployed by digest. The base is `AwsOptions.base_image`, a repository in the
same registry (by default the pull-through cache of ``public.ecr.aws/lambda/python``), whose
layers are mounted, not downloaded. Cleanup deletes the repository only if daydream created it.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from daydream_aws import wire
from daydream_aws.image import assemble, layer_from_zip
from daydream_aws.options import AwsOptions
from daydream_aws.packaging import Bundle
from daydream_aws.registry import RegistryClient, push, split_reference
from daydream_core.errors import ConfigurationError, ProviderError

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class ImagePublisher:
    """Builds and pushes runtime-environment images; finds and removes what it created."""

    def __init__(self, ecr: Any, options: AwsOptions, state_dir: Any) -> None:
        self._ecr = ecr
        self.options = options
        self._state_dir = state_dir

    def tag(self, runtime_name: str, bundle: Bundle) -> str:
        safe = _TAG_UNSAFE.sub("-", runtime_name)
        return f"{safe}-{self.options.architecture}-{bundle.sha256[:16]}"[:128]

    def publish(self, runtime_name: str, bundle: Bundle) -> str:
        """The image URI (by digest) of `bundle` on the base image, pushed if missing."""
        repository_uri = self._ensure_repository()
        client = self._client()
        try:
            base_repository, reference = split_reference(self.options.base_reference())
            base_manifest, media_type = client.image_manifest(
                base_repository, reference, self.options.architecture
            )
            base_config = json.loads(
                client.blob(base_repository, base_manifest["config"]["digest"])
            )
            layer = layer_from_zip(
                bundle.path, self._state_dir / "images" / f"layer-{bundle.sha256[:16]}.tar.gz"
            )
            image = assemble(base_manifest, base_config, media_type, layer)
            digest = push(
                client,
                self.options.repository,
                self.tag(runtime_name, bundle),
                image,
                base_repository,
            )
        finally:
            client.close()
        return f"{repository_uri}@{digest}"

    def _client(self) -> RegistryClient:
        try:
            data = self._ecr.get_authorization_token()["authorizationData"][0]
        except ClientError as exc:
            raise ConfigurationError(f"aws: cannot get an ECR authorisation token: {exc}") from None
        token = str(data["authorizationToken"])
        user = base64.b64decode(token).decode(errors="replace").partition(":")[0]
        if user != "AWS":
            raise ProviderError("ECR returned an authorisation token not for the user AWS")
        return RegistryClient(self.options.registry_url or str(data["proxyEndpoint"]), token)

    def _ensure_repository(self) -> str:
        """daydream's repository URI (host/name), created (tagged, private) if missing."""
        name = self.options.repository
        try:
            found = self._ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        except ClientError as exc:
            if _code(exc) != "RepositoryNotFoundException":
                raise ProviderError(f"looking up ECR repository {name!r} failed: {exc}") from None
            found = self._ecr.create_repository(
                repositoryName=name,
                imageTagMutability="MUTABLE",
                tags=[{"Key": wire.TAG_MANAGED, "Value": "true"}],
            )["repository"]
        return str(found["repositoryUri"])

    def cleanup(self, dry_run: bool) -> list[str]:
        """daydream's repository and its images, if daydream created it."""
        name = self.options.repository
        try:
            found = self._ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
            tags = self._ecr.list_tags_for_resource(resourceArn=found["repositoryArn"])["tags"]
        except ClientError:
            return []
        if {"Key": wire.TAG_MANAGED, "Value": "true"} not in tags:
            return []
        if not dry_run:
            self._ecr.delete_repository(repositoryName=name, force=True)
        return [f"repository {found['repositoryUri']}"]


def registry_host(image_uri: str) -> str:
    return urlsplit(f"//{image_uri}").netloc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
