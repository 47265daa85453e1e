"""The conformance suite against the ray provider, as CI runs it (``daydream conformance
--provider ray``): a real local Ray instance started by the provider's hook
(``daydream_ray.testing.conformance_environment``), with the actor table Ray's GCS keeps as the
platform's view. In a process of its own: Ray starts once per process, and pytester's
in-process runs would drop the modules Ray imports while starting."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from daydream_conformance.support import NO_BILL

pytest.importorskip("ray")

SUITE_TIMEOUT_S = 900
DAYDREAM = [sys.executable, "-I", "-c", "from daydream_core.cli import main; main()"]


def test_ray_passes_the_conformance_suite(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *DAYDREAM,
            "conformance",
            "--provider",
            "ray",
            "--",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    outcomes = {
        kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", done.stdout.splitlines()[-1])
    }
    assert outcomes.get("passed", 0) >= 28
    assert not {"failed", "errors", "error"} & set(outcomes)
    # Ray keeps no bill (the adapter bills its own measurements); nothing else may be skipped:
    # memory and CPU share are Ray's own word inside every instance.
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED [")]
    assert {line.split(": ", 2)[1] for line in skipped} <= {NO_BILL}
