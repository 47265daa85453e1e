"""The demo workflow under a fault plan on a cloud fake whose instances are processes of their
own (GCP, Azure): shared by their fault tests, so each fault kind is checked the same way."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daydream_core.backoff import Backoff
from daydream_core.engine import Engine
from daydream_core.faults import FaultPlan
from daydream_core.model import HIGH, LOW, InvocationRecord, RunRecord
from daydream_core.plugins import policies
from daydream_core.profile import ProfileStore
from daydream_core.provider import Provider
from daydream_core.retries import RetryPolicy

PARAMS = {"width": 2, "size": 40, "phases": 1}
Outputs = dict[str, list[np.ndarray]]


def run_demo(
    provider: Provider, platform: str, out: Path, *, timeout_s: float = 60.0
) -> tuple[RunRecord, Outputs, list[str]]:
    """One seeded run of the demo workflow; its outputs by component (one per attempt that
    left any) and the functions left after it removed what it deployed."""
    import demo_workflow

    profile = ProfileStore(out / "profile.sqlite")
    # As an earlier run would have taught: solve takes 10 ms on either tier, so its placement
    # (and a timeout's cost) does not hang on a first guess.
    profile.record_executions("demo", platform, [("solve", HIGH, 10.0), ("solve", LOW, 10.0)])
    retries = RetryPolicy(Backoff(max_attempts=4, base_s=0.01, rng=random.Random(0)))
    engine = Engine(provider, profile, policies()["daydream"], retries=retries, timeout_s=timeout_s)
    try:
        record = engine.run(
            demo_workflow.workflow,
            preset="small",
            params=PARAMS,
            seed=5,
            run_index=1,
            out_dir=out / "runs",
        )
        store = provider.store()
        outputs: Outputs = {}
        for key in store.list(record.run_id):
            outputs.setdefault(key.split("/")[1], []).append(store.get_array(key))
        store.delete(record.run_id)
    finally:
        engine.close()
    provider.cleanup()
    left = provider.list()
    return record, outputs, left


def records(run: RunRecord) -> list[InvocationRecord]:
    return [r for phase in run.phases for r in phase.invocations]


def assert_survived(
    run: RunRecord,
    outputs: Outputs,
    left: list[str],
    fault_free: Outputs,
    attempt_faults: Callable[[InvocationRecord], Any],
) -> None:
    """The run completed, every component's attempts failed as `attempt_faults` says, each
    component left one attempt's outputs, equal to the fault-free run's, and nothing is left."""
    assert run.error is None
    for record in records(run):
        assert attempt_faults(record), (record.component, record.attempts)
    assert sorted(outputs) == sorted(fault_free)
    for component, arrays in outputs.items():
        assert len(arrays) == 1, component
        assert np.array_equal(arrays[0], fault_free[component][0]), component
    assert left == []


Run = Callable[..., tuple[RunRecord, Outputs, list[str]]]


class SurvivesInstanceFaults:
    """The cases every cloud fake that runs instance-side faults must pass: a test module
    subclasses this (`class TestInstanceFaults(SurvivesInstanceFaults)`) and provides the
    `run_under` fixture, running the demo workflow on a fresh fake under a plan."""

    @pytest.fixture
    def fault_free(self, run_under: Run) -> Outputs:
        return run_under(None)[1]

    def test_a_killed_instance_is_lost_and_retried(
        self, run_under: Run, fault_free: Outputs
    ) -> None:
        run, outputs, left = run_under(FaultPlan({"kill": 1.0}, attempts=1))
        assert_survived(
            run, outputs, left, fault_free, lambda r: [a.fault for a in r.attempts] == ["lost"]
        )
        assert all("lost its instance mid-request" in r.attempts[0].error for r in records(run))

    def test_out_of_memory_on_low_is_retried_on_high(
        self, run_under: Run, fault_free: Outputs
    ) -> None:
        run, outputs, left = run_under(FaultPlan({"oom": 1.0}))
        assert_survived(
            run,
            outputs,
            left,
            fault_free,
            lambda r: (
                r.tier == HIGH
                and [(a.tier, a.fault) for a in r.attempts] in ([], [(LOW, "memory")])
            ),
        )
        assert any(r.attempts for phase in run.phases for r in phase.invocations)

    def test_a_failing_store_is_retried(self, run_under: Run, fault_free: Outputs) -> None:
        run, outputs, left = run_under(FaultPlan({"store_fail": 1.0}, attempts=1))
        assert_survived(
            run, outputs, left, fault_free, lambda r: [a.fault for a in r.attempts] == ["store"]
        )

    def test_a_hung_instance_times_out_and_is_retried(
        self, run_under: Run, fault_free: Outputs
    ) -> None:
        run, outputs, left = run_under(
            FaultPlan({"timeout": 1.0}, attempts=1, hang_s=10.0), timeout_s=4.0
        )
        assert_survived(
            run, outputs, left, fault_free, lambda r: [a.fault for a in r.attempts] == ["timeout"]
        )
