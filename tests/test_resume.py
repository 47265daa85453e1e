"""Resuming an interrupted run from its journal: the same outputs as a run never stopped, no
finished component invoked again, nothing counted twice, and bad `--resume` input refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daydream_local.provider import LocalProvider

from daydream_core import journal, plugins
from daydream_core.apps import AppSpec
from daydream_core.cli import main
from daydream_core.compare import read_folder
from daydream_core.engine import Engine, EngineEvents
from daydream_core.hookspecs import hookimpl
from daydream_core.html_report import load_folder
from daydream_core.journal import JournalError
from daydream_core.model import PhaseRecord, RunRecord
from daydream_core.outputs import read_run, summarise_folder
from daydream_core.plugins import policies
from daydream_core.probes import PROBE_SUFFIX
from daydream_core.profile import ProfileStore
from daydream_core.workflow import Workflow

WORKFLOWS = Path(__file__).parent / "workflows"


class _StopAfter(EngineEvents):
    """Ctrl-C as phase `phase` (0-based) completes: what a user does mid-run."""

    def __init__(self, phase: int) -> None:
        self.phase = phase

    def phase_done(self, run: RunRecord, phase: PhaseRecord) -> None:
        if phase.index == self.phase:
            raise KeyboardInterrupt


class _Counting(LocalProvider):
    """The local platform, counting the components it is asked to invoke."""

    invoked: list[str]

    def invoke(self, function: Any, payload: Any, timeout_s: float) -> Any:
        self.invoked.append(payload["component"])
        return super().invoke(function, payload, timeout_s)


@pytest.fixture
def steps(demo_workflows: Path) -> Iterator[Workflow]:
    import steps_workflow

    yield steps_workflow.workflow
    sys.modules.pop("steps_workflow", None)


def _engine(state: Path, profile: Path, events: EngineEvents | None = None) -> Engine:
    provider = _Counting(state, concurrency=4)
    provider.invoked = []
    return Engine(provider, ProfileStore(profile), policies()["daydream"], events=events)


def _run(
    engine: Engine, workflow: Workflow, out: Path, resume: journal.JournalState | None = None
) -> RunRecord:
    params = workflow.validate(workflow.preset("small").params)
    try:
        return engine.run(
            workflow, preset="small", params=params, seed=7, run_index=1, out_dir=out,
            resume=resume,
        )  # fmt: skip
    finally:
        engine.provider.close()
        engine.close()


def _journaled(run_dir: Path) -> list[tuple[str, str]]:
    """Every phase's calls (digest) and outputs, as the run's journal holds them; store keys
    begin with the run's id, which differs from run to run."""
    state = journal.read(run_dir)
    return [(p.calls, json.dumps(p.outputs).replace(state.run_id, "RUN")) for p in state.phases]


def test_a_resumed_run_equals_one_never_stopped(steps: Workflow, tmp_path: Path) -> None:
    whole = _run(_engine(tmp_path / "a", tmp_path / "a.sqlite"), steps, tmp_path / "a")

    out = tmp_path / "b"
    stopping = _engine(out, tmp_path / "b.sqlite", _StopAfter(1))
    with pytest.raises(KeyboardInterrupt):
        _run(stopping, steps, out)
    stopped = json.loads((out / "run-1" / "run.json").read_text())
    assert stopped["interrupted"] is True and stopped["error"] == "interrupted"
    assert len(stopped["phases"]) == 2
    first = _components(stopping.provider.invoked)  # type: ignore[attr-defined]

    state = journal.read(out / "run-1")
    assert not state.finished and len(state.completed) == 2
    resuming = _engine(out, tmp_path / "b.sqlite")
    resumed = _run(resuming, steps, out, resume=state)
    again = _components(resuming.provider.invoked)  # type: ignore[attr-defined]

    # The same outputs, phase by phase, and the same result; the same run, in its directory.
    assert _journaled(out / "run-1") == _journaled(tmp_path / "a" / "run-1")
    assert resumed.result == whole.result and resumed.error is None
    assert resumed.run_id == stopped["run_id"] and resumed.resumed_at == [2]
    assert [p.width for p in resumed.phases] == [p.width for p in whole.phases]
    # No finished component invoked again: the resumed controller ran phases 3 to 5 only.
    assert not set(again) & set(first)
    assert sorted(first + again) == sorted(whole_ids(whole))
    assert all(not c.startswith(("p1-", "p2-")) for c in again)
    data = json.loads((out / "run-1" / "run.json").read_text())
    assert data["interrupted"] is False and data["resumed_at"] == [2]
    assert len(data["phases"]) == 5 and data["result"] == whole.result


def _components(invoked: list[str]) -> list[str]:
    """The components invoked, without probes (which follow what each run had learned)."""
    return [c for c in invoked if not c.endswith(PROBE_SUFFIX)]


def whole_ids(run: RunRecord) -> list[str]:
    return [r.component for p in run.phases for r in p.invocations]


