"""Registers the ray provider, exactly as a third-party plugin would. Imports neither Ray nor
the adapter: both load only when used."""

from __future__ import annotations

from daydream_core.hookspecs import hookimpl
from daydream_core.provider import Provider, ProviderSettings, ProviderSpec


def _create(settings: ProviderSettings) -> Provider:
    from daydream_core.errors import ConfigurationError

    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "the ray provider needs Ray: pip install 'daydream[ray]'"
        ) from None
    from daydream_ray.provider import RayProvider

    return RayProvider(settings)


@hookimpl
def daydream_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            "ray",
            "Ray: instances are actors, on a local Ray instance or a cluster (-o address=...)",
            _create,
        )
    ]
