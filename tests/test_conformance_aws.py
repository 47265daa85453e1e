"""The conformance suite, run through its pytest plugin, against the aws provider: boto3 against
moto on 127.0.0.1, with `LambdaFake` answering Invoke (found by the plugin's convention,
``daydream_aws.testing.conformance_environment``)."""

from __future__ import annotations

# Imported here, so that pytester's in-process runs keep them (numpy cannot load twice).
import daydream_aws.provider
import daydream_aws.testing  # noqa: F401
import daydream_conformance.environment  # noqa: F401
import moto.server  # noqa: F401
import pytest
from daydream_conformance.test_observed import CPU_UNOBSERVABLE

import daydream_core.engine
import daydream_core.policies.builtin  # noqa: F401

pytest_plugins = ["pytester"]
SUITE = ("--pyargs", "daydream_conformance", "-p", "no:cacheprovider")


def test_aws_passes_the_conformance_suite(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(*SUITE, "-rs", "--daydream-provider", "aws")
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 30
    assert not {"failed", "errors"} & set(outcomes)
    # Only what the fake cannot show on a host this small: Lambda's context names no vCPUs.
    assert skip_reasons(result) <= {CPU_UNOBSERVABLE}, result.stdout.str()


def skip_reasons(result: pytest.RunResult) -> set[str]:
    """The reasons of the skipped cases (from ``-rs``), each up to its first colon."""
    lines = [line for line in result.outlines if line.startswith("SKIPPED [")]
    return {line.split(": ", 2)[1] for line in lines}


def test_the_suite_is_skipped_without_a_provider(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(*SUITE)
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) >= 17 and "passed" not in outcomes


def test_an_unknown_provider_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(*SUITE, "--daydream-provider", "nosuch")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*unknown provider 'nosuch'*"])
