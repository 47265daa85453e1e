"""End to end: ``daydream --provider azure run ccl`` against the offline fake, then ``cleanup``.

Every component runs for real, in the deployed function app, in instance processes of the
fake (one request per instance, as configured), through the real ``azure.functions`` request
and response types. The small preset is shrunk with ``-p`` to keep this quick; the fake's view
checks what was deployed and that nothing is left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from daydream_azure.testing import AzureFake

from daydream_core import plugins
from daydream_core.cli import main

pytest.importorskip("pyccl")
pytest.importorskip("camb")

SHRINK = ["-p", "n_initial=2", "-p", "max_rounds=1", "-p", "n_ell=16", "-p", "n_theta=5"]


@pytest.fixture
def fake() -> Iterator[AzureFake]:
    with AzureFake() as azure_fake:
        yield azure_fake


def daydream(fake: AzureFake, *args: str) -> None:
    options = [f"-o{key}={value}" for key, value in fake.options().items()]
    with pytest.raises(SystemExit) as done:
        main(["--provider", "azure", *options, "--concurrency", "4", *args])
    assert done.value.code == 0


def test_run_ccl_on_azure_then_cleanup(fake: AzureFake, tmp_path: Path) -> None:
    if "ccl" not in plugins.apps():
        pytest.skip("the ccl app is not installed")
    out = tmp_path / "out"
    daydream(
        fake, "run", "ccl", "--preset", "small", "--runs", "1", "--out", str(out), "--keep", *SHRINK
    )

    # What was deployed: an app and a plan per tier, their packages, the data container.
    deployed = fake.leftovers()
    # The run's own names, under its deployment id (recorded in run.json).
    ccl = f"daydream-{json.loads((out / 'run-1' / 'run.json').read_text())['deployment']}-ccl-"
    apps = [item.split()[-1] for item in deployed if item.startswith(f"function app {ccl}")]
    assert len(apps) == 2 and sum(item.startswith(f"plan {ccl}") for item in deployed) == 2
    assert sum(item.endswith("/released-package.zip") for item in deployed) == 2
    assert any(item.startswith("blob daydream/daydream/") for item in deployed), "no outputs"

    # Every component ran in the function app, on an instance the platform knows.
    record = json.loads((out / "run-1" / "run.json").read_text())
    assert record["error"] is None and record["provider"] == "azure"
    invocations = [i for phase in record["phases"] for i in phase["invocations"]]
    instances = {view.id for app in apps for view in fake.environments(app)}
    assert len(invocations) >= 4
    for invocation in invocations:
        assert invocation["error"] is None
        assert invocation["instance"] in instances, "the instance id comes from the platform"
        assert invocation["billed_ms"] >= invocation["execution_ms"] > 0
        assert invocation["cost"] > 0
    assert any(i["start"] == "cold" and i["init_ms"] > 0 for i in invocations)
    billed = sum(len(fake.metered(app)) for app in apps)
    assert billed >= len(invocations), "every component was a request the platform billed"

    daydream(fake, "cleanup")
    assert fake.leftovers() == []
