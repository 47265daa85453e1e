"""Configuration: options, and a missing subscription, storage account or credentials as one-line
errors raised before anything is created. Nothing here reaches beyond 127.0.0.1: the managed
identity probe is pointed at a closed local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from daydream_azure.options import FLEX_CONSUMPTION, AzureOptions

from daydream_core.errors import ConfigurationError
from daydream_core.model import HIGH, LOW
from daydream_core.provider import ProviderSettings

ACCOUNT = {
    "subscription_id": "00000000-0000-0000-0000-000000000001",
    "resource_group": "rg",
    "location": "eastus",
    "storage_account_url": "https://example.blob.core.windows.net",
}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def bare_azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Azure settings or credentials; IMDS and the CLI credential find nothing locally."""
    for name in list(os.environ):
        if name.startswith(("AZURE_", "DAYDREAM_AZURE_", "IDENTITY_", "MSI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "no-az-cli"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no az, azd or pwsh to ask


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


def test_defaults_are_flex_consumption_4096_and_2048() -> None:
    options = AzureOptions.parse({}, environ={})
    tiers = options.tiers()
    assert (tiers[HIGH].memory_mb, tiers[HIGH].vcpus) == (4096, 2.0)
    assert (tiers[LOW].memory_mb, tiers[LOW].vcpus) == (2048, 1.0)
    assert options.per_instance_concurrency == 1
    assert options.prices() is FLEX_CONSUMPTION


def test_options_over_daydream_variables_over_standard_ones() -> None:
    environ = {
        "AZURE_SUBSCRIPTION_ID": "sub-from-azure",
        "AZURE_RESOURCE_GROUP": "rg-from-azure",
        "DAYDREAM_AZURE_RESOURCE_GROUP": "rg-from-daydream",
        "AZURE_LOCATION": "westeurope",
        "DAYDREAM_AZURE_LOW_MEMORY_MB": "512",
    }
    options = AzureOptions.parse({"location": "eastus2"}, environ=environ)
    assert options.require_account() == ("sub-from-azure", "rg-from-daydream", "eastus2")
    assert options.tiers()[LOW].memory_mb == 512
    assert AzureOptions.parse({"connection_verify": "/ca.pem"}, environ={}).verify == "/ca.pem"
    assert AzureOptions.parse({"connection_verify": "no"}, environ={}).verify is False


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"nosuch": "1"}, "unknown azure option 'nosuch'; valid options: subscription_id"),
        ({"high_memory_mb": "10240"}, "high_memory_mb=10240 is not a Flex Consumption instance"),
        ({"low_memory_mb": "4096", "high_memory_mb": "2048"}, "exceeds high_memory_mb=2048"),
        ({"python_version": "3.9"}, "valid: 3.10, 3.11, 3.12"),
        ({"maximum_instance_count": "5"}, "outside Flex Consumption's 40-1000"),
        ({"function_timeout_s": "600"}, "outside 1-230 s"),
        ({"management_url": "http://127.0.0.1:1"}, "must be an https:// URL"),
        ({"container": "Bad_Name"}, "is not a Blob container name"),
        ({"resource_group": "a/b"}, "is not a resource group name"),
        ({"max_attempts": "0"}, "max_attempts must be at least 1"),
        ({"warm_hold_ms": "many"}, "warm_hold_ms='many' is not a valid int"),
        ({"install_requirements": "perhaps"}, "is not a valid bool"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigurationError) as failure:
        AzureOptions.parse(options, environ={})
    assert words in one_line(failure.value)


def test_missing_subscription_names_what_to_set(bare_azure: None, tmp_path: Path) -> None:
    from daydream_azure.provider import AzureProvider

    with pytest.raises(ConfigurationError) as failure:
        AzureProvider(ProviderSettings(state_dir=tmp_path))
    assert one_line(failure.value) == (
        "azure: no subscription configured; set AZURE_SUBSCRIPTION_ID (or -o subscription_id=ID)"
    )
    options = {k: v for k, v in ACCOUNT.items() if k != "location"}
    with pytest.raises(ConfigurationError, match="set AZURE_LOCATION"):
        AzureProvider(ProviderSettings(state_dir=tmp_path, options=options))


def test_missing_storage_account_names_what_to_set(bare_azure: None, tmp_path: Path) -> None:
    from daydream_azure.provider import AzureProvider

    options = {k: v for k, v in ACCOUNT.items() if k != "storage_account_url"}
    with pytest.raises(ConfigurationError) as failure:
        AzureProvider(ProviderSettings(state_dir=tmp_path, options=options))
    assert "set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL" in one_line(
        failure.value
    )


def test_missing_credentials_are_found_before_anything_is_created(
    bare_azure: None, tmp_path: Path
) -> None:
    from daydream_azure.provider import AzureProvider

    with pytest.raises(ConfigurationError) as failure:
        AzureProvider(ProviderSettings(state_dir=tmp_path, options=ACCOUNT))
    assert one_line(failure.value).startswith(
        "azure: no credentials found; set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
    )


def test_cli_reports_missing_credentials_in_one_line_exit_2(
    bare_azure: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from daydream_core.cli import main

    for name, value in ACCOUNT.items():
        monkeypatch.setenv(f"DAYDREAM_AZURE_{name.upper()}", value)
    with pytest.raises(SystemExit) as exit_:
        main(["--provider", "azure", "cleanup", "--dry-run"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("daydream: error: azure: no credentials found") and "\n" not in err


def test_cli_reports_missing_subscription_in_one_line_exit_2(
    bare_azure: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from daydream_core.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--provider", "azure", "cleanup", "--dry-run"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "daydream: error: azure: no subscription configured; set AZURE_SUBSCRIPTION_ID "
        "(or -o subscription_id=ID)"
    )


def test_plugin_imports_no_azure_sdk_and_says_what_to_install() -> None:
    """The plugin registers with the Azure SDKs unimportable; creating the provider then says
    what to install."""
    script = """
import sys
for name in ("azure", "azure.identity", "azure.mgmt", "azure.mgmt.web", "azure.storage.blob"):
    sys.modules[name] = None  # importing them now fails
from daydream_core import plugins
from daydream_core.errors import ConfigurationError
from daydream_core.provider import ProviderSettings
import daydream_azure.plugin
spec = plugins.providers()["azure"]
try:
    spec.factory(ProviderSettings(state_dir="."))
except ConfigurationError as exc:
    print(exc)
"""
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "the azure provider needs the Azure SDKs: pip install 'daydream[azure]'"
    )
