"""Width hints: what a workflow says of its next phase, carried to the predictor, the records,
the profile and the simulator; and how the daydream predictor weighs them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from daydream_local.provider import LocalProvider

from daydream_core.cli import main
from daydream_core.engine import Engine
from daydream_core.model import HIGH, Call, WidthHint
from daydream_core.plugins import policies
from daydream_core.policies.predictor import DayDreamPredictor, Observation, Shape, StartCosts
from daydream_core.profile import SCHEMA_VERSION, ProfileStore
from daydream_core.simulator import load_workload
from daydream_core.workflow import Phase, hint_of

COSTS = {HIGH: StartCosts(idle_hot_start=0.0002, cold_start=0.0012)}


def test_a_phase_is_a_list_of_calls_with_a_hint() -> None:
    calls = [Call("a"), Call("b")]
    phase = Phase(calls, WidthHint(expected=3))
    assert phase == calls and len(phase) == 2 and phase[0].kind == "a"
    assert hint_of(phase) == WidthHint(expected=3)
    assert hint_of(calls) is None  # a plain list: a phase without a hint
    assert WidthHint.from_json(WidthHint(2, 5).to_json()) == WidthHint(2, 5)
    assert WidthHint.from_json(None) is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WidthHint(expected=-1), "must be 0 or more"),
        (lambda: WidthHint(at_most=2.5), "must be an integer"),  # type: ignore[arg-type]
        (lambda: WidthHint(expected=True), "must be an integer"),
        (lambda: WidthHint(expected=4, at_most=3), "more than its bound of 3"),
        (lambda: Phase([Call("a")], 3), "must be a WidthHint"),  # type: ignore[arg-type]
    ],
)
def test_bad_hints_are_refused_with_what_is_valid(make: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        make()  # type: ignore[operator]


def _observation(
    history: list[list[int]],
    history_shapes: list[list[Shape]],
    current: list[int],
    shapes: list[Shape],
) -> Observation:
    return Observation(
        history=[[{HIGH: w} for w in run] for run in history],
        current=[{HIGH: w} for w in current],
        next_phase=len(current),
        costs=COSTS,
        shapes=shapes,
        history_shapes=history_shapes,
    )


SCAN, REFINE = frozenset({"scan"}), frozenset({"refine"})


def test_an_exact_hint_with_nothing_to_judge_it_by_is_taken() -> None:
    obs = _observation([], [], [8], [Shape(SCAN, WidthHint(expected=5))])
    assert DayDreamPredictor().predict(obs) == {HIGH: 5}


def test_a_hint_is_weighed_by_how_well_earlier_hints_held() -> None:
    # Earlier, this workflow's hints of 10 came out as 5 and 6: a hint of 10 now means about
    # that much, not 10; the newsvendor quantile (cold starts cost more) takes the upper one.
    history = [[8, 5], [8, 6]]
    said = [[Shape(SCAN, WidthHint(expected=10)), Shape(REFINE)]] * 2
    obs = _observation(history, said, [8], [Shape(SCAN, WidthHint(expected=10))])
    assert DayDreamPredictor().predict(obs) == {HIGH: 6}
    # Carried in proportion: a hint of 20 after the same record.
    obs = _observation(history, said, [8], [Shape(SCAN, WidthHint(expected=20))])
    assert DayDreamPredictor().predict(obs) == {HIGH: 12}


def test_a_bound_truncates_what_was_seen_until_bounded_phases_were_followed() -> None:
    obs = _observation([[4, 9, 30]], [[]], [4], [Shape(SCAN, WidthHint(at_most=6))])
    assert DayDreamPredictor().predict(obs) == {HIGH: 6}  # nothing above the bound
    said = [[Shape(SCAN, WidthHint(at_most=6)), Shape(REFINE)]] * 3
    obs = _observation([[4, 2], [4, 3], [4, 2]], said, [4], [Shape(SCAN, WidthHint(at_most=6))])
    assert DayDreamPredictor().predict(obs) == {HIGH: 3}


def test_phases_of_the_same_kinds_predict_their_followers_without_a_hint() -> None:
    # A refine phase has always been followed by one as wide as it, whatever its position.
    history = [[3, 7, 7, 1], [5, 2, 2, 1, 4, 4]]
    kinds = [SCAN, REFINE, frozenset({"merge"}), frozenset({"end"})]
    shapes = [[Shape(k) for k in kinds], [Shape(k) for k in [SCAN, REFINE, kinds[2], kinds[3]]]]
    shapes[1] += [Shape(REFINE), Shape(kinds[2])]
    obs = _observation(history, shapes, [6, 9], [Shape(SCAN), Shape(REFINE)])
    assert DayDreamPredictor().predict(obs) == {HIGH: 9}


def test_the_profile_keeps_each_phase_shape_beside_its_widths(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "profile.sqlite")
    for run, hints in (("r1", [WidthHint(at_most=4), None]), ("r2", [WidthHint(expected=2)])):
        for phase, hint in enumerate(hints):
            store.record_phase("app:small", run, phase, {HIGH: phase + 1}, {})
            store.record_shape("app:small", run, phase, ["b", "a", "b"], hint)
    store.record_phase("app:small", "r0-before-shapes", 0, {HIGH: 3}, {})
    assert store.width_history("app:small") == [[{HIGH: 1}, {HIGH: 2}], [{HIGH: 1}], [{HIGH: 3}]]
    assert store.shape_history("app:small") == [
        [Shape(frozenset("ab"), WidthHint(at_most=4)), Shape(frozenset("ab"))],
        [Shape(frozenset("ab"), WidthHint(expected=2))],
        [Shape()],  # recorded without its shape: no kinds, no hint
    ]
    assert store.shape_history("app:small", exclude_run="r1")[0][0].hint == WidthHint(expected=2)
    store.reset("app")
    assert store.shape_history("app:small") == []


def test_a_profile_of_the_first_schema_gains_the_shape_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    ProfileStore(path)
    with sqlite3.connect(path) as db:  # as a daydream of schema 1 left it
        db.execute("DROP TABLE phase_shape")
        db.execute("DROP TABLE memory_floor")
        db.execute("DROP TABLE kind_ratio")
        db.execute("ALTER TABLE runs DROP COLUMN started_at")
        db.execute("PRAGMA user_version = 1")
    store = ProfileStore(path)
    assert store.schema_version == SCHEMA_VERSION
    store.record_shape("app:small", "r1", 0, ["a"], WidthHint(expected=1))


@pytest.fixture
def engine(tmp_path: Path, demo_workflows: Path) -> Iterator[Engine]:
    provider = LocalProvider(tmp_path / "state", concurrency=8)
    engine = Engine(provider, ProfileStore(tmp_path / "profile.sqlite"), policies()["daydream"])
    yield engine
    provider.close()
    engine.close()


def test_simulate_replays_the_recorded_widths_kinds_and_hints(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hinted_workflow

    workflow = hinted_workflow.workflow
    out = tmp_path / "records"
    runs = [
        engine.run(
            workflow, preset="small", params=workflow.preset("small").params, seed=3,
            run_index=i, out_dir=out,
        )
        for i in (1, 2)
    ]  # fmt: skip
    recorded = [json.loads((out / f"run-{i}" / "run.json").read_text()) for i in (1, 2)]
    # What the workflow said is in the records, phase by phase.
    hints = [[p["next_width_hint"] for p in run["phases"]] for run in recorded]
    assert hints[0][:3] == [
        {"expected": None, "at_most": 3},
        {"expected": 1, "at_most": None},
        {"expected": runs[0].phases[3].width, "at_most": None},
    ]
    assert hints[0][-1] == {"expected": 0, "at_most": None}  # the run ends there
    # The profile learned them too: the second run's controller saw the first run's shapes.
    shapes = engine.profile.shape_history("hinted:small")
    assert [s.hint for s in shapes[0]] == [WidthHint.from_json(h) for h in hints[0]]

    workload = load_workload(records=out)
    for run, record in zip(workload.runs, recorded, strict=True):
        phases = record["phases"]
        assert run.widths == [p["width"] for p in phases]
        assert [sorted(s.kinds) for s in run.shapes] == [
            sorted({r["kind"] for r in p["invocations"]}) for p in phases
        ]
        assert [run.hint(k) for k in range(len(phases))] == [
            WidthHint.from_json(p["next_width_hint"]) for p in phases
        ]

    with pytest.raises(SystemExit) as done:
        main(["simulate", "--records", str(out), "--json"])
    assert done.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "records" and data["runs"] == 2
    assert {p["policy"] for p in data["policies"]} == set(policies())
    assert [p["predictor"] for p in data["predictors"]] == [
        "daydream", "last-width", "running-median", "same-index-mean", "pooled-quantile",
    ]  # fmt: skip

    with pytest.raises(SystemExit) as done:
        main(["simulate", "--records", str(out), "--policies", "daydream,oracle,cold"])
    assert done.value.code == 0
    table = capsys.readouterr().out
    for row in ("daydream", "oracle", "cold", "newsvendor", "pooled-quantile"):
        assert row in table