def test_a_resumed_run_counts_nothing_twice_in_the_profile(steps: Workflow, tmp_path: Path) -> None:
    _run(_engine(tmp_path / "a", tmp_path / "a.sqlite"), steps, tmp_path / "a")
    out = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        _run(_engine(out, tmp_path / "b.sqlite", _StopAfter(2)), steps, out)
    interrupted = ProfileStore(tmp_path / "b.sqlite").describe()["runs"]
    assert [(r["runs"], r["failed"], r["interrupted"]) for r in interrupted] == [(1, 1, 1)]
    _run(_engine(out, tmp_path / "b.sqlite"), steps, out, resume=journal.read(out / "run-1"))

    whole, resumed = (ProfileStore(tmp_path / f"{name}.sqlite").describe() for name in ("a", "b"))
    # One run, finished; as many execution samples and phase widths as the uninterrupted run.
    assert [(r["runs"], r["failed"], r["interrupted"]) for r in resumed["runs"]] == [(1, 0, 0)]
    samples = {(t["kind"], t["tier"]): t["samples"] for t in resumed["timings"]}
    assert sum(samples.values()) == sum(t["samples"] for t in whole["timings"])
    assert resumed["workloads"][0]["phases"] == whole["workloads"][0]["phases"] == 5
    assert resumed["workloads"][0]["components"] == whole["workloads"][0]["components"]


# -- a controller killed: only the journal is left -----------------------------------------


def _environment(profile: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(WORKFLOWS), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "DAYDREAM_PROFILE": str(profile)}


def _drive(*args: str, profile: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKFLOWS / "drive_cli.py"), *args],
        env=_environment(profile),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Any, controller: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if controller.poll() is not None:
            raise AssertionError(f"the controller ended: {controller.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the controller")
        time.sleep(0.05)


def test_a_killed_controller_leaves_a_journal_that_resumes(tmp_path: Path) -> None:
    gate, out, profile = tmp_path / "gate", tmp_path / "out", tmp_path / "profile.sqlite"
    gate.mkdir()
    options = ["--concurrency", "4", "run", "steps", "--out", str(out), "--seed", "3",
               "-p", "hold_phase=3", "-p", f"gate_dir={gate}"]  # fmt: skip
    controller = _drive(*options, profile=profile)
    try:  # held in phase 4: phases 1 to 3 are journaled
        _wait_for(lambda: any(gate.glob("*.waiting")), controller, 120)
        controller.send_signal(signal.SIGKILL)
        controller.wait(timeout=60)
    finally:
        if controller.poll() is None:
            controller.kill()
    assert not (out / "run-1" / "run.json").exists()  # it never got to write it

    # Readers take the records from the journal, marked interrupted.
    record = read_run(out / "run-1")
    assert record is not None and record["interrupted"] is True
    assert len(record["phases"]) == 3 and record["error"] == "interrupted"
    assert summarise_folder(out)["interrupted"] == [1]
    assert len(read_folder(out)[1].phase_times) == 3  # daydream compare
    assert load_folder(out).runs[0]["interrupted"] is True  # daydream report

    (gate / "open").write_text("")
    resumed = _drive(*options, "--resume", str(out / "run-1"), profile=profile)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "resuming" in err and "3 completed phases replayed" in err
    data = json.loads((out / "run-1" / "run.json").read_text())
    assert data["error"] is None and data["resumed_at"] == [3] and len(data["phases"]) == 5
    assert summarise_folder(out)["interrupted"] == [] and not list(out.glob("run-2"))


# -- the journal itself ---------------------------------------------------------------------


