"""End to end: ``daydream --provider aws run ccl`` against the offline fake, then ``cleanup``.

Every component runs for real, in the real handler, inside simulated Lambda execution
environments. The fake runs them one at a time (``isolation="serial"``): CAMB and CCL keep
native global state, so concurrent threads of one process would crash them, and a process per
environment (``isolation="process"``, the faithful mode) costs too much start-up for a unit
test. The small preset is shrunk with ``-p`` to keep this quick.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from daydream_aws.testing import LambdaFake

from daydream_core import plugins
from daydream_core.cli import main

pytest.importorskip("pyccl")
pytest.importorskip("camb")

SHRINK = ["-p", "n_initial=2", "-p", "max_rounds=1", "-p", "n_ell=16", "-p", "n_theta=5"]


@pytest.fixture
def fake() -> Iterator[LambdaFake]:
    with LambdaFake(server=True, isolation="serial") as lambda_fake:
        yield lambda_fake


def daydream(fake: LambdaFake, *args: str) -> None:
    options = [f"-o{key}={value}" for key, value in fake.options().items()]
    with pytest.raises(SystemExit) as done:
        main(["--provider", "aws", *options, *args])
    assert done.value.code == 0


def test_run_ccl_on_aws_then_cleanup(fake: LambdaFake, tmp_path: Path) -> None:
    if "ccl" not in plugins.apps():
        pytest.skip("the ccl app is not installed")
    out = tmp_path / "out"
    daydream(
        fake, "run", "ccl", "--preset", "small", "--runs", "1", "--out", str(out), "--keep", *SHRINK
    )

    # The run's own names, under its deployment id (recorded in run.json).
    ccl = f"daydream-{json.loads((out / 'run-1' / 'run.json').read_text())['deployment']}-ccl-"
    # What was deployed: a function per tier on one layer, in a private bucket.
    deployed = fake.leftovers()
    assert sum(item.startswith(f"function {ccl}") for item in deployed) == 2
    assert sum(item.startswith("layer ") for item in deployed) == 1
    assert any(item.startswith("object s3://daydream-") for item in deployed), "no outputs"

    # Every component ran in the handler and carries what Lambda reported for it.
    record = json.loads((out / "run-1" / "run.json").read_text())
    assert record["error"] is None and record["provider"] == "aws"
    invocations = [i for phase in record["phases"] for i in phase["invocations"]]
    assert len(invocations) >= 4 and fake.invocations >= len(invocations)
    for invocation in invocations:
        assert invocation["error"] is None
        assert invocation["instance"], "the instance id comes from the handler"
        assert invocation["billed_ms"] >= invocation["execution_ms"] > 0
        assert invocation["cost"] > 0
    assert {i["start"] for i in invocations} <= {"cold", "warm", "hot"}
    assert any(i["start"] == "cold" and i["init_ms"] > 0 for i in invocations)
    costs = (out / "run-1" / "execution_cost.txt").read_text().split()
    assert len(costs) == len(record["phases"]) and all(float(c) > 0 for c in costs)

    daydream(fake, "cleanup")
    assert fake.leftovers() == []
    assert boto3.client("lambda").list_functions()["Functions"] == []


def test_deploy_dry_run_creates_nothing(
    fake: LambdaFake, capsys: pytest.CaptureFixture[str]
) -> None:
    """`daydream deploy APP --provider aws --dry-run`: the path, sizes, what would be made."""
    options = [f"-o{key}={value}" for key, value in fake.options().items()]
    with pytest.raises(SystemExit) as done:
        main([*options, "deploy", "trace", "--provider", "aws", "--dry-run"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert "runtime environment trace: layer (" in shown and "uploads directly" in shown
    assert "layer daydream-trace-x86_64" in shown and "(low tier, 5120 MB)" in shown
    assert "requirements not installed" in shown
    assert shown.rstrip().endswith("aws: dry run, nothing created")
    assert fake.leftovers() == []


def test_deploy_dry_run_prices_snapstart(
    fake: LambdaFake, capsys: pytest.CaptureFixture[str]
) -> None:
    options = [f"-o{key}={value}" for key, value in fake.options().items()]
    with pytest.raises(SystemExit) as done:
        main([*options, "-osnapstart=true", "deploy", "trace", "--provider", "aws", "--dry-run"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    # 10240 MB: 10 GB x 3 h x $0.0000015046 per GB-second; 10 GB x $0.0001397998 per restore.
    assert "caching at least $0.1625 per version (3 h), $0.00140 per restore" in shown


def test_other_providers_plan_their_functions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["deploy", "trace", "--dry-run"])
    assert done.value.code == 0
    shown = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[1] for line in shown[:2]] == [
        "high tier, 10240 MB)",
        "low tier, 5120 MB)",
    ]
    assert shown[-1] == "local: dry run, nothing created"


def test_deploy_then_cleanup(fake: LambdaFake, capsys: pytest.CaptureFixture[str]) -> None:
    daydream(fake, "-osnapstart=true", "deploy", "trace")
    deployed = capsys.readouterr().out
    assert deployed.count("deployed daydream-trace-") == 2
    aliases = [
        boto3.client("lambda").get_alias(FunctionName=f["FunctionName"], Name="daydream")
        for f in boto3.client("lambda").list_functions()["Functions"]
    ]
    assert [a["FunctionVersion"] for a in aliases] == ["1", "1"]
    daydream(fake, "cleanup")
    assert fake.leftovers() == []


def test_deploy_an_unknown_app_is_one_line(
    fake: LambdaFake, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["deploy", "nosuchapp", "--provider", "aws", "--dry-run"])
    assert done.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
