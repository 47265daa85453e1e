"""Pushing an image to ECR through the OCI distribution API: no Docker daemon.

ECR speaks the registry HTTP API (``/v2/…``) at ``ACCOUNT.dkr.ecr.REGION.amazonaws.com``;
``GetAuthorizationToken`` gives a base64 ``AWS:<password>`` pair used as HTTP Basic
authorisation for 12 hours. A push is: each blob that the repository lacks is first offered
as a cross-repository mount from the base image's repository (``POST …/blobs/uploads/?mount=
DIGEST&from=REPO``: 201 when the registry links it, no bytes moved), else copied or uploaded
(``POST`` for an upload session, one ``PATCH`` with the bytes, ``PUT ?digest=``, as Docker
does); then the manifest is ``PUT`` under its tag, and read back by that tag to check the
registry holds exactly what was sent. urllib3 (botocore's own HTTP library) does the HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import urllib3

from daydream_aws.image import INDEX_TYPES, MANIFEST_TYPES, Image, platform_manifest
from daydream_core.errors import ConfigurationError, ProviderError

ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
TIMEOUT = urllib3.Timeout(connect=10.0, read=300.0)


class RegistryClient:
    """The few registry calls a push needs, against one registry."""

    def __init__(self, base_url: str, authorization: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Basic {authorization}"}
        self._http = urllib3.PoolManager(timeout=TIMEOUT, retries=urllib3.Retry(3, redirect=2))

    def _request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> Any:
        target = url if url.startswith("http") else self.base_url + url
        response = self._http.request(
            method, target, body=body, headers={**self._headers, **(headers or {})}
        )
        if response.status == 401:
            raise ConfigurationError(
                f"aws: the registry {self.base_url} refused the ECR authorisation token"
            )
        if response.status not in expect:
            detail = response.data[:300].decode(errors="replace")
            raise ProviderError(f"registry {method} {target} answered {response.status}: {detail}")
        return response

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        """(manifest bytes, media type) of `repository:reference`."""
        response = self._request(
            "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT}
        )
        media_type = str(response.headers.get("Content-Type", "")).split(";")[0]
        data = bytes(response.data)
        if not media_type:
            media_type = str(json.loads(data).get("mediaType", ""))
        return data, media_type

    def image_manifest(
        self, repository: str, reference: str, architecture: str
    ) -> tuple[dict[str, Any], str]:
        """The single-platform manifest of an image, through its index if it has one."""
        data, media_type = self.manifest(repository, reference)
        if media_type in INDEX_TYPES:
            descriptor = platform_manifest(json.loads(data), architecture)
            if descriptor is None:
                raise ConfigurationError(
                    f"aws: base image {repository}:{reference} has no linux/{architecture} image"
                )
            data, media_type = self.manifest(repository, str(descriptor["digest"]))
        if media_type not in MANIFEST_TYPES:
            raise ConfigurationError(
                f"aws: base image {repository}:{reference} has an unsupported manifest type "
                f"{media_type!r}"
            )
        return json.loads(data), media_type

    def blob(self, repository: str, digest: str) -> bytes:
        return bytes(self._request("GET", f"/v2/{repository}/blobs/{digest}").data)

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", expect=(200, 404))
        return bool(response.status == 200)

    def mount(self, repository: str, digest: str, source: str) -> str | None:
        """Link `digest` from `source` into `repository`: None when done, else the upload
        session the registry opened instead (it declined the mount)."""
        query = urlencode({"mount": digest, "from": source})
        response = self._request(
            "POST", f"/v2/{repository}/blobs/uploads/?{query}", expect=(201, 202)
        )
        if response.status == 201:
            return None
        return self._location(response)

    def upload(self, repository: str, digest: str, data: bytes, session: str | None = None) -> None:
        """Upload one blob: an upload session, the bytes in one PATCH, then PUT ?digest=."""
        if session is None:
            started = self._request("POST", f"/v2/{repository}/blobs/uploads/", expect=(202,))
            session = self._location(started)
        patched = self._request(
            "PATCH",
            session,
            body=data,
            headers={"Content-Type": "application/octet-stream"},
            expect=(202,),
        )
        location = self._location(patched)
        separator = "&" if "?" in location else "?"
        self._request("PUT", f"{location}{separator}{urlencode({'digest': digest})}", expect=(201,))

    def put_manifest(self, repository: str, tag: str, manifest: bytes, media_type: str) -> str:
        """Put a manifest under `tag`; the digest the registry reports for it."""
        response = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{tag}",
            body=manifest,
            headers={"Content-Type": media_type},
            expect=(201,),
        )
        return str(response.headers.get("Docker-Content-Digest", ""))

    def _location(self, response: Any) -> str:
        location = response.headers.get("Location")
        if not location:
            raise ProviderError(f"registry {self.base_url} opened an upload without a Location")
        return urljoin(self.base_url + "/", str(location))

    def close(self) -> None:
        self._http.clear()


def push(
    client: RegistryClient, repository: str, tag: str, image: Image, base_repository: str
) -> str:
    """Push `image` (its base's layers mounted from `base_repository`); its checked digest."""
    for descriptor in image.base_layers:
        digest = str(descriptor["digest"])
        if client.has_blob(repository, digest):
            continue
        session = client.mount(repository, digest, base_repository)
        if session is not None:  # no mount: copy the base's layer through this machine
            client.upload(repository, digest, client.blob(base_repository, digest), session)
    blobs: list[tuple[str, bytes | Path]] = [
        (image.layer.digest, image.layer.path),
        (image.config_digest, image.config),
    ]
    for digest, content in blobs:
        if not client.has_blob(repository, digest):
            data = content.read_bytes() if isinstance(content, Path) else content
            client.upload(repository, digest, data)
    reported = client.put_manifest(repository, tag, image.manifest, image.media_type)
    held, _ = client.manifest(repository, tag)
    if held != image.manifest or (reported and reported != image.digest):
        raise ProviderError(
            f"registry {client.base_url} holds another manifest under {repository}:{tag} than "
            "the one pushed"
        )
    return image.digest


def split_reference(reference: str) -> tuple[str, str]:
    """("repository", "tag or digest") of ``repo:tag`` or ``repo@sha256:…``."""
    if "@" in reference:
        repository, _, digest = reference.partition("@")
        return repository, digest
    repository, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        return reference, "latest"
    return repository, tag
