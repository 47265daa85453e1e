"""The platform views the suite compares adapters with: the aws fake's (its environments by log
stream, their configured memory, its REPORT-line bills) and the local platform's (/proc)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from daydream_aws.handler import platform_limits
from daydream_aws.provider import AwsProvider
from daydream_aws.testing import LambdaFake, fake_provider
from daydream_conformance.view import PlatformView, alive, by_environment
from daydream_conformance.workflow import workflow
from daydream_local.provider import LocalProvider
from daydream_local.testing import ProcessView

from daydream_core.model import HIGH, LOW, StartKind

LOG_STREAM = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")


@pytest.fixture
def fake() -> Iterator[LambdaFake]:
    with LambdaFake() as lambda_fake:
        yield lambda_fake


@pytest.fixture
def aws(fake: LambdaFake, tmp_path: Path) -> Iterator[AwsProvider]:
    provider = fake_provider(fake, tmp_path)
    yield provider
    provider.close()


def payload(store: str, kind: str = "echo", **args: Any) -> dict[str, Any]:
    return {"component": kind, "kind": kind, "args": args, "run_id": "t", "store": store}


def test_both_views_are_platform_views(fake: LambdaFake) -> None:
    assert isinstance(fake, PlatformView)
    assert isinstance(ProcessView(), PlatformView)


def test_the_aws_fake_names_environments_by_log_stream_and_bills_them(
    fake: LambdaFake, aws: AwsProvider
) -> None:
    tier = aws.tiers()[LOW]
    function = aws.deploy(workflow.runtime, tier)
    store = aws.store().uri
    cold = aws.invoke(function, payload(store), 60)
    warm = aws.invoke(function, payload(store), 60)
    [environment] = fake.environments(function.name)
    assert LOG_STREAM.match(environment.id)
    assert cold.instance == warm.instance == environment.id
    assert (environment.memory_mb, environment.requests, environment.alive) == (
        tier.memory_mb,
        2,
        True,
    )
    assert environment.vcpus == pytest.approx(tier.vcpus)
    first, second = fake.billing(function.name)
    assert first.environment == second.environment == environment.id
    assert first.init_ms > 0 and second.init_ms == 0
    assert (first.billed_ms, second.billed_ms) == (cold.billed_ms, warm.billed_ms)
    assert first.memory_mb == tier.memory_mb
    assert by_environment([first, second]) == {environment.id: [first, second]}


def test_instances_see_the_memory_their_function_is_configured_with(
    fake: LambdaFake, aws: AwsProvider
) -> None:
    function = aws.deploy(workflow.runtime, aws.tiers()[HIGH])
    aws.invoke(function, payload(aws.store().uri), 60)
    boto = aws._lambda  # the function changed behind the adapter's back
    boto.update_function_configuration(FunctionName=function.name, MemorySize=2048)
    seen = aws.invoke(function, payload(aws.store().uri, "observe"), 60)
    assert seen.start is StartKind.COLD, "a changed function starts new environments"
    assert seen.output["platform"] == {"memory_mb": 2048}
    old, new = fake.environments(function.name)
    assert (old.alive, old.memory_mb) == (False, aws.tiers()[HIGH].memory_mb)
    assert (new.alive, new.memory_mb, new.id) == (True, 2048, seen.instance)


def test_a_deleted_functions_environments_have_ended(fake: LambdaFake, aws: AwsProvider) -> None:
    function = aws.deploy(workflow.runtime, aws.tiers()[LOW])
    aws.warm(function, 2)
    assert len(alive(fake.environments(function.name))) == 2
    aws.delete(function)
    assert alive(fake.environments(function.name)) == {}
    assert len(fake.environments(function.name)) == 2


def test_the_handler_hands_lambdas_memory_to_the_component() -> None:
    assert platform_limits(SimpleNamespace(memory_limit_in_mb="5120")) == {"memory_mb": 5120}
    assert platform_limits(None) == {}


def test_the_local_view_reads_instance_processes_from_proc(tmp_path: Path) -> None:
    view = ProcessView()
    provider = LocalProvider(tmp_path / "state", concurrency=4)
    try:
        tier = provider.tiers()[LOW]
        function = provider.deploy(workflow.runtime, tier)
        [started] = provider.warm(function, 1)
        [environment] = view.environments(function.name)
        assert (environment.id, environment.alive) == (started.instance, True)
        assert environment.memory_mb == tier.memory_mb, "RLIMIT_AS, as the kernel holds it"
        assert environment.vcpus == tier.vcpus, "the CPU set, as the kernel holds it"
        assert view.billing(function.name) is None
        assert view.leftovers() == [
            f"instance process {provider.instance_pids()[started.instance]} ({started.instance})"
        ]
        assert provider.release(function, 0) == [started.instance]
        [ended] = view.environments(function.name)
        assert (ended.id, ended.alive) == (started.instance, False)
    finally:
        provider.close()
    assert view.leftovers() == []
