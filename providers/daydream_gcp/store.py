"""The GCS object store: inter-component data by key, under a prefix of a private bucket.

Key semantics follow the local store: ``list("a/b")`` returns the object ``a/b`` itself and
everything under ``a/b/``, never ``a/bc``. google-cloud-storage is imported only when a
client is made; it honours ``STORAGE_EMULATOR_HOST`` (an emulator, reached anonymously).
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlparse

from daydream_core.objectstore import ObjectStore


def storage_client(
    project: str | None = None, credentials: Any = None, endpoint: str | None = None
) -> Any:
    """A GCS client; `endpoint` (or ``STORAGE_EMULATOR_HOST``) points it elsewhere."""
    from google.cloud import storage

    options = {"api_endpoint": endpoint} if endpoint else None
    return storage.Client(project=project, credentials=credentials, client_options=options)


class GcsObjectStore(ObjectStore):
    """Bytes by key in ``gs://bucket/prefix``."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @classmethod
    def from_uri(cls, uri: str, client: Any = None) -> GcsObjectStore:
        parsed = urlparse(uri)
        if parsed.scheme != "gs" or not parsed.netloc:
            raise ValueError(f"not a GCS store URI: {uri!r}")
        return cls(parsed.netloc, parsed.path, client)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = storage_client()
        return self._client

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}" if self.prefix else f"gs://{self.bucket}"

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or ".." in parts:
            raise ValueError(f"store key {key!r} escapes the store")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def _blob(self, key: str) -> Any:
        return self.client.bucket(self.bucket).blob(self._key(key))

    def put(self, key: str, data: bytes) -> None:
        self._blob(key).upload_from_string(data, content_type="application/octet-stream")

    def get(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            data: bytes = self._blob(key).download_as_bytes()
        except NotFound:
            raise KeyError(f"no object {key!r} in {self.uri}") from None
        return data

    def exists(self, key: str) -> bool:
        return bool(self._blob(key).exists())

    def list(self, prefix: str = "") -> list[str]:
        from google.api_core.exceptions import NotFound

        prefix = prefix.strip("/")
        full = self._key(prefix) if prefix else self.prefix
        search = f"{full}/" if full else ""
        try:
            blobs = self.client.list_blobs(self.bucket, prefix=full if prefix else search)
            names = [blob.name for blob in blobs]
        except NotFound:
            return []
        return sorted(self._relative(n) for n in names if n == full or n.startswith(search))

    def delete(self, prefix: str) -> int:
        from google.api_core.exceptions import NotFound

        keys = self.list(prefix)
        bucket = self.client.bucket(self.bucket)
        for key in keys:
            with contextlib.suppress(NotFound):  # deleted meanwhile: what was asked is done
                bucket.blob(self._key(key)).delete()
        return len(keys)
