"""The `exafel` workflow: the science of each component, and the phase generator by hand.

cctbx must be imported before scipy's C++ extensions in a process (see
`daydream_exafel.cctbx_first`), and other tests in this session import scipy. So everything
that touches cctbx runs in one spawned worker process that imports cctbx first; this module
itself never imports cctbx.
"""

from __future__ import annotations

import importlib
import json
import math
import multiprocessing
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from daydream_core.apps import AppSpec
from daydream_core.workflow import Workflow

# Small enough to be quick: a 30x36x42 A cell to 3 A on a 256-pixel detector.
TEST_PARAMS: dict[str, Any] = {
    "unit_cell": [30.0, 36.0, 42.0, 90.0, 90.0, 90.0],
    "space_group": "P 21 21 21",
    "d_min": 3.0,
    "geometry": {"wavelength": 1.3, "distance_mm": 82.0, "pixel_mm": 0.3, "size": 256},
    "shot": {"hit_rate": 0.5, "spectrum_channels": 2},
    "first_batch": 12,
    "min_batch": 8,
    "max_batch": 12,
    "shots_per_component": 4,
    "hits_per_component": 2,
    "completeness_target": 0.85,
    "max_batches": 6,
}


# -- helpers that run inside the worker (cctbx imported first there) --------------------------


def _context(root: str, component: str, phase: int = 0) -> Any:
    from daydream_core.model import Tier
    from daydream_core.objectstore import LocalObjectStore
    from daydream_core.workflow import ComponentContext

    return ComponentContext(
        store=LocalObjectStore(root),
        tier=Tier("high", 10240, 2),
        threads=1,
        run_id="test",
        component_id=component,
        phase=phase,
    )


def _call(root: str, kind: str, component: str, **args: Any) -> Any:
    from daydream_exafel.workflow import workflow

    return workflow.component_fn(kind)(_context(root, component), **args)


def _model(root: str, seed: int = 5) -> dict[str, Any]:
    return _call(
        root,
        "build_model",
        "model",
        unit_cell=TEST_PARAMS["unit_cell"],
        space_group=TEST_PARAMS["space_group"],
        d_min=TEST_PARAMS["d_min"],
        seed=seed,
    )


def _simulate(root: str, model: str, first: int, count: int, **shot: Any) -> dict[str, Any]:
    return _call(
        root,
        "simulate",
        f"sim-{first}",
        model=model,
        geometry=TEST_PARAMS["geometry"],
        shot={**TEST_PARAMS["shot"], **shot},
        seed=11,
        first=first,
        count=count,
    )


def scenario_hits(root: str) -> dict[str, Any]:
    built = _model(root)
    sim = _simulate(root, built["model"], 0, 16)
    hits = _call(
        root, "find_hits", "hits", shots=sim["shots"], geometry=TEST_PARAMS["geometry"], options={}
    )
    return {"crystals": sim["crystals"], "hits": [h["shot"] for h in hits["hits"]]}


def scenario_index(root: str) -> dict[str, Any]:
    import numpy as np
    from daydream_exafel.crystal import CrystalModel
    from daydream_exafel.geometry import misorientation_deg

    from daydream_core.objectstore import LocalObjectStore

    built = _model(root)
    sim = _simulate(root, built["model"], 0, 6, hit_rate=1.0)
    spots = _call(root, "find_spots", "spots", hits=sim["shots"], options={})
    result = _call(
        root,
        "index_integrate",
        "index",
        model=built["model"],
        shots=spots["shots"],
        geometry=TEST_PARAMS["geometry"],
        options={},
    )
    store = LocalObjectStore(root)
    model = CrystalModel.from_bytes(store.get(built["model"]))
    truth = {str(t["shot"]): t["orientation"] for t in store.get_json(sim["truth"])}
    found = store.get_json(result["orientations"])
    errors = {
        shot: misorientation_deg(np.array(truth[shot]), np.array(u), model.rotation_operators)
        for shot, u in found.items()
    }
    # The same crystal turned by a symmetry-breaking 5 degrees is not "recovered".
    c, s = math.cos(math.radians(5)), math.sin(math.radians(5))
    turn = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    u0 = np.array(truth["0"])
    control = misorientation_deg(u0, turn @ u0, model.rotation_operators)
    observations = store.get_array(result["integrated"])
    return {
        "shots": len(sim["shots"]),
        "indexed": len(result["indexed"]),
        "errors": errors,
        "control": control,
        "observations": len(observations),
        "columns": observations.shape[1],
    }


