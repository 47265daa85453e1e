"""Registers the gcp provider and the ``gs://`` object store, exactly as a third-party plugin
would. Imports neither the Google libraries nor the adapter: both load only when used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daydream_core.hookspecs import hookimpl
from daydream_core.provider import Provider, ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from daydream_core.objectstore import ObjectStore


def _create(settings: ProviderSettings) -> Provider:
    from daydream_gcp.provider import GcpProvider

    return GcpProvider(settings)


@hookimpl
def daydream_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            "gcp",
            "Google Cloud Functions (2nd gen): a function per tier, source built by Google, "
            "GCS store",
            _create,
            requires=("google.cloud.functions_v2", "google.cloud.storage", "google.auth"),
            extra="gcp",
        )
    ]


@hookimpl
def daydream_open_store(uri: str) -> ObjectStore | None:
    if not uri.startswith("gs://"):
        return None
    from daydream_gcp.store import GcsObjectStore

    return GcsObjectStore.from_uri(uri)
