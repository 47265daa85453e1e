"""The suite can fail: deliberately broken adapters, plugged in through the suite's own hook
exactly as a third-party provider would plug in its fake, are caught by the right cases.

Each broken adapter is the real aws adapter against the real fake, wrong in one way only; only
the cases that should catch it are run, to keep this quick.
"""

from __future__ import annotations

import textwrap

# Imported here, so that pytester's in-process runs keep them (numpy cannot load twice).
import daydream_aws.provider
import daydream_aws.testing  # noqa: F401
import daydream_conformance.environment  # noqa: F401
import moto.server  # noqa: F401
import pytest

import daydream_core.engine
import daydream_core.policies.builtin  # noqa: F401

pytest_plugins = ["pytester"]

BROKEN_PLUGIN = textwrap.dedent(
    """
    import dataclasses
    from contextlib import contextmanager

    import pytest

    from daydream_aws.provider import AwsProvider
    from daydream_aws.testing import conformance_environment
    from daydream_core.model import StartKind


    class IgnoresTierMemory(AwsProvider):
        '''Deploys every function with Lambda's default 128 MB, whatever its tier says.'''

        def deploy(self, runtime, tier):
            handle = super().deploy(runtime, tier)
            self._lambda.update_function_configuration(FunctionName=handle.name, MemorySize=128)
            return handle


    class EveryStartHot(AwsProvider):
        '''Assumes instead of measuring: reports every start as hot.'''

        def invoke(self, function, payload, timeout):
            result = super().invoke(function, payload, timeout)
            return dataclasses.replace(result, start=StartKind.HOT)


    class DropsRemoteTraceback(AwsProvider):
        '''Surfaces component failures typed, but without the remote traceback.'''

        def invoke(self, function, payload, timeout):
            try:
                return super().invoke(function, payload, timeout)
            except Exception as exc:
                if hasattr(exc, "remote_traceback"):
                    exc.remote_traceback = ""
                raise


    class CleanupForgetsLayers(AwsProvider):
        '''Removes functions and objects but leaves its layers behind.'''

        def cleanup(self, dry_run=False):
            removed = super().cleanup(dry_run=True)
            kept = [entry for entry in removed if not entry.startswith("layer ")]
            if not dry_run:
                for name in self.list():
                    self._lambda.delete_function(FunctionName=name)
            return kept


    BROKEN = {c.__name__: c for c in (
        IgnoresTierMemory, EveryStartHot, DropsRemoteTraceback, CleanupForgetsLayers
    )}


    def pytest_addoption(parser):
        parser.addoption("--broken", required=True)


    @pytest.hookimpl
    def pytest_daydream_conformance_environment(config, provider, workdir):
        broken = BROKEN[config.getoption("broken")]

        @contextmanager
        def environment():
            with conformance_environment(workdir) as env:
                yield dataclasses.replace(env, factory=broken)

        return environment()
    """
)


@pytest.mark.parametrize(
    ("broken", "cases", "caught"),
    [
        (
            "IgnoresTierMemory",
            "deploy_each_tier",
            [
                "test_deploy_each_tier_with_its_memory[high]",
                "test_deploy_each_tier_with_its_memory[low]",
            ],
        ),
        (
            "EveryStartHot",
            "cold_start or hot_started",
            ["test_cold_start_is_reported_cold", "test_hot_started_instances_are_reported_hot"],
        ),
        (
            "DropsRemoteTraceback",
            "component_exception",
            ["test_component_exception_surfaces_typed_with_remote_traceback"],
        ),
        ("CleanupForgetsLayers", "cleanup", ["test_cleanup_leaves_nothing"]),
    ],
)
def test_the_suite_fails_a_broken_adapter(
    pytester: pytest.Pytester, broken: str, cases: str, caught: list[str]
) -> None:
    pytester.makepyfile(broken_adapters=BROKEN_PLUGIN)
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess(
        "--pyargs",
        "daydream_conformance",
        "-p",
        "no:cacheprovider",
        "-p",
        "broken_adapters",
        "--daydream-provider",
        "aws",
        "--broken",
        broken,
        "-k",
        cases,
    )
    failed = sorted(
        report.nodeid.rsplit("::", 1)[-1]
        for report in result.reprec.getfailures()  # type: ignore[attr-defined]
        if report.when == "call"
    )
    assert failed == sorted(caught), result.stdout.str()
