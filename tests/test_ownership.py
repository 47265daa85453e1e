"""Each run removes exactly what it created, on every cloud fake, through the real SDKs.

A failed run beside a run in progress on the same account (same workflow, same layer):
the failing one removes its own functions and nothing of the other's, whose functions,
layer and store objects survive and serve its next run. What a killed controller left is
found by `daydream cleanup --deployment ID` (prefix and tag) and removed, without touching
the run still going; `daydream cleanup` then removes the rest of daydream's. Look-alikes that
daydream did not create (its name prefix, even a deployment's, without its tags) survive both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from daydream_conformance.workflow import workflow

from daydream_core import plugins
from daydream_core.apps import AppSpec
from daydream_core.cli import main
from daydream_core.deployments import Deployments
from daydream_core.engine import Engine
from daydream_core.errors import UsageError
from daydream_core.hookspecs import hookimpl
from daydream_core.plugins import policies
from daydream_core.profile import ProfileStore
from daydream_core.provider import Provider, ProviderSettings, deployment_prefix

RUN_A, RUN_B, KILLED = "daaaaaaa", "dbbbbbbb", "dccccccc"


@dataclass
class Kit:
    """One cloud fake and how to reach it: its provider for a deployment, its options for the
    CLI, look-alikes to plant, and everything it holds (the fake's own view)."""

    name: str
    options: dict[str, str]
    make: Callable[[ProviderSettings], Provider]
    plant: Callable[[Provider, str], None]  # a look-alike named so, without daydream's tags
    leftovers: Callable[[], list[str]]

    def provider(self, state_dir: Path, deployment: str | None) -> Provider:
        return self.make(ProviderSettings(state_dir, options=self.options, deployment=deployment))


def _aws(stack: ExitStack) -> Kit:
    import boto3
    from daydream_aws import packaging
    from daydream_aws.provider import AwsProvider
    from daydream_aws.testing import LambdaFake

    fake = stack.enter_context(LambdaFake())

    def plant(provider: Provider, name: str) -> None:
        boto3.client("lambda").create_function(  # no daydream tags: not ours
            FunctionName=name,
            Role=fake.role_arn,
            Runtime="python3.12",
            Handler="x.handler",
            Code={"ZipFile": packaging.function_zip(workflow.runtime, provider.tiers()["low"])},
        )

    return Kit("aws", fake.options(), AwsProvider, plant, fake.leftovers)


def _gcp(stack: ExitStack, tmp_path: Path) -> Kit:
    from daydream_gcp.functions import desired_function
    from daydream_gcp.packaging import build_source
    from daydream_gcp.provider import GcpProvider
    from daydream_gcp.testing import FunctionsFake

    fake = stack.enter_context(FunctionsFake(tmp_path / "gcp-fake"))

    def plant(provider: Provider, name: str) -> None:
        api, source = provider._api, build_source(workflow.runtime)  # type: ignore[attr-defined]
        tier, options = provider.tiers()["low"], provider.options  # type: ignore[attr-defined]
        foreign = desired_function(
            api.path(name), workflow.runtime, tier, source, api.upload(source.data), {}, options
        )
        foreign.labels.clear()  # no daydream labels: not ours
        api.create(name, foreign)

    return Kit("gcp", fake.options(), GcpProvider, plant, fake.leftovers)


def _azure(stack: ExitStack) -> Kit:
    from azure.mgmt.web import models
    from daydream_azure.provider import AzureProvider
    from daydream_azure.testing import AzureFake

    fake = stack.enter_context(AzureFake())

    def plant(provider: Provider, name: str) -> None:
        provider._web.app_service_plans.begin_create_or_update(  # type: ignore[attr-defined]
            fake.arm.group,
            name,  # untagged: not daydream's
            models.AppServicePlan(location="eastus", sku=models.SkuDescription(name="FC1")),
        ).result()

    return Kit("azure", fake.options(), AzureProvider, plant, fake.leftovers)


@pytest.fixture(params=["aws", "gcp", "azure"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kit]:
    with ExitStack() as stack:
        kits: dict[str, Callable[[], Kit]] = {
            "aws": lambda: _aws(stack),
            "gcp": lambda: _gcp(stack, tmp_path),
            "azure": lambda: _azure(stack),
        }
        yield kits[request.param]()


def _engine(provider: Provider, tmp_path: Path, name: str, **options: Any) -> Engine:
    profile = ProfileStore(tmp_path / f"{name}.sqlite")
    return Engine(provider, profile, policies()["daydream"], timeout_s=120.0, **options)


def _run(engine: Engine, out: Path, index: int) -> Any:
    return engine.run(
        workflow, preset="small", params={"width": 3}, seed=0, run_index=index, out_dir=out
    )


def _cli(kit: Kit, *args: str) -> None:
    options = [f"-o{key}={value}" for key, value in kit.options.items()]
    with pytest.raises(SystemExit) as done:
        main(["--provider", kit.name, *options, *args])
    assert done.value.code == 0


def _closing(provider: Provider) -> AbstractContextManager[Provider]:
    from contextlib import closing

    return closing(provider)


def test_a_failed_run_beside_another_removes_only_its_own(
    kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, out = tmp_path / "state", tmp_path / "out"
    with ExitStack() as stack:
        a = stack.enter_context(_closing(kit.provider(state, RUN_A)))
        b = stack.enter_context(_closing(kit.provider(state, RUN_B)))
        kit.plant(a, "daydream-not-ours")
        kit.plant(a, f"{deployment_prefix(RUN_B)}impostor")
        survivors = set(kit.leftovers())  # what daydream did not make: nothing may remove it

        # Run B deploys first (on AWS it publishes the runtime environment's layer), then
        # fails: its phase is wider than its --max-width.
        engine_b = stack.enter_context(_closing(_engine(b, tmp_path, "b", max_width=1)))
        with pytest.raises(UsageError, match="more than the limit"):
            _run(engine_b, out / "b", 1)
        # Meanwhile run A deploys its own functions (finding B's layer) and runs.
        engine_a = stack.enter_context(_closing(_engine(a, tmp_path, "a")))
        first = _run(engine_a, out / "a", 1)
        assert first.error is None and first.deployment == RUN_A
        kept = f"{first.run_id}/kept.json"
        a.store().put(kept, b"{}")
        ours = sorted(f.name for f in engine_a.deployments.created)
        theirs = sorted(f.name for f in engine_b.deployments.created)
        assert len(ours) == len(theirs) == 2 and not set(ours) & set(theirs)
        assert all(name.startswith(deployment_prefix(RUN_A)) for name in ours)
        before = kit.leftovers()

        # B's failure path (as `daydream run` without --keep): exactly B's.
        removed = engine_b.deployments.remove_created()
        assert sorted(removed) == theirs
        after = kit.leftovers()
        assert set(after) < set(before) and survivors <= set(after)
        assert not any(name in entry for name in theirs for entry in after)
        assert all(any(name in entry for entry in after) for name in ours)
        layers = [e for e in before if e.startswith("layer ")]  # aws: B's, which A uses
        assert layers == [e for e in after if e.startswith("layer ")]
        assert sorted(a.list(deployment_prefix(RUN_A))) == ours
        assert a.store().exists(kept)
        # A's functions, layer and store still serve its next run.
        second = _run(engine_a, out / "a", 2)
        assert second.error is None and second.result == [0, 1, 2]

        # A killed controller (nothing removed on its way out)...
        killed = kit.provider(state, KILLED)
        left_by_killed = Deployments(killed)
        for tier in killed.tiers().values():
            left_by_killed.deploy(workflow.runtime, tier)
        killed.close()
        capsys.readouterr()
        # ...is found by its deployment id, and only what it made is removed.
        _cli(kit, "cleanup", "--deployment", KILLED, "--dry-run")
        preview = capsys.readouterr().out
        assert preview.count(f"would remove function {deployment_prefix(KILLED)}") == 2 or (
            preview.count(f"would remove function app {deployment_prefix(KILLED)}") == 2
        )
        assert RUN_A not in preview and "daydream-not-ours" not in preview
        _cli(kit, "cleanup", "--deployment", KILLED)
        assert not a.list(deployment_prefix(KILLED))
        assert sorted(a.list(deployment_prefix(RUN_A))) == ours
        assert survivors <= set(kit.leftovers())
        third = _run(engine_a, out / "a", 3)
        assert third.error is None

    # The provider-wide cleanup removes all the rest of daydream's, and only daydream's.
    _cli(kit, "cleanup")
    assert set(kit.leftovers()) == survivors


def test_cleanup_of_one_deployment_needs_an_adapter_that_names_per_deployment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The local platform keeps shared names (nothing of it outlives its controller): a
    cleanup confined to a deployment is refused there, in one line, rather than widened."""
    with pytest.raises(SystemExit) as done:
        main(["--provider", "local", "cleanup", "--deployment", "dabcdef1"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not name its resources per deployment" in err[0]
    with pytest.raises(SystemExit) as done:
        main(["--provider", "local", "cleanup", "--deployment", "../x"])
    assert done.value.code == 2
    assert "is not a deployment id" in capsys.readouterr().err


def test_aws_a_failed_deployment_removes_the_layer_only_it_published(tmp_path: Path) -> None:
    """Layer versions are shared by content; the one a deployment published goes with it
    when no other function uses it, and one it found (published by `daydream deploy`) stays."""
    from daydream_aws.provider import AwsProvider
    from daydream_aws.testing import LambdaFake

    def layers(fake: LambdaFake) -> list[str]:
        return [entry for entry in fake.leftovers() if entry.startswith("layer ")]

    with LambdaFake() as fake:
        settings = ProviderSettings(tmp_path, options=fake.options(), deployment=RUN_B)
        with _closing(AwsProvider(settings)) as alone:
            run = Deployments(alone)
            for tier in alone.tiers().values():
                run.deploy(workflow.runtime, tier)
            (published,) = layers(fake)
            removed = run.remove_created()
            assert published in removed
            assert layers(fake) == [] and not alone.list()

        with _closing(AwsProvider(ProviderSettings(tmp_path, options=fake.options()))) as shared:
            kept = shared.deploy(workflow.runtime, shared.tiers()["low"])  # `daydream deploy`
            (found,) = layers(fake)
            with _closing(AwsProvider(settings)) as failing:
                run = Deployments(failing)
                created = [run.deploy(workflow.runtime, t).name for t in failing.tiers().values()]
                assert layers(fake) == [found], "the shared layer version is reused"
                assert sorted(run.remove_created()) == sorted(created)
            assert layers(fake) == [found] and shared.list() == [kept.name]


class _ConformanceApp:
    """The suite's workflow as an app, so that `daydream run conformance` is quick."""

    @hookimpl
    def daydream_apps(self) -> list[AppSpec]:
        return [AppSpec("conformance", "echoes", "daydream_conformance.workflow:workflow")]


@pytest.fixture
def conformance_app() -> Iterator[None]:
    plugin = _ConformanceApp()
    plugins.plugin_manager().register(plugin)
    yield
    plugins.plugin_manager().unregister(plugin)


def test_a_command_removes_what_it_deployed_when_it_ends_unless_kept(
    conformance_app: None, tmp_path: Path
) -> None:
    """Its names are its own, so nothing would reuse them: a finished `daydream run` removes
    its functions too; `--keep` keeps them for `cleanup --deployment` (its run.json's id)."""
    import json

    from daydream_aws.provider import AwsProvider
    from daydream_aws.testing import LambdaFake

    out = tmp_path / "out"
    run = ["run", "conformance", "--runs", "1", "--out", str(out)]
    with LambdaFake() as fake:
        kit = Kit("aws", fake.options(), AwsProvider, lambda provider, name: None, fake.leftovers)
        _cli(kit, *run)
        assert not any(entry.startswith("function ") for entry in fake.leftovers())
        _cli(kit, *run, "--keep")
        deployment = json.loads((out / "run-2" / "run.json").read_text())["deployment"]
        functions = [entry for entry in fake.leftovers() if entry.startswith("function ")]
        assert len(functions) == 2
        assert all(f.startswith(f"function {deployment_prefix(deployment)}") for f in functions)
        _cli(kit, "cleanup", "--deployment", deployment)
        assert not any(entry.startswith("function ") for entry in fake.leftovers())
