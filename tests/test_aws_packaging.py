"""Packaging a runtime environment: a deterministic layer zip, Lambda's size limits, the
requirements pip-installed for Lambda's platform (pip itself is stubbed here: no network)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from daydream_aws import packaging
from daydream_aws.packaging import Bundle, build_layer, choose_package
from daydream_conformance.workflow import workflow

from daydream_core.errors import ProviderError
from daydream_core.model import Tier

MB = 1024 * 1024


def layer(tmp_path: Path, **kwargs: Any) -> Bundle:
    options: dict[str, Any] = {
        "architecture": "x86_64",
        "python_runtime": "python3.12",
        "install": False,
        "cache_dir": tmp_path,
    }
    options.update(kwargs)
    return build_layer(workflow.runtime, **options)


def test_layer_holds_core_handler_and_workflow_under_python(tmp_path: Path) -> None:
    bundle = layer(tmp_path)
    names = zipfile.ZipFile(bundle.path).namelist()
    for expected in (
        "python/daydream_core/runtime.py",
        "python/daydream_aws/handler.py",
        "python/daydream_conformance/workflow.py",
    ):
        assert expected in names
    assert all(n.startswith("python/") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert bundle.unzipped_bytes > bundle.zipped_bytes > 0


def test_layer_zip_is_deterministic(tmp_path: Path) -> None:
    first = layer(tmp_path / "a")
    second = layer(tmp_path / "b")
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()


def test_function_zip_is_a_manifest(tmp_path: Path) -> None:
    tier = Tier("low", 5120, 2.98)
    data = packaging.function_zip(workflow.runtime, tier)
    assert data == packaging.function_zip(workflow.runtime, tier)
    (tmp_path / "f.zip").write_bytes(data)
    assert zipfile.ZipFile(tmp_path / "f.zip").namelist() == ["daydream-function.json"]


@pytest.mark.parametrize(
    ("zipped", "unzipped", "image", "expected"),
    [
        (10 * MB, 40 * MB, None, "layer"),
        (50 * MB + 1, 200 * MB, None, "layer-via-s3"),
        (60 * MB, 250 * MB + 1, None, "image"),
        (1 * MB, 2 * MB, "repo/image:tag", "image"),
    ],
)
def test_package_follows_lambdas_limits(
    zipped: int, unzipped: int, image: str | None, expected: str
) -> None:
    bundle = Bundle(Path("x.zip"), "0" * 64, zipped, unzipped)
    assert choose_package(bundle, image) == expected


def test_requirements_are_installed_for_lambdas_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def fake_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        target = Path(command[command.index("--target") + 1])
        (target / "numpy").mkdir(parents=True)
        (target / "numpy" / "__init__.py").write_text("# a wheel for Lambda\n")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(packaging.subprocess, "run", fake_pip)
    bundle = layer(tmp_path, install=True, architecture="arm64", python_runtime="python3.11")
    assert "python/numpy/__init__.py" in zipfile.ZipFile(bundle.path).namelist()
    (command,) = commands
    assert command[command.index("--python-version") + 1] == "3.11"
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms == ["manylinux_2_28_aarch64", "manylinux2014_aarch64"]
    assert "--only-binary=:all:" in command and "numpy>=1.24" in command
    layer(tmp_path, install=True, architecture="arm64", python_runtime="python3.11")
    assert len(commands) == 1, "installed requirements are cached"


def test_a_failed_install_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(packaging.subprocess, "run", failing_pip)
    with pytest.raises(ProviderError, match="No matching distribution"):
        layer(tmp_path, install=True)
