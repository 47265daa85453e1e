"""Packaging a runtime environment for Lambda: a layer zip, or a container image context.

The layer holds, under ``python/`` (on ``sys.path`` in every function that uses it): the
daydream core, this provider's handler, the workflow's own package, and the runtime's
requirements pip-installed for Lambda's platform (manylinux wheels for the function's
architecture and Python). Zips are deterministic (sorted entries, fixed timestamps), so the
same inputs give the same bytes and the same SHA-256: the layer is published once and found
again by that digest.

Before zipping, the installed requirements are slimmed (`daydream_aws.slim`): tests, caches,
headers, static libraries, type stubs, sources and docs are dropped and debug sections stripped;
the bundle carries the per-package report.

Limits: a zip uploaded directly in the request is at most 50 MB; larger ones go through S3;
function plus layers unzipped must stay under 250 MB, beyond which the runtime environment
must be a container image (up to 10 GB).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from daydream_aws import wire
from daydream_aws.slim import SLIM_VERSION, PackageSize, SlimReport, slim_site
from daydream_core.errors import ProviderError
from daydream_core.model import Tier
from daydream_core.sources import package_files, top_level
from daydream_core.workflow import RuntimeEnvironment

DIRECT_UPLOAD_MAX_BYTES = 50 * 1024 * 1024
UNZIPPED_MAX_BYTES = 250 * 1024 * 1024
CORE_PACKAGES = ("daydream_core", "daydream_aws")
CORE_REQUIREMENTS = ("numpy>=1.24",)  # what the core imports inside an instance
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_PLATFORMS = {
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
}

Package = Literal["layer", "layer-via-s3", "image"]


@dataclass(frozen=True)
class Bundle:
    """A built runtime environment: the layer zip and what it weighs."""

    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    slim: SlimReport | None = None  # the installed requirements, before and after slimming
    own: tuple[PackageSize, ...] = ()  # daydream and the workflow's package, as shipped


def choose_package(bundle: Bundle, image_uri: str | None) -> Package:
    """How to ship the runtime environment, from its size (an explicit image always wins)."""
    return choose_package_why(bundle, image_uri)[0]


def choose_package_why(bundle: Bundle, image_uri: str | None) -> tuple[Package, str]:
    """The path for the runtime environment, and why (for `deploy --dry-run`)."""
    unzipped = f"{bundle.unzipped_bytes / 2**20:.0f} MB unzipped"
    zipped = f"{bundle.zipped_bytes / 2**20:.0f} MB zipped"
    if image_uri:
        return "image", "an image was named (-o image_uri)"
    if bundle.unzipped_bytes > UNZIPPED_MAX_BYTES:
        return "image", f"{unzipped}: over Lambda's 250 MB for a function and its layers"
    if bundle.zipped_bytes > DIRECT_UPLOAD_MAX_BYTES:
        return (
            "layer-via-s3",
            f"{unzipped} fits a layer; {zipped} is over 50 MB for a direct upload",
        )
    return "layer", f"{unzipped} fits a layer; {zipped} uploads directly"


def requirements(runtime: RuntimeEnvironment) -> tuple[str, ...]:
    return (*CORE_REQUIREMENTS, *runtime.requirements)


def install_requirements(
    wanted: Iterable[str], architecture: str, python_runtime: str, cache_dir: Path
) -> Path:
    """pip-install `wanted` for Lambda's platform into a cached directory; return it."""
    wanted = tuple(wanted)
    version = python_runtime.removeprefix("python")
    identity = json.dumps([wanted, architecture, version])
    target = cache_dir / f"site-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="site-", dir=cache_dir))
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile"]
    command += ["--target", str(staging), "--implementation", "cp"]
    command += ["--python-version", version, "--only-binary=:all:"]
    for platform in _PLATFORMS[architecture]:
        command += ["--platform", platform]
    command += list(wanted)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ProviderError(
            f"installing the runtime's requirements for Lambda ({architecture}, "
            f"{python_runtime}) failed: {last}"
        )
    try:
        staging.rename(target)
    except OSError:  # another process got there first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def slimmed(site: Path, *, strip: bool = True) -> tuple[Path, SlimReport]:
    """The slimmed copy of an installed site (cached beside it, with its report)."""
    target = site.with_name(f"{site.name}.slim{SLIM_VERSION}")
    record = target.with_name(target.name + ".json")
    if target.is_dir() and record.is_file():
        data = json.loads(record.read_text())
        data["packages"] = tuple(PackageSize(**p) for p in data["packages"])
        data["kept_packages"] = tuple(data["kept_packages"])
        return target, SlimReport(**data)
    shutil.rmtree(target, ignore_errors=True)
    report = slim_site(site, target, strip=strip)
    record.write_text(json.dumps(dataclasses.asdict(report)))
    return target, report


def bundle_files(runtime: RuntimeEnvironment, site: Path | None) -> dict[str, Path]:
    """Every file of the layer, by its path in the zip."""
    files: dict[str, Path] = {}
    if site is not None:
        for path in sorted(site.rglob("*")):
            relative = path.relative_to(site)
            if path.is_file() and not _SKIP_DIRS.intersection(relative.parts):
                files[f"python/{relative.as_posix()}"] = path
    for name in dict.fromkeys((*CORE_PACKAGES, top_level(runtime.module))):
        for arcname, path in package_files(name):
            files[f"python/{arcname}"] = path
    return files


def write_zip(destination: Path, entries: dict[str, bytes | Path]) -> tuple[str, int]:
    """Write a deterministic zip; return its SHA-256 and unzipped size."""
    unzipped = 0
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".zip-", dir=destination.parent)
    with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        for arcname in sorted(entries):
            source = entries[arcname]
            data = source.read_bytes() if isinstance(source, Path) else source
            info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=6)
            unzipped += len(data)
    digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
    os.replace(tmp, destination)
    return digest, unzipped


def build_layer(
    runtime: RuntimeEnvironment,
    *,
    architecture: str,
    python_runtime: str,
    install: bool,
    cache_dir: Path,
) -> Bundle:
    """Build (or find in the cache) the layer zip of `runtime`."""
    site = report = None
    if install:
        site = install_requirements(requirements(runtime), architecture, python_runtime, cache_dir)
        site, report = slimmed(site)
    files = bundle_files(runtime, site)
    staging = cache_dir / f".layer-{os.getpid()}-{id(files)}.zip"
    digest, unzipped = write_zip(staging, dict(files))
    path = cache_dir / f"layer-{digest[:16]}.zip"
    os.replace(staging, path)
    own: dict[str, int] = {}
    for arcname, file in files.items():
        name = arcname.removeprefix("python/").split("/", 1)[0].removesuffix(".py")
        if name in (*CORE_PACKAGES, top_level(runtime.module)):
            own[name] = own.get(name, 0) + file.stat().st_size
    sizes = tuple(PackageSize(name, size, size) for name, size in sorted(own.items()))
    return Bundle(path, digest, path.stat().st_size, unzipped, report, sizes)


def function_zip(runtime: RuntimeEnvironment, tier: Tier) -> bytes:
    """The function's own code: only a manifest (the handler comes from the layer)."""
    manifest = {
        "daydream": {"runtime": runtime.name, "module": runtime.module, "tier": tier.name},
        "handler": wire.HANDLER,
    }
    entries: dict[str, bytes | Path] = {
        "daydream-function.json": json.dumps(manifest, sort_keys=True).encode()
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "function.zip"
        write_zip(path, entries)
        return path.read_bytes()
