"""Learned timings: tier ratios from probes against their originals, levels from the bulk."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from daydream_core.model import HIGH, LOW
from daydream_core.policies.learned import fold_pairs, learned_timings
from daydream_core.profile import _MIGRATIONS, SCHEMA_VERSION, ProfileStore, fold_moments
from daydream_core.simulator.executor import Learned


def test_a_probe_of_a_short_component_does_not_make_a_slower_tier_look_faster() -> None:
    # Uneven components (WfCommons-like): the probe duplicated the 1 s one, 1.5x as slow on
    # low. Its raw time (1.5 s) against high's mean (7.75 s) would call low 5x as fast.
    learned = Learned()
    for seconds in (1.0, 10.0, 10.0, 10.0):
        learned.add("k", HIGH, seconds)
    learned.pair("k", LOW, HIGH, 1.5 / 1.0)
    assert learned.timings()["k"][LOW] == pytest.approx(7.75 * 1.5)


def test_a_zero_second_original_teaches_no_ratio() -> None:
    learned = Learned()
    learned.add("k", HIGH, 0.0)
    learned.pair("k", LOW, HIGH, math.inf)
    learned.pair("k", LOW, HIGH, 0.0)
    assert learned.timings() == {"k": {HIGH: 0.0}}


def test_the_paired_tier_follows_its_kinds_level_as_it_drifts() -> None:
    # A kind's components grow over the runs; low, probed once early, moves with high's mean
    # instead of keeping its early time (what made placement swing between the tiers).
    means = {("k", HIGH): (40, 3.0)}
    pairs = {("k", LOW, HIGH): (2, math.log(1.2))}
    assert learned_timings(means, pairs)["k"][LOW] == pytest.approx(3.6)
    assert learned_timings({("k", HIGH): (40, 6.0)}, pairs)["k"][LOW] == pytest.approx(7.2)


def test_the_level_is_the_best_sampled_tier_and_ratios_work_both_ways() -> None:
    # The bulk moved to low (most samples there); the ratio learned against high still holds,
    # and high follows low's level instead of keeping its early mean (exafel's `simulate`:
    # high's 2 early samples, 3.0 s, against low's mean drifting up, sent phases high).
    means = {("k", HIGH): (2, 3.0), ("k", LOW): (30, 6.0)}
    pairs = {("k", LOW, HIGH): (2, math.log(1.5))}
    assert learned_timings(means, pairs)["k"] == pytest.approx({HIGH: 4.0, LOW: 6.0})
    # Pairs of both directions count by their numbers.
    both = {**pairs, ("k", HIGH, LOW): (2, math.log(1 / 2.0))}
    assert learned_timings(means, both)["k"][HIGH] == pytest.approx(6.0 / math.sqrt(3.0))
    only_low = {("k", LOW): (30, 6.0)}
    assert learned_timings(only_low, pairs)["k"][HIGH] == pytest.approx(4.0)
    # Without pairs, a tier's own mean, as before.
    assert learned_timings(means, {})["k"] == {HIGH: 3.0, LOW: 6.0}


def test_pairs_fold_as_log_ratios_and_skip_what_is_no_ratio() -> None:
    folded = fold_pairs([("k", LOW, HIGH, 2.0), ("k", LOW, HIGH, 0.5), ("k", LOW, HIGH, 0.0)])
    n, mean, _ = folded[("k", LOW, HIGH)]
    assert n == 2 and mean == pytest.approx(0.0)  # the geometric mean of 2 and 1/2
    assert fold_pairs([("k", HIGH, HIGH, 2.0), ("k", LOW, HIGH, math.inf)]) == {}


def test_the_profile_keeps_pairs_across_processes_and_forgets_them_on_reset(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.sqlite"
    store = ProfileStore(path)
    timings = store.learn_phase(
        "app", "local", [("k", HIGH, 2000.0)] * 3, [], pairs=[("k", LOW, HIGH, 1.5)]
    )
    assert timings["k"] == pytest.approx({HIGH: 2.0, LOW: 3.0})
    store.record_pairs("app", "local", [("k", LOW, HIGH, 1.5)])
    reopened = ProfileStore(path)
    assert reopened.ratios("app", "local")[("k", LOW, HIGH)][0] == 2
    assert reopened.timings("app", "local")["k"] == pytest.approx({HIGH: 2.0, LOW: 3.0})
    assert reopened.timings("other", "local") == {}
    reopened.reset("app")
    assert reopened.ratios("app", "local") == {} and reopened.timings("app", "local") == {}


def test_a_profile_of_the_schema_before_pairs_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        for version in range(1, 4):
            db.executescript(_MIGRATIONS[version])
        db.execute("INSERT INTO kind_timing VALUES ('app', 'local', 'k', 'high', 2, 1000, 0)")
        db.execute("PRAGMA user_version = 3")
    store = ProfileStore(path)
    assert store.schema_version == SCHEMA_VERSION == 5
    assert store.timings("app", "local") == {"k": {HIGH: 1.0}}
    store.record_pairs("app", "local", [("k", LOW, HIGH, 2.0)])
    assert store.timings("app", "local")["k"][LOW] == pytest.approx(2.0)


def test_the_run_learning_folds_pairs_as_the_store_does(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from daydream_core.learning import RunLearning
    from daydream_core.profile import PhaseWidths

    store = ProfileStore(tmp_path / "p.sqlite")
    with ThreadPoolExecutor(1) as executor:
        learning = RunLearning(store, "app", "local", executor)
        widths = PhaseWidths("app:small", "r1", 0, {HIGH: 3, LOW: 0}, {})
        executions = [("k", HIGH, v) for v in (1000.0, 2000.0, 3000.0)]
        mine = learning.learn(executions, [], widths, [("k", LOW, HIGH, 1.5)])
        learning.learn_probes([("k", LOW, HIGH, 1.5)])
        learning.wait()
        assert mine["k"] == pytest.approx({HIGH: 2.0, LOW: 3.0})
        stored = store.timings("app", "local")
        assert learning.timings()["k"] == pytest.approx(stored["k"])
        assert store.ratios("app", "local")[("k", LOW, HIGH)][0] == 2
    assert fold_moments(executions)[("k", HIGH)][0] == 3


def test_a_running_phases_lessons_are_news_once_and_leave_the_run_as_it_was(
    tmp_path: Path,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from daydream_core.learning import RunLearning
    from daydream_core.lessons import PhaseLessons
    from daydream_core.model import InvocationRecord, StartKind

    def record(component: str, tier: str, ms: float) -> InvocationRecord:
        return InvocationRecord(component, "k", 0, tier, "i", StartKind.WARM, 0.0, ms, ms, 0.0, ms)

    with ThreadPoolExecutor(1) as executor:
        learning = RunLearning(ProfileStore(tmp_path / "p.sqlite"), "app", "local", executor)
        lessons = PhaseLessons(learning, {"k": {HIGH: 2.0}}, set())
        assert not lessons.sample(record("p1-c1", HIGH, 2000.0))  # high was known
        probe = record("p1-c2-probe", LOW, 1000.0)
        assert not lessons.probe(probe, None)  # its original still runs: not taken yet
        assert lessons.sample(record("p1-c2", HIGH, 2000.0)) is False
        assert lessons.probe(probe, record("p1-c2", HIGH, 2000.0))  # the first ratio
        assert not lessons.probe(probe, record("p1-c2", HIGH, 2000.0))  # taken once
        timings, paired = lessons.now()
        assert timings["k"][LOW] == pytest.approx(0.5 * timings["k"][HIGH])
        assert paired == {("k", HIGH), ("k", LOW)}
        assert learning.timings() == {} and learning.paired() == set()  # only at its end
