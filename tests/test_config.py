"""daydream.toml: user and project files, DAYDREAM_* variables and the command line, in that
order of strength, every value checked with the command line's own types."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from daydream_core.cli import Options, cli, main


def _daydream(args: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        main(args)
    return int(done.value.code or 0)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with a repository root above the working directory."""
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    work = root / "analysis" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return root


def _settings(capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[object, str]]:
    assert _daydream(["config", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    return {s["key"]: (s["value"], s["source"]) for s in data["settings"]}


def test_layers_weakest_first(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user = tmp_path / "user.toml"
    user.write_text('concurrency = 4\n[run]\npolicy = "cold"\ntimeout = 60\n')
    monkeypatch.setenv("DAYDREAM_CONFIG", str(user))
    (project / "daydream.toml").write_text("[run]\ntimeout = 120\n")
    monkeypatch.setenv("DAYDREAM_RUN_POLICY", "all-high")
    settings = _settings(capsys)
    assert settings["concurrency"] == (4, str(user))
    assert settings["run.timeout"] == (120.0, str(project / "daydream.toml"))
    assert settings["run.policy"] == ("all-high", "$DAYDREAM_RUN_POLICY")
    assert settings["run.preset"] == ("small", "default")


def test_provider_options_merge_key_by_key(project: Path) -> None:
    (project / "daydream.toml").write_text(
        "[providers.local]\nkeep_alive_s = 30\nhigh_memory_mb = 4096\n"
        "[providers.aws]\nregion = 'eu-west-1'\n"
    )
    seen: list[Options] = []

    @cli.command(name="probe-options")
    @click.pass_obj
    def probe(options: Options) -> None:
        seen.append(options)

    try:
        assert _daydream(["-o", "keep_alive_s=5", "probe-options"]) == 0
    finally:
        cli.commands.pop("probe-options")
    # the file's options for the provider in use, with -o laid over them; none of aws's
    assert seen[0].provider_options == {"keep_alive_s": "5", "high_memory_mb": "4096"}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("concurency = 3\n", ["unknown key 'concurency'", "valid:", "concurrency"]),
        ("[run]\npolcy = 'cold'\n", ["unknown key 'run.polcy'", "policy"]),
        ("concurrency = 0\n", ["concurrency = 0", ">=1"]),
        ("[run]\ntimeout = [1]\n", ["run.timeout must be a single value"]),
        ("provider = \n", ["not valid TOML"]),
        ("[providers]\nlocal = 3\n", ["[providers.NAME] tables"]),
    ],
)
def test_a_bad_file_is_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], content: str, words: list[str]
) -> None:
    (project / "daydream.toml").write_text(content)
    assert _daydream(["apps"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(project / "daydream.toml") in err
    assert all(w in err for w in words), err


def test_the_search_stops_at_the_repository_root(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.parent / "daydream.toml").write_text("concurrency = 9\n")  # outside the repository
    assert _settings(capsys)["concurrency"][1] == "default"
    assert _daydream(["config", "path"]) == 0
    assert "project: (none found" in capsys.readouterr().out


@pytest.fixture(autouse=True)
def _no_stray_commands() -> Iterator[None]:
    before = set(cli.commands)
    yield
    assert set(cli.commands) == before
