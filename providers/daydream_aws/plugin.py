"""Registers the aws provider and the ``s3://`` object store, exactly as a third-party plugin
would. Imports neither boto3 nor the adapter: both load only when used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daydream_core.hookspecs import hookimpl
from daydream_core.provider import Provider, ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from daydream_core.objectstore import ObjectStore


def _create(settings: ProviderSettings) -> Provider:
    from daydream_aws.provider import AwsProvider

    return AwsProvider(settings)


@hookimpl
def daydream_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            "aws",
            "AWS Lambda: a function per tier, the runtime environment as a layer, S3 store",
            _create,
            requires=("boto3",),
            extra="aws",
        )
    ]


@hookimpl
def daydream_open_store(uri: str) -> ObjectStore | None:
    if not uri.startswith("s3://"):
        return None
    from daydream_aws.store import S3ObjectStore

    return S3ObjectStore.from_uri(uri)
