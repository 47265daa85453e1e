"""The azure adapter against the offline fake: deployment through the management API and
OneDeploy, invocation over HTTPS with the function key, backoff on 429/503, instance kills,
payloads through Blob storage, costs, and a cleanup that removes only what daydream made.
What happened is checked through the fake's own view, not the adapter's word."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from azure.mgmt.web import models
from daydream_azure import wire
from daydream_azure.options import FLEX_CONSUMPTION
from daydream_azure.provider import AzureProvider
from daydream_azure.testing import AzureFake
from daydream_conformance.workflow import workflow

from daydream_core.backoff import Backoff
from daydream_core.errors import FunctionNotFound, InstanceLost, ProviderError, Throttled
from daydream_core.model import HIGH, LOW, StartKind
from daydream_core.provider import FunctionHandle, ProviderSettings

TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def fake() -> Iterator[AzureFake]:
    with AzureFake() as azure_fake:
        yield azure_fake


class Sleeps:
    """Records the backoff's pauses instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="module")
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(scope="module")
def provider(
    fake: AzureFake, sleeps: Sleeps, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AzureProvider]:
    settings = ProviderSettings(
        state_dir=tmp_path_factory.mktemp("azure"), options={**fake.options(), "max_attempts": "4"}
    )
    adapter = AzureProvider(settings, backoff=Backoff(4, 0.01, 0.05, sleep=sleeps))
    yield adapter
    adapter.cleanup()
    adapter.close()


@pytest.fixture(scope="module")
def function(provider: AzureProvider) -> FunctionHandle:
    return provider.deploy(workflow.runtime, provider.tiers()[LOW])


def payload(provider: AzureProvider, kind: str, **args: Any) -> dict[str, Any]:
    return {
        "component": f"{kind}-1",
        "kind": kind,
        "args": args,
        "run_id": "test",
        "phase": 0,
        "store": provider.store().uri,
    }


