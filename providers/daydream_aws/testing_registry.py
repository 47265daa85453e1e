"""A local fake of ECR's registry API (the OCI distribution API), for tests and the suite.

moto serves ECR's control plane (repositories, ``GetAuthorizationToken``) but not the
registry a push talks to. `RegistryFake` is that registry, on 127.0.0.1: blob uploads
(``POST``/``PATCH``/``PUT ?digest=``, checked against the digest), cross-repository mounts,
manifest ``PUT`` (every referenced blob must be there) and ``GET``/``HEAD`` of blobs and
manifests. Its repositories are moto's: a push to a repository that moto's ECR does not hold
is ``404 NAME_UNKNOWN``, and deleting the repository in moto deletes its images here. It needs
HTTP Basic authorisation with the user ``AWS``, as ECR does.

It starts holding a small synthetic base image (a few files and a config, one linux/amd64 and
one linux/arm64 image behind an OCI index) in `BASE_REPOSITORY`, standing in for the AWS
Lambda Python base image that an ECR pull-through cache of ``public.ecr.aws`` would hold.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import tarfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from daydream_aws.image import (
    INDEX_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    PLATFORMS,
    sha256_digest,
)

BASE_REPOSITORY = "ecr-public/lambda/python"
BASE_TAGS = ("3.10", "3.11", "3.12", "3.13")


class RegistryFake:
    """An OCI distribution registry on 127.0.0.1 whose repositories are moto's ECR ones."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self.blobs: dict[str, dict[str, bytes]] = {}
        self.manifests: dict[str, dict[str, tuple[bytes, str]]] = {}
        self.mounts = 0  # blobs linked by a cross-repository mount
        self.uploads = 0  # blobs whose bytes were uploaded
        self._sessions: dict[str, tuple[str, bytearray]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> None:
        fake = self

        class Handler(_Handler):
            registry = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._seed_base()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- what the registry holds ---------------------------------------------------------------

    def repositories(self) -> set[str]:
        """moto's ECR repositories: the only ones this registry serves."""
        from moto.ecr.models import ecr_backends

        return set(ecr_backends[self.account][self.region].repositories)

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self.manifests.get(repository, {}).get(reference)

    def _seed_base(self) -> None:
        """A tiny stand-in for the Lambda Python base image, per Python version."""
        import boto3

        ecr = boto3.session.Session().client("ecr")
        with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
            ecr.create_repository(repositoryName=BASE_REPOSITORY)
        for tag in BASE_TAGS:
            descriptors = []
            for architecture in PLATFORMS.values():
                layer = _tar_gz(
                    {
                        "var/runtime/bootstrap": b"#!/bin/sh\nexec python3 -m awslambdaric\n",
                        "etc/os-release": f'NAME="fake lambda python {tag}"\n'.encode(),
                    }
                )
                plain = gzip.decompress(layer)
                config = json.dumps(
                    {
                        "architecture": architecture,
                        "os": "linux",
                        "config": {
                            "Env": [
                                "LAMBDA_TASK_ROOT=/var/task",
                                "LAMBDA_RUNTIME_DIR=/var/runtime",
                            ],
                            "Entrypoint": ["/lambda-entrypoint.sh"],
                            "WorkingDir": "/var/task",
                        },
                        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(plain)]},
                    }
                ).encode()
                manifest = json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_MANIFEST,
                        "config": {
                            "mediaType": OCI_CONFIG,
                            "digest": sha256_digest(config),
                            "size": len(config),
                        },
                        "layers": [
                            {
                                "mediaType": OCI_LAYER,
                                "digest": sha256_digest(layer),
                                "size": len(layer),
                            }
                        ],
                    }
                ).encode()
                self._store_blob(BASE_REPOSITORY, layer)
                self._store_blob(BASE_REPOSITORY, config)
                self._store_manifest(
                    BASE_REPOSITORY, sha256_digest(manifest), manifest, OCI_MANIFEST
                )
                descriptors.append(
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": sha256_digest(manifest),
                        "size": len(manifest),
                        "platform": {"os": "linux", "architecture": architecture},
                    }
                )
            index = json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
            ).encode()
            self._store_manifest(BASE_REPOSITORY, tag, index, OCI_INDEX)

    def _store_blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        with self._lock:
            self.blobs.setdefault(repository, {})[digest] = data
        return digest

    def _store_manifest(self, repository: str, reference: str, data: bytes, kind: str) -> None:
        with self._lock:
            held = self.manifests.setdefault(repository, {})
            held[reference] = (data, kind)
            held[sha256_digest(data)] = (data, kind)

    def image_files(self, repository: str, reference: str) -> set[str]:
        """The file names in the layers of an image this registry holds (for the Lambda fake)."""
        found = self.manifest(repository, reference)
        if found is None:
            return set()
        manifest = json.loads(found[0])
        names: set[str] = set()
        for descriptor in manifest.get("layers", []):
            data = self.blobs.get(repository, {}).get(descriptor["digest"], b"")
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
                names |= {m.name for m in tar.getmembers() if m.isfile()}
        return names

    def forget(self, repository: str) -> None:
        with self._lock:
            self.blobs.pop(repository, None)
            self.manifests.pop(repository, None)


