"""The gcp provider's settings: ``-o KEY=VALUE`` options, else ``DAYDREAM_GCP_KEY`` variables.

Project and region otherwise come from the standard variables (``GOOGLE_CLOUD_PROJECT``,
``GCLOUD_PROJECT``, ``CLOUDSDK_CORE_PROJECT``; ``GOOGLE_CLOUD_REGION``,
``CLOUDSDK_FUNCTIONS_REGION``), and the project last from Application Default Credentials.
Tiers are Cloud Functions (2nd gen) memory/CPU settings, checked here against the combinations
Cloud Run accepts, so a bad tier is one line before anything is created.
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
from daydream_core.pricing import PriceTable
from daydream_core.provider_options import read_options

ENV_PREFIX = "DAYDREAM_GCP_"
PROJECT_VARS = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
REGION_VARS = ("GOOGLE_CLOUD_REGION", "CLOUDSDK_FUNCTIONS_REGION")
DEFAULT_REGION = "us-central1"
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 32768
MIN_CPU = 0.08
WHOLE_CPUS = (1, 2, 4, 6, 8)
# Memory a whole number of vCPUs accepts (Cloud Run's vCPU/memory table), MiB.
MEMORY_RANGE_MB = {
    1: (128, 4096),
    2: (128, 8192),
    4: (2048, 16384),
    6: (4096, 24576),
    8: (4096, 32768),
}
MAX_FUNCTION_TIMEOUT_S = 3600  # HTTP functions of the 2nd generation
PYTHON_RUNTIMES = ("python310", "python311", "python312", "python313")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.:-]{1,100}$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")

# Cloud Run functions (the 2nd generation) bill as Cloud Run's request-based billing: vCPU-
# seconds and GiB-seconds while a request is served (instance start-up included), rounded up
# to 100 ms, plus a price per request; free tier not deducted.
_SOURCE = (
    "cloud.google.com/run/pricing, request-based billing, Cloud Run functions; "
    "published prices as of 2025-09 (free tier not deducted)"
)
TIER1_PRICES = PriceTable(
    "gcp-cloud-run-functions-tier1",
    per_gb_second=0.0000025,
    per_request=0.40e-6,
    billing_granularity_ms=100.0,
    init_billed=True,
    per_vcpu_second=0.000024,
    source=f"{_SOURCE}, Tier 1 regions",
)
TIER2_PRICES = PriceTable(
    "gcp-cloud-run-functions-tier2",
    per_gb_second=0.0000035,
    per_request=0.40e-6,
    billing_granularity_ms=100.0,
    init_billed=True,
    per_vcpu_second=0.0000336,
    source=f"{_SOURCE}, Tier 2 regions",
)
# Cloud Run's Tier 1 pricing regions; every other region is priced as Tier 2.
TIER1_REGIONS = frozenset(
    {
        "asia-east1",
        "asia-northeast1",
        "asia-northeast2",
        "europe-north1",
        "europe-southwest1",
        "europe-west1",
        "europe-west4",
        "europe-west8",
        "europe-west9",
        "me-west1",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
    }
)


@dataclass(frozen=True)
class GcpOptions:
    """Every setting of the gcp provider, with its default."""

    project: str | None = None  # default: GOOGLE_CLOUD_PROJECT & co., then ADC's project
    region: str | None = None  # default: GOOGLE_CLOUD_REGION & co., then us-central1
    endpoint: str | None = None  # the Cloud Functions API endpoint (a fake's http:// URL)
    storage_endpoint: str | None = None  # the GCS endpoint (default: STORAGE_EMULATOR_HOST)
    bucket: str | None = None  # default: daydream-<project>-<region>, created private
    prefix: str = "daydream"  # everything daydream puts in the bucket is under this prefix
    high_memory_mb: int = 8192
    high_cpu: float = 2.0
    low_memory_mb: int = 4096
    low_cpu: float = 1.0
    python_runtime: str = "python312"
    function_timeout_s: int = 540  # the function's own request timeout
    max_instances: int = 100  # maxInstanceCount of each function
    service_account: str | None = None  # the functions' runtime identity (default: Google's)
    warm_hold_ms: int = 1500  # how long a warm-up holds its instance
    timeout_slack_s: float = 5.0  # extra client wait beyond a component's timeout
    max_attempts: int = 6  # attempts of a throttled or transiently failed invocation
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 10.0
    max_concurrency: int = 100  # invocations in flight at once from this client
    operation_timeout_s: float = 1200.0  # bound on a create/update/delete operation
    operation_poll_s: float = 2.0  # first wait between polls of an operation
    keep_alive_estimate_s: float = 900.0  # how long an idle instance is taken to live

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(
        cls, options: Mapping[str, str], environ: Mapping[str, str] | None = None
    ) -> GcpOptions:
        """Options over ``DAYDREAM_GCP_*`` variables over the standard ones and defaults."""
        environ = os.environ if environ is None else environ
        values = read_options(cls, "gcp", options, environ, ENV_PREFIX)
        values.setdefault("project", _first(environ, PROJECT_VARS))
        values.setdefault("region", _first(environ, REGION_VARS) or DEFAULT_REGION)
        parsed = cls(**values)
        parsed.validate()
        return parsed

    def validate(self) -> None:
        if self.project is not None and not _PROJECT.match(self.project):
            raise ConfigurationError(f"gcp option project={self.project!r} is not a project id")
        if self.region is not None and not _REGION.match(self.region):
            raise ConfigurationError(
                f"gcp option region={self.region!r} is not a region (e.g. us-central1)"
            )
        for tier in (HIGH, LOW):
            check_resources(
                f"{tier}_memory_mb/{tier}_cpu",
                getattr(self, f"{tier}_memory_mb"),
                getattr(self, f"{tier}_cpu"),
            )
        if self.low_memory_mb > self.high_memory_mb or self.low_cpu > self.high_cpu:
            raise ConfigurationError(
                f"gcp low tier ({self.low_memory_mb} MiB, {self.low_cpu:g} vCPU) is larger than "
                f"the high tier ({self.high_memory_mb} MiB, {self.high_cpu:g} vCPU)"
            )
        if self.python_runtime not in PYTHON_RUNTIMES:
            raise ConfigurationError(
                f"gcp option python_runtime={self.python_runtime!r}; valid: "
                f"{', '.join(PYTHON_RUNTIMES)}"
            )
        if not 1 <= self.function_timeout_s <= MAX_FUNCTION_TIMEOUT_S:
            raise ConfigurationError(
                f"gcp option function_timeout_s={self.function_timeout_s} is outside "
                f"1-{MAX_FUNCTION_TIMEOUT_S} s"
            )
        if self.bucket is not None and not _BUCKET.match(self.bucket):
            raise ConfigurationError(f"gcp option bucket={self.bucket!r} is not a bucket name")
        if not self.prefix.strip("/") or ".." in self.prefix.split("/"):
            raise ConfigurationError(f"gcp option prefix={self.prefix!r} must name a folder")
        for name in ("warm_hold_ms", "max_attempts", "max_concurrency", "max_instances"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"gcp option {name} must be at least 1")
        for name in ("timeout_slack_s", "backoff_base_s", "backoff_cap_s"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"gcp option {name} must not be negative")
        for name in ("operation_timeout_s", "operation_poll_s"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"gcp option {name} must be positive")

    def with_changes(self, **changes: Any) -> GcpOptions:
        changed = dataclasses.replace(self, **changes)
        changed.validate()
        return changed

    def tiers(self) -> dict[str, Tier]:
        return {
            HIGH: Tier(HIGH, self.high_memory_mb, self.high_cpu),
            LOW: Tier(LOW, self.low_memory_mb, self.low_cpu),
        }

    def prices(self) -> PriceTable:
        return TIER1_PRICES if (self.region or DEFAULT_REGION) in TIER1_REGIONS else TIER2_PRICES


def check_resources(what: str, memory_mb: int, cpu: float) -> None:
    """Raise a one-line `ConfigurationError` unless Cloud Run accepts `memory_mb` with `cpu`."""
    if not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
        raise ConfigurationError(
            f"gcp {what}: {memory_mb} MiB is outside Cloud Functions' "
            f"{MIN_MEMORY_MB}-{MAX_MEMORY_MB} MiB"
        )
    if cpu < 1:
        if cpu < MIN_CPU:
            raise ConfigurationError(f"gcp {what}: {cpu:g} vCPU is below the minimum {MIN_CPU}")
        if (memory_mb > 512 and cpu < 0.5) or memory_mb > 1024:
            raise ConfigurationError(
                f"gcp {what}: {memory_mb} MiB needs at least "
                f"{'1' if memory_mb > 1024 else '0.5'} vCPU (valid: under 1 vCPU up to 512 MiB, "
                "0.5 vCPU up to 1 GiB; 1, 2, 4, 6 or 8 vCPU beyond)"
            )
        return
    if cpu not in WHOLE_CPUS:
        raise ConfigurationError(
            f"gcp {what}: {cpu:g} vCPU; valid: 0.08-0.999, or 1, 2, 4, 6 or 8 vCPU"
        )
    low, high = MEMORY_RANGE_MB[int(cpu)]
    if not low <= memory_mb <= high:
        raise ConfigurationError(
            f"gcp {what}: {int(cpu)} vCPU takes {low}-{high} MiB, not {memory_mb} MiB"
        )


def available_memory(memory_mb: int) -> str:
    """ServiceConfig.availableMemory for `memory_mb` MiB (Kubernetes quantity units)."""
    return f"{memory_mb}Mi"


def available_cpu(cpu: float) -> str:
    """ServiceConfig.availableCpu: a whole number, or a fraction to three decimals."""
    return str(int(cpu)) if float(cpu).is_integer() else f"{cpu:.3f}".rstrip("0")


def parse_memory_mb(quantity: str) -> int:
    """MiB from a Kubernetes quantity as the API echoes it (``4096Mi``, ``4Gi``, ``256M``)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(Mi|Gi|M|G|k|Ki)?", quantity.strip())
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    value, unit = float(match.group(1)), match.group(2) or ""
    bytes_ = (
        value * {"": 1, "k": 1e3, "Ki": 2**10, "M": 1e6, "Mi": 2**20, "G": 1e9, "Gi": 2**30}[unit]
    )
    return round(bytes_ / 2**20)


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if environ.get(name):
            return environ[name]
    return None
