"""Faults injected on the local platform, end to end through the engine: each kind of fault,
what is retried, how it is recorded, and that no output is lost, duplicated or mixed."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from daydream_local.provider import LocalProvider

from daydream_core.backoff import Backoff
from daydream_core.engine import Engine, RunFailed
from daydream_core.errors import FunctionTimeout, InstanceLost
from daydream_core.faults import FaultPlan
from daydream_core.model import HIGH, LOW, InvocationRecord, RunRecord
from daydream_core.plugins import policies
from daydream_core.profile import ProfileStore
from daydream_core.retries import RetryPolicy

PARAMS = {"width": 3, "size": 60, "phases": 2}
Make = Callable[..., Engine]


@pytest.fixture
def make(tmp_path: Path, demo_workflows: Path) -> Iterator[Make]:
    """An engine on a local platform under a fault plan; one profile for all of a test."""
    made: list[tuple[Engine, LocalProvider]] = []

    def build(plan: FaultPlan | None, name: str = "state", **engine: object) -> Engine:
        provider = LocalProvider(tmp_path / name, concurrency=4, faults=plan)
        retries = RetryPolicy(Backoff(max_attempts=4, base_s=0.01, rng=random.Random(0)))
        built = Engine(
            provider,
            ProfileStore(tmp_path / "profile.sqlite"),
            policies()["daydream"],
            retries=retries,
            **engine,  # type: ignore[arg-type]
        )
        made.append((built, provider))
        return built

    yield build
    for engine, provider in made:
        provider.close()
        engine.close()


def _run(engine: Engine, out: Path, index: int = 1, **params: object) -> RunRecord:
    import demo_workflow

    return engine.run(
        demo_workflow.workflow,
        preset="small",
        params={**PARAMS, **params},
        seed=5,
        run_index=index,
        out_dir=out,
    )


def _records(run: RunRecord, probes: bool = False) -> list[InvocationRecord]:
    return [r for p in run.phases for r in [*p.invocations, *(p.probes if probes else [])]]


def _outputs(engine: Engine, run: RunRecord) -> dict[str, np.ndarray]:
    """Every output in the store, by component: it must be exactly one attempt's."""
    store = engine.provider.store()
    found: dict[str, np.ndarray] = {}
    for key in store.list(run.run_id):
        component = key.split("/")[1]
        assert component not in found, f"two attempts of {component} left outputs"
        found[component] = store.get_array(key)
    return found


def test_killed_instances_are_reported_as_killed_and_retried_without_losing_outputs(
    make: Make, tmp_path: Path
) -> None:
    clean_engine = make(None, "clean")
    clean = _run(clean_engine, tmp_path / "clean")
    faulty_engine = make(FaultPlan({"kill": 1.0}, attempts=1))
    faulty = _run(faulty_engine, tmp_path / "faulty")
    assert faulty.error is None and len(faulty.phases) == len(clean.phases)
    for record in _records(faulty):
        assert record.error is None
        assert [(a.attempt, a.fault) for a in record.attempts] == [(1, "lost")]
        assert "killed by SIGKILL" in record.attempts[0].error
        assert "memory" not in record.attempts[0].error
    outputs = _outputs(faulty_engine, faulty)
    reference = _outputs(clean_engine, clean)
    assert outputs.keys() == reference.keys()
    for component, array in outputs.items():
        np.testing.assert_array_equal(array, reference[component])
    keys = faulty_engine.provider.store().list(faulty.run_id)
    assert all("/a2/" in key for key in keys)  # attempt 1's outputs were removed


def test_out_of_memory_on_low_is_retried_on_high_and_the_next_run_places_it_there(
    make: Make, tmp_path: Path
) -> None:
    engine = make(FaultPlan({"oom": 1.0}))  # the demo's one kind needs more than low has
    first = _run(engine, tmp_path / "out", 1)
    assert first.error is None
    # The first phase explores low with a probe (its one wave would wait for low otherwise).
    retried = [r for r in _records(first, probes=True) if r.attempts]
    assert retried, "the first phase explores the low tier"
    for record in retried:
        assert [(a.tier, a.fault) for a in record.attempts] == [(LOW, "memory")]
        assert record.tier == HIGH and record.error is None
    assert engine.profile.memory_floors("demo", "local") == {"solve": 5120}
    # Learned within the run: after the phase that ran out, nothing more goes to low ...
    assert all(r.tier == HIGH and not r.attempts for r in first.phases[-1].invocations)
    # ... and the next run places the kind on high from its first phase.
    second = _run(engine, tmp_path / "out", 2)
    assert second.error is None
    assert all(r.tier == HIGH and not r.attempts for r in _records(second))


