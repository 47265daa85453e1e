"""Faults injected on the Azure fake, through the real SDK's transport. The fake throttles
requests itself, and each instance process is handed the plan by its launcher
(`fake_instance`), so kills, out of memory, hangs and a failing store strike inside real
instances; the adapter's backoff and the engine's retries recover, and the outputs are the
fault-free run's."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from cloud_faults import Outputs, Run, SurvivesInstanceFaults, run_demo
from daydream_azure.provider import AzureProvider
from daydream_azure.testing import AzureFake
from daydream_conformance.workflow import workflow

from daydream_core.backoff import Backoff, recording
from daydream_core.errors import Throttled
from daydream_core.faults import FaultPlan
from daydream_core.model import LOW, RunRecord, Tier
from daydream_core.provider import ProviderSettings


@pytest.fixture
def run_under(tmp_path: Path, demo_workflows: Path) -> Run:
    """Run the demo workflow on a fresh fake under a plan (None: fault-free)."""

    def run(
        plan: FaultPlan | None, *, timeout_s: float = 60.0
    ) -> tuple[RunRecord, Outputs, list[str]]:
        out = tmp_path / ("faulty" if plan else "fault-free")
        with AzureFake(faults=plan) as fake:
            settings = ProviderSettings(state_dir=out / "state", options=fake.options())
            provider = AzureProvider(settings)
            try:
                return run_demo(provider, "azure", out, timeout_s=timeout_s)
            finally:
                provider.close()

    return run


class TestInstanceFaults(SurvivesInstanceFaults):
    """Kill, out of memory, a hang and a failing store, inside the fake's instances."""


def test_a_throttling_storm_is_retried_by_the_adapter(tmp_path: Path) -> None:
    waits: list[float] = []
    with AzureFake(faults=FaultPlan({"throttle": 0.5}, seed=4)) as fake:
        settings = ProviderSettings(state_dir=tmp_path, options=fake.options())
        provider = AzureProvider(settings, backoff=Backoff(8, 0.01, 0.05, sleep=waits.append))
        try:
            function = provider.deploy(workflow.runtime, provider.tiers()[LOW])
            retried = []
            for i in range(6):
                payload = {"kind": "echo", "args": {"value": i}, "component": f"p1-c{i + 1}"}
                with recording() as log:
                    assert provider.invoke(function, payload, 60).output["value"] == i
                retried += log
            assert retried, "a 0.5 storm throttles some of the requests"
            assert all(isinstance(r.error, Throttled) for r in retried)
            assert len(waits) >= len(retried)
        finally:
            provider.cleanup()
            provider.close()


def test_only_a_launchers_hand_over_reaches_the_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployed handler ignores a fault variable in its app settings; the plan reaches it
    only through the in-process hook the fake's launcher sets."""
    from daydream_azure import handler, wire

    from daydream_core import faults as fault_injection

    settings = {
        wire.RUNTIME_VAR: json.dumps(asdict(workflow.runtime)),
        wire.TIER_VAR: json.dumps(asdict(Tier(LOW, 2048, 1.0))),
        wire.STORE_VAR: tmp_path.as_uri(),
        fault_injection.ENV_VAR: "seed=1,kill=1",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(handler, "_environment", None)
    assert handler.environment().runtime.faults is None
    plan = FaultPlan({"kill": 1.0}, seed=1)
    monkeypatch.setattr(fault_injection, "_handed_over", plan)
    monkeypatch.setattr(handler, "_environment", None)
    assert handler.environment().runtime.faults == plan
