"""A Lambda container image assembled without Docker: the base image plus one layer.

The runtime environment's layer zip (everything under ``python/``) becomes one image layer
holding the same files under ``var/task/`` (``LAMBDA_TASK_ROOT``, on the Python runtime's
``sys.path``), written as a deterministic gzipped tar: same bundle, same digest. The image's
config is the base's, with that layer appended to its root filesystem and the command set to
daydream's handler; the manifest lists the base's layers, unchanged, then ours. Manifests keep
the base's media-type family (OCI or Docker v2): Lambda accepts both.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daydream_aws import wire

TASK_ROOT = "var/task"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
PLATFORMS = {"x86_64": "amd64", "arm64": "arm64"}  # Lambda's names -> OCI's


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Layer:
    """An image layer: its gzipped tar on disk, the digest of that, and of the plain tar."""

    path: Path
    digest: str
    diff_id: str
    size: int


@dataclass(frozen=True)
class Image:
    """An assembled image: the manifest and config to push, and the one new layer."""

    manifest: bytes
    media_type: str
    config: bytes
    layer: Layer
    base_layers: tuple[dict[str, Any], ...]  # the base's layer descriptors, to mount or copy

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config)


def layer_from_zip(layer_zip: Path, destination: Path) -> Layer:
    """The image layer of a runtime environment's layer zip (cached at `destination`)."""
    raw = io.BytesIO()
    with (
        zipfile.ZipFile(layer_zip) as archive,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        folders: set[str] = set()
        for name in sorted(archive.namelist()):
            if name.endswith("/") or not name.startswith("python/"):
                continue
            path = f"{TASK_ROOT}/{name.removeprefix('python/')}"
            parts = path.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    folders.add(folder)
                    tar.addfile(_entry(folder, tarfile.DIRTYPE, 0o755))
            data = archive.read(name)
            entry = _entry(path, tarfile.REGTYPE, 0o644)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    plain = raw.getvalue()
    packed = gzip.compress(plain, compresslevel=6, mtime=0)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(packed)
    return Layer(destination, sha256_digest(packed), sha256_digest(plain), len(packed))


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def platform_manifest(index: dict[str, Any], architecture: str) -> dict[str, Any] | None:
    """The descriptor of `architecture`'s Linux image in a multi-platform index."""
    wanted = PLATFORMS[architecture]
    for descriptor in index.get("manifests", []):
        platform = descriptor.get("platform", {})
        if platform.get("os") == "linux" and platform.get("architecture") == wanted:
            return dict(descriptor)
    return None


def assemble(
    base_manifest: dict[str, Any], base_config: dict[str, Any], media_type: str, layer: Layer
) -> Image:
    """The image of `layer` on top of the base image (its manifest and config)."""
    docker = media_type == DOCKER_MANIFEST
    config = json.loads(json.dumps(base_config))
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), layer.diff_id]
    settings = config.setdefault("config", {})
    settings["Cmd"] = [wire.HANDLER]
    config["history"] = [
        *config.get("history", []),
        {"created_by": "daydream: the runtime environment in LAMBDA_TASK_ROOT"},
    ]
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    base_layers = tuple(dict(d) for d in base_manifest.get("layers", []))
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "digest": sha256_digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            *base_layers,
            {
                "mediaType": DOCKER_LAYER if docker else OCI_LAYER,
                "digest": layer.digest,
                "size": layer.size,
            },
        ],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return Image(manifest_bytes, media_type, config_bytes, layer, base_layers)
