"""The azure provider's settings: ``-o KEY=VALUE`` options, else environment variables.

Each option is read from ``-o NAME=VALUE``, else ``DAYDREAM_AZURE_NAME``, else the standard
Azure variable where one exists (``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``,
``AZURE_LOCATION``, ``AZURE_STORAGE_CONNECTION_STRING``, ``AZURE_STORAGE_ACCOUNT_URL``).
Credentials come from `DefaultAzureCredential` (environment, workload or managed identity,
``az login``). Every check here is local: bad settings are a one-line `ConfigurationError`
before anything is created.
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
from daydream_core.provider_options import FALSE, TRUE, read_options

ENV_PREFIX = "DAYDREAM_AZURE_"
STANDARD_ENV = {
    "subscription_id": "AZURE_SUBSCRIPTION_ID",
    "resource_group": "AZURE_RESOURCE_GROUP",
    "location": "AZURE_LOCATION",
    "storage_connection_string": "AZURE_STORAGE_CONNECTION_STRING",
    "storage_account_url": "AZURE_STORAGE_ACCOUNT_URL",
}
# Flex Consumption's instance sizes and the CPU each gets (Microsoft's plan documentation).
FLEX_INSTANCE_VCPUS = {512: 0.25, 2048: 1.0, 4096: 2.0}
PYTHON_VERSIONS = ("3.10", "3.11", "3.12")
MAX_HTTP_TIMEOUT_S = 230  # Azure's front end ends an HTTP request after 230 s
MIN_INSTANCES, MAX_INSTANCES = 40, 1000  # Flex Consumption's maximumInstanceCount range
_GROUP = re.compile(r"^[-\w._()]{1,90}$")
_CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")

# Flex Consumption, on demand: $0.000026 per GB-second of instance memory while executing and
# $0.40 per million executions; each execution bills at least 1,000 ms, modelled as whole
# seconds. Instance start-up is not execution, so init is not billed. Free grants ignored.
FLEX_CONSUMPTION = PriceTable(
    "azure-functions-flex-consumption",
    per_gb_second=0.000026,
    per_request=0.40e-6,
    billing_granularity_ms=1000.0,
    init_billed=False,
    source="azure.microsoft.com/pricing/details/functions (Flex Consumption, on demand, "
    "East US), checked 2026-12",
)


@dataclass(frozen=True)
class AzureOptions:
    """Every setting of the azure provider, with its default."""

    subscription_id: str | None = None
    resource_group: str | None = None  # must exist; daydream creates nothing outside it
    location: str | None = None  # the region of the plans and apps (required)
    management_url: str = "https://management.azure.com"
    connection_verify: str = "true"  # "true", "false" or a CA bundle for TLS (a fake's)
    storage_connection_string: str | None = None
    storage_account_url: str | None = None  # https://ACCOUNT.blob.core.windows.net
    container: str = "daydream"  # the Blob container for inter-component data
    prefix: str = "daydream"  # everything daydream puts in the container is under this prefix
    high_memory_mb: int = 4096
    low_memory_mb: int = 2048
    python_version: str = "3.11"
    maximum_instance_count: int = 100
    per_instance_concurrency: int = 1  # one request per instance
    function_timeout_s: int = MAX_HTTP_TIMEOUT_S
    install_requirements: bool = True  # pip-install the runtime's requirements into the zip
    deploy_timeout_s: float = 600.0  # how long a package may take to deploy and index
    warm_hold_ms: int = 1500  # how long a warm-up holds its instance
    timeout_slack_s: float = 5.0  # extra client wait beyond a component's timeout
    max_attempts: int = 6  # attempts of a throttled (429) or unavailable (503) invocation
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 10.0
    max_concurrency: int = 100
    keep_alive_estimate_s: float = 600.0  # how long an idle instance is taken to stay

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(
        cls, options: Mapping[str, str], environ: Mapping[str, str] | None = None
    ) -> AzureOptions:
        """Options over ``DAYDREAM_AZURE_*`` over the standard variables over defaults."""
        environ = os.environ if environ is None else environ
        values = read_options(cls, "azure", options, environ, ENV_PREFIX, STANDARD_ENV)
        parsed = cls(**values)
        parsed.validate()
        return parsed

    def validate(self) -> None:
        for name in ("high_memory_mb", "low_memory_mb"):
            value = getattr(self, name)
            if value not in FLEX_INSTANCE_VCPUS:
                raise ConfigurationError(
                    f"azure option {name}={value} is not a Flex Consumption instance size; "
                    f"valid: {', '.join(map(str, FLEX_INSTANCE_VCPUS))}"
                )
        if self.low_memory_mb > self.high_memory_mb:
            raise ConfigurationError(
                f"azure option low_memory_mb={self.low_memory_mb} exceeds "
                f"high_memory_mb={self.high_memory_mb}"
            )
        if self.python_version not in PYTHON_VERSIONS:
            raise ConfigurationError(
                f"azure option python_version={self.python_version!r}; valid: "
                f"{', '.join(PYTHON_VERSIONS)}"
            )
        if self.resource_group is not None and not _GROUP.match(self.resource_group):
            raise ConfigurationError(
                f"azure option resource_group={self.resource_group!r} is not a resource group "
                "name (1-90 letters, digits, '-', '_', '.', '(' or ')')"
            )
        if not _CONTAINER.match(self.container):
            raise ConfigurationError(
                f"azure option container={self.container!r} is not a Blob container name "
                "(3-63 lowercase letters, digits and single hyphens)"
            )
        if not self.prefix.strip("/") or ".." in self.prefix.split("/"):
            raise ConfigurationError(f"azure option prefix={self.prefix!r} must name a folder")
        if not self.management_url.startswith("https://"):
            raise ConfigurationError(
                f"azure option management_url={self.management_url!r} must be an https:// URL "
                "(azure-core sends bearer tokens over TLS only)"
            )
        if not MIN_INSTANCES <= self.maximum_instance_count <= MAX_INSTANCES:
            raise ConfigurationError(
                f"azure option maximum_instance_count={self.maximum_instance_count} is outside "
                f"Flex Consumption's {MIN_INSTANCES}-{MAX_INSTANCES}"
            )
        if not 1 <= self.per_instance_concurrency <= 1000:
            raise ConfigurationError("azure option per_instance_concurrency is outside 1-1000")
        if not 1 <= self.function_timeout_s <= MAX_HTTP_TIMEOUT_S:
            raise ConfigurationError(
                f"azure option function_timeout_s={self.function_timeout_s} is outside "
                f"1-{MAX_HTTP_TIMEOUT_S} s (Azure's limit on an HTTP-triggered call)"
            )
        for name in ("warm_hold_ms", "max_attempts", "max_concurrency"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"azure option {name} must be at least 1")
        for name in ("timeout_slack_s", "backoff_base_s", "backoff_cap_s", "deploy_timeout_s"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"azure option {name} must not be negative")

    def require_account(self) -> tuple[str, str, str]:
        """(subscription, resource group, location), each required before any call."""
        missing = [
            (value, what)
            for value, what in (
                (self.subscription_id, "AZURE_SUBSCRIPTION_ID (or -o subscription_id=ID)"),
                (self.resource_group, "AZURE_RESOURCE_GROUP (or -o resource_group=NAME)"),
                (self.location, "AZURE_LOCATION (or -o location=REGION, e.g. eastus)"),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(f"azure: no subscription configured; set {missing[0][1]}")
        assert self.subscription_id and self.resource_group and self.location
        return self.subscription_id, self.resource_group, self.location

    def require_storage(self) -> None:
        if not (self.storage_connection_string or self.storage_account_url):
            raise ConfigurationError(
                "azure: no storage account configured; set AZURE_STORAGE_CONNECTION_STRING or "
                "AZURE_STORAGE_ACCOUNT_URL (or -o storage_account_url=URL)"
            )

    @property
    def verify(self) -> bool | str:
        """What azure-core and requests take as ``connection_verify`` / ``verify``."""
        lowered = self.connection_verify.strip().lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
        return self.connection_verify

    def with_changes(self, **changes: Any) -> AzureOptions:
        changed = dataclasses.replace(self, **changes)
        changed.validate()
        return changed

    def tiers(self) -> dict[str, Tier]:
        return {
            HIGH: Tier(HIGH, self.high_memory_mb, FLEX_INSTANCE_VCPUS[self.high_memory_mb]),
            LOW: Tier(LOW, self.low_memory_mb, FLEX_INSTANCE_VCPUS[self.low_memory_mb]),
        }

    def prices(self) -> PriceTable:
        return FLEX_CONSUMPTION
