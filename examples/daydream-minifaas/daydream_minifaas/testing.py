"""minifaas for the conformance suite: the platform served on 127.0.0.1 for the session, and
the platform's own records as the suite's `PlatformView`: which instances it started, with
how much memory and how many CPUs, what it billed for each request, and what is left. None of
it comes from the adapter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from daydream_conformance.environment import ConformanceEnvironment
from daydream_conformance.view import BillingView, EnvironmentView

from daydream_core.provider import ProviderSettings
from daydream_minifaas.platform import Platform
from daydream_minifaas.server import serving


class PlatformRecords:
    """`daydream_conformance.view.PlatformView` of a minifaas platform, from its records."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def environments(self, function: str) -> list[EnvironmentView]:
        return [
            EnvironmentView(i.id, i.function, i.memory_mb, len(i.cpus), i.requests, i.alive)
            for i in list(self.platform.history)
            if i.function == function
        ]

    def billing(self, function: str) -> list[BillingView]:
        return [
            BillingView(b.function, b.instance, b.duration_ms, b.init_ms, b.billed_ms, b.memory_mb)
            for b in list(self.platform.bills)
            if b.function == function
        ]

    def leftovers(self) -> list[str]:
        functions = [f"function {name}" for name in list(self.platform.functions)]
        instances = [f"instance {i.id} of {i.function}" for i in self.platform.history if i.alive]
        return functions + instances


@contextmanager
def conformance_environment(workdir: Path) -> Iterator[ConformanceEnvironment]:
    """A minifaas platform for the suite's session (found by the suite's convention)."""
    platform = Platform(workdir / "minifaas")
    with serving(platform) as url:
        yield ConformanceEnvironment(
            ProviderSettings(state_dir=workdir / "daydream", options={"endpoint": url}),
            view=PlatformRecords(platform),
            fake=platform,
        )
