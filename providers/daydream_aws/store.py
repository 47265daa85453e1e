"""The S3 object store: inter-component data by key, under a prefix of a private bucket.

Key semantics follow the local store: ``list("a/b")`` returns the object ``a/b`` itself and
everything under ``a/b/``, never ``a/bc``. boto3 is imported only when a client is made.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from daydream_core.objectstore import ObjectStore

_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
_DELETE_BATCH = 1000  # DeleteObjects' limit


def s3_client(endpoint_url: str | None = None, session: Any = None) -> Any:
    """An S3 client from boto3's standard chain; path-style addressing off AWS's endpoints."""
    from botocore.config import Config

    if session is None:
        import boto3

        session = boto3.session.Session()
    config = Config(retries={"mode": "standard", "total_max_attempts": 5})
    client = session.client("s3", endpoint_url=endpoint_url, config=config)
    if "amazonaws.com" not in client.meta.endpoint_url:
        path_style = config.merge(Config(s3={"addressing_style": "path"}))
        client = session.client("s3", endpoint_url=endpoint_url, config=path_style)
    return client


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3ObjectStore(ObjectStore):
    """Bytes by key in ``s3://bucket/prefix``."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @classmethod
    def from_uri(cls, uri: str, client: Any = None) -> S3ObjectStore:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an S3 store URI: {uri!r}")
        return cls(parsed.netloc, parsed.path, client)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or ".." in parts:
            raise ValueError(f"store key {key!r} escapes the store")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _code(exc) in _NOT_FOUND:
                raise KeyError(f"no object {key!r} in {self.uri}") from None
            raise
        data: bytes = response["Body"].read()
        return data

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _code(exc) in _NOT_FOUND:
                return False
            raise
        return True

    def list(self, prefix: str = "") -> list[str]:
        prefix = prefix.strip("/")
        full = self._key(prefix) if prefix else self.prefix
        search = f"{full}/" if full else ""
        keys = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full if prefix else search
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"]
                    if name == full or name.startswith(search):
                        keys.append(self._relative(name))
        except Exception as exc:
            if _code(exc) == "NoSuchBucket":
                return []
            raise
        return sorted(keys)

    def delete(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._key(k)} for k in batch], "Quiet": True},
            )
        return len(keys)
