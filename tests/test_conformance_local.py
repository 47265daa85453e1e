"""The conformance suite, run through its pytest plugin, against the embedded local platform:
instances are real processes on this machine, and the platform's own view of them is read from
/proc (``daydream_local.testing``, found by the plugin's convention)."""

from __future__ import annotations

# Imported here, so that pytester's in-process run keeps them (numpy cannot load twice).
import daydream_conformance.environment  # noqa: F401
import daydream_local.provider  # noqa: F401
import pytest
from daydream_conformance.support import NO_BILL
from daydream_conformance.test_observed import CPU_UNOBSERVABLE

import daydream_core.engine
import daydream_core.policies.builtin  # noqa: F401

pytest_plugins = ["pytester"]


def test_local_passes_the_conformance_suite(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(
        "--pyargs",
        "daydream_conformance",
        "-p",
        "no:cacheprovider",
        "-rs",
        "--daydream-provider",
        "local",
    )
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 28
    assert not {"failed", "errors"} & set(outcomes)
    # The local platform bills in its adapter (no independent bill), and its high tier has
    # every CPU of the host (nothing to see from inside); nothing else may be skipped.
    lines = [line for line in result.outlines if line.startswith("SKIPPED [")]
    assert {line.split(": ", 2)[1] for line in lines} <= {NO_BILL, CPU_UNOBSERVABLE}
