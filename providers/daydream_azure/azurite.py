"""Azurite, Microsoft's Blob emulator (npm), started and stopped for the fake.

It runs offline (``--disableTelemetry --skipApiVersionCheck --inMemoryPersistence``) on
127.0.0.1 and a free port. The executable is ``DAYDREAM_AZURITE`` if set, else
``azurite-blob`` on ``PATH``, else the copy in daydream's cache, which `install` puts there
with npm (``python -m daydream_azure.azurite`` does it ahead of time, as CI does).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from platformdirs import user_cache_dir

VERSION = "3.37.0"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development account key, published in its documentation: it opens
# nothing but a local emulator.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
START_TIMEOUT_S = 30.0
_LISTENING = re.compile(r"listens on (http://127\.0\.0\.1:\d+)")


def cache_prefix() -> Path:
    return Path(user_cache_dir("daydream")) / f"azurite-{VERSION}"


def executable() -> str | None:
    """Where Azurite's Blob service is, or None when it is not installed."""
    explicit = os.environ.get("DAYDREAM_AZURITE")
    if explicit:
        return explicit
    found = shutil.which("azurite-blob")
    if found:
        return found
    cached = cache_prefix() / "node_modules" / ".bin" / "azurite-blob"
    return str(cached) if cached.exists() else None


def install() -> str:
    """Install Azurite into daydream's cache with npm (idempotent); return the executable."""
    found = executable()
    if found:
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "the azure fake needs Azurite (Node.js): install npm, then run "
            "`python -m daydream_azure.azurite`, or set DAYDREAM_AZURITE to azurite-blob"
        )
    prefix = cache_prefix()
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", f"azurite@{VERSION}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = executable()
    if done.returncode != 0 or found is None:
        last = (done.stderr.strip().splitlines() or ["npm failed"])[-1]
        raise RuntimeError(f"installing Azurite {VERSION} with npm failed: {last}")
    return found


class Azurite:
    """One Azurite Blob service with its data in memory."""

    def __init__(self) -> None:
        self.url = ""
        self._process: subprocess.Popen[str] | None = None
        self._workspace: tempfile.TemporaryDirectory[str] | None = None

    @property
    def account_url(self) -> str:
        return f"{self.url}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.account_url};"
        )

    def start(self) -> None:
        command = [
            install(),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--inMemoryPersistence",
            "--loose",
        ]
        # In memory, Azurite takes no --location; its working directory gets its debug files.
        self._workspace = tempfile.TemporaryDirectory(prefix="daydream-azurite-")
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self._workspace.name,
        )
        found: list[str] = []
        early: list[str] = []
        ready = threading.Event()

        def watch() -> None:
            assert self._process is not None and self._process.stdout is not None
            for line in self._process.stdout:
                match = _LISTENING.search(line)
                if match and not found:
                    found.append(match.group(1))
                    ready.set()
                elif not found:
                    early.append(line.strip())
            ready.set()  # the process ended

        threading.Thread(target=watch, name="azurite-output", daemon=True).start()
        if not ready.wait(START_TIMEOUT_S) or not found:
            self.stop()
            said = early[-1] if early else "no output (is Node.js 18 or later installed?)"
            raise RuntimeError(f"Azurite did not start: {said}")
        self.url = found[0]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._workspace is not None:
            self._workspace.cleanup()
            self._workspace = None


if __name__ == "__main__":
    print(install())
    sys.exit(0)
