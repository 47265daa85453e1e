"""The ray provider's settings: ``-o KEY=VALUE`` options, else ``DAYDREAM_RAY_KEY`` variables.

Every check here is local and happens before Ray is started or joined: bad settings are a
one-line `ConfigurationError` naming the option and what is valid. What the cluster offers is
checked later, once joined (`daydream_ray.cluster.check_tiers`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from daydream_core.errors import ConfigurationError
from daydream_core.model import HIGH, LOW, Tier
from daydream_core.pricing import AWS_LAMBDA_ARM, AWS_LAMBDA_X86, PriceTable
from daydream_core.provider_options import read_options

ENV_PREFIX = "DAYDREAM_RAY_"
NAMESPACE = "daydream"  # every actor daydream creates lives in this Ray namespace
_ADDRESS = re.compile(r"^(auto|ray://[A-Za-z0-9.\-\[\]:]+:\d{1,5}|[A-Za-z0-9.\-\[\]:]+:\d{1,5})$")
_RESOURCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*(=\d+(\.\d+)?)?$")
_LABEL = re.compile(r"^[A-Za-z0-9_.\-/]+=[A-Za-z0-9_.\-]+$")

# The default on-premises table prices a core-hour and a GB-hour like a cloud VM's parts, as a
# stand-in for a cluster's amortised cost (set yours with core_hour_usd / gb_hour_usd).
ONPREM_CORE_HOUR_USD = 0.031611
ONPREM_GB_HOUR_USD = 0.004237
ONPREM_SOURCE = (
    "on-premises stand-in: Google Compute Engine N2 vCPU and memory prices, us-central1, "
    "on-demand, as of 2025; set core_hour_usd and gb_hour_usd to your cluster's"
)
CLOUD_TABLES: dict[str, PriceTable] = {"aws-x86_64": AWS_LAMBDA_X86, "aws-arm64": AWS_LAMBDA_ARM}
PRICE_CHOICES = ("onprem", *CLOUD_TABLES)


@dataclass(frozen=True)
class RayOptions:
    """Every setting of the ray provider, with its default."""

    address: str | None = None  # auto | ray://HOST:PORT | HOST:PORT; None: start Ray locally
    num_cpus: int = 16  # logical CPUs of a local Ray instance (may exceed the physical ones)
    object_store_mb: int = 512  # object store memory of a local Ray instance
    start_timeout_s: float = 60.0  # starting or joining Ray must finish within this
    high_cpus: float = 1.0  # the high-end tier's actor request: CPUs ...
    high_memory_mb: int = 2048  # ... and memory
    low_cpus: float = 0.5
    low_memory_mb: int = 1024
    high_resource: str | None = None  # NAME or NAME=AMOUNT: a custom resource the tier needs
    low_resource: str | None = None
    high_label: str | None = None  # KEY=VALUE: only nodes with this label (heterogeneous)
    low_label: str | None = None
    keep_alive_s: float = 60.0  # idle instances are reclaimed after this long
    init_timeout_s: float = 300.0  # an instance must be created and initialised within this
    runtime_env: str | None = None  # Ray runtime_env, as JSON or a path to a JSON file
    store: str | None = None  # a shared directory or an object-store URI (s3://, gs://, ...)
    max_concurrency: int | None = None  # default: the low-end instances the cluster fits
    prices: str = "onprem"  # onprem | aws-x86_64 | aws-arm64
    core_hour_usd: float = ONPREM_CORE_HOUR_USD
    gb_hour_usd: float = ONPREM_GB_HOUR_USD
    log_to_driver: bool = False  # show the instances' output in this terminal

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(
        cls, options: Mapping[str, str], environ: Mapping[str, str] | None = None
    ) -> RayOptions:
        """Options over ``DAYDREAM_RAY_*`` variables over defaults, checked."""
        environ = os.environ if environ is None else environ
        values = read_options(cls, "ray", options, environ, ENV_PREFIX)
        parsed = cls(**values)
        parsed.validate()
        return parsed

    def validate(self) -> None:
        if self.address is not None and not _ADDRESS.match(self.address):
            raise ConfigurationError(
                f"ray option address={self.address!r}; valid: auto, ray://HOST:PORT or HOST:PORT"
            )
        for name in ("num_cpus", "object_store_mb", "high_memory_mb", "low_memory_mb"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"ray option {name} must be at least 1")
        for name in ("high_cpus", "low_cpus", "start_timeout_s", "init_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"ray option {name} must be positive")
        for name in ("keep_alive_s", "core_hour_usd", "gb_hour_usd"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"ray option {name} must not be negative")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ConfigurationError("ray option max_concurrency must be at least 1")
        if self.low_memory_mb > self.high_memory_mb or self.low_cpus > self.high_cpus:
            raise ConfigurationError(
                "ray options: the low-end tier (low_cpus, low_memory_mb) must not exceed the "
                "high-end one (high_cpus, high_memory_mb)"
            )
        for name in ("high_resource", "low_resource"):
            value = getattr(self, name)
            if value is not None and not _RESOURCE.match(value):
                raise ConfigurationError(
                    f"ray option {name}={value!r}; valid: NAME or NAME=AMOUNT of a custom resource"
                )
        for name in ("high_label", "low_label"):
            value = getattr(self, name)
            if value is not None and not _LABEL.match(value):
                raise ConfigurationError(f"ray option {name}={value!r}; valid: KEY=VALUE")
        if self.prices not in PRICE_CHOICES:
            raise ConfigurationError(
                f"ray option prices={self.prices!r}; valid: {', '.join(PRICE_CHOICES)}"
            )
        self.runtime_env_dict()  # checked now, used at the first deploy

    # -- what the options mean ---------------------------------------------------------------

    def tiers(self) -> dict[str, Tier]:
        return {
            HIGH: Tier(HIGH, self.high_memory_mb, self.high_cpus),
            LOW: Tier(LOW, self.low_memory_mb, self.low_cpus),
        }

    def custom_resources(self, tier: str) -> dict[str, float]:
        """The custom resource a tier's actors request, if any (``NAME`` means 0.001 of it:
        a marker that picks the node type without limiting how many actors fit)."""
        value = self.high_resource if tier == HIGH else self.low_resource
        if value is None:
            return {}
        name, _, amount = value.partition("=")
        return {name: float(amount) if amount else 0.001}

    def label_selector(self, tier: str) -> dict[str, str]:
        value = self.high_label if tier == HIGH else self.low_label
        if value is None:
            return {}
        key, _, wanted = value.partition("=")
        return {key: wanted}

    def runtime_env_dict(self) -> dict[str, Any] | None:
        """The Ray runtime_env the user asked for (None: the cluster's installed packages)."""
        if self.runtime_env is None:
            return None
        text = self.runtime_env
        if not text.lstrip().startswith("{"):
            path = Path(text).expanduser()
            try:
                text = path.read_text()
            except OSError as exc:
                raise ConfigurationError(
                    f"ray option runtime_env={self.runtime_env!r}: cannot read it "
                    f"({exc.strerror}); valid: a JSON object or a path to a JSON file"
                ) from None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"ray option runtime_env is not valid JSON ({exc.msg}); valid: a JSON object "
                'such as {"pip": ["pyccl"]} or a path to a JSON file'
            ) from None
        if not isinstance(value, dict):
            raise ConfigurationError("ray option runtime_env must be a JSON object")
        return value

    def price_table(self) -> PriceTable:
        if self.prices in CLOUD_TABLES:
            return CLOUD_TABLES[self.prices]
        return onprem_prices(self.core_hour_usd, self.gb_hour_usd)


def onprem_prices(core_hour_usd: float, gb_hour_usd: float) -> PriceTable:
    """A cluster billed per core-hour and GB-hour of what its actors hold, per ms, init
    included (an instance holds its resources from creation on), no request charge."""
    source = (
        ONPREM_SOURCE
        if (core_hour_usd, gb_hour_usd) == (ONPREM_CORE_HOUR_USD, ONPREM_GB_HOUR_USD)
        else f"on-premises: ${core_hour_usd}/core-hour, ${gb_hour_usd}/GB-hour (configured)"
    )
    return PriceTable(
        "ray-onprem",
        per_gb_second=gb_hour_usd / 3600.0,
        per_request=0.0,
        billing_granularity_ms=1.0,
        init_billed=True,
        per_vcpu_second=core_hour_usd / 3600.0,
        source=source,
    )
