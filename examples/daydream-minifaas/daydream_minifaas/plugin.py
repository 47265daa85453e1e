"""Registers the minifaas provider with daydream. Keep this module light: daydream imports it
whenever it lists providers, so the adapter is imported only when one is created."""

from __future__ import annotations

from daydream_core.hookspecs import hookimpl
from daydream_core.provider import Provider, ProviderSettings, ProviderSpec


def _create(settings: ProviderSettings) -> Provider:
    from daydream_minifaas.adapter import MiniFaasProvider

    return MiniFaasProvider(settings)


@hookimpl
def daydream_providers() -> list[ProviderSpec]:
    return [ProviderSpec("minifaas", "minifaas, a small FaaS on one host (an example)", _create)]
