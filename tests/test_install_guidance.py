"""A workflow or provider whose extra is not installed: one line naming the extra, exit 2,
and `apps` / `providers` show it as not installed. Run in a fresh interpreter where the
science stack and boto3 cannot be imported, as after ``pip install daydream``."""

from __future__ import annotations

import subprocess
import sys

from daydream_core.requirements import install_hint, missing_modules

HIDDEN = ("pyccl", "camb", "cctbx", "healpy", "boto3")


def _core_only(*args: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import sys\n"
        f"for name in {HIDDEN!r}: sys.modules[name] = None  # import fails, as if absent\n"
        "from daydream_core.cli import main\n"
        f"main({list(args)!r})\n"
    )
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_running_an_app_without_its_extra_is_one_line() -> None:
    done = _core_only("run", "ccl")
    assert done.returncode == 2
    assert done.stderr == (
        "daydream: error: app 'ccl' needs pyccl, camb (not installed): "
        "pip install 'daydream[apps]'\n"
    )


def test_a_provider_without_its_sdk_is_one_line() -> None:
    done = _core_only("--provider", "aws", "cleanup", "--dry-run")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "provider 'aws' needs boto3 (not installed): pip install 'daydream[aws]'" in done.stderr


def test_listings_show_what_is_not_installed() -> None:
    apps = _core_only("apps")
    assert apps.returncode == 0, apps.stderr
    rows = {line.split()[1]: line for line in apps.stdout.splitlines() if line.startswith("│ ")}
    assert "not installed" in rows["ccl"] and "not installed" in rows["exafel"]
    assert "not installed" not in rows["trace"]  # the replay needs nothing beyond the core
    providers = _core_only("providers")
    assert providers.returncode == 0, providers.stderr
    lines = {line.split()[1]: line for line in providers.stdout.splitlines() if "│ " in line}
    assert "no:" in lines["aws"] and "yes" in lines["local"]


def test_missing_modules_imports_nothing() -> None:
    assert missing_modules(["json", "no_such_module_here", "no_such_pkg.sub"]) == [
        "no_such_module_here",
        "no_such_pkg.sub",
    ]
    assert install_hint("app 'x'", ["a"], None) == "app 'x' needs a (not installed): pip install a"
