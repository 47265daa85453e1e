"""The conformance suite, run through its pytest plugin, against the ray provider: a real local
Ray instance started by the provider's hook (``daydream_ray.testing.conformance_environment``),
with Ray's own actor table and task events as the platform's view."""

from __future__ import annotations

# Imported here, so that pytester's in-process run keeps them (numpy cannot load twice).
import daydream_conformance.environment  # noqa: F401
import daydream_ray.provider
import daydream_ray.testing  # noqa: F401
import pytest

pytest_plugins = ["pytester"]
SUITE = ("--pyargs", "daydream_conformance", "-p", "no:cacheprovider")


def test_ray_passes_the_conformance_suite(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(*SUITE, "--daydream-provider", "ray")
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 17
    assert not {"failed", "errors", "skipped"} & set(outcomes)
