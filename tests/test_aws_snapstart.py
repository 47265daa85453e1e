"""SnapStart and provisioned concurrency against the fake: versions behind daydream's alias,
restores instead of inits (parsed, billed, recorded as RESTORED), held environments where
they are cheaper than warm-ups."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from daydream_aws import facts
from daydream_aws import provider as provider_module
from daydream_aws.facts import PROVISIONED_PRICES, SNAPSTART_PRICES
from daydream_aws.options import AwsOptions
from daydream_aws.plan import ALIAS
from daydream_aws.provisioned import choose
from daydream_aws.report import parse_report
from daydream_aws.testing import LambdaFake, fake_provider
from daydream_conformance.workflow import workflow

from daydream_core.errors import ConfigurationError
from daydream_core.model import StartKind
from daydream_core.pricing import AWS_LAMBDA_X86

RUNTIME = workflow.runtime


@pytest.fixture
def fake() -> Iterator[LambdaFake]:
    with LambdaFake() as lambda_fake:
        yield lambda_fake


def echo(value: int) -> dict[str, object]:
    return {"kind": "echo", "args": {"value": value}}


def test_restore_durations_are_parsed_from_text_and_json() -> None:
    text = (
        "REPORT RequestId: r1\tDuration: 3.36 ms\tBilled Duration: 104 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 85 MB\tRestore Duration: 481.25 ms\tBilled Restore Duration: 100 ms\t"
    )
    report = parse_report(text)
    assert report is not None and report.init_ms is None
    assert (report.restore_ms, report.billed_restore_ms, report.billed_ms) == (481.25, 100.0, 104)
    assert parse_report(report.line()) == report, "written as Lambda writes it"
    record = (
        '{"type": "platform.report", "record": {"requestId": "r2", "metrics": {"durationMs": 2.0,'
        ' "billedDurationMs": 3, "memorySizeMB": 128, "maxMemoryUsedMB": 60,'
        ' "restoreDurationMs": 300.5, "billedRestoreDurationMs": 12}}}'
    )
    parsed = parse_report(record)
    assert parsed is not None and (parsed.restore_ms, parsed.billed_restore_ms) == (300.5, 12.0)


def test_snapstart_is_for_layers_on_python_312_and_later() -> None:
    with pytest.raises(ConfigurationError, match=r"python3\.12 or python3\.13"):
        AwsOptions.parse({"snapstart": "true", "python_runtime": "python3.11"}, environ={})
    with pytest.raises(ConfigurationError, match="layer deployments only"):
        AwsOptions.parse({"snapstart": "true", "package": "image"}, environ={})
    assert AwsOptions.parse({"snapstart": "true"}, environ={}).snapstart


def test_a_snapstart_function_restores_its_snapshot(fake: LambdaFake, tmp_path: Path) -> None:
    provider = fake_provider(fake, tmp_path, snapstart="true")
    lam = boto3.client("lambda")
    try:
        tier = provider.tiers()["low"]
        function = provider.deploy(RUNTIME, tier)
        config = lam.get_function_configuration(FunctionName=function.name)
        assert config["SnapStart"]["ApplyOn"] == "PublishedVersions"
        alias = lam.get_alias(FunctionName=function.name, Name=ALIAS)
        assert alias["FunctionVersion"] == "1"
        assert list(fake.versions.snapshots) == [f"{function.name}:1"], "taken at publish"

        first = provider.invoke(function, echo(1), 30)
        assert first.start is StartKind.RESTORED and first.init_ms > 0
        restore = SNAPSTART_PRICES["x86_64"].restore_cost(tier.memory_mb)
        assert first.surcharge == pytest.approx(restore) and restore > 0
        again = provider.invoke(function, echo(2), 30)
        assert again.start is StartKind.WARM and again.surcharge == 0.0
        assert again.instance == first.instance

        # Hot starts restore too (the idle environment is reused, one more restored); the
        # first component on the restored one is hot.
        warmed = provider.warm(function, 2)
        assert warmed and all(w.init_ms > 0 and w.surcharge > 0 for w in warmed)
        nap = {"kind": "sleep", "args": {"seconds": 0.3}}
        with ThreadPoolExecutor(2) as pool:  # two at once: both environments serve one
            results = list(pool.map(lambda _: provider.invoke(function, nap, 30), range(2)))
        assert sorted(r.start.value for r in results) == ["hot", "warm"]

        # Deploying again changes nothing: the same version, no new snapshot.
        assert provider.deploy(RUNTIME, tier) == function
        assert lam.get_alias(FunctionName=function.name, Name=ALIAS)["FunctionVersion"] == "1"
        assert len(fake.versions.snapshots) == 1
    finally:
        provider.cleanup()
        provider.close()
    assert fake.leftovers() == []


def test_without_snapstart_nothing_is_published(fake: LambdaFake, tmp_path: Path) -> None:
    provider = fake_provider(fake, tmp_path)
    try:
        function = provider.deploy(RUNTIME, provider.tiers()["low"])
        assert provider.invoke(function, echo(1), 30).start is StartKind.COLD
        versions = boto3.client("lambda").list_versions_by_function(FunctionName=function.name)
        assert [v["Version"] for v in versions["Versions"]] == ["$LATEST"]
        assert fake.versions.snapshots == {}
    finally:
        provider.cleanup()
        provider.close()


def test_provisioned_concurrency_pays_only_for_frequent_hot_starts() -> None:
    prices = PROVISIONED_PRICES["x86_64"]
    kwargs = dict(init_ms=2000.0, hold_ms=1500.0, horizon_s=600.0, on_demand=AWS_LAMBDA_X86)
    once = choose(2, 10240, warm_ups_per_horizon=2, provisioned=prices, **kwargs)  # type: ignore[arg-type]
    assert not once.provisioned and once.provisioned_cost > once.warm_up_cost
    # Held for 10 minutes (two 5-minute steps) it pays once that many warm-ups would be needed:
    break_even = once.provisioned_cost / (once.warm_up_cost / 2)
    often = choose(2, 10240, warm_ups_per_horizon=break_even + 1, provisioned=prices, **kwargs)  # type: ignore[arg-type]
    assert often.provisioned
    assert prices.held_cost(1, 1024, 1.0) == pytest.approx(300 * prices.per_gb_second)


def test_provisioned_environments_serve_hot_starts_without_an_init(
    fake: LambdaFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cheap = replace(PROVISIONED_PRICES["x86_64"], per_gb_second=1e-12)
    monkeypatch.setitem(provider_module.PROVISIONED_PRICES, "x86_64", cheap)
    provider = fake_provider(fake, tmp_path, provisioned_concurrency="true")
    lam = boto3.client("lambda")
    try:
        function = provider.deploy(RUNTIME, provider.tiers()["low"])
        warmed = provider.warm(function, 2)
        config = lam.get_provisioned_concurrency_config(FunctionName=function.name, Qualifier=ALIAS)
        assert config["Status"] == "READY"
        assert config["RequestedProvisionedConcurrentExecutions"] == 2
        assert len(warmed) == 2 and all(w.init_ms == 0 and w.surcharge > 0 for w in warmed)
        result = provider.invoke(function, echo(5), 30)
        assert result.start is StartKind.HOT and result.init_ms == 0
        assert result.instance in {w.instance for w in warmed}
    finally:
        provider.close()  # ends the held capacity
    assert fake.versions.provisioned == {}
    cleaner = fake_provider(fake, tmp_path)
    cleaner.cleanup()
    cleaner.close()
    assert fake.leftovers() == []


def test_the_facts_name_their_source() -> None:
    for table in (*facts.SNAPSTART_PRICES.values(), *facts.PROVISIONED_PRICES.values()):
        assert "aws.amazon.com/lambda/pricing" in table.source
    assert facts.RESTORE_LATENCY.upper_ms > 0 and facts.RESTORE_LATENCY.source
