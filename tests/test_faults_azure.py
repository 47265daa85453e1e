"""A throttling storm on the Azure fake, through the real SDK's transport: the adapter's
backoff absorbs it, and every retry it makes lands in the attempt log the engine reads."""

from __future__ import annotations

from pathlib import Path

from daydream_azure.provider import AzureProvider
from daydream_azure.testing import AzureFake
from daydream_conformance.workflow import workflow

from daydream_core.backoff import Backoff, recording
from daydream_core.errors import Throttled
from daydream_core.faults import FaultPlan
from daydream_core.model import LOW
from daydream_core.provider import ProviderSettings


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
