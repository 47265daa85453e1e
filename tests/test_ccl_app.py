"""The CCL workflow: the science of its components, and its phase generator driven by hand.

Components are called in-process with a `ComponentContext` over a local store, on reduced
grids (few bins, few multipoles, low kmax) so that every test takes seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pyccl")
pytest.importorskip("camb")

from daydream_ccl import components, refine, spectra
from daydream_ccl.config import AnalysisConfig
from daydream_ccl.cosmology import VARIED
from daydream_ccl.survey import Survey
from daydream_ccl.threads import omp_threads, pyccl_runtimes
from daydream_ccl.workflow import workflow

from daydream_core import inline
from daydream_core.model import Call, Tier
from daydream_core.objectstore import LocalObjectStore, ObjectStore
from daydream_core.workflow import ComponentContext, RunContext

HIGH = Tier("high", 10240, 2)

#: every phase, on grids small enough for tests
FAST: dict[str, Any] = {
    "n_source_bins": 2,
    "n_lens_bins": 1,
    "n_ell": 20,
    "l_limber": 30,
    "n_theta": 6,
    "theta_min_arcmin": 5.0,
    "theta_max_arcmin": 200.0,
    "kmax": 5.0,
    "camb_accuracy": 0,
    "n_ell_cov": 300,
    "n_z": 128,
    "corr_method": "fftlog",
}


def context(store: ObjectStore, name: str, phase: int = 0) -> ComponentContext:
    return ComponentContext(
        store=store, tier=HIGH, threads=2, run_id="test", component_id=name, phase=phase
    )


def execute_in_process(store: ObjectStore) -> Callable[[int, list[Call]], list[Any]]:
    def run(phase: int, calls: list[Call]) -> list[Any]:
        out = []
        for i, call in enumerate(calls):
            fn = workflow.component_fn(call.kind)
            # payloads and results cross the wire as JSON
            args = json.loads(json.dumps(dict(call.args)))
            out.append(json.loads(json.dumps(fn(context(store, f"p{phase}-c{i}", phase), **args))))
        return out

    return run


def drive(
    run: RunContext, execute: Callable[[int, list[Call]], list[Any]]
) -> tuple[list[list[Call]], Any]:
    """Run the phase generator to its end; return the calls of every phase and its result."""
    made = inline.drive(workflow, run, lambda phase, calls: execute(phase + 1, list(calls)))
    return made.phases, made.result


@pytest.fixture(scope="module")
def fiducial_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fiducial cosmology through every component, and the mock data."""
    store = LocalObjectStore(tmp_path_factory.mktemp("ccl-store"))
    cfg = AnalysisConfig.from_params(FAST)
    config = cfg.to_json()
    mock = components.mock_data(context(store, "mock"), config)
    fixture = {"store": store, "cfg": cfg, "config": config, "mock": mock}
    fixture["fiducial"] = evaluate(fixture, {}, "fid")
    return fixture


def evaluate(fixture: Mapping[str, Any], varied: Mapping[str, float], name: str) -> dict[str, Any]:
    """sample_cosmology -> angular_power -> correlation -> likelihood for one cosmology."""
    store, cfg, config, mock = (fixture[k] for k in ("store", "cfg", "config", "mock"))
    params = cfg.cosmology(varied)
    sample = components.sample_cosmology(context(store, f"{name}-s"), params, config)
    xi, cls = {}, {}
    for probe in cfg.probes:
        ang = components.angular_power(
            context(store, f"{name}-a-{probe}"), params, sample["power"], probe, config
        )
        cls[probe] = store.get_array(ang["cls"])
        corr = components.correlation(
            context(store, f"{name}-x-{probe}"), params, probe, ang["cls"], ang["ell"], config
        )
        xi[probe] = corr["xi"]
    like = components.likelihood(
        context(store, f"{name}-l"),
        params,
        xi,
        {k: mock[k] for k in ("data", "cov", "mask")},
        config,
    )
    return {"sample": sample, "cls": cls, "xi": xi, "like": like}


# -- registration ---------------------------------------------------------------------------


def test_plugin_registers_the_workflow() -> None:
    from daydream_ccl import plugin

    (spec,) = plugin.daydream_apps()
    assert spec.name == "ccl"
    loaded = spec.load()
    assert loaded is workflow
    assert set(loaded.components) == {
        "sample_cosmology",
        "mock_data",
        "angular_power",
        "correlation",
        "likelihood",
    }
    runtime = loaded.runtime
    assert runtime.module == "daydream_ccl.workflow"
    assert runtime.preload == ("numpy", "pyccl", "camb")
    assert "pyccl>=3.0" in runtime.requirements
    assert set(loaded.presets) >= {"small", "paper"}
    assert loaded.preset("paper").runs == 50
    AnalysisConfig.from_params(loaded.preset("paper").params)  # valid parameters


