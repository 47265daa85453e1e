"""The cosmoscout workflow: its science, its phase structure, and its outputs."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import healpy as hp
import numpy as np
import pytest
from daydream_cosmoscout import tiles as tl
from daydream_cosmoscout.ephemeris import scene_ephemeris
from daydream_cosmoscout.lod import Camera, screen_space_error, select
from daydream_cosmoscout.planet import PLANETS
from daydream_cosmoscout.terrain import (
    Surface,
    crater_profile,
    fitted_slope,
    synthesise_map,
)
from daydream_cosmoscout.workflow import TileIndex, workflow
from matplotlib import image as mpimg

from daydream_core.inline import run_inline
from daydream_core.model import Call, Tier
from daydream_core.objectstore import LocalObjectStore
from daydream_core.workflow import ComponentContext

HIGH = Tier("high", 10240, 2)

# a scaled-down scene: every phase and component runs, in well under a second each
TINY: dict[str, Any] = {
    "elevation_nside": 64,
    "elevation_lmax": 127,
    "albedo_nside": 32,
    "albedo_lmax": 63,
    "resolution": 8,
    "pyramid_levels": 1,
    "image_width": 64,
    "image_height": 48,
    "max_refine": 4,
    "refine_phases": 2,
    "threshold_px": 0.5,
}


def context(store: LocalObjectStore, name: str, phase: int = 0) -> ComponentContext:
    return ComponentContext(
        store=store, tier=HIGH, threads=2, run_id="run-0", component_id=name, phase=phase
    )


def drive(
    store: LocalObjectStore, params: Mapping[str, Any], seed: int = 7, run_index: int = 0
) -> tuple[Any, list[list[Call]], list[list[Any]]]:
    """Run the phase generator by hand, calling each component in-process."""
    made = run_inline(workflow, params, store, seed=seed, run_index=run_index, tier=HIGH)
    return made.result, made.phases, made.outputs


@pytest.fixture(scope="module")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Any, list[list[Call]], list[list[Any]], LocalObjectStore]:
    store = LocalObjectStore(tmp_path_factory.mktemp("cosmoscout"))
    result, phases, outputs = drive(store, TINY)
    return result, phases, outputs, store


# --- registration --------------------------------------------------------------------------


def test_plugin_registers_the_workflow() -> None:
    from daydream_cosmoscout import plugin

    (spec,) = plugin.daydream_apps()
    assert spec.name == "cosmoscout"
    loaded = spec.load()
    assert loaded is workflow
    assert set(loaded.presets) >= {"small", "paper"}
    assert loaded.presets["paper"].runs == 50
    runtime = loaded.runtime
    assert runtime.name == "cosmoscout"
    assert "healpy" in runtime.preload
    assert any(r.startswith("healpy") for r in runtime.requirements)
    assert set(loaded.components) == {
        "terrain",
        "imagery",
        "ephemeris",
        "pyramid",
        "refine",
        "render",
    }


# --- planet and ephemeris ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PLANETS))
def test_rotation_takes_the_pole_to_body_z(name: str) -> None:
    body = PLANETS[name]
    alpha, delta, _ = (math.radians(v) for v in body.pole_and_meridian(8000.0))
    pole = np.array(
        [math.cos(delta) * math.cos(alpha), math.cos(delta) * math.sin(alpha), math.sin(delta)]
    )
    rotation = body.icrf_to_body(8000.0)
    np.testing.assert_allclose(rotation @ pole, [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)


def test_ephemeris_is_sane_offline() -> None:
    sky = scene_ephemeris("mars", "2024-05-01T00:00:00")
    assert 0.98 < sky["sun_earth_distance_au"] < 1.02  # Earth's orbit
    assert 1.38 < sky["sun_distance_au"] < 1.67  # Mars's perihelion .. aphelion
    assert 0.37 < sky["earth_distance_au"] < 2.7
    assert abs(sky["subsolar_lat_deg"]) <= PLANETS["mars"].obliquity_deg + 0.5
    assert np.linalg.norm(sky["sun_direction_body"]) == pytest.approx(1.0)
    # one Martian day sweeps the sub-solar point once around the planet
    track = np.unwrap(np.radians(sky["subsolar_lon_track_deg"]))
    assert abs(track[-1] - track[0]) == pytest.approx(2 * math.pi * 23 / 24, rel=0.02)


def test_ephemeris_of_the_moon_keeps_the_sun_near_its_equator() -> None:
    sky = scene_ephemeris("moon", "2024-01-10T12:00:00", samples=4)
    assert 0.98 < sky["sun_distance_au"] < 1.02
    assert abs(sky["subsolar_lat_deg"]) <= 1.6 + 0.5


# --- terrain -------------------------------------------------------------------------------


def test_terrain_is_deterministic_and_has_the_requested_spectrum() -> None:
    first = synthesise_map(64, 127, slope=2.5, rms=2.0, mean=1.0, seed=3, stream=1)
    again = synthesise_map(64, 127, slope=2.5, rms=2.0, mean=1.0, seed=3, stream=1)
    other = synthesise_map(64, 127, slope=2.5, rms=2.0, mean=1.0, seed=4, stream=1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.mean(dtype=np.float64) == pytest.approx(1.0, abs=1e-5)
    assert first.std(dtype=np.float64) == pytest.approx(2.0, rel=1e-4)
    assert fitted_slope(first, lmin=8, lmax=64) == pytest.approx(-2.5, abs=0.35)


def test_crater_profile_is_a_bowl_with_a_rim() -> None:
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    depth, rim = np.full(6, 1.0), np.full(6, 0.25)
    relief = crater_profile(x, depth, rim)
    assert relief[0] == pytest.approx(-1.0)
    assert relief[2] == pytest.approx(0.25)  # rim crest
    assert relief[0] < relief[1] < relief[2] > relief[3] > relief[4] == 0.0
    assert relief[5] == 0.0


def test_sampling_at_the_base_resolution_adds_craters_to_exact_block_means() -> None:
    base = synthesise_map(32, 63, slope=2.0, rms=1e-3, mean=0.0, seed=1, stream=1)
    flat = Surface(base, np.full_like(base, 0.2), seed=1, radius_km=3389.5, max_crater_level=0)
    pixels = np.arange(hp.nside2npix(16))
    elevation, albedo = flat.sample(16, pixels)  # no crater level is resolved at nside 16
    np.testing.assert_allclose(elevation, base.reshape(-1, 4).astype(np.float64).mean(axis=1))
    np.testing.assert_allclose(albedo, 0.2)
    cratered = Surface(base, np.full_like(base, 0.2), seed=1, radius_km=3389.5, max_crater_level=8)
    face = np.arange(128 * 128)  # base face 0 at nside 128 resolves crater levels 1..4
    smooth, _ = flat.sample(128, face)
    deeper, brighter = cratered.sample(128, face)
    assert (deeper < smooth - 1e-4).any()  # crater floors
    assert (deeper > smooth + 1e-5).any()  # rims
    assert (brighter > 0.2 + 1e-3).any()  # fresh ejecta


# --- pyramids ------------------------------------------------------------------------------


def test_nested_pyramid_is_healpy_ud_grade_and_conserves_the_mean() -> None:
    field = synthesise_map(64, 127, slope=2.0, rms=1.0, mean=5.0, seed=2, stream=9)
    levels = tl.pyramid(field, 4)
    for step, level in enumerate(levels):
        nside = 64 // 2**step
        expected = hp.ud_grade(field.astype(np.float64), nside, order_in="NESTED")
        np.testing.assert_allclose(level, expected, rtol=1e-12)
        assert level.mean() == pytest.approx(field.mean(dtype=np.float64), rel=1e-12)


def test_pyramid_component_conserves_the_face_mean(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    base = synthesise_map(64, 127, slope=2.5, rms=1e-3, mean=0.0, seed=5, stream=1)
    albedo = synthesise_map(32, 63, slope=2.0, rms=0.05, mean=0.25, seed=5, stream=2)
    store.put_array("in/elevation.npy", base)
    store.put_array("in/albedo.npy", albedo)
    surface = {
        "elevation_key": "in/elevation.npy",
        "albedo_key": "in/albedo.npy",
        "seed": 5,
        "radius_km": 3389.5,
        "max_crater_level": 10,
    }
    fn = workflow.component_fn("pyramid")
    out = fn(context(store, "pyramid-3"), face=3, levels=2, resolution=8, surface=surface)
    assert [block["level"] for block in out["levels"]] == [0, 1, 2]
    for block in out["levels"]:
        assert block["mean"] == pytest.approx(out["finest_mean"], rel=1e-9, abs=1e-15)
        assert len(block["errors"]) == 4 ** block["level"]
        assert block["first_tile"] == 3 * 4 ** block["level"]
        samples = store.get_array(block["elevation_key"])
        assert samples.shape == (4 ** block["level"] * 64,)
        assert float(samples.astype(np.float64).mean()) == pytest.approx(block["mean"], rel=1e-5)
    # the geometric error of the face is the largest deviation of its children's samples
    level0 = store.get_array(out["levels"][0]["elevation_key"]).astype(np.float64)
    level1 = store.get_array(out["levels"][1]["elevation_key"]).astype(np.float64)
    brute = np.max(np.abs(level1 - np.repeat(level0, 4)))
    assert out["levels"][0]["errors"][0] == pytest.approx(brute, rel=1e-5)


def test_geometric_errors_per_tile() -> None:
    coarse = np.array([1.0, 2.0])
    fine = np.array([1.0, 1.0, 1.5, 0.5, 2.0, 2.0, 2.0, 5.0])
    np.testing.assert_allclose(tl.geometric_errors(coarse, fine, 1), [0.5, 3.0])


# --- view-dependent refinement ---------------------------------------------------------------


def _camera(distance: float, lat: float = 0.0, lon: float = 0.0) -> Camera:
    from daydream_cosmoscout.lod import unit_vector

    position = unit_vector(lat, lon) * distance
    return Camera("test", tuple(position.tolist()), (0.0, 0.0, 0.0), 40.0, 320, 240)  # type: ignore[arg-type]


def test_screen_space_error_grows_as_the_camera_approaches_and_vanishes_behind() -> None:
    tile = hp.vec2pix(4, 1.0, 0.0, 0.0, nest=True)
    far = screen_space_error(_camera(4.0), 2, int(tile), 1e-3)
    near = screen_space_error(_camera(1.5), 2, int(tile), 1e-3)
    assert 0 < far < near
    behind = hp.vec2pix(4, -1.0, 0.0, 0.0, nest=True)
    assert screen_space_error(_camera(1.5), 2, int(behind), 1e-3) == 0.0


def test_refinement_targets_the_largest_screen_space_errors() -> None:
    rng = np.random.default_rng(0)
    errors = {
        (level, t): float(rng.uniform(1e-4, 5e-3)) for level in (0, 1) for t in range(12 * 4**level)
    }
    cameras = [_camera(1.6, 10.0, 20.0), _camera(3.0, -30.0, 200.0)]
    selection = select(errors, errors.keys(), cameras, threshold_px=1.0, max_level=6)
    # brute force: the leaves at level 1 whose projected error exceeds the threshold
    expected = sorted(
        (
            (max(screen_space_error(c, 1, t, errors[(1, t)]) for c in cameras), (1, t))
            for t in range(48)
        ),
        key=lambda item: (-item[0], item[1]),
    )
    expected = [item for item in expected if item[0] > 1.0]
    assert selection.candidates[:5] == expected[:5]
    assert [sse for sse, _ in selection.candidates] == sorted(
        (sse for sse, _ in selection.candidates), reverse=True
    )
    # the cut covers the sphere exactly once
    area = sum(4.0**-level for level, _ in selection.leaves)
    assert area == pytest.approx(12.0)


# --- the whole workflow, scaled down --------------------------------------------------------


def test_phase_structure(tiny_run: Any) -> None:
    result, phases, _, _ = tiny_run
    kinds = [sorted({c.kind for c in phase}) for phase in phases]
    assert kinds[0] == ["ephemeris", "imagery", "terrain"]
    assert kinds[1] == ["pyramid"] and len(phases[1]) == 12
    assert kinds[-1] == ["render"] and len(phases[-1]) == 3
    refine_phases = phases[2:-1]
    assert 1 <= len(refine_phases) <= TINY["refine_phases"]
    assert all(kind == ["refine"] for kind in kinds[2:-1])
    assert all(1 <= len(phase) <= TINY["max_refine"] for phase in refine_phases)
    assert result["refinements"] == [len(phase) for phase in refine_phases]


def test_each_refinement_phase_takes_the_top_candidates(tiny_run: Any) -> None:
    _, phases, outputs, _ = tiny_run
    index = TileIndex(TINY["resolution"])
    for face in outputs[1]:
        for block in face["levels"]:
            index.add(block)
    cameras = [Camera.from_json(c.args["camera"]) for c in phases[-1]]
    for calls, results in zip(phases[2:-1], outputs[2:-1], strict=True):
        selection = select(index.errors, index.where, cameras, TINY["threshold_px"], 9)
        wanted = [tile for _, tile in selection.candidates[: TINY["max_refine"]]]
        assert [(c.args["level"], c.args["index"]) for c in calls] == wanted
        for block in results:
            index.add(block)


def test_rendered_views_are_non_trivial_pngs(tiny_run: Any) -> None:
    result, _, outputs, store = tiny_run
    for view in outputs[-1]:
        picture = mpimg.imread(io.BytesIO(store.get(view["image_key"])), format="png")
        assert picture.shape[:2] == (TINY["image_height"], TINY["image_width"])
        luminance = picture[..., :3].mean(axis=-1)
        assert 0.0 < view["coverage"] <= 1.0
        assert luminance.std() > 0.02  # lit planet against black space, with relief
        assert luminance.max() > 0.2
        assert store.get(view["lod_key"]).startswith(b"\x89PNG")
    assert result["images"] == [view["image_key"] for view in outputs[-1]]


def test_same_seed_same_run(tiny_run: Any, tmp_path: Path) -> None:
    result, phases, outputs, store = tiny_run
    again, phases_again, outputs_again = drive(LocalObjectStore(tmp_path), TINY)
    assert [[c.args.get("index") for c in p] for p in phases] == [
        [c.args.get("index") for c in p] for p in phases_again
    ]
    first = store.get(outputs[-1][0]["image_key"])
    second = LocalObjectStore(tmp_path).get(outputs_again[-1][0]["image_key"])
    assert first == second
    assert again["leaves"] == result["leaves"]


def test_later_runs_move_the_scene_on(tmp_path: Path) -> None:
    result, _, _ = drive(LocalObjectStore(tmp_path), {**TINY, "refine_phases": 0}, run_index=3)
    assert result["time"] == "2024-05-01T21:00:00"


def test_ephemeris_far_from_the_leap_second_table_is_quiet() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sky = scene_ephemeris("mars", "2031-07-01T00:00:00", samples=2)
    assert 1.38 < sky["sun_distance_au"] < 1.67
