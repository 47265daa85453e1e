"""gcp options, tiers, prices and configuration errors: one line, exit 2, nothing created."""

from __future__ import annotations

from pathlib import Path

import pytest
from daydream_gcp.options import TIER1_PRICES, TIER2_PRICES, GcpOptions, available_cpu

from daydream_core.cli import main
from daydream_core.errors import ConfigurationError


def test_defaults_are_8_gib_2_vcpu_high_and_4_gib_1_vcpu_low() -> None:
    tiers = GcpOptions.parse({}, environ={"GOOGLE_CLOUD_PROJECT": "my-project"}).tiers()
    assert (tiers["high"].memory_mb, tiers["high"].vcpus) == (8192, 2.0)
    assert (tiers["low"].memory_mb, tiers["low"].vcpus) == (4096, 1.0)


def test_project_and_region_come_from_the_standard_variables() -> None:
    environ = {"GCLOUD_PROJECT": "from-gcloud", "CLOUDSDK_FUNCTIONS_REGION": "europe-west4"}
    options = GcpOptions.parse({}, environ=environ)
    assert (options.project, options.region) == ("from-gcloud", "europe-west4")
    assert GcpOptions.parse({"project": "given-here"}, environ=environ).project == "given-here"
    assert GcpOptions.parse({}, environ={}).region == "us-central1"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"high_memory_mb": "16384"}, "2 vCPU takes 128-8192 MiB"),
        ({"high_cpu": "3"}, "valid: 0.08-0.999, or 1, 2, 4, 6 or 8 vCPU"),
        ({"low_cpu": "0.5", "low_memory_mb": "2048"}, "needs at least 1 vCPU"),
        ({"low_memory_mb": "64"}, "outside Cloud Functions' 128-32768 MiB"),
        ({"high_cpu": "4", "high_memory_mb": "1024"}, "4 vCPU takes 2048-16384 MiB"),
        ({"low_memory_mb": "16384", "low_cpu": "4"}, "larger than the high tier"),
        ({"python_runtime": "python27"}, "valid: python310"),
        ({"function_timeout_s": "4000"}, "outside 1-3600 s"),
        ({"nonsense": "1"}, "unknown gcp option 'nonsense'; valid options: project"),
        ({"max_attempts": "many"}, "max_attempts='many' is not a valid int"),
    ],
)
def test_bad_options_name_what_is_valid(options: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words.replace("(", r"\(").replace("+", r"\+")):
        GcpOptions.parse(options, environ={})


def test_accepted_combinations() -> None:
    for memory, cpu in [(128, 0.083), (512, 0.333), (1024, 0.583), (2048, 1), (32768, 8)]:
        options = {"low_memory_mb": str(memory), "low_cpu": str(cpu)}
        options.update(high_memory_mb="32768", high_cpu="8")
        GcpOptions.parse(options, environ={})
    assert available_cpu(2.0) == "2" and available_cpu(0.583) == "0.583"


def test_prices_bill_vcpu_and_gib_seconds_in_100_ms_steps_with_init() -> None:
    prices = GcpOptions.parse({}, environ={}).prices()
    assert prices is TIER1_PRICES and prices.source and "2025" in prices.source
    assert prices.billed_ms(260.0) == 300.0 and prices.init_billed
    one_second = 2 * 0.000024 + 8 * 0.0000025 + 0.40e-6
    assert prices.cost(8192, 1000.0, vcpus=2.0) == pytest.approx(one_second)
    assert prices.cost(8192, 901.0, init_ms=0.0, vcpus=2.0) == pytest.approx(one_second)
    assert GcpOptions.parse({"region": "southamerica-east1"}, environ={}).prices() is TIER2_PRICES


def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere, and no probe of a metadata server off this machine."""
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CLOUDSDK_CORE_PROJECT", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("DAYDREAM_PROFILE", str(tmp_path / "profile.sqlite"))


def test_missing_credentials_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _isolated(monkeypatch, tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["--provider", "gcp", "-o", "project=my-project", "cleanup", "--dry-run"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GOOGLE_APPLICATION_CREDENTIALS" in err[0], err


def test_missing_project_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _isolated(monkeypatch, tmp_path)
    key = tmp_path / "key.json"  # an authorized-user ADC file names no project
    key.write_text(
        '{"type": "authorized_user", "client_id": "x", "client_secret": "y", "refresh_token": "z"}'
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    with pytest.raises(SystemExit) as done:
        main(["--provider", "gcp", "cleanup", "--dry-run"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GOOGLE_CLOUD_PROJECT" in err[0], err