def _tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


class _Handler(BaseHTTPRequestHandler):
    registry: RegistryFake
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._send(status, body, {"Content-Type": "application/json"})

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            user = base64.b64decode(token).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            user = ""
        if scheme != "Basic" or user != "AWS":
            self._error(401, "UNAUTHORIZED", "authentication required")
            return False
        return True

    def _route(self) -> tuple[str, str, str, dict[str, list[str]]] | None:
        """(repository, kind, rest, query) of a /v2/<repo>/<kind>/<rest> path."""
        parts = urlsplit(self.path)
        path = parts.path.removeprefix("/v2/")
        for kind in ("/blobs/uploads/", "/blobs/", "/manifests/"):
            if kind in path:
                repository, _, rest = path.partition(kind)
                return repository, kind.strip("/"), rest, parse_qs(parts.query)
        return None

    def _handle(self) -> None:
        self._pending = self._body()
        if not self._authorised():
            return
        if urlsplit(self.path).path in ("/v2", "/v2/"):
            self._send(200, b"{}")
            return
        route = self._route()
        if route is None:
            self._error(404, "NOT_FOUND", self.path)
            return
        repository, kind, rest, query = route
        if repository not in self.registry.repositories():
            self.registry.forget(repository)
            self._error(404, "NAME_UNKNOWN", f"repository {repository} not found")
            return
        getattr(self, f"_{kind.replace('/', '_')}")(repository, rest, query)

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    def _blobs(self, repository: str, digest: str, query: dict[str, list[str]]) -> None:
        data = self.registry.blobs.get(repository, {}).get(digest)
        if data is None:
            self._error(404, "BLOB_UNKNOWN", digest)
            return
        headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream"}
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(data)

    def _blobs_uploads(self, repository: str, session: str, query: dict[str, list[str]]) -> None:
        registry = self.registry
        if self.command == "POST":
            mount, source = query.get("mount", [""])[0], query.get("from", [""])[0]
            held = registry.blobs.get(source, {}).get(mount) if mount else None
            if held is not None and source in registry.repositories():
                registry._store_blob(repository, held)
                registry.mounts += 1
                location = f"/v2/{repository}/blobs/{mount}"
                self._send(201, headers={"Location": location, "Docker-Content-Digest": mount})
                return
            new = uuid.uuid4().hex
            with registry._lock:
                registry._sessions[new] = (repository, bytearray())
            self._send(202, headers={"Location": f"/v2/{repository}/blobs/uploads/{new}"})
            return
        with registry._lock:
            found = registry._sessions.get(session)
        if found is None or found[0] != repository:
            self._error(404, "BLOB_UPLOAD_UNKNOWN", session)
            return
        buffer = found[1]
        buffer.extend(self._pending)
        if self.command == "PATCH":
            location = f"/v2/{repository}/blobs/uploads/{session}"
            self._send(202, headers={"Location": location, "Range": f"0-{len(buffer) - 1}"})
            return
        if self.command != "PUT":
            self._error(405, "UNSUPPORTED", self.command)
            return
        digest = query.get("digest", [""])[0]
        if sha256_digest(bytes(buffer)) != digest:
            self._error(400, "DIGEST_INVALID", f"the upload is not {digest}")
            return
        with registry._lock:
            del registry._sessions[session]
        registry._store_blob(repository, bytes(buffer))
        registry.uploads += 1
        self._send(201, headers={"Location": f"/v2/{repository}/blobs/{digest}"})

    def _manifests(self, repository: str, reference: str, query: dict[str, list[str]]) -> None:
        registry = self.registry
        if self.command in ("GET", "HEAD"):
            found = registry.manifest(repository, reference)
            if found is None:
                self._error(404, "MANIFEST_UNKNOWN", reference)
                return
            data, kind = found
            headers = {"Content-Type": kind, "Docker-Content-Digest": sha256_digest(data)}
            self._send(200, data, headers)
            return
        if self.command != "PUT":
            self._error(405, "UNSUPPORTED", self.command)
            return
        data = self._pending
        kind = self.headers.get("Content-Type", "")
        manifest = json.loads(data)
        wanted = [] if kind in INDEX_TYPES else [manifest["config"], *manifest["layers"]]
        held = registry.blobs.get(repository, {})
        missing = [d["digest"] for d in wanted if d["digest"] not in held]
        if missing:
            self._error(400, "MANIFEST_BLOB_UNKNOWN", missing[0])
            return
        registry._store_manifest(repository, reference, data, kind)
        digest = sha256_digest(data)
        self._send(
            201,
            headers={
                "Docker-Content-Digest": digest,
                "Location": f"/v2/{repository}/manifests/{digest}",
            },
        )
