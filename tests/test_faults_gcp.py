"""A throttling storm on the Cloud Functions fake, through the real client: the adapter's
backoff absorbs it, and every retry it makes lands in the attempt log the engine reads."""

from __future__ import annotations

from pathlib import Path

from daydream_conformance.workflow import workflow
from daydream_gcp.testing import FunctionsFake, fake_provider

from daydream_core.backoff import recording
from daydream_core.errors import Throttled
from daydream_core.faults import FaultPlan


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
