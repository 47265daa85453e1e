"""The provider contract: what every serverless platform adapter implements.

Adapters are typed classes with explicit capabilities; every operation below is required
(no `hasattr` probing, no `NotImplementedError`). Errors are the shared typed errors of
`daydream_core.errors`.
"""

from __future__ import annotations

import builtins
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from daydream_core.model import StartKind, Tier
from daydream_core.objectstore import ObjectStore
from daydream_core.pricing import PriceTable
from daydream_core.workflow import RuntimeEnvironment

NAME_PREFIX = "daydream-"


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do, declared rather than probed."""

    max_payload_bytes: int
    max_concurrency: int
    # True where daydream itself can stop idle instances (local); False where the platform
    # reclaims them on its own schedule (Lambda).
    releases_instances: bool
    # True where an idle instance costs money or scarce resources, so releasing surplus pays.
    # Lambda and the local platform bill only what runs (the local one evicts idle instances
    # itself when it needs room), so for them releasing would only destroy warm starts.
    idle_costs: bool = False


@dataclass(frozen=True)
class FunctionHandle:
    """A deployed function: one per (runtime environment, tier)."""

    provider: str
    name: str
    runtime: RuntimeEnvironment
    tier: Tier


@dataclass(frozen=True)
class Invocation:
    """A component's output with the provider-reported metrics of its invocation."""

    output: Any
    instance: str
    start: StartKind
    init_ms: float
    duration_ms: float
    billed_ms: float
    memory_mb: int
    max_memory_used_mb: float
    # What the platform charges beyond billed duration and the request (a SnapStart restore).
    surcharge: float = 0.0
    # How long the request waited at the platform for an instance (queued at its concurrency
    # limit, from entering the queue to being granted one), where the provider runs the queue
    # itself (local, Ray); 0 where the platform does not say.
    queued_ms: float = 0.0


@dataclass(frozen=True)
class Ending:
    """How one instance left the platform, where the provider knows (`Provider.endings`)."""

    reason: str  # one of `daydream_core.instance_pool.ENDINGS`
    ended_at: float  # when, on `time.perf_counter()` (the engine's clock)
    waiting: int  # requests of its own function waiting at the platform for an instance then


@dataclass(frozen=True)
class WarmStart:
    """An instance hot started by `Provider.warm`."""

    instance: str
    init_ms: float
    billed_ms: float
    surcharge: float = 0.0  # as `Invocation.surcharge` (a restore, held provisioned capacity)


@dataclass(frozen=True)
class ProviderSettings:
    """What the CLI or API hands a provider factory."""

    state_dir: Path
    concurrency: int | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    # The deployment the adapter names and tags what it creates for (`daydream_core.
    # deployments`); None: the shared names of `daydream deploy`.
    deployment: str | None = None


class Provider(ABC):
    """A serverless platform, as daydream uses it."""

    name: ClassVar[str]
    # The deployment whose id this adapter puts in the names and tags of what it creates, and
    # to which its `cleanup` is then confined; None where it does not (shared names).
    deployment: str | None = None

    @abstractmethod
    def tiers(self) -> Mapping[str, Tier]:
        """The tiers offered, by name (at least ``high`` and ``low``)."""

    @abstractmethod
    def prices(self) -> PriceTable: ...

    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abstractmethod
    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        """Create the function for (runtime, tier), or return the existing one (idempotent)."""

    @abstractmethod
    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        """Hot start up to `n` more instances, initialised before they are needed; block until
        they are ready and return those whose init ran (an idle one reused is not reported)."""

    @abstractmethod
    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        """Run one component synchronously; raise the typed errors on failure."""

    @abstractmethod
    def instances(self, function: FunctionHandle) -> list[str]:
        """Ids of the function's instances alive now, busy or idle: exact where the provider
        runs them, else those seen recently enough that the platform still keeps them."""

    def endings(self, function: FunctionHandle) -> Mapping[str, Ending]:
        """How the function's instances that are no longer alive ended, by instance id, where
        the provider knows (it runs them: local, Ray); Lambda-like platforms that end
        instances on their own schedule say nothing."""
        return {}

    def ended(self, function: FunctionHandle) -> Mapping[str, str]:
        """Why the function's instances that are no longer alive ended, by instance id
        (`daydream_core.instance_pool.ENDINGS`): the reasons of `endings`."""
        return {instance: ending.reason for instance, ending in self.endings(function).items()}

    def keep_idle(self, seconds: float | None) -> bool:
        """Keep idle instances `seconds` after their last use, instead of the platform's own
        keep-alive (None: the platform's again), where the provider lets daydream set it;
        whether it does. Lambda-like platforms reclaim on their own schedule."""
        return False

    @abstractmethod
    def release(self, function: FunctionHandle, keep: int) -> list[str]:
        """Stop idle instances beyond `keep` where the provider allows it; return their ids."""

    @abstractmethod
    def delete(self, function: FunctionHandle) -> None:
        """Delete the function; deleting a missing function is not an error."""

    @abstractmethod
    def list(self, prefix: str = NAME_PREFIX) -> list[str]:
        """Names of the deployed functions daydream created, by prefix."""

    @abstractmethod
    def cleanup(self, dry_run: bool = False) -> builtins.list[str]:
        """Remove everything daydream created on this provider (only what `self.deployment`
        created, when set); return what (would be) removed."""

    @abstractmethod
    def store(self) -> ObjectStore:
        """The object store for inter-component data on this provider."""

    @abstractmethod
    def close(self) -> None:
        """Release local resources (connections, processes); deployed functions stay."""

    def plan_deploy(self, runtime: RuntimeEnvironment) -> builtins.list[str]:
        """What `deploy` would create for `runtime`, one line each, creating nothing.
        Providers with more to say (packaging paths, sizes) override it."""
        return [
            f"function {function_name(runtime, tier, self.deployment)} "
            f"({tier.name} tier, {tier.memory_mb} MB)"
            for tier in self.tiers().values()
        ]


@dataclass(frozen=True)
class ProviderSpec:
    """A provider plugin's registration: the modules its adapter imports (its cloud SDK) and
    the extra that installs them, so that a missing SDK is one line naming the extra."""

    name: str
    description: str
    factory: Callable[[ProviderSettings], Provider]
    requires: tuple[str, ...] = ()
    extra: str | None = None

    def missing(self) -> list[str]:
        from daydream_core.requirements import missing_modules

        return missing_modules(self.requires)

    def create(self, settings: ProviderSettings) -> Provider:
        """The adapter; a missing SDK is a `ConfigurationError` naming the extra."""
        if missing := self.missing():
            from daydream_core.errors import ConfigurationError
            from daydream_core.requirements import install_hint

            raise ConfigurationError(install_hint(f"provider {self.name!r}", missing, self.extra))
        return self.factory(settings)


def deployment_prefix(deployment: str | None) -> str:
    """The name prefix of everything one deployment creates (all of daydream's, for None)."""
    return NAME_PREFIX if deployment is None else f"{NAME_PREFIX}{deployment}-"


def function_name(runtime: RuntimeEnvironment, tier: Tier, deployment: str | None = None) -> str:
    """Deterministic, hashed function name: same inputs, same name, on every provider; under
    the deployment's own prefix when there is one, so no two deployments share a function."""
    identity = "|".join(
        [
            runtime.name,
            runtime.module,
            *runtime.preload,
            *runtime.requirements,
            tier.name,
            str(tier.memory_mb),
        ]
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"{deployment_prefix(deployment)}{runtime.name}-{tier.name}-{digest}"