# -- survey and science ---------------------------------------------------------------------


def test_redshift_distributions_are_normalised_and_ordered() -> None:
    survey = Survey(n_source_bins=4, n_lens_bins=3)
    z = survey.z
    sources, lenses = survey.source_nz(), survey.lens_nz()
    for nz in sources + lenses:
        assert np.all(nz >= 0)
        assert np.trapezoid(nz, z) == pytest.approx(1.0, rel=1e-6)
    means = [np.trapezoid(z * nz, z) for nz in sources]
    assert means == sorted(means)
    # galaxy-galaxy lensing only pairs lenses with sources behind them
    for lens, src in survey.pairs("ggl"):
        hi = survey.lens_edges()[int(lens[4:])][1]
        assert means[int(src[3:])] > hi
    assert len(survey.pairs("shear")) == 4 * 5 // 2
    assert survey.noise("src0") > 0 and survey.noise("lens0") > 0


def test_stored_spectra_rebuild_the_camb_cosmology(tmp_path: Path) -> None:
    from daydream_ccl import cosmology

    cfg = AnalysisConfig.from_params(FAST)
    params = cfg.cosmology({})
    cosmo = cosmology.camb_cosmology(params, kmax=cfg.kmax, accuracy=0, threads=2)
    calc = cosmology.calculator(params, cosmology.power_arrays(cosmo))
    k = np.geomspace(1e-3, 3.0, 20)
    import pyccl as ccl

    for a in (0.5, 1.0):
        np.testing.assert_allclose(
            ccl.nonlin_matter_power(calc, k, a), ccl.nonlin_matter_power(cosmo, k, a), rtol=1e-6
        )
    # non-linear power exceeds linear on small scales, matches it on large ones
    assert ccl.nonlin_matter_power(calc, 1.0, 1.0) > 2 * ccl.linear_matter_power(calc, 1.0, 1.0)
    assert ccl.nonlin_matter_power(calc, 1e-3, 1.0) == pytest.approx(
        ccl.linear_matter_power(calc, 1e-3, 1.0), rel=0.01
    )
    assert cosmology.derived(calc, params)["sigma8"] == pytest.approx(params["sigma8"], rel=1e-3)


def test_lensing_spectra_are_positive_and_fall_at_high_ell(
    fiducial_run: dict[str, Any],
) -> None:
    result = fiducial_run["fiducial"]
    cfg = fiducial_run["cfg"]
    ell = cfg.ell
    shear = result["cls"]["shear"]
    assert shear.shape == (len(cfg.survey.pairs("shear")), ell.size)
    assert np.all(shear > 0)
    high = ell > 300
    assert np.all(np.diff(shear[:, high], axis=1) < 0)
    # deeper source bins see more lensing: the auto-spectrum of the last bin is the largest
    pairs = cfg.survey.pairs("shear")
    autos = [shear[pairs.index((f"src{i}", f"src{i}"))] for i in range(cfg.survey.n_source_bins)]
    assert np.all(autos[-1] > autos[0])
    assert np.all(result["cls"]["clustering"] > 0)


