"""The figures of docs/reliability.md, from one command:

    python bench/bench_reliability.py [--generated 300]

1. Bad input: the corpus of tests/bad_input_corpus.py (hand-written and derived from every
   app's declarations) plus hypothesis-generated parameters, each run through
   `daydream_core.cli.main` in-process: tracebacks, wrong exit codes, more than one line.
2. Controllers killed mid-run (SIGKILL, SIGTERM) with two busy instances: instances left.
3. Two commands into one --out: runs lost or overwritten.
4. Payloads an attacker might send to an instance: how many were run.
5. Resume equivalence: runs stopped after a phase (Ctrl-C in-process, or the controller
   SIGKILLed), resumed from their journal, compared phase by phase with runs never stopped.
6. Faults injected per kind (bench/fault_runs.py), on the local platform and the AWS, GCP and
   Azure fakes: runs completed, retries, outputs lost or duplicated, processes and functions
   left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
WORKFLOWS = TESTS / "workflows"
sys.path[:0] = [str(TESTS), str(WORKFLOWS), str(Path(__file__).parent)]

from bad_input_corpus import derived, expand, hand_written, run_case, sandbox  # noqa: E402

from daydream_core.engine import Engine  # noqa: E402


def _tripwire(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("bad input reached Engine.run")


def bad_input(work: Path, generated: int) -> dict[str, Any]:
    files = sandbox(work / "sandbox")
    run = Engine.run
    Engine.run = _tripwire  # type: ignore[method-assign]
    try:
        return _bad_input(work, generated, files)
    finally:
        Engine.run = run  # type: ignore[method-assign]


def _bad_input(work: Path, generated: int, files: dict[str, str]) -> dict[str, Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_REGION"):
        os.environ.pop(name, None)
    os.environ["DAYDREAM_PROFILE"] = str(work / "profile.sqlite")
    problems: Counter[str] = Counter()
    hand, declared = hand_written(), derived()
    failed: list[str] = []
    for case in hand + declared:
        if _tally(run_case(expand(case, files)).problems(case.code), problems):
            failed.append(case.name)
    gen_total, gen_failed = _generated(files, generated, problems)
    return {
        "cases": len(hand) + len(declared) + gen_total,
        "hand-written": len(hand),
        "derived from declarations": len(declared),
        "hypothesis-generated": gen_total,
        "tracebacks": problems["traceback"],
        "wrong exit codes": problems["exit"],
        "not one line": problems["lines"],
        "failed cases": failed + gen_failed,
    }


def _tally(found: list[str], problems: Counter[str]) -> bool:
    for problem in found:
        problems["exit" if problem.startswith("exit") else problem.split(" ")[-1]] += 1
    return bool(found)


def _generated(files: dict[str, str], count: int, problems: Counter[str]) -> tuple[int, list[str]]:
    from hypothesis import HealthCheck, given, settings
    from test_bad_input import bad_parameter

    seen: list[int] = [0]
    failed: list[str] = []

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=bad_parameter())
    def one(case: tuple[str, str, str]) -> None:
        app, key, value = case
        seen[0] += 1
        argv = ["run", app, "--out", f"{files['root']}/out", "-p", f"{key}={value}"]
        if _tally(run_case(argv).problems(2), problems):
            failed.append(" ".join(argv[-2:]))

    one()
    return seen[0], failed


# -- controllers killed ---------------------------------------------------------------------


def _environment(profile: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(WORKFLOWS), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "DAYDREAM_PROFILE": str(profile)}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def killed(work: Path, how: signal.Signals) -> dict[str, Any]:
    markers = work / f"markers-{how.name}"
    markers.mkdir()
    controller = subprocess.Popen(
        [sys.executable, str(WORKFLOWS / "drive_cli.py"), "run", "slow", "--policy", "all-high",
         "--out", str(work / f"out-{how.name}"), "-p", f"marker_dir={markers}",
         "-p", "seconds=120"],
        env=_environment(work / "profile.sqlite"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    # One tier, so that a first run's exploration does not add a probe as a third busy instance.
    pids: list[int] = []
    try:
        if not _wait(lambda: len(list(markers.glob("*.busy"))) >= 2, 120):
            raise RuntimeError("the slow run's instances never became busy")
        pids = [int(p.name.split(".")[0]) for p in markers.glob("*.busy")]
        started = time.monotonic()
        controller.send_signal(how)
        _, err = controller.communicate(timeout=60)
        gone = _wait(lambda: not any(_alive(p) for p in pids), 10)
        return {
            "signal": how.name,
            "busy instances": len(pids),
            "left after 10 s": sum(_alive(p) for p in pids),
            "all gone within s": round(time.monotonic() - started, 2) if gone else None,
            "exit status": controller.returncode,
            "last line": err.strip().splitlines()[-1] if err.strip() else "",
        }
    finally:
        if controller.poll() is None:
            controller.kill()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def concurrent_commands(work: Path, commands: int = 2) -> dict[str, Any]:
    out = work / "shared-out"
    started = [
        subprocess.Popen(
            [sys.executable, str(WORKFLOWS / "drive_cli.py"), "run", "demo", "--out", str(out)],
            env=_environment(work / f"profile-{i}.sqlite"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(commands)
    ]
    codes = [p.wait(timeout=300) for p in started]
    runs = sorted(out.glob("run-*/run.json"))
    ids = {json.loads(p.read_text())["run_id"] for p in runs}
    summary = json.loads((out / "summary.json").read_text())
    return {
        "commands": commands,
        "exit statuses": codes,
        "runs on disk": len(runs),
        "runs lost": commands - len(ids),
        "runs in summary.json": len(summary["runs"]),
    }


# -- payloads ---------------------------------------------------------------------------------


def payloads() -> dict[str, Any]:
    from daydream_conformance.workflow import workflow

    from daydream_core import auth
    from daydream_core.model import Tier
    from daydream_core.objectstore import LocalObjectStore
    from daydream_core.runtime import WARMUP, FunctionRuntime

    with tempfile.TemporaryDirectory() as tmp:
        store = LocalObjectStore(tmp)
        key = auth.new_key()
        runtime = FunctionRuntime(
            workflow.runtime, Tier("high", 1024, 1.0), 1, store_uri=store.uri, key=key
        )
        echo = {"kind": "echo", "args": {"value": 1}, "run_id": "r", "component": "c"}
        probes: dict[str, dict[str, Any]] = {
            "unsigned": echo,
            "signed with another key": auth.sign(echo, auth.new_key()),
            "tampered after signing": {**auth.sign(echo, key), "args": {"value": 2}},
            "expired": auth.sign(echo, key, ttl_s=-1),
            "foreign store (/etc)": auth.sign({**echo, "store": "file:///etc"}, key),
            "run id with ../": auth.sign({**echo, "run_id": "../../etc"}, key),
            "component id with /": auth.sign({**echo, "component": "a/b"}, key),
            "unregistered component": auth.sign({**echo, "kind": "__init__"}, key),
            "endless warm-up": auth.sign({"kind": WARMUP, "hold_ms": 1e12}, key),
        }
        ran = [name for name, p in probes.items() if runtime.handle(p)["ok"]]
        control = runtime.handle(auth.sign(echo, key))["ok"]
    return {"probes": len(probes), "run": len(ran), "which": ran, "signed control ran": control}


# -- resume ----------------------------------------------------------------------------------


def _steps_run(work: Path, name: str, seed: int, stop_after: int | None = None,
               resume: Any = None) -> tuple[Any, list[str]]:  # fmt: skip
    """One run of the tests' `steps` workflow on the local platform; what it invoked."""
    from daydream_local.provider import LocalProvider
    from steps_workflow import workflow

    from daydream_core.engine import EngineEvents
    from daydream_core.plugins import policies
    from daydream_core.profile import ProfileStore

    class Stop(EngineEvents):
        def phase_done(self, run: Any, phase: Any) -> None:
            if phase.index == stop_after:
                raise KeyboardInterrupt

    invoked: list[str] = []

    class Counting(LocalProvider):
        def invoke(self, function: Any, payload: Any, timeout_s: float) -> Any:
            invoked.append(payload["component"])
            return super().invoke(function, payload, timeout_s)

    out = work / name
    provider = Counting(out, concurrency=4)
    engine = Engine(provider, ProfileStore(work / f"{name}.sqlite"), policies()["daydream"],
                    events=Stop())  # fmt: skip
    params = workflow.validate({**workflow.preset("small").params, "phases": 6})
    try:
        record = engine.run(workflow, preset="small", params=params, seed=seed, run_index=1,
                            out_dir=out, resume=resume)  # fmt: skip
    except KeyboardInterrupt:
        record = None
    finally:
        provider.close()
        engine.close()
    return record, invoked


