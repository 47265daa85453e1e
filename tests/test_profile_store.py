"""The profile store: learning across runs and processes, versioned, safe under concurrency."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import sqlite3
from pathlib import Path

import pytest

from daydream_core.errors import ConfigurationError
from daydream_core.model import HIGH, LOW, RunRecord
from daydream_core.profile import SCHEMA_VERSION, ProfileStore, default_path


def test_means_are_learned_per_kind_and_tier(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "p.sqlite")
    store.record_executions("app", "local", [("k", HIGH, 100.0), ("k", HIGH, 300.0)])
    store.record_executions("app", "local", [("k", LOW, 500.0)])
    store.record_executions("other", "local", [("k", HIGH, 9000.0)])
    assert store.timings("app", "local") == {"k": {HIGH: 0.2, LOW: 0.5}}
    store.record_inits("app", "local", [(HIGH, 1000.0), (HIGH, 2000.0)])
    assert store.init_ms("app", "local") == {HIGH: 1500.0}


def test_learning_survives_reopening(tmp_path: Path) -> None:
    ProfileStore(tmp_path / "p.sqlite").record_executions("a", "local", [("k", HIGH, 40.0)])
    assert ProfileStore(tmp_path / "p.sqlite").timings("a", "local") == {"k": {HIGH: 0.04}}


def test_width_history_is_grouped_by_run_and_ordered_by_phase(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "p.sqlite")
    for run, widths in (("r1", [3, 5]), ("r2", [4, 6, 8])):
        for phase, width in enumerate(widths):
            store.record_phase("app:small", run, phase, {HIGH: width, LOW: 1}, {HIGH: 0})
    store.record_phase("app:paper", "r3", 0, {HIGH: 99}, {})
    history = store.width_history("app:small")
    assert history == [
        [{HIGH: 3, LOW: 1}, {HIGH: 5, LOW: 1}],
        [{HIGH: 4, LOW: 1}, {HIGH: 6, LOW: 1}, {HIGH: 8, LOW: 1}],
    ]
    assert store.width_history("app:small", exclude_run="r2") == history[:1]


def test_runs_are_summarised(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "p.sqlite")
    store.record_run(RunRecord("r1", 1, "app", "local", "daydream", "small", 0))
    assert store.run_count() == 1
    assert store.run_count("app") == 1
    assert store.run_count("other") == 0


def test_schema_is_versioned_and_newer_schemas_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    assert ProfileStore(path).schema_version == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigurationError, match="newer"):
        ProfileStore(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    path.write_text("not a database" * 100)
    with pytest.raises(ConfigurationError, match="unusable"):
        ProfileStore(path)


def test_location_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAYDREAM_PROFILE", str(tmp_path / "x.sqlite"))
    assert default_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("DAYDREAM_PROFILE")
    assert default_path().name == "profile.sqlite"


def _hammer(path: str, worker: int) -> None:
    store = ProfileStore(path)
    for i in range(25):
        store.record_executions("app", "local", [("k", HIGH, float(worker * 100 + i))])
        store.record_phase("app:small", f"w{worker}", i, {HIGH: i}, {})


def test_concurrent_processes_lose_no_update(tmp_path: Path) -> None:
    path = str(tmp_path / "p.sqlite")
    ProfileStore(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(path, w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    with sqlite3.connect(path) as db:
        (n,) = db.execute("SELECT n FROM kind_timing").fetchone()
        (rows,) = db.execute("SELECT COUNT(*) FROM phase_width").fetchone()
        (check,) = db.execute("PRAGMA integrity_check").fetchone()
    assert n == 100
    assert rows == 100
    assert check == "ok"
    expected_mean = sum(w * 100 + i for w in range(4) for i in range(25)) / 100
    assert ProfileStore(path).timings("app", "local")["k"][HIGH] == pytest.approx(
        expected_mean / 1000
    )


def _open_together(path: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait(timeout=30)
    try:
        ProfileStore(path)
    except ConfigurationError:
        raise SystemExit(1) from None


def test_runs_started_together_on_a_new_profile_all_open_it(tmp_path: Path) -> None:
    # Fresh processes each trial, opening a store nobody created yet: the race is in the
    # first open's switch to WAL, so long-lived workers (already past it) would not show it.
    context = multiprocessing.get_context("fork")
    for trial in range(20):
        path = str(tmp_path / f"p{trial}.sqlite")
        barrier = context.Barrier(3)
        workers = [context.Process(target=_open_together, args=(path, barrier)) for _ in range(3)]
        for process in workers:
            process.start()
        for process in workers:
            process.join(timeout=60)
        assert [process.exitcode for process in workers] == [0, 0, 0], f"trial {trial}"


def test_runs_spans_are_those_of_the_workload_oldest_first(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "p.sqlite")
    for run_id, workload, started in (("r1", "app:small", 100.0), ("r2", "app:paper", 150.0),
                                      ("r3", "app:small", 200.0)):  # fmt: skip
        store.record_phase(workload, run_id, 0, {HIGH: 1}, {})
        run = RunRecord(run_id, 1, "app", "local", "daydream", "small", 0, started_at=started)
        store.record_run(run)
    spans = store.run_spans("app:small")
    assert [start for start, _ in spans] == [100.0, 200.0]
    assert all(end >= start for start, end in spans)  # ended when recorded
    assert [s for s, _ in store.run_spans("app:small", exclude_run="r3")] == [100.0]


def test_runs_recorded_before_their_starts_were_have_them_estimated(tmp_path: Path) -> None:
    from daydream_core.profile import _MIGRATIONS

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        for version in range(1, 5):
            db.executescript(_MIGRATIONS[version])
        db.execute("INSERT INTO phase_width VALUES ('app:small', 'r1', 0, 'high', 1, 0)")
        db.execute(
            "INSERT INTO runs VALUES ('r1', 'app', 'local', 'daydream', 'small', 0, "
            "1000.0, 30.0, 0.0, 0, 1, 0, NULL)"
        )
        db.execute("PRAGMA user_version = 4")
    store = ProfileStore(path)
    assert store.schema_version == SCHEMA_VERSION
    assert store.run_spans("app:small") == [(970.0, 1000.0)]  # its start: end - execution
