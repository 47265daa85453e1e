"""The aws provider's settings: ``-o KEY=VALUE`` options, else ``DAYDREAM_AWS_KEY`` variables.

Credentials, region and endpoint otherwise come from boto3's standard chain (environment,
shared config and credentials files, SSO, instance roles; ``AWS_ENDPOINT_URL`` points every
client at a compatible endpoint). Every check here is local: bad settings are a one-line
`ConfigurationError` before anything is created.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from daydream_core.errors import ConfigurationError
from daydream_core.model import HIGH, LOW, Tier
from daydream_core.pricing import AWS_LAMBDA_ARM, AWS_LAMBDA_X86, PriceTable
from daydream_core.provider_options import read_options

ENV_PREFIX = "DAYDREAM_AWS_"
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10240
MAX_FUNCTION_TIMEOUT_S = 900
MB_PER_VCPU = 1769  # Lambda gives one vCPU's worth of CPU at 1769 MB ...
MAX_VCPUS = 6.0  # ... and six at 10240 MB
PRICE_TABLES: dict[str, PriceTable] = {"x86_64": AWS_LAMBDA_X86, "arm64": AWS_LAMBDA_ARM}
PYTHON_RUNTIMES = ("python3.10", "python3.11", "python3.12", "python3.13")
SNAPSTART_RUNTIMES = ("python3.12", "python3.13")  # SnapStart for Python starts at 3.12
PACKAGES = ("auto", "layer", "image")
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# us-east-1, eu-central-2, us-gov-west-1, ap-southeast-5, cn-north-1, ...
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


@dataclass(frozen=True)
class AwsOptions:
    """Every setting of the aws provider, with its default."""

    region: str | None = None  # default: boto3's chain (AWS_REGION, AWS_DEFAULT_REGION, config)
    profile: str | None = None  # a named profile of the shared config files
    endpoint_url: str | None = None  # default: AWS_ENDPOINT_URL or the real service
    role: str | None = None  # the functions' execution role: an ARN or a role name
    bucket: str | None = None  # default: daydream-<account>-<region>, created private
    prefix: str = "daydream"  # everything daydream puts in the bucket is under this prefix
    high_memory_mb: int = 10240
    low_memory_mb: int = 5120
    architecture: str = "x86_64"
    python_runtime: str = "python3.12"
    function_timeout_s: int = MAX_FUNCTION_TIMEOUT_S  # Lambda's own limit per invocation
    install_requirements: bool = True  # pip-install the runtime's requirements into the layer
    image_uri: str | None = None  # deploy this container image instead of a layer
    warm_hold_ms: int = 1500  # how long a warm-up holds its instance
    timeout_slack_s: float = 5.0  # extra client wait beyond a component's timeout
    max_attempts: int = 6  # attempts of a throttled or transiently failed invocation
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 10.0
    max_concurrency: int = 1000  # Lambda's default account concurrency
    keep_alive_estimate_s: float = 300.0  # how long Lambda is taken to keep an idle environment
    # How the runtime environment ships: "auto" (a layer if it fits, else an image), or forced.
    package: str = "auto"
    base_image: str = "ecr-public/lambda/python:{version}"  # in the account's registry
    repository: str = "daydream-runtimes"  # the ECR repository daydream pushes images to
    registry_url: str | None = None  # default: ECR's endpoint from GetAuthorizationToken
    snapstart: bool = False  # publish versions with SnapStart and invoke them through an alias
    provisioned_concurrency: bool = False  # hot start with provisioned concurrency where cheaper
    provisioned_horizon_s: float = 600.0  # how long a hot start is expected to be needed

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(
        cls, options: Mapping[str, str], environ: Mapping[str, str] | None = None
    ) -> AwsOptions:
        """Options over ``DAYDREAM_AWS_*`` variables over defaults, checked."""
        environ = os.environ if environ is None else environ
        values = read_options(cls, "aws", options, environ, ENV_PREFIX)
        parsed = cls(**values)
        parsed.validate()
        return parsed

    def validate(self) -> None:
        for name in ("high_memory_mb", "low_memory_mb"):
            value = getattr(self, name)
            if not MIN_MEMORY_MB <= value <= MAX_MEMORY_MB:
                raise ConfigurationError(
                    f"aws option {name}={value} is outside Lambda's "
                    f"{MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB"
                )
        if self.low_memory_mb > self.high_memory_mb:
            raise ConfigurationError(
                f"aws option low_memory_mb={self.low_memory_mb} exceeds "
                f"high_memory_mb={self.high_memory_mb}"
            )
        if self.architecture not in PRICE_TABLES:
            raise ConfigurationError(
                f"aws option architecture={self.architecture!r}; valid: {', '.join(PRICE_TABLES)}"
            )
        if self.python_runtime not in PYTHON_RUNTIMES:
            raise ConfigurationError(
                f"aws option python_runtime={self.python_runtime!r}; valid: "
                f"{', '.join(PYTHON_RUNTIMES)}"
            )
        if not 1 <= self.function_timeout_s <= MAX_FUNCTION_TIMEOUT_S:
            raise ConfigurationError(
                f"aws option function_timeout_s={self.function_timeout_s} is outside "
                f"1-{MAX_FUNCTION_TIMEOUT_S} s"
            )
        if self.region is not None:
            check_region(self.region, "aws option region")
        if self.endpoint_url is not None:
            _check_endpoint(self.endpoint_url)
        if self.bucket is not None and not _BUCKET.match(self.bucket):
            raise ConfigurationError(f"aws option bucket={self.bucket!r} is not a bucket name")
        if not self.prefix.strip("/") or ".." in self.prefix.split("/"):
            raise ConfigurationError(f"aws option prefix={self.prefix!r} must name a folder")
        for name in ("warm_hold_ms", "max_attempts", "max_concurrency"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"aws option {name} must be at least 1")
        self._validate_packaging()
        for name in ("timeout_slack_s", "backoff_base_s", "backoff_cap_s", "provisioned_horizon_s"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"aws option {name} must not be negative")

    def _validate_packaging(self) -> None:
        if self.package not in PACKAGES:
            raise ConfigurationError(
                f"aws option package={self.package!r}; valid: {', '.join(PACKAGES)}"
            )
        if not _REPOSITORY.match(self.repository) or len(self.repository) > 256:
            raise ConfigurationError(
                f"aws option repository={self.repository!r} is not an ECR repository name"
            )
        if self.snapstart:
            if self.python_runtime not in SNAPSTART_RUNTIMES:
                raise ConfigurationError(
                    f"aws option snapstart needs python_runtime {' or '.join(SNAPSTART_RUNTIMES)}"
                    f", not {self.python_runtime}"
                )
            if self.image_uri or self.package == "image":
                raise ConfigurationError(
                    "aws option snapstart works with layer deployments only (Lambda has no "
                    "SnapStart for container images); drop image_uri / package=image"
                )

    def base_reference(self) -> str:
        """The base image reference, its ``{version}`` filled in (``3.12`` for python3.12)."""
        return self.base_image.replace("{version}", self.python_runtime.removeprefix("python"))

    def with_changes(self, **changes: Any) -> AwsOptions:
        changed = dataclasses.replace(self, **changes)
        changed.validate()
        return changed

    def tiers(self) -> dict[str, Tier]:
        return {
            HIGH: Tier(HIGH, self.high_memory_mb, vcpus(self.high_memory_mb)),
            LOW: Tier(LOW, self.low_memory_mb, vcpus(self.low_memory_mb)),
        }

    def prices(self) -> PriceTable:
        return PRICE_TABLES[self.architecture]

    def role_arn(self, account: str, partition: str = "aws") -> str | None:
        if self.role is None or self.role.startswith("arn:"):
            return self.role
        return f"arn:{partition}:iam::{account}:role/{self.role}"


def vcpus(memory_mb: int) -> float:
    """Lambda's CPU share at `memory_mb`: proportional up to one vCPU at 1769 MB, then linear
    to six vCPUs at 10240 MB (the two points AWS documents)."""
    if memory_mb <= MB_PER_VCPU:
        share = memory_mb / MB_PER_VCPU
    else:
        share = 1.0 + (memory_mb - MB_PER_VCPU) * (MAX_VCPUS - 1.0) / (MAX_MEMORY_MB - MB_PER_VCPU)
    return round(min(MAX_VCPUS, share), 2)


def check_region(region: str, source: str) -> None:
    """One line unless `region` looks like an AWS region name (from an option or boto3's
    chain: AWS_REGION, the shared config)."""
    if not _REGION.match(region):
        raise ConfigurationError(f"{source}={region!r} is not a region name (e.g. us-east-1)")


def _check_endpoint(url: str) -> None:
    """An http(s) URL with a host (and a valid port, if any): anything else would reach
    botocore as a traceback, or nowhere."""
    from urllib.parse import urlsplit

    wrong = ConfigurationError(
        f"aws option endpoint_url={url!r} is not an http:// or https:// URL with a host"
    )
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise wrong from None
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise wrong
    if port == 0:
        raise wrong
