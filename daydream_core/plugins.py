"""The plugin manager and the registries built from its hooks."""

from __future__ import annotations

import functools
import importlib.metadata
import warnings
from collections.abc import Iterable
from typing import TypeVar

import pluggy

from daydream_core import hookspecs
from daydream_core.apps import AppSpec
from daydream_core.errors import UsageError
from daydream_core.policies.registry import PolicySpec
from daydream_core.provider import ProviderSpec

ENTRY_POINT_GROUP = "daydream"

T = TypeVar("T", AppSpec, ProviderSpec, PolicySpec)


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("daydream")
    manager.add_hookspecs(hookspecs)
    from daydream_core.policies import builtin

    manager.register(builtin, name="daydream-policies")
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if manager.get_plugin(entry_point.name) is not None:
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:  # one broken plugin must not take the others down
            warnings.warn(
                f"daydream plugin {entry_point.name!r} failed to load: {exc}", stacklevel=2
            )
            continue
        manager.register(plugin, name=entry_point.name)
    return manager


def _index(kind: str, results: Iterable[list[T]]) -> dict[str, T]:
    index: dict[str, T] = {}
    for specs in results:
        for spec in specs:
            if spec.name in index:
                raise RuntimeError(f"two plugins register the {kind} {spec.name!r}")
            index[spec.name] = spec
    return dict(sorted(index.items()))


def providers() -> dict[str, ProviderSpec]:
    return _index("provider", plugin_manager().hook.daydream_providers())


def apps() -> dict[str, AppSpec]:
    return _index("app", plugin_manager().hook.daydream_apps())


def policies() -> dict[str, PolicySpec]:
    return _index("policy", plugin_manager().hook.daydream_policies())


def lookup(kind: str, name: str, registry: dict[str, T]) -> T:
    """Find `name` or raise a one-line usage error naming the valid choices."""
    try:
        return registry[name]
    except KeyError:
        valid = ", ".join(registry) or "(none installed)"
        plural = "policies" if kind == "policy" else f"{kind}s"
        raise UsageError(f"unknown {kind} {name!r}; valid {plural}: {valid}") from None