def scenario_merge(root: str) -> dict[str, Any]:
    import iotbx.mtz
    import numpy as np

    built = _model(root)
    geometry = TEST_PARAMS["geometry"]
    sim = _simulate(root, built["model"], 0, 16, hit_rate=1.0)
    integrated, orientations = [], []
    for i in range(0, 16, 4):
        chunk = sim["shots"][i : i + 4]
        spots = _call(root, "find_spots", f"spots-{i}", hits=chunk, options={})
        out = _call(
            root,
            "index_integrate",
            f"index-{i}",
            model=built["model"],
            shots=spots["shots"],
            geometry=geometry,
            options={},
        )
        integrated.append(out["integrated"])
        orientations.append(out["orientations"])
    stats = []
    for n in (1, 2, 4):
        merged = _call(
            root,
            "merge",
            f"merge-{n}",
            model=built["model"],
            integrated=integrated[:n],
            orientations=orientations[:n],
            truth=[sim["truth"]],
            geometry=geometry,
            options={},
            batch=n,
        )
        stats.append(merged["stats"])
    mtz = iotbx.mtz.object(str(Path(root) / merged["outputs"]["mtz"]))
    arrays = {a.info().label_string(): a for a in mtz.as_miller_arrays()}
    intensities = arrays["I,SIGI"]
    csv = (Path(root) / merged["outputs"]["csv"]).read_text().splitlines()
    # Independent check of the CSV against the truth: CC of merged I with true |F|^2.
    from daydream_exafel.crystal import CrystalModel

    from daydream_core.objectstore import LocalObjectStore

    model = CrystalModel.from_bytes(LocalObjectStore(root).get(built["model"]))
    truth = {tuple(h): i for h, i in zip(model.indices.tolist(), model.intensities, strict=True)}
    rows = [line.split(",") for line in csv[1:]]
    merged_i = np.array([float(r[3]) for r in rows])
    true_i = np.array([truth[(int(r[0]), int(r[1]), int(r[2]))] for r in rows])
    return {
        "stats": stats,
        "mtz_reflections": intensities.size(),
        "mtz_space_group": str(intensities.space_group_info()),
        "csv_rows": len(rows),
        "csv_cc_truth": float(np.corrcoef(merged_i, true_i)[0, 1]),
    }


