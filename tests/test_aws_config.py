"""Configuration: options, and missing credentials, region or role as one-line errors raised
before anything is created. Nothing here reaches beyond 127.0.0.1 (instance metadata is off)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from daydream_aws.options import AwsOptions, vcpus
from daydream_aws.testing import LambdaFake, fake_provider
from daydream_conformance.workflow import workflow

from daydream_core.errors import ConfigurationError
from daydream_core.pricing import AWS_LAMBDA_ARM, AWS_LAMBDA_X86
from daydream_core.provider import ProviderSettings

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
)


@pytest.fixture
def bare_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials, no region, no config files, no instance metadata."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("DAYDREAM_AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def fake() -> Iterator[LambdaFake]:
    with LambdaFake() as lambda_fake:
        yield lambda_fake


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


# -- options ---------------------------------------------------------------------------------


def test_defaults_are_the_paper_tiers_on_x86() -> None:
    options = AwsOptions.parse({}, {})
    tiers = options.tiers()
    assert (tiers["high"].memory_mb, tiers["low"].memory_mb) == (10240, 5120)
    assert tiers["high"].vcpus == 6.0 and 2.5 < tiers["low"].vcpus < 3.0
    assert options.prices() is AWS_LAMBDA_X86


def test_options_and_environment_variables() -> None:
    environ = {"DAYDREAM_AWS_LOW_MEMORY_MB": "2048", "DAYDREAM_AWS_ARCHITECTURE": "x86_64"}
    options = AwsOptions.parse({"architecture": "arm64", "high_memory_mb": "3008"}, environ)
    assert options.low_memory_mb == 2048
    assert options.high_memory_mb == 3008
    assert options.prices() is AWS_LAMBDA_ARM  # the option beats the variable


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"high_memory_mb": "10241"}, "outside Lambda's 128-10240 MB"),
        ({"low_memory_mb": "127"}, "outside Lambda's 128-10240 MB"),
        ({"low_memory_mb": "big"}, "not a valid int"),
        ({"high_memory_mb": "1024", "low_memory_mb": "2048"}, "exceeds"),
        ({"architecture": "sparc"}, "valid: x86_64, arm64"),
        ({"python_runtime": "python2.7"}, "valid: python3.10"),
        ({"function_timeout_s": "901"}, "outside 1-900"),
        ({"bucket": "Not_A_Bucket"}, "not a bucket name"),
        ({"install_requirements": "perhaps"}, "not a valid bool"),
        ({"memory": "1024"}, "unknown aws option 'memory'"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        AwsOptions.parse(options, {})
    assert words in one_line(error.value)


def test_vcpus_grow_with_memory_up_to_six() -> None:
    assert vcpus(1769) == 1.0
    assert vcpus(128) == pytest.approx(128 / 1769, abs=0.01)
    assert vcpus(128) < vcpus(3008) < vcpus(5120) < vcpus(10240) == 6.0


# -- credentials, region, role ---------------------------------------------------------------


def test_missing_credentials(
    bare_aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from daydream_aws.provider import AwsProvider

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with pytest.raises(ConfigurationError, match="no credentials found") as error:
        AwsProvider(ProviderSettings(state_dir=tmp_path))
    one_line(error.value)


def test_missing_region(bare_aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from daydream_aws.provider import AwsProvider

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(ConfigurationError, match="no region configured") as error:
        AwsProvider(ProviderSettings(state_dir=tmp_path))
    one_line(error.value)


def test_unknown_profile(bare_aws: None, tmp_path: Path) -> None:
    from daydream_aws.provider import AwsProvider

    with pytest.raises(ConfigurationError, match="nosuchprofile"):
        AwsProvider(ProviderSettings(state_dir=tmp_path, options={"profile": "nosuchprofile"}))


def test_missing_role_fails_before_anything_is_created(fake: LambdaFake, tmp_path: Path) -> None:
    options = {k: v for k, v in fake.options().items() if k != "role"}
    from daydream_aws.provider import AwsProvider

    provider = AwsProvider(ProviderSettings(state_dir=tmp_path, options=options))
    with pytest.raises(ConfigurationError, match="no execution role") as error:
        provider.deploy(workflow.runtime, provider.tiers()["low"])
    one_line(error.value)
    assert fake.leftovers() == []


def test_role_that_does_not_exist(fake: LambdaFake, tmp_path: Path) -> None:
    provider = fake_provider(fake, tmp_path, role="nobody")
    with pytest.raises(ConfigurationError, match="role/nobody does not exist"):
        provider.deploy(workflow.runtime, provider.tiers()["low"])
    assert fake.leftovers() == []


def test_role_by_name_resolves_to_the_account(fake: LambdaFake, tmp_path: Path) -> None:
    provider = fake_provider(fake, tmp_path, role=fake.role_arn.rsplit("/", 1)[-1])
    function = provider.deploy(workflow.runtime, provider.tiers()["low"])
    import boto3

    role = boto3.client("lambda").get_function(FunctionName=function.name)["Configuration"]["Role"]
    assert role == fake.role_arn


def test_cli_reports_missing_credentials_in_one_line(
    bare_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from daydream_core.cli import main

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with pytest.raises(SystemExit) as exit_:
        main(["--provider", "aws", "cleanup", "--dry-run"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("daydream: error: aws: no credentials found") and "\n" not in err


def test_plugin_and_handler_import_without_boto3() -> None:
    """The plugin registers, and the function-side handler loads, with boto3 unimportable;
    creating the provider then says what to install."""
    script = """
import sys
sys.modules["boto3"] = None  # import boto3 now fails
from daydream_core import plugins
from daydream_core.errors import ConfigurationError
from daydream_core.provider import ProviderSettings
import daydream_aws.plugin, daydream_aws.handler
assert "boto3" not in [m for m in sys.modules if sys.modules[m] is not None]
spec = plugins.providers()["aws"]
try:
    spec.create(ProviderSettings(state_dir="."))
except ConfigurationError as exc:
    print(exc)
"""
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "provider 'aws' needs boto3 (not installed): pip install 'daydream[aws]'"
    )
