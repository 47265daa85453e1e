"""The pytest plugin: options, the environment hook, and the fixtures the contract cases use.

Loaded in every pytest session of an environment where daydream is installed, so it stays
cheap: it imports only pytest at import time and does nothing unless the suite is collected
(``pytest --pyargs daydream_conformance --daydream-provider NAME``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from daydream_conformance.environment import ConformanceEnvironment
    from daydream_conformance.view import PlatformView
    from daydream_core.provider import FunctionHandle, Provider
    from daydream_core.workflow import RuntimeEnvironment, Workflow


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from daydream_conformance import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("daydream", "daydream provider conformance")
    group.addoption(
        "--daydream-provider",
        metavar="NAME",
        help="run the provider conformance suite against this installed provider",
    )
    group.addoption(
        "--daydream-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a provider option for the suite's provider (repeatable; overrides the fake's)",
    )
    group.addoption(
        "--daydream-live",
        action="store_true",
        help="use no fake: run against the real service with your own credentials "
        "(creates, then removes, real resources)",
    )


@pytest.hookimpl(trylast=True)
def pytest_daydream_conformance_environment(
    config: pytest.Config, provider: str, workdir: Path
) -> AbstractContextManager[ConformanceEnvironment]:
    from daydream_conformance.environment import conventional_environment

    return conventional_environment(provider, workdir)


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise pytest.UsageError(f"--daydream-option {pair!r} is not KEY=VALUE")
        options[key] = value
    return options


@pytest.fixture(scope="session")
def daydream_provider_name(pytestconfig: pytest.Config) -> str:
    """The provider under test (the suite is skipped without ``--daydream-provider``)."""
    name = pytestconfig.getoption("daydream_provider")
    if not name:
        pytest.skip("pass --daydream-provider NAME to run the provider conformance suite")
    return str(name)


@pytest.fixture(scope="session")
def daydream_environment(
    pytestconfig: pytest.Config,
    daydream_provider_name: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ConformanceEnvironment]:
    """The provider's environment for the whole session (its fake started once)."""
    from daydream_conformance.environment import plain_environment
    from daydream_core.errors import UsageError

    workdir = tmp_path_factory.mktemp("daydream-conformance")
    options = _options(pytestconfig.getoption("daydream_option"))
    try:
        if pytestconfig.getoption("daydream_live"):
            manager = plain_environment(workdir)
        else:
            manager = pytestconfig.hook.pytest_daydream_conformance_environment(
                config=pytestconfig, provider=daydream_provider_name, workdir=workdir
            )
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    with manager as environment:
        yield environment.with_options(options)


@pytest.fixture(scope="session")
def daydream_provider(
    daydream_provider_name: str, daydream_environment: ConformanceEnvironment
) -> Iterator[Provider]:
    """The adapter under test; whatever the suite created is cleaned up at the end."""
    from daydream_conformance.environment import provider_spec

    factory = daydream_environment.factory or provider_spec(daydream_provider_name).factory
    provider = factory(daydream_environment.settings)
    try:
        yield provider
    finally:
        try:
            provider.cleanup()
        except Exception as exc:  # report, but let the real failures speak
            warnings.warn(f"cleanup after the conformance suite failed: {exc}", stacklevel=1)
        provider.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The suite's cleanup case runs last, whichever module holds it: it removes everything."""
    last = [
        item
        for item in items
        if item.name == "test_cleanup_leaves_nothing"
        and getattr(item, "module", None) is not None
        and item.module.__name__.startswith("daydream_conformance.")  # type: ignore[attr-defined]
    ]
    if last:
        items[:] = [item for item in items if item not in last] + last


@pytest.fixture(scope="session")
def daydream_view(
    daydream_provider_name: str, daydream_environment: ConformanceEnvironment
) -> PlatformView:
    """The platform's own view (`daydream_conformance.view`); cases that compare the adapter
    with it are skipped, saying so, where the environment has none (a live service)."""
    if daydream_environment.view is None:
        pytest.skip(
            f"{daydream_provider_name}: no platform view here (a live service, or a fake "
            "without one), and this case compares the adapter with the platform's own records"
        )
    return daydream_environment.view


@pytest.fixture(scope="session")
def daydream_workflow() -> Workflow:
    from daydream_conformance.workflow import workflow

    return workflow


@pytest.fixture(scope="session")
def daydream_runtime(daydream_workflow: Workflow) -> RuntimeEnvironment:
    return daydream_workflow.runtime


@pytest.fixture(scope="session")
def daydream_functions(
    daydream_provider: Provider, daydream_runtime: RuntimeEnvironment
) -> dict[str, FunctionHandle]:
    """One deployed function per tier of the suite's runtime environment."""
    from daydream_core.model import TIER_NAMES

    tiers = daydream_provider.tiers()
    return {name: daydream_provider.deploy(daydream_runtime, tiers[name]) for name in TIER_NAMES}


@pytest.fixture(scope="session")
def daydream_payload(daydream_provider: Provider) -> Any:
    """Build an invocation payload as the engine does: a component by name, plus the store."""
    store_uri = daydream_provider.store().uri
    counter = iter(range(1, 1_000_000))

    def payload(kind: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {
            "component": f"{kind}-{next(counter)}",
            "kind": kind,
            "args": dict(args or {}),
            "run_id": "conformance",
            "phase": 0,
            "store": store_uri,
        }

    return payload
