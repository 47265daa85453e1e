"""Where the suite runs a provider: settings, a factory, and the platform's independent view.

No pytest here: provider packages build a `ConformanceEnvironment` in their own test support
module (by convention ``<package>.testing.conformance_environment``) without depending on
pytest at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from daydream_conformance.view import PlatformView
from daydream_core.provider import Provider, ProviderSettings, ProviderSpec

CONVENTION = "conformance_environment"


@dataclass(frozen=True)
class ConformanceEnvironment:
    """What a provider needs to run the suite.

    settings: handed to the factory (state directory, options such as a fake's endpoint).
    factory: builds the adapter; None means the registered `ProviderSpec.factory`.
    view: the platform's own view of what happened (`daydream_conformance.view`), seen
        independently of the adapter: environments, billing, leftovers. Required of every
        provider that ships a fake (or, like Ray, has an engine with its own state API); None
        only for a provider as it is (a live cloud), where the suite trusts `list` and a dry
        run.
    fake: a provider-specific handle on the fake, for the provider's own tests.
    """

    settings: ProviderSettings
    factory: Callable[[ProviderSettings], Provider] | None = None
    view: PlatformView | None = None
    fake: Any = None

    @property
    def leftovers(self) -> Callable[[], list[str]] | None:
        """What is still on the backend after cleanup, from the view (None without one)."""
        return self.view.leftovers if self.view is not None else None

    def with_options(self, options: Mapping[str, str]) -> ConformanceEnvironment:
        """The same environment with `options` laid over the settings' own."""
        merged = {**self.settings.options, **options}
        return replace(self, settings=replace(self.settings, options=merged))


def provider_spec(name: str) -> ProviderSpec:
    """The installed provider `name` (a one-line `UsageError` naming the valid ones if none;
    its `create` says which extra to install when its SDK is missing)."""
    from daydream_core import plugins

    return plugins.lookup("provider", name, plugins.providers())


def plain_environment(workdir: Path) -> AbstractContextManager[ConformanceEnvironment]:
    """The provider as it is: no fake (local platforms, or a live run against a real cloud)."""

    @contextmanager
    def plain() -> Iterator[ConformanceEnvironment]:
        yield ConformanceEnvironment(ProviderSettings(state_dir=workdir))

    return plain()


def conventional_environment(
    name: str, workdir: Path
) -> AbstractContextManager[ConformanceEnvironment]:
    """The fake a provider package ships by convention, else the provider as it is.

    A provider whose factory lives in package ``pkg`` may define
    ``pkg.testing.conformance_environment(workdir: Path)`` returning a context manager that
    yields a `ConformanceEnvironment`; the suite then needs no other configuration.
    """
    spec = provider_spec(name)
    package = spec.factory.__module__.partition(".")[0]
    module_name = f"{package}.testing"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name not in (module_name, package):
            raise
        return plain_environment(workdir)
    make = getattr(module, CONVENTION, None)
    if make is None:
        return plain_environment(workdir)
    environment: AbstractContextManager[ConformanceEnvironment] = make(workdir)
    return environment
