"""End to end: ``daydream --provider ray run ccl`` as a user types it, in a process of its own:
a local Ray instance is started for the run and shut down after, leaving no actor and no Ray
process behind. The small preset is shrunk with ``-p`` to keep this quick."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("pyccl")
pytest.importorskip("camb")

from daydream_ray.testing import session_processes, wait_for_no_processes

SHRINK = ["-p", "n_initial=2", "-p", "max_rounds=1", "-p", "n_ell=16", "-p", "n_theta=5"]
DAYDREAM = [sys.executable, "-I", "-c", "from daydream_core.cli import main; main()"]
RUN_TIMEOUT_S = 600


def daydream(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DAYDREAM_PROFILE": str(tmp_path / "profile.sqlite")}
    return subprocess.run(
        [*DAYDREAM, *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def ray_sessions() -> set[str]:
    """Ray sessions with a live process on this machine."""
    root = Path("/tmp/ray")
    if not root.is_dir():
        return set()
    names = {p.name for p in root.iterdir() if p.name.startswith("session_2")}
    return {name for name in names if session_processes(name)}


def test_run_ccl_on_a_local_ray_leaves_nothing(tmp_path: Path) -> None:
    before = ray_sessions()
    out = tmp_path / "out"
    done = daydream(
        tmp_path, "--provider", "ray", "run", "ccl", "--runs", "2", "--out", str(out), *SHRINK
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr

    records = [json.loads((out / f"run-{i}" / "run.json").read_text()) for i in (1, 2)]
    for record in records:
        assert record["error"] is None and record["provider"] == "ray"
        invocations = [i for phase in record["phases"] for i in phase["invocations"]]
        assert invocations and all(i["error"] is None for i in invocations)
        assert all(len(i["instance"]) == 32 for i in invocations), "Ray's actor ids"
        assert all(i["cost"] > 0 for i in invocations), "billed on the on-premises table"
    first = records[0]["phases"]
    assert {i["start"] for i in first[0]["invocations"]} == {"cold"}, "nothing was alive"
    later = [i["start"] for r in records for p in r["phases"][1:] for i in p["invocations"]]
    assert {"hot", "warm"} & set(later), "no instance started ahead or reused after phase 1"
    hot_started = [h for r in records for p in r["phases"][1:] for h in p["hot_starts"]]
    assert hot_started, "no hot start recorded from the second phase on"

    # Ray ends a session's processes asynchronously after the driver exits: a bounded wait.
    left = {s: wait_for_no_processes(s) for s in ray_sessions() - before}
    assert not any(left.values()), f"the run left Ray processes behind: {left}"


def test_a_wrong_address_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for address in ("ray://127.0.0.1:9", "127.0.0.1:9"):
        done = daydream(tmp_path, "--provider", "ray", "-o", f"address={address}", "run", "ccl")
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"daydream: error: ray: cannot reach a Ray cluster at {address}")


def test_a_bad_option_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = daydream(tmp_path, "--provider", "ray", "-o", "high_cpus=lots", "run", "ccl")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "daydream: error: ray option high_cpus='lots' is not a valid float"
    )
