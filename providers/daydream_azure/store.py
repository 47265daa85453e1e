"""The Blob object store: inter-component data by key, under a prefix of one container.

Its URI, ``azblob://CONTAINER/PREFIX?account=ACCOUNT_URL``, names no secret: a store opened
from it authenticates with a connection string from the environment
(``DAYDREAM_STORAGE_CONNECTION``, set by daydream on its function apps, or
``AZURE_STORAGE_CONNECTION_STRING``) when one names the same account, else with
`DefaultAzureCredential` (a managed identity inside Azure). Key semantics follow the local
store: ``list("a/b")`` returns ``a/b`` itself and everything under ``a/b/``, never ``a/bc``.
azure-storage-blob is imported only when a store is made.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from daydream_azure import wire
from daydream_core.objectstore import ObjectStore

SCHEME = "azblob"
CONNECTION_VARS = (wire.STORAGE_CONNECTION_VAR, "AZURE_STORAGE_CONNECTION_STRING")


def connection_account_url(connection_string: str) -> str:
    """The Blob endpoint a connection string points at."""
    parts = dict(
        part.split("=", 1) for part in connection_string.strip().strip(";").split(";") if part
    )
    if "BlobEndpoint" in parts:
        return parts["BlobEndpoint"].rstrip("/")
    protocol = parts.get("DefaultEndpointsProtocol", "https")
    suffix = parts.get("EndpointSuffix", "core.windows.net")
    return f"{protocol}://{parts.get('AccountName', '')}.blob.{suffix}"


def service_client(
    account_url: str | None = None,
    connection_string: str | None = None,
    credential: Any = None,
    verify: bool | str = True,
) -> Any:
    """A `BlobServiceClient` from a connection string, else the account URL and a credential
    (`DefaultAzureCredential` when none is given)."""
    from azure.storage.blob import BlobServiceClient

    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string, connection_verify=verify)
    if not account_url:
        raise ValueError("a Blob store needs an account URL or a connection string")
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return BlobServiceClient(account_url, credential=credential, connection_verify=verify)


class BlobObjectStore(ObjectStore):
    """Bytes by key in a prefix of a Blob container."""

    def __init__(self, service: Any, container: str, prefix: str) -> None:
        self.service = service
        self.container = container
        self.prefix = prefix.strip("/")
        self._container = service.get_container_client(container)

    @classmethod
    def from_uri(cls, uri: str) -> BlobObjectStore:
        parsed = urlsplit(uri)
        if parsed.scheme != SCHEME or not parsed.netloc:
            raise ValueError(f"not a Blob store URI: {uri!r}")
        account_url = parse_qs(parsed.query).get("account", [""])[0].rstrip("/")
        connection = next((os.environ[v] for v in CONNECTION_VARS if os.environ.get(v)), None)
        if connection and connection_account_url(connection) != account_url:
            connection = None  # a connection string for another account is no use here
        return cls(service_client(account_url, connection), parsed.netloc, parsed.path)

    @property
    def uri(self) -> str:
        account = quote(str(self.service.url).rstrip("/"), safe="")
        return f"{SCHEME}://{self.container}/{self.prefix}?account={account}"

    def _key(self, key: str) -> str:
        key = key.strip("/")
        if ".." in key.split("/"):
            raise ValueError(f"store key {key!r} escapes the store")
        return f"{self.prefix}/{key}" if key else self.prefix

    def put(self, key: str, data: bytes) -> None:
        self._container.upload_blob(self._key(key), data, overwrite=True)

    def get(self, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            data: bytes = self._container.download_blob(self._key(key)).readall()
        except ResourceNotFoundError:
            raise KeyError(f"no object {key!r} in {self.uri}") from None
        return data

    def exists(self, key: str) -> bool:
        return bool(self._container.get_blob_client(self._key(key)).exists())

    def list(self, prefix: str = "") -> list[str]:
        from azure.core.exceptions import ResourceNotFoundError

        full = self._key(prefix)
        strip = len(self.prefix) + 1
        try:
            names = [blob.name for blob in self._container.list_blobs(name_starts_with=full)]
        except ResourceNotFoundError:
            return []
        exact = bool(prefix.strip("/"))  # a key itself matches, the bare prefix does not
        return sorted(
            name[strip:]
            for name in names
            if name.startswith(full + "/") or (exact and name == full)
        )

    def delete(self, prefix: str) -> int:
        from azure.core.exceptions import ResourceNotFoundError

        keys = self.list(prefix)
        for key in keys:
            with contextlib.suppress(ResourceNotFoundError):  # deleted meanwhile
                self._container.delete_blob(self._key(key))
        return len(keys)


def ensure_container(service: Any, name: str) -> Any:
    """A container daydream uses, created (and marked as daydream's) when missing."""
    from azure.core.exceptions import ResourceExistsError

    container = service.get_container_client(name)
    with contextlib.suppress(ResourceExistsError):
        container.create_container(metadata={wire.METADATA_MANAGED: "true"})
    return container


def delete_container(service: Any, name: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    with contextlib.suppress(ResourceNotFoundError):
        service.delete_container(name)


def cleanup_containers(
    service: Any, data: str, prefix: str, package_prefix: str, dry_run: bool
) -> list[str]:
    """What daydream put in Blob storage, found by container metadata: package containers
    whole; in the data container, the objects under `prefix`, and the container itself when
    nothing else is in it."""
    removed: list[str] = []
    for container in service.list_containers(include_metadata=True):
        if (container.metadata or {}).get(wire.METADATA_MANAGED) != "true":
            continue
        if container.name.startswith(package_prefix):
            removed.append(f"package container {container.name}")
            if not dry_run:
                delete_container(service, container.name)
        elif container.name == data:
            store = BlobObjectStore(service, data, prefix)
            keys = store.list()
            if keys:
                removed.append(f"objects {store.uri} ({len(keys)})")
                if not dry_run:
                    store.delete("")
            client = service.get_container_client(data)
            others = [b for b in client.list_blobs() if not b.name.startswith(store.prefix + "/")]
            if not others:
                removed.append(f"container {data}")
                if not dry_run:
                    delete_container(service, data)
    return removed
