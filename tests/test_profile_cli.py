"""`daydream profile path|show|reset`: what was learned, visible and resettable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daydream_core.cli import main
from daydream_core.profile import ProfileStore


def _daydream(args: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        main(args)
    return int(done.value.code or 0)


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    profile = ProfileStore(tmp_path / "learned.sqlite")
    profile.record_executions(
        "ccl", "local", [("spectra", "high", 1000.0), ("spectra", "high", 3000.0)]
    )
    profile.record_inits("ccl", "local", [("low", 500.0)])
    profile.record_phase("ccl:small", "run-a", 0, {"high": 2, "low": 1}, {"high": 1, "low": 1})
    profile.record_executions("exafel", "local", [("index", "low", 10.0)])
    return profile


def test_path_show_and_json(store: ProfileStore, capsys: pytest.CaptureFixture[str]) -> None:
    profile = ["--profile", str(store.path)]
    assert _daydream([*profile, "profile", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(store.path)
    assert _daydream([*profile, "profile", "show", "--app", "ccl", "--json"]) == 0
    learned = json.loads(capsys.readouterr().out)
    (timing,) = learned["timings"]
    assert timing["kind"] == "spectra" and timing["samples"] == 2
    assert timing["mean_s"] == pytest.approx(2.0) and timing["stdev_s"] == pytest.approx(
        1.414, 1e-3
    )
    assert learned["inits"][0]["mean_s"] == pytest.approx(0.5)
    assert learned["workloads"] == [
        {
            "workload": "ccl:small",
            "runs": 1,
            "phases": 1,
            "components": 3,
            "hot_starts_predicted": 2,
        }
    ]
    assert _daydream([*profile, "profile", "show"]) == 0
    out = capsys.readouterr().out
    assert "spectra" in out and "index" in out and "runs: nothing learned yet" in out


def test_reset_one_app_then_all(store: ProfileStore, capsys: pytest.CaptureFixture[str]) -> None:
    profile = ["--profile", str(store.path)]
    assert _daydream([*profile, "profile", "reset", "--app", "ccl", "--yes"]) == 0
    assert "removed 4 row(s)" in capsys.readouterr().out
    assert store.timings("ccl", "local") == {} and store.width_history("ccl:small") == []
    assert store.timings("exafel", "local") != {}
    assert _daydream([*profile, "profile", "reset", "--yes"]) == 0
    assert store.timings("exafel", "local") == {}


def test_reset_asks_first(store: ProfileStore, capsys: pytest.CaptureFixture[str]) -> None:
    # no terminal to answer: the question is refused, nothing is removed, one line, exit 2
    assert _daydream(["--profile", str(store.path), "profile", "reset"]) == 2
    assert "pass --yes to confirm" in capsys.readouterr().err
    assert store.timings("ccl", "local") != {}


def test_show_without_a_store_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.sqlite"
    assert _daydream(["--profile", str(missing), "profile", "show"]) == 0
    assert "nothing learned" in capsys.readouterr().out and not missing.exists()
