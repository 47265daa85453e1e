"""Registers the local platform, exactly as a third-party provider plugin would."""

from __future__ import annotations

from daydream_core.hookspecs import hookimpl
from daydream_core.provider import Provider, ProviderSettings, ProviderSpec


def _create(settings: ProviderSettings) -> Provider:
    from daydream_local.provider import LocalProvider

    return LocalProvider.from_settings(settings)


@hookimpl
def daydream_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            "local",
            "embedded serverless platform: instances are real processes (no cloud account)",
            _create,
        )
    ]
