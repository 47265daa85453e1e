"""The aws adapter against the offline fake (moto in process + `LambdaFake` on the send path):
what deploy creates, what invoke and warm measure, transfers, timeouts, cleanup."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from daydream_aws import packaging, wire
from daydream_aws.provider import AwsProvider
from daydream_aws.testing import LambdaFake, fake_provider
from daydream_conformance.workflow import workflow

from daydream_core.errors import (
    ComponentFailed,
    ConfigurationError,
    FunctionNotFound,
    FunctionTimeout,
)
from daydream_core.model import StartKind
from daydream_core.pricing import AWS_LAMBDA_ARM
from daydream_core.provider import FunctionHandle, function_name

RUNTIME = workflow.runtime


@pytest.fixture
def fake() -> Iterator[LambdaFake]:
    with LambdaFake() as lambda_fake:
        yield lambda_fake


@pytest.fixture
def provider(fake: LambdaFake, tmp_path: Path) -> Iterator[AwsProvider]:
    aws = fake_provider(fake, tmp_path)
    yield aws
    aws.close()


def lam() -> Any:
    return boto3.client("lambda")


def payload(provider: AwsProvider, kind: str, **args: Any) -> dict[str, Any]:
    return {"kind": kind, "args": args, "store": provider.store().uri, "run_id": "t"}


def test_deploy_creates_a_tagged_function_per_tier_on_one_layer(provider: AwsProvider) -> None:
    handles = {name: provider.deploy(RUNTIME, tier) for name, tier in provider.tiers().items()}
    layers = set()
    for name, handle in handles.items():
        tier = provider.tiers()[name]
        assert handle.name == function_name(RUNTIME, tier)
        config = lam().get_function(FunctionName=handle.name)
        configuration = config["Configuration"]
        assert configuration["MemorySize"] == tier.memory_mb
        assert configuration["Architectures"] == ["x86_64"]
        assert configuration["Handler"] == wire.HANDLER
        assert configuration["Timeout"] == 900
        variables = configuration["Environment"]["Variables"]
        assert variables[wire.STORE_VAR] == provider.store().uri
        assert config["Tags"][wire.TAG_MANAGED] == "true"
        assert config["Tags"][wire.TAG_TIER] == name
        layers |= {layer["Arn"] for layer in configuration["Layers"]}
    assert len(layers) == 1, "the runtime environment is one layer shared by both tiers"
    versions = lam().list_layer_versions(LayerName=provider.layer_name(RUNTIME))["LayerVersions"]
    assert len(versions) == 1
    assert versions[0]["Description"].startswith(wire.DESCRIPTION_MARK)


def test_deploy_is_idempotent_across_provider_objects(
    provider: AwsProvider, fake: LambdaFake, tmp_path: Path
) -> None:
    tier = provider.tiers()["low"]
    first = provider.deploy(RUNTIME, tier)
    modified = lam().get_function(FunctionName=first.name)["Configuration"]["LastModified"]
    again = fake_provider(fake, tmp_path / "other").deploy(RUNTIME, tier)
    assert again == first
    assert lam().get_function(FunctionName=first.name)["Configuration"]["LastModified"] == modified
    assert (
        len(lam().list_layer_versions(LayerName=provider.layer_name(RUNTIME))["LayerVersions"]) == 1
    )


def test_changed_settings_update_the_function_in_place(
    provider: AwsProvider, fake: LambdaFake, tmp_path: Path
) -> None:
    tier = provider.tiers()["low"]
    name = provider.deploy(RUNTIME, tier).name
    longer = fake_provider(fake, tmp_path / "b", function_timeout_s="60")
    assert longer.deploy(RUNTIME, tier).name == name
    assert lam().get_function(FunctionName=name)["Configuration"]["Timeout"] == 60


def test_arm64_functions_and_prices(fake: LambdaFake, tmp_path: Path) -> None:
    provider = fake_provider(fake, tmp_path, architecture="arm64")
    handle = provider.deploy(RUNTIME, provider.tiers()["high"])
    assert lam().get_function(FunctionName=handle.name)["Configuration"]["Architectures"] == [
        "arm64"
    ]
    assert provider.prices() is AWS_LAMBDA_ARM
    assert provider.layer_name(RUNTIME).endswith("-arm64")


def test_invocation_metrics_come_from_the_report(provider: AwsProvider, fake: LambdaFake) -> None:
    tier = provider.tiers()["high"]
    function = provider.deploy(RUNTIME, tier)
    cold = provider.invoke(function, payload(provider, "echo", value=1), 60)
    warm = provider.invoke(function, payload(provider, "echo", value=2), 60)
    assert (cold.start, warm.start) == (StartKind.COLD, StartKind.WARM)
    assert cold.instance == warm.instance
    assert cold.init_ms > 0 and warm.init_ms == 0.0
    assert cold.billed_ms == math.ceil(cold.duration_ms + cold.init_ms)  # init billed
    assert warm.billed_ms == math.ceil(warm.duration_ms)
    assert cold.memory_mb == tier.memory_mb
    assert 0 < cold.max_memory_used_mb <= tier.memory_mb
    assert fake.environments_created(function.name) == 1


def test_warm_starts_distinct_instances_that_serve_hot(
    provider: AwsProvider, fake: LambdaFake
) -> None:
    function = provider.deploy(RUNTIME, provider.tiers()["low"])
    started = provider.warm(function, 3)
    assert len({w.instance for w in started}) == 3
    assert all(w.billed_ms >= math.ceil(w.init_ms) for w in started)
    assert fake.environments_created(function.name) == 3
    assert provider.warm(function, 0) == []
    results = [provider.invoke(function, payload(provider, "echo"), 60) for _ in range(4)]
    assert [r.start for r in results].count(StartKind.HOT) >= 1
    assert {r.instance for r in results} <= {w.instance for w in started}
    assert fake.environments_created(function.name) == 3


def test_warm_on_a_missing_function_raises_not_found(provider: AwsProvider) -> None:
    missing = FunctionHandle("aws", "daydream-nothing-here", RUNTIME, provider.tiers()["low"])
    with pytest.raises(FunctionNotFound):
        provider.warm(missing, 2)


def test_payloads_and_results_over_6_mb_go_through_s3(provider: AwsProvider) -> None:
    function = provider.deploy(RUNTIME, provider.tiers()["low"])
    blob = "z" * (wire.MAX_SYNC_PAYLOAD_BYTES + 100)
    result = provider.invoke(function, payload(provider, "big", blob=blob, size=len(blob)), 60)
    assert result.output["received"] == len(blob)
    assert len(result.output["blob"]) == len(blob)
    assert provider.store().list("_transfer") == [], "transfer objects are removed"


def test_the_functions_own_timeout(fake: LambdaFake, tmp_path: Path) -> None:
    provider = fake_provider(fake, tmp_path, function_timeout_s="1")
    function = provider.deploy(RUNTIME, provider.tiers()["low"])
    with pytest.raises(FunctionTimeout, match="function's timeout"):
        provider.invoke(function, payload(provider, "sleep", seconds=3), 30)


def test_the_client_gives_up_at_the_invocation_timeout(provider: AwsProvider) -> None:
    function = provider.deploy(RUNTIME, provider.tiers()["low"])
    with pytest.raises(FunctionTimeout, match="no answer"):
        provider.invoke(function, payload(provider, "sleep", seconds=3), 0.5)


def test_a_package_without_the_workflow_fails_like_lambda(
    provider: AwsProvider, fake: LambdaFake
) -> None:
    """A function whose layer lacks the workflow module cannot import it, as on Lambda."""
    good = provider.deploy(RUNTIME, provider.tiers()["low"])
    configuration = lam().get_function(FunctionName=good.name)["Configuration"]
    empty = lam().publish_layer_version(
        LayerName="daydream-empty", Content={"ZipFile": packaging.function_zip(RUNTIME, good.tier)}
    )["LayerVersionArn"]
    lam().update_function_configuration(FunctionName=good.name, Layers=[empty])
    with pytest.raises(ComponentFailed, match=r"Runtime\.ImportModuleError"):
        provider.invoke(good, payload(provider, "echo"), 30)
    assert configuration["Layers"]


def test_container_image_functions(fake: LambdaFake, tmp_path: Path) -> None:
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/daydream:conformance"
    provider = fake_provider(fake, tmp_path, image_uri=uri)
    function = provider.deploy(RUNTIME, provider.tiers()["low"])
    configuration = lam().get_function(FunctionName=function.name)["Configuration"]
    assert configuration["PackageType"] == "Image"
    assert provider.invoke(function, payload(provider, "echo", value=4), 30).output["value"] == 4


def test_large_layers_go_through_s3(provider: AwsProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging, "DIRECT_UPLOAD_MAX_BYTES", 1000)
    function = provider.deploy(RUNTIME, provider.tiers()["low"])
    assert provider.invoke(function, payload(provider, "echo", value=5), 30).output["value"] == 5
    assert provider.store().list("_deploy") == [], "the staged layer zip is removed"


def test_runtime_over_the_layer_limit_becomes_an_image(
    provider: AwsProvider, fake: LambdaFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packaging, "UNZIPPED_MAX_BYTES", 1000)
    function = provider.deploy(RUNTIME, provider.tiers()["low"])
    configuration = lam().get_function(FunctionName=function.name)
    assert configuration["Configuration"]["PackageType"] == "Image"
    assert "/daydream-runtimes@sha256:" in configuration["Code"]["ImageUri"]
    assert lam().list_layers()["Layers"] == [], "no layer for an image deployment"
    assert provider.invoke(function, payload(provider, "echo", value=6), 30).output["value"] == 6


def test_package_layer_refuses_what_cannot_be_a_layer(
    provider: AwsProvider, fake: LambdaFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(packaging, "UNZIPPED_MAX_BYTES", 1000)
    layered = fake_provider(fake, tmp_path / "forced", package="layer")
    with pytest.raises(ConfigurationError, match="package=layer"):
        layered.deploy(RUNTIME, layered.tiers()["low"])
    assert lam().list_functions()["Functions"] == []


def test_tier_memory_outside_lambdas_range(provider: AwsProvider) -> None:
    tier = dataclasses.replace(provider.tiers()["low"], memory_mb=20000)
    with pytest.raises(ConfigurationError, match="128-10240"):
        provider.deploy(RUNTIME, tier)


def test_release_is_a_no_op_on_lambda(provider: AwsProvider) -> None:
    function = provider.deploy(RUNTIME, provider.tiers()["low"])
    assert provider.capabilities().releases_instances is False
    assert provider.release(function, 0) == []


def test_cleanup_removes_only_what_daydream_made(provider: AwsProvider, fake: LambdaFake) -> None:
    for tier in provider.tiers().values():
        provider.deploy(RUNTIME, tier)
    provider.store().put("run/x.json", b"{}")
    # Someone else's function with a daydream-like name, and their own bucket: not ours.
    zip_file = packaging.function_zip(RUNTIME, provider.tiers()["low"])
    lam().create_function(
        FunctionName="daydream-not-ours",
        Role=fake.role_arn,
        Runtime="python3.12",
        Handler="x.handler",
        Code={"ZipFile": zip_file},
    )
    boto3.client("s3").create_bucket(Bucket="someone-elses")

    preview = provider.cleanup(dry_run=True)
    assert sum(entry.startswith("function ") for entry in preview) == 2
    assert sum(entry.startswith("layer ") for entry in preview) == 1
    assert any(entry.startswith("objects s3://") for entry in preview)
    assert any(entry.startswith("bucket daydream-") for entry in preview)
    assert len(provider.list()) == 3, "a dry run removes nothing"

    assert provider.cleanup() == preview
    assert sorted(fake.leftovers()) == ["bucket someone-elses", "function daydream-not-ours"]
    assert provider.cleanup(dry_run=True) == []
    # Deploying again after a cleanup recreates what is needed.
    function = provider.deploy(RUNTIME, provider.tiers()["low"])
    assert provider.invoke(function, payload(provider, "echo", value=6), 30).output["value"] == 6


def test_an_explicit_endpoint_option(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`-o endpoint_url=…` reaches a compatible endpoint without AWS_ENDPOINT_URL."""
    with LambdaFake(server=True) as fake:
        assert fake.endpoint_url is not None and fake.endpoint_url.startswith("http://127.0.0.1:")
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        provider = fake_provider(fake, tmp_path, endpoint_url=fake.endpoint_url)
        function = provider.deploy(RUNTIME, provider.tiers()["low"])
        result = provider.invoke(function, payload(provider, "echo", value=8), 30)
        assert result.output["value"] == 8
        assert provider.cleanup()