def test_fiducial_has_the_minimum_chi2(fiducial_run: dict[str, Any]) -> None:
    mock = fiducial_run["mock"]
    store = fiducial_run["store"]
    cov = store.get_array(mock["cov"])
    assert np.allclose(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    assert mock["snr"] > 10
    assert 0 < mock["n_data"] < mock["n_full"]  # the scale cut removed small-scale clustering

    fid = fiducial_run["fiducial"]["like"]
    near = evaluate(fiducial_run, {"sigma8": 0.79}, "near")["like"]
    far = evaluate(fiducial_run, {"sigma8": 0.76, "Omega_c": 0.29}, "far")["like"]
    assert fid["chi2"] == pytest.approx(0.0, abs=1e-6)
    assert 0 < near["chi2"] < far["chi2"]
    assert fid["n_data"] == mock["n_data"]
    assert sum(near["chi2_probe"].values()) > 0
    assert np.sum(store.get_array(near["residual"]) ** 2) == pytest.approx(near["chi2"])


def test_noisy_mock_gives_chi2_of_order_the_data_size(fiducial_run: dict[str, Any]) -> None:
    store, config = fiducial_run["store"], fiducial_run["config"]
    noisy = components.mock_data(
        context(store, "noisy"), {**config, "mock_noise": True}, noise_seed=5
    )
    assert noisy["n_data"] == fiducial_run["mock"]["n_data"]
    like = components.likelihood(
        context(store, "noisy-l"),
        fiducial_run["cfg"].cosmology({}),
        fiducial_run["fiducial"]["xi"],
        {k: noisy[k] for k in ("data", "cov", "mask")},
        config,
    )
    n = like["n_data"]
    assert abs(like["chi2"] - n) < 5 * np.sqrt(2 * n)


def test_hankel_transforms_agree(fiducial_run: dict[str, Any]) -> None:
    """FFTLog and direct Bessel integration give the same xi_+/- and gamma_t."""
    import pyccl as ccl

    cfg = fiducial_run["cfg"]
    cosmo = ccl.Cosmology(**cfg.cosmology({}))
    theta = np.array([10.0, 30.0, 100.0])
    for probe in ("shear", "ggl"):
        cls = fiducial_run["fiducial"]["cls"][probe][:1]
        types = ("GG+", "GG-") if probe == "shear" else ("NG",)
        fft = spectra.correlations(cosmo, cfg.ell, cls, theta, types, method="fftlog")
        bessel = spectra.correlations(cosmo, cfg.ell, cls, theta, types, method="bessel")
        np.testing.assert_allclose(fft, bessel, rtol=0.05)
        assert np.all(fft[0, 0] > 0)


def test_scale_mask_cuts_only_clustering_blocks(fiducial_run: dict[str, Any]) -> None:
    cfg = fiducial_run["cfg"]
    mask = fiducial_run["store"].get_array(fiducial_run["mock"]["mask"]).astype(bool)
    blocks = spectra.data_blocks(cfg.survey, cfg.probes)
    per_block = mask.reshape(len(blocks), cfg.n_theta)
    for block, keep in zip(blocks, per_block, strict=True):
        if block.probe == "shear":
            assert keep.all()
        else:
            assert not keep[0] and keep[-1]  # small scales cut, large ones kept


# -- refinement -----------------------------------------------------------------------------


def linear_residuals(truth: np.ndarray, slopes: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A synthetic, mildly non-linear whitened residual with its minimum at `truth`."""

    def residual(u: np.ndarray) -> np.ndarray:
        du = np.atleast_2d(u) - truth
        return du @ slopes.T + 0.5 * (du**2) @ np.abs(slopes.T)

    return residual


def test_refinement_converges_to_the_peak() -> None:
    rng = np.random.default_rng(3)
    truth = np.array([0.42, 0.61])
    residual = linear_residuals(truth, rng.normal(0, 40, size=(30, 2)))
    settings = refine.RefineSettings()
    u = refine.latin_hypercube(rng, 4, 2)
    r = residual(u)
    start = np.linalg.norm(u[np.argmin(np.sum(r**2, axis=1))] - truth)
    previous = None
    for iteration in range(8):
        step = refine.propose(
            u, r, iteration=iteration, previous_peak=previous, rng=rng, settings=settings
        )
        if step.converged:
            break
        previous = step.peak
        u, r = np.vstack([u, step.proposals]), np.vstack([r, residual(step.proposals)])
    assert step.converged
    assert np.linalg.norm(step.peak - truth) < 0.1 * start
    assert step.fisher is not None and step.covariance is not None
    assert len(step.proposals) == 0


def test_more_points_near_the_peak_ask_for_more_proposals() -> None:
    settings = refine.RefineSettings(min_new=2, max_new=6)
    truth = np.array([0.5, 0.5])
    residual = linear_residuals(truth, np.array([[30.0, 0.0], [0.0, 30.0]]))
    spread = np.array([[0.1, 0.1], [0.9, 0.2], [0.3, 0.8], [0.8, 0.9]])
    clustered = np.array([[0.5, 0.5], [0.51, 0.5], [0.5, 0.51], [0.9, 0.1]])
    widths = [
        len(
            refine.propose(
                u,
                residual(u),
                iteration=1,
                previous_peak=None,
                rng=np.random.default_rng(0),
                settings=settings,
            ).proposals
        )
        for u in (spread, clustered)
    ]
    assert widths == [2, 4]


def test_latin_hypercube_fills_every_stratum() -> None:
    u = refine.latin_hypercube(np.random.default_rng(1), 7, 2)
    for column in u.T:
        assert sorted(np.floor(column * 7).astype(int)) == list(range(7))


# -- the phase generator --------------------------------------------------------------------


def fake_execute(
    store: ObjectStore, residual: Callable[[np.ndarray], np.ndarray], cfg: AnalysisConfig
) -> Callable[[int, list[Call]], list[Any]]:
    """Answers every call instantly; likelihoods follow the synthetic `residual`."""
    from daydream_ccl.config import prior_box
    from daydream_ccl.refine import Bounds

    bounds = Bounds(VARIED, prior_box(FAST))
    ids = count()

    def run(phase: int, calls: list[Call]) -> list[Any]:
        out: list[Any] = []
        for call in calls:
            key = f"fake/{next(ids)}"
            args = call.args
            if call.kind == "sample_cosmology":
                c = args["cosmology_params"]
                out.append({"cosmology": c, "power": {"pk": key}, "derived": {"S8": 0.8}})
            elif call.kind == "mock_data":
                out.append(
                    {"data": key, "cov": key, "mask": key, "n_data": 30, "n_full": 40, "snr": 50.0}
                )
            elif call.kind == "angular_power":
                out.append({"probe": args["probe"], "cls": key, "ell": key})
            elif call.kind == "correlation":
                out.append({"probe": args["probe"], "xi": key})
            else:
                x = np.array([args["cosmology_params"][n] for n in VARIED])
                r = residual(bounds.to_unit(x))[0]
                store.put_array(key, r)
                out.append({"chi2": float(r @ r), "residual": key})
        return out

    return run


def test_generator_phase_structure_and_widths_follow_the_results(tmp_path: Path) -> None:
    cfg = AnalysisConfig.from_params(FAST)
    params = {**FAST, "n_initial": 4, "max_rounds": 4}
    shapes = []
    for name, slope in (("narrow", 200.0), ("broad", 2.0)):
        store = LocalObjectStore(tmp_path / name)
        residual = linear_residuals(np.array([0.45, 0.55]), np.array([[slope, 0], [0, slope]]))
        run = RunContext(params=params, seed=7, run_index=0, store=store)
        phases, result = drive(run, fake_execute(store, residual, cfg))
        kinds = [[c.kind for c in p] for p in phases]
        assert kinds[0].count("sample_cosmology") == 4 and kinds[0].count("mock_data") == 1
        assert len(phases) % 4 == 0
        for i in range(0, len(phases), 4):
            n = kinds[i].count("sample_cosmology")
            assert kinds[i + 1] == ["angular_power"] * (n * len(cfg.probes))
            assert kinds[i + 2] == ["correlation"] * (n * len(cfg.probes))
            assert kinds[i + 3] == ["likelihood"] * n
        assert result["iterations"] == len(phases) // 4
        assert [h["cosmologies"] for h in result["history"][1:]] == [
            h["next"] for h in result["history"][:-1]
        ]
        json.dumps(result)
        for phase in phases:
            for call in phase:
                assert len(json.dumps(dict(call.args))) < 4096  # small payloads
        shapes.append([len(p) for p in phases])
    # a broad peak has more points within delta chi^2 of the best: wider refinement phases
    assert shapes[0] != shapes[1]


def test_generator_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    cfg = AnalysisConfig.from_params(FAST)
    residual = linear_residuals(np.array([0.3, 0.6]), np.array([[20.0, 5.0], [0.0, 20.0]]))

    def calls_for(seed: int, name: str) -> list[list[dict[str, Any]]]:
        store = LocalObjectStore(tmp_path / name)
        run = RunContext(params={**FAST, "max_rounds": 3}, seed=seed, run_index=0, store=store)
        phases, _ = drive(run, fake_execute(store, residual, cfg))
        return [[{"kind": c.kind, **c.args} for c in p] for p in phases]

    assert calls_for(11, "a") == calls_for(11, "b")
    assert calls_for(11, "a")[0] != calls_for(12, "c")[0]


def test_whole_workflow_in_process_moves_toward_the_fiducial(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    params = {**FAST, "n_initial": 3, "max_rounds": 2, "max_new": 2}
    run = RunContext(params=params, seed=1, run_index=0, store=store)
    phases, result = drive(run, execute_in_process(store))

    assert [c.kind for c in phases[0]].count("mock_data") == 1
    history = result["history"]
    assert len(phases) == 4 * len(history)
    assert [len(phases[4 * i]) for i in range(1, len(history))] == [h["next"] for h in history[:-1]]
    best = [h["best_chi2"] for h in history]
    assert best == sorted(best, reverse=True) and best[-1] < best[0]

    fiducial = np.array([result["fiducial"][n] for n in VARIED])
    width = np.array([0.14, 0.24])  # the prior box
    first = np.array([history[0]["peak"][n] for n in VARIED])
    final = np.array([result["peak"][n] for n in VARIED])
    assert np.linalg.norm((final - fiducial) / width) < np.linalg.norm((first - fiducial) / width)
    assert np.linalg.norm((final - fiducial) / width) < 0.05
    assert result["chi2_min"] < history[0]["best_chi2"]
    assert result["sigma"]["sigma8"] > 0
    json.dumps(result)


# -- threads --------------------------------------------------------------------------------


def test_omp_threads_sets_and_restores_pyccl_threads() -> None:
    runtimes = pyccl_runtimes()
    if not runtimes:
        pytest.skip("pyccl's OpenMP runtime is not visible on this platform")
    before = [lib.omp_get_max_threads() for lib in runtimes]
    with omp_threads(1):
        assert [lib.omp_get_max_threads() for lib in runtimes] == [1] * len(runtimes)
    assert [lib.omp_get_max_threads() for lib in runtimes] == before
