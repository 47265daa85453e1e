"""The runtime environment as a function app package: one deterministic zip.

Its root holds what the Functions host reads: ``function_app.py`` (which imports the app of
`daydream_azure.handler`), ``host.json`` and ``requirements.txt``; the code goes under
``.python_packages/lib/site-packages`` (where a package deployed without a remote build keeps
its libraries): the daydream core, this provider, the workflow's own package and, unless told
not to, the runtime's requirements pip-installed for Linux x86_64 and the app's Python. Same
inputs, same bytes, same SHA-256: a package is deployed once and recognised by that digest.
"""

from __future__ import annotations

import hashlib
import io
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

from daydream_core.errors import ProviderError
from daydream_core.sources import package_files
from daydream_core.workflow import RuntimeEnvironment

SITE_PACKAGES = ".python_packages/lib/site-packages"
CORE_PACKAGES = ("daydream_core", "daydream_azure")
# What the core and this function app import inside an instance.
CORE_REQUIREMENTS = (
    "numpy>=1.24",
    "azure-functions>=1.18",
    "azure-storage-blob>=12.19",
    "azure-identity>=1.15",
)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
FUNCTION_APP = (
    '"""daydream\'s function app (generated): the Functions host indexes `app`."""\n\n'
    "from daydream_azure.handler import app  # noqa: F401\n"
)
HOST_JSON = {
    "version": "2.0",
    "extensions": {"http": {"routePrefix": "api"}},
    "logging": {"logLevel": {"default": "Warning"}},
}
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


@dataclass(frozen=True)
class Package:
    """A built function app package."""

    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int


def requirements(runtime: RuntimeEnvironment) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*CORE_REQUIREMENTS, *runtime.requirements)))


def install_requirements(wanted: Iterable[str], python_version: str, cache_dir: Path) -> Path:
    """pip-install `wanted` for Linux x86_64 and `python_version` into a cached directory."""
    wanted = tuple(wanted)
    identity = json.dumps([wanted, python_version, PLATFORMS])
    target = cache_dir / f"site-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="site-", dir=cache_dir))
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile"]
    command += ["--target", str(staging), "--implementation", "cp"]
    command += ["--python-version", python_version, "--only-binary=:all:"]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    done = subprocess.run([*command, *wanted], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ProviderError(
            f"installing the runtime's requirements for Azure (Python {python_version}) "
            f"failed: {last}"
        )
    try:
        staging.rename(target)
    except OSError:  # another process got there first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def package_entries(runtime: RuntimeEnvironment, site: Path | None) -> dict[str, bytes | Path]:
    """Every entry of the package, by its path in the zip."""
    entries: dict[str, bytes | Path] = {
        "function_app.py": FUNCTION_APP.encode(),
        "host.json": json.dumps(HOST_JSON, indent=2, sort_keys=True).encode(),
        "requirements.txt": "".join(f"{r}\n" for r in requirements(runtime)).encode(),
    }
    if site is not None:
        for path in sorted(site.rglob("*")):
            relative = path.relative_to(site)
            if path.is_file() and not _SKIP_DIRS.intersection(relative.parts):
                entries[f"{SITE_PACKAGES}/{relative.as_posix()}"] = path
    top = runtime.module.partition(".")[0]
    for name in dict.fromkeys((*CORE_PACKAGES, top)):
        for arcname, path in package_files(name):
            entries[f"{SITE_PACKAGES}/{arcname}"] = path
    return entries


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


def build_package(
    runtime: RuntimeEnvironment, *, python_version: str, install: bool, cache_dir: Path
) -> Package:
    """Build (or find in the cache) the function app package of `runtime`."""
    site = (
        install_requirements(requirements(runtime), python_version, cache_dir) if install else None
    )
    entries = package_entries(runtime, site)
    staging = cache_dir / f".package-{os.getpid()}-{id(entries)}.zip"
    digest, unzipped = write_zip(staging, entries)
    path = cache_dir / f"package-{digest[:16]}.zip"
    os.replace(staging, path)
    return Package(path, digest, path.stat().st_size, unzipped)


def check_package(data: bytes) -> str | None:
    """Why a package cannot run as a daydream function app, or None (used by the fake)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        return "the package is not a zip file"
    for needed in ("function_app.py", "host.json", f"{SITE_PACKAGES}/daydream_azure/handler.py"):
        if needed not in names:
            return f"the package has no {needed}"
    return None