def _begin(directory: Path, **header: Any) -> journal.Journal:
    run = RunRecord(
        run_id="steps-x", index=1, app="steps", provider="local", policy="daydream",
        preset="small", seed=0,
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    return journal.Journal.begin(directory, run, header.get("params", {"phases": 5}))


def test_the_journal_is_private_and_only_a_torn_last_line_is_forgiven(tmp_path: Path) -> None:
    directory = tmp_path / "run-1"
    _begin(directory).close()
    path = directory / journal.JOURNAL
    assert path.stat().st_mode & 0o777 == 0o600
    with path.open("a") as handle:
        handle.write('{"type": "phase", "pha')  # a controller killed mid-write
    assert journal.read(directory).phases == []
    with path.open("a") as handle:
        handle.write("\n{}\n")
    with pytest.raises(JournalError, match=r"journal.jsonl:2: corrupt journal entry"):
        journal.read(directory)


def test_a_running_run_is_locked_and_not_read_as_interrupted(tmp_path: Path) -> None:
    directory = tmp_path / "run-1"
    live = _begin(directory)
    try:
        assert journal.running(directory) and read_run(directory) is None
        with pytest.raises(JournalError, match="being run by another controller"):
            journal.Journal.resume(journal.read(directory), 0)
    finally:
        live.close()
    assert not journal.running(directory)
    assert read_run(directory)["interrupted"] is True  # type: ignore[index]
    with pytest.raises(JournalError, match="already holds a run"):
        _begin(directory)  # a run directory holds one run


# -- bad --resume input: one line, exit 2 ---------------------------------------------------


class _StepsApp:
    @hookimpl
    def daydream_apps(self) -> list[AppSpec]:
        return [AppSpec("steps", "resume tests", "steps_workflow:workflow")]


@pytest.fixture
def steps_app(steps: Workflow) -> Iterator[None]:
    plugin = _StepsApp()
    plugins.plugin_manager().register(plugin)
    yield
    plugins.plugin_manager().unregister(plugin)


def _finish(directory: Path) -> None:
    live = _begin(directory)
    live.end(RunRecord("steps-x", 1, "steps", "local", "daydream", "small", 0))
    live.close()


def _params(**changes: Any) -> dict[str, Any]:
    return {"phases": 5, "width": 3, "hold_phase": -1, "gate_dir": "", **changes}


@pytest.mark.parametrize(
    ("setup", "args", "names"),
    [
        (None, [], ["no journal", "journal.jsonl", "valid:"]),
        ("corrupt", [], ["journal.jsonl:2", "corrupt journal entry"]),
        ("finished", [], ["the run finished", "valid:"]),
        ("params", ["--seed", "1"], ["seed 0, not 1"]),
        ("params", ["-p", "width=4"], ["parameter 'width' is 4 here but 3"]),
        ("params", ["--preset", "small", "--policy", "all-high"], ["policy 'daydream'"]),
        ("params", ["--runs", "2"], ["--resume continues one run"]),
        ("params", ["--out", "{tmp}/elsewhere"], ["is not in --out"]),
        ("locked", [], ["being run by another controller"]),
    ],
)
def test_bad_resume_input_is_one_line_and_exit_2(
    steps_app: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: str | None,
    args: list[str],
    names: list[str],
) -> None:
    directory = tmp_path / "out" / "run-1"
    directory.mkdir(parents=True)
    live = None
    if setup == "corrupt":
        _begin(directory).close()
        with (directory / journal.JOURNAL).open("a") as handle:
            handle.write("not json\n")
    elif setup == "finished":
        _finish(directory)
    elif setup == "params":
        _begin(directory, params=_params()).close()
    elif setup == "locked":
        live = _begin(directory, params=_params())
    argv = ["run", "steps", "--resume", str(directory)]
    argv += [a.replace("{tmp}", str(tmp_path)) for a in args]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
    finally:
        if live is not None:
            live.close()
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exit_info.value.code == 2, err
    assert len(lines) == 1 and lines[0].startswith("daydream: error: "), err
    for name in names:
        assert name in lines[0], err


@pytest.mark.parametrize("target", ["file", "not-a-run"])
def test_resume_names_a_run_directory(
    steps_app: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    path = tmp_path / target
    path.write_text("") if target == "file" else path.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "steps", "--resume", str(path)])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and line.startswith("daydream: error: ")


def test_a_failed_phase_is_run_again_not_replayed(demo_workflows: Path, tmp_path: Path) -> None:
    import demo_workflow

    from daydream_core.engine import RunFailed

    workflow = demo_workflow.workflow
    params = workflow.preset("failing").params
    out = tmp_path / "out"

    def run(resume: journal.JournalState | None = None) -> list[str]:
        engine = _engine(out, tmp_path / "profile.sqlite")
        try:
            with pytest.raises(RunFailed):
                engine.run(workflow, preset="failing", params=params, seed=0, run_index=1,
                           out_dir=out, resume=resume)  # fmt: skip
        finally:
            engine.provider.close()
            engine.close()
        return list(engine.provider.invoked)  # type: ignore[attr-defined]

    run()
    state = journal.read(out / "run-1")
    assert [p.failed for p in state.phases] == [False, False, True]
    assert len(state.completed) == 2 and not state.finished
    # Only the phase that failed, again (with its lone component's probe, where one is sent).
    again = run(resume=state)
    assert [c for c in again if not c.endswith(PROBE_SUFFIX)] == ["p3-c1"]
    data = json.loads((out / "run-1" / "run.json").read_text())
    assert len(data["phases"]) == 3 and "explode" in data["error"] and not data["interrupted"]
    sys.modules.pop("demo_workflow", None)


def test_a_workflow_that_now_plans_otherwise_is_refused_untouched(
    steps: Workflow, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        _run(_engine(out, tmp_path / "p.sqlite", _StopAfter(1)), steps, out)
    path = out / "run-1" / journal.JOURNAL
    lines = path.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["calls"] = "0" * 64  # as if phase 2 had been planned with other arguments
    path.write_text("\n".join([*lines[:2], json.dumps(entry), *lines[3:]]) + "\n")
    before = {p.name: p.read_bytes() for p in (out / "run-1").iterdir()}

    engine = _engine(out, tmp_path / "p.sqlite")
    with pytest.raises(JournalError, match="now plans phase 2 differently from its journal"):
        _run(engine, steps, out, resume=journal.read(out / "run-1"))
    assert engine.provider.invoked == []  # type: ignore[attr-defined]
    assert {p.name: p.read_bytes() for p in (out / "run-1").iterdir()} == before
