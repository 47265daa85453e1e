"""The conformance suite, run through its pytest plugin, against the azure provider: the Azure
SDKs against the HTTPS fake on 127.0.0.1 (found by the plugin's convention,
``daydream_azure.testing.conformance_environment``), instances as real processes, Azurite for
Blob storage."""

from __future__ import annotations

# Imported here, so that pytester's in-process runs keep them (numpy cannot load twice).
import daydream_azure.provider
import daydream_azure.testing  # noqa: F401
import daydream_conformance.environment  # noqa: F401
import pytest

pytest_plugins = ["pytester"]
SUITE = ("--pyargs", "daydream_conformance", "-p", "no:cacheprovider")


def test_azure_passes_the_conformance_suite(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(*SUITE, "--daydream-provider", "azure")
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 17
    assert not {"failed", "errors", "skipped"} & set(outcomes)