def drive(root: str, seed: int, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the phase generator by hand, every component in this process."""
    from daydream_exafel.workflow import workflow

    from daydream_core.inline import run_inline
    from daydream_core.objectstore import LocalObjectStore

    made = run_inline(
        workflow, params or TEST_PARAMS, LocalObjectStore(root), seed=seed, run_index=0
    )
    json.dumps(made.result)  # lands in run.json: must be JSON
    phases = [
        {"kinds": sorted({c.kind for c in calls}), "width": len(calls), "outputs": outputs}
        for calls, outputs in zip(made.phases, made.outputs, strict=True)
    ]
    return {"result": made.result, "phases": phases}


# -- the worker ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker() -> Iterator[ProcessPoolExecutor]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=1,
        mp_context=context,
        initializer=importlib.import_module,
        initargs=("cctbx.array_family.flex",),
    ) as pool:
        yield pool


@pytest.fixture(scope="module")
def driven(worker: ProcessPoolExecutor, tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("exafel-run")
    return worker.submit(drive, str(root), 3).result(), root


# -- tests -----------------------------------------------------------------------------------


def test_plugin_registers_the_workflow() -> None:
    from daydream_exafel.plugin import daydream_apps

    [spec] = daydream_apps()
    assert isinstance(spec, AppSpec) and spec.name == "exafel"
    workflow = spec.load()
    assert isinstance(workflow, Workflow)
    assert set(workflow.presets) == {"small", "paper"}
    assert workflow.preset("paper").runs == 50
    assert set(workflow.components) == {
        "build_model",
        "simulate",
        "find_hits",
        "find_spots",
        "index_integrate",
        "merge",
    }
    runtime = workflow.runtime
    assert runtime.module == "daydream_exafel.workflow"
    assert runtime.preload[0].startswith("cctbx")  # before scipy: see cctbx_first
    assert any(r.startswith("cctbx-base") for r in runtime.requirements)


def test_controller_can_load_the_workflow_after_scipy() -> None:
    """The controller imports scipy (policies) and then the workflow: no cctbx import."""
    code = (
        "import scipy.stats, sys\n"
        "from daydream_exafel.workflow import workflow\n"
        "assert 'cctbx' not in sys.modules, 'workflow import pulled in cctbx'\n"
        "from daydream_exafel.cctbx_first import CctbxImportOrderError, ensure_cctbx_importable\n"
        "try:\n"
        "    ensure_cctbx_importable()\n"
        "except CctbxImportOrderError:\n"
        "    print('guarded')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "guarded"


def test_parameters_are_validated_before_deployment() -> None:
    from daydream_exafel.workflow import workflow

    from daydream_core.errors import UsageError

    for name in workflow.presets:
        workflow.validate(workflow.preset(name).params)
    workflow.validate(TEST_PARAMS)
    bad: list[dict[str, Any]] = [
        {"completness_target": 0.9},  # typo
        {"shot": {"hitrate": 0.5}},
        {"completeness_target": 1.5},
        {"min_batch": 64, "max_batch": 8},
        {"d_min": 1.0},  # beyond the detector's corners
    ]
    for params in bad:
        with pytest.raises(UsageError):
            workflow.validate(params)


def test_next_batch_size_follows_the_completeness_curve() -> None:
    from daydream_exafel.workflow import next_batch_size

    kwargs = {"minimum": 8, "maximum": 64, "multiple": 8}
    # 10 indexed of 30 shots reached 60%: tau = 10.9, 90% needs 25 indexed: 15 more, 45 shots.
    assert next_batch_size(10, 30, 0.6, 0.9, **kwargs) == 56  # 1.1 * 45 = 49.5 -> 56
    assert next_batch_size(10, 30, 0.89, 0.9, **kwargs) == 8  # nearly there: the minimum
    assert next_batch_size(0, 30, 0.0, 0.9, **kwargs) == 64  # nothing indexed yet: the maximum
    assert next_batch_size(10, 30, 0.3, 0.99, **kwargs) == 64


def test_blanks_are_rejected_and_hits_found(worker: ProcessPoolExecutor, tmp_path: Path) -> None:
    out = worker.submit(scenario_hits, str(tmp_path)).result()
    crystals = {i for i, c in enumerate(out["crystals"]) if c}
    hits = set(out["hits"])
    assert 0 < len(crystals) < 16  # both kinds of shot are present
    assert hits <= crystals  # no blank passes as a hit
    assert len(hits) >= 0.8 * len(crystals)


def test_indexing_recovers_the_orientation(worker: ProcessPoolExecutor, tmp_path: Path) -> None:
    out = worker.submit(scenario_index, str(tmp_path)).result()
    assert out["indexed"] >= out["shots"] - 1
    assert all(error < 0.5 for error in out["errors"].values()), out["errors"]
    assert out["control"] > 4.0  # the comparison would notice a wrong orientation
    assert out["observations"] > 50 * out["indexed"]
    assert out["columns"] == 9  # shot + integration.OBSERVATION_COLUMNS


def test_merged_intensities_match_the_truth_and_improve_with_shots(
    worker: ProcessPoolExecutor, tmp_path: Path
) -> None:
    out = worker.submit(scenario_merge, str(tmp_path)).result()
    first, half, full = out["stats"]
    assert first["completeness"] < half["completeness"] < full["completeness"]
    assert first["multiplicity"] < full["multiplicity"]
    assert full["shots"] > first["shots"]
    assert full["cc_truth"] > 0.9
    assert full["cc_half"] > 0.8
    assert full["r_truth"] < 0.4
    assert full["orientation_error_deg_median"] < 0.5
    assert out["csv_cc_truth"] > 0.9  # checked here independently of merging's own statistic
    assert out["mtz_reflections"] == out["csv_rows"] == full["unique"]
    assert out["mtz_space_group"] == "P 21 21 21"


def test_phase_generator_is_dynamic(driven: Any) -> None:
    run, _ = driven
    phases, result = run["phases"], run["result"]
    assert phases[0]["kinds"] == ["build_model"] and phases[0]["width"] == 1
    # The width of spot finding and indexing is set by the hits found in the phase before.
    for before, spots, index in zip(phases, phases[1:], phases[2:], strict=False):
        if before["kinds"] == ["find_hits"] and spots["kinds"] == ["find_spots"]:
            n_hits = sum(len(o["hits"]) for o in before["outputs"])
            assert spots["width"] == math.ceil(n_hits / TEST_PARAMS["hits_per_component"])
            assert index["kinds"] == ["index_integrate"] and index["width"] == spots["width"]
    batches = result["batches"]
    assert len(batches) >= 2  # more than one batch was needed
    assert sum(p["kinds"] == ["simulate"] for p in phases) == len(batches)
    merged = [b["merged"] for b in batches if "merged" in b]
    completeness = [m["completeness"] for m in merged]
    assert completeness == sorted(completeness)
    assert result["target_reached"] == (completeness[-1] >= TEST_PARAMS["completeness_target"])
    assert result["target_reached"] or len(batches) == TEST_PARAMS["max_batches"]
    assert result["final"]["cc_truth"] > 0.9
    for b in batches:
        assert b["hits_true"] == b["hits"]  # every hit had a crystal
        assert b["blanks_rejected"] == b["shots"] - b["crystals"]


def test_outputs_are_in_the_store(driven: Any) -> None:
    run, root = driven
    outputs = run["result"]["outputs"]
    for key in ("mtz", "csv", "stats"):
        assert (root / outputs[key]).is_file()
    stats = json.loads((root / outputs["stats"]).read_text())
    assert stats["completeness"] == run["result"]["final"]["completeness"]
    assert len(stats["shells"]) == 5


def test_deterministic_for_a_seed(worker: ProcessPoolExecutor, driven: Any, tmp_path: Path) -> None:
    run, _ = driven
    again = worker.submit(drive, str(tmp_path / "again"), 3).result()
    assert again["result"] == run["result"]
    other = worker.submit(drive, str(tmp_path / "other"), 4).result()
    assert other["result"]["batches"] != run["result"]["batches"]
