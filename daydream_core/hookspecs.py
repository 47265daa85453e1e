"""Hook specifications. Built-in providers, workflows and policies implement these exactly as
third-party plugins do, discovered from the ``daydream`` entry-point group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from daydream_core.apps import AppSpec
    from daydream_core.objectstore import ObjectStore
    from daydream_core.policies.registry import PolicySpec
    from daydream_core.provider import ProviderSpec

hookspec = pluggy.HookspecMarker("daydream")
hookimpl = pluggy.HookimplMarker("daydream")


@hookspec
def daydream_providers() -> list[ProviderSpec]:  # type: ignore[empty-body]
    """Return the providers this plugin offers."""


@hookspec
def daydream_apps() -> list[AppSpec]:  # type: ignore[empty-body]
    """Return the workflows (apps) this plugin offers."""


@hookspec
def daydream_policies() -> list[PolicySpec]:  # type: ignore[empty-body]
    """Return the policies (predictor + placement) this plugin offers."""


@hookspec(firstresult=True)
def daydream_open_store(uri: str) -> ObjectStore | None:
    """Open the object store at `uri` if this plugin knows its scheme, else return None."""