def _phases(run_dir: Path) -> list[tuple[str, str]]:
    from daydream_core import journal

    state = journal.read(run_dir)
    return [(p.calls, json.dumps(p.outputs).replace(state.run_id, "RUN")) for p in state.phases]


def resume_equivalence(work: Path, seeds: int = 3) -> dict[str, Any]:
    from daydream_core import journal

    os.environ["PYTHONPATH"] = _environment(work / "unused.sqlite")["PYTHONPATH"]
    identical = replayed = again = 0
    for seed in range(1, seeds + 1):
        whole, _ = _steps_run(work, f"whole-{seed}", seed)
        _, first = _steps_run(work, f"stopped-{seed}", seed, stop_after=seed)
        state = journal.read(work / f"stopped-{seed}" / "run-1")
        resumed, second = _steps_run(work, f"stopped-{seed}", seed, resume=state)
        replayed += len(state.completed)
        again += len(set(first) & set(second))
        same = _phases(work / f"stopped-{seed}" / "run-1") == _phases(
            work / f"whole-{seed}" / "run-1"
        )
        identical += int(same and resumed is not None and resumed.result == whole.result)
    killed = _killed_and_resumed(work)
    return {
        "runs compared (Ctrl-C after phase 2, 3, 4 of 6; seeds 1-3)": seeds,
        "identical to runs never stopped (calls, outputs, result)": identical,
        "phases replayed from journals": replayed,
        "finished components invoked again": again,
        "controller SIGKILLed, resumed": killed,
    }


