"""Faults injected on the AWS fake, through the real SDK: botocore parses every 429 and every
function error, the adapter's backoff and the engine's retries run as against Lambda."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daydream_aws import faults as lambda_faults
from daydream_aws.report import Report
from daydream_aws.testing import LambdaFake, fake_provider

from daydream_core.backoff import Backoff
from daydream_core.engine import Engine
from daydream_core.errors import InstanceLost, OutOfMemory
from daydream_core.faults import FaultPlan
from daydream_core.model import HIGH, LOW, InvocationRecord, RunRecord
from daydream_core.plugins import policies
from daydream_core.profile import ProfileStore
from daydream_core.retries import RetryPolicy

PARAMS = {"width": 3, "size": 60, "phases": 2}
Run = Callable[..., tuple[RunRecord, Engine]]


@pytest.fixture
def run_under(tmp_path: Path, demo_workflows: Path) -> Iterator[Run]:
    """Run the demo workflow on a fresh AWS fake under a plan; the run's functions removed."""
    fakes: list[LambdaFake] = []

    def run(
        plan: FaultPlan, *, timeout_s: float = 60.0, learned: bool = False, phases: int = 2
    ) -> tuple[RunRecord, Engine]:
        import demo_workflow

        fake = LambdaFake(faults=plan)
        fake.start()
        fakes.append(fake)
        provider = fake_provider(fake, tmp_path / "state", function_timeout_s="30")
        profile = ProfileStore(tmp_path / "profile.sqlite")
        if learned:  # as an earlier run would have taught: solve takes 10 ms on either tier
            profile.record_executions("demo", "aws", [("solve", HIGH, 10.0), ("solve", LOW, 10.0)])
        retries = RetryPolicy(Backoff(max_attempts=4, base_s=0.01, rng=random.Random(0)))
        engine = Engine(
            provider, profile, policies()["daydream"], retries=retries, timeout_s=timeout_s
        )
        try:
            record = engine.run(
                demo_workflow.workflow,
                preset="small",
                params={**PARAMS, "phases": phases},
                seed=5,
                run_index=1,
                out_dir=tmp_path / "out",
            )
        finally:
            engine.close()
        return record, engine

    yield run
    for fake in fakes:
        fake.stop()


def _records(run: RunRecord, probes: bool = False) -> list[InvocationRecord]:
    return [r for p in run.phases for r in [*p.invocations, *(p.probes if probes else [])]]


def _one_attempts_outputs(engine: Engine, run: RunRecord) -> None:
    keys = engine.provider.store().list(run.run_id)
    components = [key.split("/")[1] for key in keys]
    assert sorted(components) == sorted(r.component for r in _records(run))  # one each


def test_a_killed_environment_is_reported_as_killed_and_retried(run_under: Run) -> None:
    run, engine = run_under(FaultPlan({"kill": 1.0}, attempts=1))
    assert run.error is None
    for record in _records(run):
        assert [a.fault for a in record.attempts] == ["lost"]
        assert "signal: killed" in record.attempts[0].error
    _one_attempts_outputs(engine, run)
    assert all("/a2/" in key for key in engine.provider.store().list(run.run_id))


def test_out_of_memory_on_low_is_retried_on_high_and_learned(run_under: Run) -> None:
    run, engine = run_under(FaultPlan({"oom": 1.0}))
    assert run.error is None
    # The first phase explores low with a probe (its one wave would wait for low otherwise).
    retried = [r for r in _records(run, probes=True) if r.attempts]
    assert retried and all(
        [(a.tier, a.fault) for a in r.attempts] == [(LOW, "memory")] and r.tier == HIGH
        for r in retried
    )
    assert engine.profile.memory_floors("demo", "aws") == {"solve": 5120}
    _one_attempts_outputs(engine, run)


def test_a_throttling_storm_is_absorbed_by_the_adapter_and_recorded(run_under: Run) -> None:
    run, engine = run_under(FaultPlan({"throttle": 0.5}, seed=3))
    assert run.error is None
    retries = [a for r in _records(run) for a in r.attempts]
    assert retries, "a 0.5 storm throttles some requests"
    assert all(a.fault == "throttled" and a.by == "provider" for a in retries)
    assert all("TooManyRequestsException" in a.error for a in retries)
    _one_attempts_outputs(engine, run)


def test_a_failing_store_is_retried(run_under: Run) -> None:
    run, engine = run_under(FaultPlan({"store_fail": 1.0}, attempts=1))
    assert run.error is None
    assert all([a.fault for a in r.attempts] == ["store"] for r in _records(run))
    _one_attempts_outputs(engine, run)


def test_a_hung_environment_times_out_and_is_retried_once(run_under: Run) -> None:
    plan = FaultPlan({"timeout": 1.0}, attempts=1, hang_s=10.0)
    run, engine = run_under(plan, timeout_s=4.0, learned=True, phases=1)
    assert run.error is None
    assert all([a.fault for a in r.attempts] == ["timeout"] for r in _records(run))
    _one_attempts_outputs(engine, run)


def _exit_error(report: Report) -> Exception:
    body = {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: r Error: Runtime exited with error: signal: killed",
    }
    return lambda_faults.function_error("solve", "Unhandled", json.dumps(body).encode(), report)


def test_a_runtime_killed_with_its_memory_full_ran_out_of_memory() -> None:
    def report(used: float) -> Report:
        return Report("r", 10.0, 10.0, 512, used)

    assert isinstance(_exit_error(report(512)), OutOfMemory)
    killed = _exit_error(report(100))
    assert isinstance(killed, InstanceLost) and killed.signal == 9