def test_deploy_creates_a_tagged_flex_app_through_long_running_operations(
    fake: AzureFake, function: FunctionHandle
) -> None:
    site = fake.arm.state.sites[function.name]
    plan = fake.arm.state.plans[function.name]
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert site["tags"][wire.TAG_MANAGED] == "true" and plan["tags"][wire.TAG_MANAGED] == "true"
    scale = site["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["instanceMemoryMB"] == 2048
    assert scale["triggers"]["http"]["perInstanceConcurrency"] == 1
    polls = [path for method, path in fake.calls if path.startswith("/fake/operations/")]
    assert len(polls) >= 4, "both PUTs were polled through Azure-AsyncOperation"
    assert ("POST", f"/sites/{function.name}/scm/api/publish") in fake.calls
    settings = fake.arm.state.settings[function.name]
    assert settings[wire.PACKAGE_VAR] and settings[wire.STORE_VAR].startswith("azblob://")


def test_deploy_again_changes_nothing(
    fake: AzureFake, provider: AzureProvider, function: FunctionHandle
) -> None:
    before = len(fake.calls)
    again = provider.deploy(workflow.runtime, provider.tiers()[LOW])
    assert again == function
    changes = [c for c in fake.calls[before:] if c[0] in ("PUT", "DELETE") or "publish" in c[1]]
    assert changes == [], "an unchanged function is neither updated nor republished"


def test_instance_ids_and_memory_come_from_the_platform(
    fake: AzureFake, provider: AzureProvider, function: FunctionHandle
) -> None:
    result = provider.invoke(function, payload(provider, "observe"), TIMEOUT_S)
    views = {view.id: view for view in fake.environments(function.name)}
    assert result.instance in views, "the adapter reports the platform's own instance id"
    assert len(result.instance) == 64
    observed = result.output
    assert observed["platform"]["memory_mb"] == 2048 == views[result.instance].memory_mb
    assert observed["platform"]["instance"] == result.instance
    assert observed["rlimit_as_mb"] == 2048, "the instance runs under its tier's memory"


def test_a_fresh_function_starts_cold_then_warm(fake: AzureFake, provider: AzureProvider) -> None:
    runtime = replace(workflow.runtime, preload=(*workflow.runtime.preload, "string"))
    function = provider.deploy(runtime, provider.tiers()[HIGH])
    first = provider.invoke(function, payload(provider, "echo", value=1), TIMEOUT_S)
    second = provider.invoke(function, payload(provider, "echo", value=2), TIMEOUT_S)
    assert (first.start, second.start) == (StartKind.COLD, StartKind.WARM)
    assert first.instance == second.instance
    assert first.init_ms > 0 and second.init_ms == 0
    billed = fake.metered(function.name)
    assert [b.environment for b in billed] == [first.instance] * 2
    assert billed[0].init_ms > 0 and billed[1].init_ms == 0
    # The adapter's billed time is its estimate; Azure Monitor's execution units must agree.
    estimate = sum(r.billed_ms * r.memory_mb for r in (first, second))
    assert fake.execution_units(function.name) == pytest.approx(estimate)
    assert first.memory_mb == 4096
    provider.delete(function)


def test_warm_lands_on_n_distinct_new_instances(fake: AzureFake, provider: AzureProvider) -> None:
    runtime = replace(workflow.runtime, preload=(*workflow.runtime.preload, "json"))
    function = provider.deploy(runtime, provider.tiers()[LOW])
    started = provider.warm(function, 3)
    ids = {warm.instance for warm in started}
    views = fake.environments(function.name)
    assert len(ids) == 3 and ids == {view.id for view in views}
    assert all(view.requests == 1 and view.alive for view in views)
    hot = provider.invoke(function, payload(provider, "echo"), TIMEOUT_S)
    assert hot.start is StartKind.HOT and hot.instance in ids
    assert set(provider.instances(function)) == ids
    provider.delete(function)
    assert provider.instances(function) == []
    assert not any(view.alive for view in fake.environments(function.name))


@pytest.mark.parametrize("fault", ["throttle", "unavailable"])
def test_429_and_503_are_retried_with_bounded_jittered_backoff(
    fault: str, fake: AzureFake, provider: AzureProvider, function: FunctionHandle, sleeps: Sleeps
) -> None:
    sleeps.waits.clear()
    getattr(fake, fault)(2)
    before = fake.requests
    result = provider.invoke(function, payload(provider, "echo", value=7), TIMEOUT_S)
    assert result.output["value"] == 7
    assert fake.requests - before == 3
    assert len(sleeps.waits) == 2
    assert 0 <= sleeps.waits[0] <= 0.01 and 0 <= sleeps.waits[1] <= 0.02


def test_throttling_past_the_attempts_is_typed(
    fake: AzureFake, provider: AzureProvider, function: FunctionHandle
) -> None:
    fake.throttle(10)
    before = fake.requests
    with pytest.raises(Throttled, match="throttled"):
        provider.invoke(function, payload(provider, "echo"), TIMEOUT_S)
    assert fake.requests - before == 4, "max_attempts bounds the attempts"
    fake.throttle(0)


def test_a_killed_instance_fails_the_request_without_hanging(
    fake: AzureFake, provider: AzureProvider, function: FunctionHandle
) -> None:
    fake.kill_next(1)
    with pytest.raises(ProviderError, match="ended") as failure:
        provider.invoke(function, payload(provider, "echo"), TIMEOUT_S)
    assert not isinstance(failure.value, Throttled)
    assert isinstance(failure.value, InstanceLost)  # the engine's retry takes it from here
    dead = [view for view in fake.environments(function.name) if not view.alive]
    assert dead, "the platform saw its instance end"
    after = provider.invoke(function, payload(provider, "echo", value=3), TIMEOUT_S)
    assert after.output["value"] == 3 and after.instance not in {view.id for view in dead}


def test_large_payloads_and_results_go_through_blob_and_are_removed(
    fake: AzureFake, provider: AzureProvider, function: FunctionHandle
) -> None:
    blob = "z" * (wire.MAX_INLINE_BYTES + 10)
    result = provider.invoke(function, payload(provider, "big", blob=blob), TIMEOUT_S)
    assert result.output["sha256"] == hashlib.sha256(blob.encode()).hexdigest()
    result = provider.invoke(
        function, payload(provider, "big", size=wire.MAX_INLINE_BYTES), TIMEOUT_S
    )
    assert len(result.output["blob"]) == wire.MAX_INLINE_BYTES
    assert provider.store().list("_transfer") == []


def test_a_missing_function_is_not_found(provider: AzureProvider) -> None:
    missing = FunctionHandle(
        "azure", "daydream-nosuch-low-0000000000", workflow.runtime, provider.tiers()[LOW]
    )
    with pytest.raises(FunctionNotFound):
        provider.invoke(missing, payload(provider, "echo"), TIMEOUT_S)
    provider.delete(missing)  # deleting a missing function is not an error


def test_cost_follows_flex_consumption_on_demand() -> None:
    # 1.2 s on 2 GB bills two whole seconds (1,000 ms minimum and granularity): 4 GB-s.
    assert FLEX_CONSUMPTION.billed_ms(1200.0) == 2000.0
    assert FLEX_CONSUMPTION.cost(2048, 1200.0) == pytest.approx(4 * 0.000026 + 0.40e-6)
    assert FLEX_CONSUMPTION.cost(2048, 1200.0, init_ms=5000.0) == FLEX_CONSUMPTION.cost(
        2048, 1200.0
    )
    assert "azure.microsoft.com/pricing" in FLEX_CONSUMPTION.source


def test_cleanup_removes_only_what_daydream_created(
    fake: AzureFake, provider: AzureProvider, function: FunctionHandle
) -> None:
    foreign = fake.blob.create_container("someone-elses")
    foreign.upload_blob("keep.txt", b"mine")
    provider._web.app_service_plans.begin_create_or_update(  # untagged: not daydream's
        fake.arm.group,
        "daydream-lookalike",
        models.AppServicePlan(location="eastus", sku=models.SkuDescription(name="FC1")),
    ).result()
    provider.store().put("run/x.json", b"{}")

    preview = provider.cleanup(dry_run=True)
    assert f"function app {function.name}" in preview and f"plan {function.name}" in preview
    assert fake.arm.state.sites, "a dry run removes nothing"
    removed = provider.cleanup()
    assert sorted(removed) == sorted(preview)
    left = fake.leftovers()
    assert left == [
        "plan daydream-lookalike",
        "container someone-elses",
        "blob someone-elses/keep.txt",
    ]
    assert provider.cleanup(dry_run=True) == []
    fake.blob.delete_container("someone-elses")
    provider._web.app_service_plans.delete(fake.arm.group, "daydream-lookalike")
    assert fake.leftovers() == []