def _killed_and_resumed(work: Path) -> dict[str, Any]:
    gate, out = work / "gate", work / "killed"
    gate.mkdir()
    args = [sys.executable, str(WORKFLOWS / "drive_cli.py"), "--concurrency", "4", "run",
            "steps", "--out", str(out), "--seed", "3", "-p", "hold_phase=3",
            "-p", f"gate_dir={gate}"]  # fmt: skip
    env = _environment(work / "killed.sqlite")
    controller = subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL)
    try:
        if not _wait(lambda: any(gate.glob("*.waiting")), 120):
            raise RuntimeError("the held phase never started")
        controller.kill()
        controller.wait(timeout=60)
    finally:
        if controller.poll() is None:
            controller.kill()
    journal_only = not (out / "run-1" / "run.json").exists()
    (gate / "open").write_text("")
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    resumed = subprocess.run([*args, "--resume", str(out / "run-1")], env=env, timeout=300, **quiet)
    never_stopped = [*args[:7], str(work / "killed-whole"), *args[8:]]
    whole = subprocess.run(never_stopped, env=env, timeout=300, **quiet)
    result = json.loads((out / "run-1" / "run.json").read_text())["result"]
    expected = json.loads((work / "killed-whole" / "run-1" / "run.json").read_text())["result"]
    return {
        "only the journal left": journal_only,
        "exit statuses (resumed, never stopped)": [resumed.returncode, whole.returncode],
        "identical": _phases(out / "run-1") == _phases(work / "killed-whole" / "run-1")
        and result == expected,
    }


def main() -> None:
    import fault_runs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=300, help="hypothesis examples")
    sections: dict[str, Callable[[Path, argparse.Namespace], Any]] = {
        "bad input": lambda work, args: bad_input(work, args.generated),
        "SIGKILL": lambda work, args: killed(work, signal.SIGKILL),
        "SIGTERM": lambda work, args: killed(work, signal.SIGTERM),
        "two commands, one --out": lambda work, args: concurrent_commands(work),
        "payloads": lambda work, args: payloads(),
        "resume": lambda work, args: resume_equivalence(work),
        "faults (local)": lambda work, args: fault_runs.local(work / "faults-local"),
        "faults (aws fake)": lambda work, args: fault_runs.aws(work / "faults-aws"),
        "faults (gcp fake)": lambda work, args: fault_runs.gcp(work / "faults-gcp"),
        "faults (azure fake)": lambda work, args: fault_runs.azure(work / "faults-azure"),
    }
    parser.add_argument(
        "--only", action="append", choices=sorted(sections), help="run only these sections"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="daydream-reliability-") as tmp:
        work = Path(tmp)
        report = {
            name: measure(work, args)
            for name, measure in sections.items()
            if not args.only or name in args.only
        }
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
