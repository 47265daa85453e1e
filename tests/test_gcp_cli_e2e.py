"""End to end: ``daydream --provider gcp run ccl`` against the offline fake, then ``cleanup``.

Every component runs for real in the deployed handler, inside instance processes that the
fake starts from the uploaded source with functions-framework (real cold starts: CAMB and
CCL imported per instance). The small preset is shrunk with ``-p`` to keep this quick; what
is left afterwards is checked through the fake's own view.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from daydream_gcp.testing import FunctionsFake

from daydream_core import plugins
from daydream_core.cli import main

pytest.importorskip("pyccl")
pytest.importorskip("camb")

SHRINK = ["-p", "n_initial=2", "-p", "max_rounds=1", "-p", "n_ell=16", "-p", "n_theta=5"]


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FunctionsFake]:
    with FunctionsFake(tmp_path / "fake") as functions_fake:
        yield functions_fake


def daydream(fake: FunctionsFake, *args: str) -> None:
    options = [f"-o{key}={value}" for key, value in fake.options().items()]
    with pytest.raises(SystemExit) as done:
        main(["--provider", "gcp", *options, *args])
    assert done.value.code == 0


def test_run_ccl_on_gcp_then_cleanup(
    fake: FunctionsFake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "ccl" not in plugins.apps():
        pytest.skip("the ccl app is not installed")
    out = tmp_path / "out"
    daydream(
        fake,
        "--concurrency",
        "4",
        "run",
        "ccl",
        "--preset",
        "small",
        "--runs",
        "1",
        "--out",
        str(out),
        "--keep",  # to look at what it deployed; without it the command removes it
        *SHRINK,
    )

    # What was deployed: a function per tier, each from an uploaded source, and a bucket.
    deployed = fake.leftovers()
    # The run's own names, under its deployment id (recorded in run.json).
    ccl = f"daydream-{json.loads((out / 'run-1' / 'run.json').read_text())['deployment']}-ccl-"
    functions = [item for item in deployed if item.startswith(f"function {ccl}")]
    assert len(functions) == 2
    assert sum(item.startswith("object gs://gcf-v2-uploads-") for item in deployed) == 2
    assert any(item.startswith("object gs://daydream-") for item in deployed), "no outputs"

    # Every component ran in the handler, on an instance the platform itself saw.
    record = json.loads((out / "run-1" / "run.json").read_text())
    assert record["error"] is None and record["provider"] == "gcp"
    invocations = [i for phase in record["phases"] for i in phase["invocations"]]
    assert len(invocations) >= 4
    seen = {e.id for item in functions for e in fake.environments(item.removeprefix("function "))}
    for invocation in invocations:
        assert invocation["error"] is None
        assert invocation["instance"] in seen, "instance ids come from the platform"
        assert invocation["billed_ms"] >= invocation["execution_ms"] > 0
        assert invocation["billed_ms"] % 100 == 0, "Cloud Functions bills in 100 ms steps"
        assert invocation["cost"] > 0
    assert any(i["start"] == "cold" and i["init_ms"] > 0 for i in invocations)
    costs = (out / "run-1" / "execution_cost.txt").read_text().split()
    assert len(costs) == len(record["phases"]) and all(float(c) > 0 for c in costs)

    capsys.readouterr()
    daydream(fake, "cleanup", "--dry-run")
    preview = capsys.readouterr().out
    assert all(item.removeprefix("function ") in preview for item in functions)
    assert fake.leftovers() == deployed, "a dry run removed something"
    daydream(fake, "cleanup")
    assert fake.leftovers() == []
    assert all(not e.alive for item in functions for e in fake.environments(item[9:]))
