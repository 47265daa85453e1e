"""The conformance suite, run through its pytest plugin, against the embedded local platform
(no fake needed: instances are real processes on this machine)."""

from __future__ import annotations

# Imported here, so that pytester's in-process run keeps them (numpy cannot load twice).
import daydream_conformance.environment  # noqa: F401
import daydream_local.provider  # noqa: F401
import pytest

pytest_plugins = ["pytester"]


def test_local_passes_the_conformance_suite(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(
        "--pyargs", "daydream_conformance", "-p", "no:cacheprovider", "--daydream-provider", "local"
    )
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 17
    assert not {"failed", "errors", "skipped"} & set(outcomes)