def test_a_throttling_storm_is_retried_with_backoff(make: Make, tmp_path: Path) -> None:
    engine = make(FaultPlan({"throttle": 0.5}, seed=2, attempts=2))
    run = _run(engine, tmp_path / "out")
    assert run.error is None
    throttled = [a for r in _records(run) for a in r.attempts]
    assert throttled and all(a.fault == "throttled" for a in throttled)
    assert all(0.0 <= a.wait_s <= 0.02 for a in throttled)  # base 0.01, at most 2 retries
    assert len(_outputs(engine, run)) == len(_records(run))


def test_a_failing_store_is_retried_and_leaves_one_attempts_outputs(
    make: Make, tmp_path: Path
) -> None:
    engine = make(FaultPlan({"store_fail": 1.0}, attempts=1))
    run = _run(engine, tmp_path / "out")
    assert run.error is None
    for record in _records(run):
        assert [a.fault for a in record.attempts] == ["store"]
        assert "StoreUnavailable" in record.attempts[0].error
    assert len(_outputs(engine, run)) == len(_records(run))


def test_a_timeout_is_retried_once_when_the_kind_is_known_to_finish_well_within_it(
    make: Make, tmp_path: Path
) -> None:
    _run(make(None, "learn"), tmp_path / "learn", phases=1)  # both tiers' times learned
    engine = make(FaultPlan({"timeout": 1.0}, attempts=1, hang_s=60), timeout_s=3.0)
    run = _run(engine, tmp_path / "out", phases=1)
    assert run.error is None
    for record in _records(run):
        assert [a.fault for a in record.attempts] == ["timeout"]
    assert len(_outputs(engine, run)) == len(_records(run))


def test_a_timeout_with_nothing_learned_is_not_retried(make: Make, tmp_path: Path) -> None:
    engine = make(FaultPlan({"timeout": 1.0}, hang_s=60), timeout_s=2.0)
    with pytest.raises(RunFailed) as failed:
        _run(engine, tmp_path / "out", phases=1)
    assert isinstance(failed.value.cause, FunctionTimeout)
    assert all(not r.attempts for r in _records(failed.value.run))  # type: ignore[arg-type]


def test_retries_are_bounded(make: Make, tmp_path: Path) -> None:
    engine = make(FaultPlan({"kill": 1.0}))  # every attempt is killed
    with pytest.raises(RunFailed) as failed:
        _run(engine, tmp_path / "out", phases=1)
    assert isinstance(failed.value.cause, InstanceLost)
    record = failed.value.record
    assert [a.attempt for a in record.attempts] == [1, 2, 3]  # and the 4th is the record's own
    assert record.error is not None and "killed by SIGKILL" in record.error
    assert engine.provider.store().list(failed.value.run.run_id) == []  # type: ignore[union-attr]


def _daydream(tmp_path: Path, faults: str) -> subprocess.CompletedProcess[str]:
    workflows = Path(__file__).parent / "workflows"
    env = {**os.environ, "DAYDREAM_FAULTS": faults}
    argv = ["run", "demo", "--out", str(tmp_path / "out"), "-p", "phases=1", "-p", "width=2"]
    return subprocess.run(
        [sys.executable, str(workflows / "drive_cli.py"), "--concurrency", "2", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_command_says_when_faults_are_on(demo_workflows: Path, tmp_path: Path) -> None:
    done = _daydream(tmp_path, "seed=1,kill=1,attempts=1")
    assert done.returncode == 0, done.stderr
    warning = "daydream: warning: fault injection is on (DAYDREAM_FAULTS=seed=1,kill=1.0,"
    assert done.stderr.startswith(warning) and "for tests only" in done.stderr
    record = json.loads((tmp_path / "out" / "run-1" / "run.json").read_text())
    invocations = record["phases"][0]["invocations"]
    assert [a["fault"] for i in invocations for a in i["attempts"]] == ["lost", "lost"]


def test_a_bad_fault_spec_is_one_line_and_exit_status_2(
    demo_workflows: Path, tmp_path: Path
) -> None:
    done = _daydream(tmp_path, "kill=2")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "daydream: error: DAYDREAM_FAULTS: kill='2' must be a fraction in [0, 1]"
    ]
    assert not (tmp_path / "out" / "run-1").exists()
