"""Shared fixtures: a private profile store, the demo workflow importable by instances, and
the demo workflow registered as an app."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daydream_core import plugins
from daydream_core.apps import AppSpec
from daydream_core.hookspecs import hookimpl

WORKFLOWS = Path(__file__).parent / "workflows"


@pytest.fixture(autouse=True)
def _private_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never learn into, or from, the user's own profile store; never read their config."""
    monkeypatch.setenv("DAYDREAM_PROFILE", str(tmp_path / "profile.sqlite"))
    monkeypatch.setenv("DAYDREAM_CONFIG", str(tmp_path / "no-user-config.toml"))


@pytest.fixture
def demo_workflows(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make tests/workflows importable here and in instance processes."""
    monkeypatch.syspath_prepend(str(WORKFLOWS))
    path = os.pathsep.join(p for p in (str(WORKFLOWS), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    yield WORKFLOWS
    sys.modules.pop("demo_workflow", None)


class _DemoApp:
    @hookimpl
    def daydream_apps(self) -> list[AppSpec]:
        return [AppSpec("demo", "a small test workflow", "demo_workflow:workflow")]


@pytest.fixture
def demo_app(demo_workflows: Path) -> Iterator[None]:
    """The demo workflow registered as the app `demo`, for tests of the CLI."""
    plugin = _DemoApp()
    plugins.plugin_manager().register(plugin)
    yield
    plugins.plugin_manager().unregister(plugin)
