"""The suite can fail: deliberately broken adapters (tests/broken_adapters.py), plugged in
through the suite's own hook exactly as a third-party provider would plug in its fake, are each
caught by the cases named for what they break.

Each broken adapter is the real aws adapter against the real fake, wrong in one way only; only
the cases that should catch it are run, to keep this quick, and every one of them must fail.
"""

from __future__ import annotations

import broken_adapters

# Imported here, so that pytester's in-process runs keep them (numpy cannot load twice).
import daydream_aws.provider
import daydream_aws.testing  # noqa: F401
import daydream_conformance.environment  # noqa: F401
import moto.server  # noqa: F401
import pytest

import daydream_core.engine
import daydream_core.policies.builtin  # noqa: F401

pytest_plugins = ["pytester"]

TIERS = ("[high]", "[low]")

# broken adapter -> the cases named for what it breaks (each must fail)
CAUGHT_BY: dict[str, list[str]] = {
    "IgnoresTierMemory": [f"test_deploy_each_tier_with_its_memory{t}" for t in TIERS],
    "ReportsTierMemoryRunsAnother": [
        *(f"test_instances_run_with_their_tier_memory{t}" for t in TIERS),
        *(f"test_environments_run_with_their_tier_memory{t}" for t in TIERS),
    ],
    "EveryStartHot": [
        "test_cold_start_is_reported_cold",
        "test_hot_started_instances_are_reported_hot",
    ],
    "HidesColdStarts": [
        "test_cold_start_is_reported_cold",
        "test_start_kinds_agree_with_the_platform",
    ],
    "RequestIdAsInstance": ["test_start_kinds_agree_with_the_platform"],
    "BillsColdDurationNotInit": [
        "test_cold_start_bills_its_init",
        "test_invocations_bill_what_the_platform_billed",
    ],
    "BillsAnotherGranularity": ["test_engine_cost_is_the_platform_bill"],
    "PricesIgnoreInit": ["test_price_table_matches_the_platform_bill"],
    "WarmUpsBilledFree": [
        "test_hot_start_bills_its_warm_up",
        "test_hot_start_bills_what_the_platform_billed",
    ],
    "OverProvisionsWarm": ["test_warm_starts_exactly_n_environments"],
    "ForgetsServedInstances": ["test_instances_agree_with_the_platform"],
    "DropsRemoteTraceback": ["test_component_exception_surfaces_typed_with_remote_traceback"],
    "CleanupForgetsLayers": ["test_cleanup_leaves_nothing"],
}


def test_every_broken_adapter_has_its_cases() -> None:
    assert set(CAUGHT_BY) == set(broken_adapters.BROKEN)
    assert len(CAUGHT_BY) >= 10


@pytest.mark.parametrize("broken", sorted(CAUGHT_BY))
def test_the_suite_fails_a_broken_adapter(pytester: pytest.Pytester, broken: str) -> None:
    caught = CAUGHT_BY[broken]
    selection = " or ".join(sorted({case.split("[")[0] for case in caught}))
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
        selection,
    )
    failed = sorted(
        report.nodeid.rsplit("::", 1)[-1]
        for report in result.reprec.getfailures()  # type: ignore[attr-defined]
        if report.when == "call"
    )
    assert failed == sorted(caught), result.stdout.str()
