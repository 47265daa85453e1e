"""Packaging a runtime environment as a Cloud Functions source: one deterministic zip.

Cloud Functions builds the source itself (Cloud Build with Google's Python buildpack): it
pip-installs ``requirements.txt`` and serves ``main.daydream`` with functions-framework. So
the zip holds the daydream core, this provider's handler, the workflow's own package, a
``requirements.txt`` naming what the runtime environment needs, and a ``main.py`` that puts
the source's own directory first on ``sys.path`` (the packaged daydream wins over anything
the build installed) and exposes the handler. Entries are sorted with fixed timestamps: the
same inputs give the same bytes, and the zip's SHA-256 names the source.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass

from daydream_core.errors import ConfigurationError
from daydream_core.sources import package_files, top_level
from daydream_core.workflow import RuntimeEnvironment
from daydream_gcp import wire

CORE_PACKAGES = ("daydream_core", "daydream_gcp")
# What the core and the handler import inside an instance.
CORE_REQUIREMENTS = ("numpy>=1.24", "google-cloud-storage>=2.14", "functions-framework>=3.5")
MAX_SOURCE_BYTES = 100 * 1024 * 1024  # generateUploadUrl's limit on the uploaded archive
_EPOCH = (1980, 1, 1, 0, 0, 0)

MAIN = f'''"""daydream's entry point on Cloud Functions (generated; do not edit)."""

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if sys.path[:1] != [_here]:
    sys.path.insert(0, _here)

from daydream_gcp.handler import entry as {wire.ENTRY_POINT}  # noqa: E402
'''


@dataclass(frozen=True)
class Source:
    """A built function source: the zip's bytes and digest."""

    data: bytes
    sha256: str
    unzipped_bytes: int


def requirements_txt(runtime: RuntimeEnvironment) -> str:
    wanted = dict.fromkeys((*CORE_REQUIREMENTS, *runtime.requirements))
    return "".join(f"{line}\n" for line in wanted)


def build_source(runtime: RuntimeEnvironment) -> Source:
    """The zip of `runtime`'s function source, deterministic."""
    entries: dict[str, bytes] = {
        "main.py": MAIN.encode(),
        "requirements.txt": requirements_txt(runtime).encode(),
    }
    for name in dict.fromkeys((*CORE_PACKAGES, top_level(runtime.module))):
        for arcname, path in package_files(name):
            entries[arcname] = path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for arcname in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[arcname], compresslevel=6)
    data = buffer.getvalue()
    if len(data) > MAX_SOURCE_BYTES:
        raise ConfigurationError(
            f"gcp: the source of runtime environment {runtime.name!r} is "
            f"{len(data) / 2**20:.0f} MB zipped, over Cloud Functions' 100 MB; move data out "
            "of the workflow's package (into the object store) or into requirements"
        )
    unzipped = sum(len(v) for v in entries.values())
    return Source(data, hashlib.sha256(data).hexdigest(), unzipped)
