"""No run lost, nothing left behind: concurrent commands into one folder, controllers killed
or terminated mid-run, failed runs beside other runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from daydream_core.deployments import Deployments
from daydream_core.outputs import reserve_run, summarise_folder
from daydream_core.workflow import RuntimeEnvironment

WORKFLOWS = Path(__file__).parent / "workflows"
DRIVER = WORKFLOWS / "drive_cli.py"


def _environment(profile: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(WORKFLOWS), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "DAYDREAM_PROFILE": str(profile)}


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def busy_controller(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[int], Path]]:
    """A `daydream run slow` whose two instances are busy computing; their pids. (One tier,
    so that no probe adds a third instance to wait for.)"""
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    controller = subprocess.Popen(
        [sys.executable, str(DRIVER), "run", "slow", "--policy", "all-high", "--out", str(out),
         "-p", f"marker_dir={markers}", "-p", "seconds=120"],
        env=_environment(tmp_path / "profile.sqlite"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert _wait(lambda: len(list(markers.glob("*.busy"))) == 2, 120), "instances busy"
        pids = [int(p.name.split(".")[0]) for p in markers.glob("*.busy")]
        yield controller, pids, out
    finally:
        if controller.poll() is None:
            controller.kill()
        controller.wait(timeout=30)
        for pid in pids if "pids" in locals() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_controller_takes_its_busy_instances(
    busy_controller: tuple[subprocess.Popen[str], list[int], Path],
) -> None:
    controller, pids, _ = busy_controller
    assert all(_alive(pid) for pid in pids)
    controller.kill()
    controller.wait(timeout=30)
    assert _wait(lambda: not any(_alive(pid) for pid in pids), 10), "instances outlived it"


def test_sigterm_stops_a_run_like_ctrl_c(
    busy_controller: tuple[subprocess.Popen[str], list[int], Path],
) -> None:
    controller, pids, out = busy_controller
    controller.send_signal(signal.SIGTERM)
    _, err = controller.communicate(timeout=60)
    assert controller.returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        f"daydream: error: interrupted; results so far are in {out.resolve()}"
    )
    assert "Traceback" not in err
    assert not any(_alive(pid) for pid in pids)
    assert _children(controller.pid) == []
    run = json.loads((out / "run-1" / "run.json").read_text())
    assert run["error"] == "interrupted"  # not recorded like a finished run


def _reserve(out: str) -> int:
    return reserve_run(Path(out))


def test_concurrent_reservations_never_share_a_run_directory(tmp_path: Path) -> None:
    with ProcessPoolExecutor(4) as pool:
        indices = list(pool.map(_reserve, [str(tmp_path)] * 24))
    assert sorted(indices) == list(range(1, 25))
    assert oct((tmp_path / "run-1").stat().st_mode & 0o777) == "0o700"


def test_two_commands_into_one_folder_keep_both_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    commands = [
        subprocess.Popen(
            [sys.executable, str(DRIVER), "run", "demo", "--out", str(out)],
            env=_environment(tmp_path / f"profile-{i}.sqlite"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for command in commands:
        _, err = command.communicate(timeout=300)
        assert command.returncode == 0, err
    run_ids = {json.loads((out / f"run-{i}" / "run.json").read_text())["run_id"] for i in (1, 2)}
    assert len(run_ids) == 2  # each run's files were written by its own controller
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == [1, 2] == summarise_folder(out)["runs"]


def test_a_failed_run_removes_only_what_it_deployed(tmp_path: Path) -> None:
    """Two controllers on one platform: the failing one deletes its own function only, and
    never one it found already deployed."""
    from daydream_local.provider import LocalProvider

    platform = LocalProvider(tmp_path, concurrency=2)
    try:
        high = platform.tiers()["high"]
        ours = RuntimeEnvironment("ours", "ours_module")
        theirs = RuntimeEnvironment("theirs", "theirs_module")
        other_run = Deployments(platform)
        shared = other_run.deploy(ours, platform.tiers()["low"])
        their_function = other_run.deploy(theirs, high)
        failing_run = Deployments(platform)
        created = failing_run.deploy(ours, high)
        found = failing_run.deploy(ours, platform.tiers()["low"])
        assert found == shared
        assert failing_run.remove_created() == [created.name]
        assert platform.list() == sorted([shared.name, their_function.name])
    finally:
        platform.close()


def test_a_profile_failing_mid_run_keeps_the_runs_files(
    demo_app: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from daydream_core.cli import main
    from daydream_core.errors import ProfileError
    from daydream_core.profile import ProfileStore

    def broken(self: ProfileStore, *args: object) -> None:
        raise ProfileError(f"profile store {self.path} failed: disk I/O error")

    monkeypatch.setattr(ProfileStore, "learn_phase", broken)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "demo", "--out", str(out)])
    assert exit_info.value.code == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("daydream: error: profile store ") and "disk I/O error" in line
    # Phase 1's learning is written while phase 2 runs: its failure stops the run there.
    assert (out / "run-1" / "phase_time.txt").read_text().count("\n") == 2
    run = json.loads((out / "run-1" / "run.json").read_text())
    assert "disk I/O error" in run["error"] and len(run["phases"]) == 2


def test_a_sqlite_file_that_is_not_a_profile_is_refused_at_open(tmp_path: Path) -> None:
    import sqlite3

    from daydream_core.errors import ConfigurationError
    from daydream_core.profile import ProfileStore

    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE runs (x INTEGER)")
        db.execute("PRAGMA user_version = 1")
    with pytest.raises(ConfigurationError, match="is not a daydream profile"):
        ProfileStore(path)
