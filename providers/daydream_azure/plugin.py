"""Registers the azure provider and the ``azblob://`` object store, exactly as a third-party
plugin would. Imports neither the Azure SDKs nor the adapter: both load only when used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daydream_core.hookspecs import hookimpl
from daydream_core.provider import Provider, ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from daydream_core.objectstore import ObjectStore


def _create(settings: ProviderSettings) -> Provider:
    from daydream_core.errors import ConfigurationError

    try:
        import azure.identity
        import azure.mgmt.web
        import azure.storage.blob  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "the azure provider needs the Azure SDKs: pip install 'daydream[azure]'"
        ) from None
    from daydream_azure.provider import AzureProvider

    return AzureProvider(settings)


@hookimpl
def daydream_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            "azure",
            "Azure Functions (Flex Consumption): a function app per tier, zip-deployed, Blob store",
            _create,
        )
    ]


@hookimpl
def daydream_open_store(uri: str) -> ObjectStore | None:
    if not uri.startswith("azblob://"):
        return None
    from daydream_azure.store import BlobObjectStore

    return BlobObjectStore.from_uri(uri)
