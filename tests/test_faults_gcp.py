"""Faults injected on the Cloud Functions fake, through the real client. The fake throttles
requests itself, and each instance's launcher hands the plan to the handler in the instance's
process, so kills, out of memory, hangs and a failing store strike inside real instances; the
adapter's backoff and the engine's retries recover, and the outputs are the fault-free run's."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloud_faults import Outputs, Run, SurvivesInstanceFaults, run_demo
from daydream_conformance.workflow import workflow
from daydream_gcp.testing import FunctionsFake, fake_provider

from daydream_core.backoff import recording
from daydream_core.errors import Throttled
from daydream_core.faults import FaultPlan
from daydream_core.model import RunRecord


@pytest.fixture
def run_under(tmp_path: Path, demo_workflows: Path) -> Run:
    """Run the demo workflow on a fresh fake under a plan (None: fault-free)."""

    def run(
        plan: FaultPlan | None, *, timeout_s: float = 60.0
    ) -> tuple[RunRecord, Outputs, list[str]]:
        out = tmp_path / ("faulty" if plan else "fault-free")
        with FunctionsFake(out / "fake", faults=plan) as fake:
            provider = fake_provider(fake, out / "state", function_timeout_s="30")
            try:
                return run_demo(provider, "gcp", out, timeout_s=timeout_s)
            finally:
                provider.close()

    return run


class TestInstanceFaults(SurvivesInstanceFaults):
    """Kill, out of memory, a hang and a failing store, inside the fake's instances."""


def test_a_throttling_storm_is_retried_by_the_adapter(tmp_path: Path) -> None:
    with FunctionsFake(tmp_path / "fake", faults=FaultPlan({"throttle": 0.5}, seed=4)) as fake:
        provider = fake_provider(fake, tmp_path / "state", max_attempts="8")
        try:
            function = provider.deploy(workflow.runtime, provider.tiers()["low"])
            retried = []
            for i in range(6):
                payload = {"kind": "echo", "args": {"value": i}, "component": f"p1-c{i + 1}"}
                with recording() as log:
                    assert provider.invoke(function, payload, 60).output["value"] == i
                retried += log
            assert retried, "a 0.5 storm throttles some of the requests"
            assert all(isinstance(r.error, Throttled) for r in retried)
            assert fake.invocations >= 6 + len(retried)
        finally:
            provider.cleanup()
            provider.close()
