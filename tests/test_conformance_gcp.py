"""The conformance suite, run through its pytest plugin, against the gcp provider: the real
Cloud Functions v2 client against `FunctionsFake` on 127.0.0.1 (found by the plugin's
convention, ``daydream_gcp.testing.conformance_environment``)."""

from __future__ import annotations

# Imported here, so that pytester's in-process runs keep them (numpy cannot load twice).
import daydream_conformance.environment  # noqa: F401
import daydream_gcp.provider
import daydream_gcp.testing  # noqa: F401
import pytest
from daydream_conformance.test_observed import CPU_UNOBSERVABLE

import daydream_core.engine
import daydream_core.policies.builtin  # noqa: F401

pytest_plugins = ["pytester"]
SUITE = ("--pyargs", "daydream_conformance", "-p", "no:cacheprovider")


def test_gcp_passes_the_conformance_suite(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(*SUITE, "-rs", "--daydream-provider", "gcp")
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 30
    assert not {"failed", "errors"} & set(outcomes)
    # Only what the fake cannot show on a host this small: a 2-vCPU instance on 2 CPUs, with
    # no cgroup to name its share.
    assert skip_reasons(result) <= {CPU_UNOBSERVABLE}, result.stdout.str()


def skip_reasons(result: pytest.RunResult) -> set[str]:
    """The reasons of the skipped cases (from ``-rs``), each up to its first colon."""
    lines = [line for line in result.outlines if line.startswith("SKIPPED [")]
    return {line.split(": ", 2)[1] for line in lines}
