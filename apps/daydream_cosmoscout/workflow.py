"""The ``cosmoscout`` workflow: planetary data preparation for a view-dependent renderer.

Phases of one run (the scene's time and cameras move on with the run index):

1. ``terrain`` · ``imagery`` · ``ephemeris`` (width 3): global HEALPix relief and albedo maps
   from seeded spherical harmonics, and where the Sun and Earth are seen from the planet.
2. ``pyramid`` x 12 (one per HEALPix base face): sample relief + craters at the finest
   pyramid level, build the NESTED level-of-detail pyramid, and measure each tile's
   geometric error.
3. ``refine`` x k, repeated (dynamic width): the controller projects geometric errors to
   screen-space errors for the cameras, and refines the tiles with the largest errors above
   the threshold, at most `max_refine` per phase. Each refinement samples the tile two levels
   deeper, revealing smaller craters, and returns its children's geometric errors.
4. ``render`` x cameras: ray-cast the final tile cut, lit by the ephemeris Sun; PNG outputs.

Big data (maps, tile samples, images) goes through the object store by key; payloads and
results are small JSON.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from daydream_core.errors import UsageError
from daydream_core.model import Call, WidthHint
from daydream_core.params import Param
from daydream_core.workflow import ComponentContext, Phase, Preset, RunContext, Workflow
from daydream_cosmoscout import tiles as tl
from daydream_cosmoscout.lod import Camera, camera_from_view, select
from daydream_cosmoscout.planet import PLANETS
from daydream_cosmoscout.planet import planet as planet_by_name
from daydream_cosmoscout.terrain import Surface, fitted_slope, synthesise_map

DEFAULT_VIEWS: tuple[dict[str, Any], ...] = (
    # a full-disc view from orbit, an approach, and a low oblique pass over the terrain
    {
        "name": "orbit",
        "altitude": 2.2,
        "lat": 12.0,
        "lon_offset": -35.0,
        "lon_step": 11.0,
        "fov_deg": 38.0,
    },
    {
        "name": "approach",
        "altitude": 0.45,
        "lat": -8.0,
        "lon_offset": -30.0,
        "lon_step": 17.0,
        "fov_deg": 50.0,
    },
    {
        "name": "low-pass",
        "altitude": 0.035,
        "lat": 20.0,
        "lon_offset": -25.0,
        "lon_step": 23.0,
        "fov_deg": 60.0,
        "look_ahead_deg": 6.0,
    },
)

DEFAULTS: dict[str, Any] = {
    "planet": "mars",
    "epoch": "2024-05-01T00:00:00",
    "hours_per_run": 7.0,
    "elevation_nside": 512,
    "elevation_lmax": 1023,
    "elevation_slope": 2.6,
    "relief_km": 3.0,
    "albedo_nside": 256,
    "albedo_lmax": 511,
    "albedo_slope": 2.0,
    "albedo_mean": 0.24,
    "albedo_rms": 0.05,
    "resolution": 64,
    "pyramid_levels": 2,
    "max_level": 9,
    "max_crater_level": 13,
    "threshold_px": 1.5,
    "max_refine": 8,
    "refine_phases": 4,
    "image_width": 400,
    "image_height": 300,
    "exaggeration": 6.0,
    "views": list(DEFAULT_VIEWS),
}


def _power_of_two(value: int) -> None:
    if value & (value - 1):
        raise ValueError(f"{value} is not a power of two (HEALPix nside)")


def _iso_time(value: str) -> None:
    datetime.fromisoformat(value)  # its ValueError names what is wrong


def _view_fields() -> dict[str, Param]:
    return {
        "name": Param(str),
        "altitude": Param(float, gt=0, le=100.0),
        "lat": Param(float, ge=-90.0, le=90.0),
        "lon_offset": Param(float, ge=-360.0, le=360.0),
        "lon_step": Param(float, ge=-360.0, le=360.0),
        "fov_deg": Param(float, gt=0, lt=180.0),
        "look_ahead_deg": Param(float, ge=-90.0, le=90.0),
    }


def _nside(default: int, help: str) -> Param:
    return Param(int, default, help, ge=1, le=8192, check=_power_of_two)


PARAMS: dict[str, Param] = {
    "planet": Param(str, DEFAULTS["planet"], "the body", choices=tuple(PLANETS), shapes_dag=True),
    "epoch": Param(str, DEFAULTS["epoch"], "scene time of run 1, ISO 8601", check=_iso_time),
    "hours_per_run": Param(float, 7.0, "scene time between runs", ge=0, le=1.0e5),
    "elevation_nside": _nside(512, "HEALPix nside of the elevation map"),
    "elevation_lmax": Param(int, 1023, "band limit of the elevation map", ge=1, le=24_575),
    "elevation_slope": Param(float, 2.6, "spectral slope of the relief", ge=0, le=10.0),
    "relief_km": Param(float, 3.0, "rms relief", gt=0, le=100.0),
    "albedo_nside": _nside(256, "HEALPix nside of the albedo map"),
    "albedo_lmax": Param(int, 511, "band limit of the albedo map", ge=1, le=24_575),
    "albedo_slope": Param(float, 2.0, "spectral slope of the albedo", ge=0, le=10.0),
    "albedo_mean": Param(float, 0.24, "mean albedo", ge=0, le=1.0),
    "albedo_rms": Param(float, 0.05, "rms albedo", ge=0, le=1.0),
    "resolution": Param(int, 64, "samples a side of a tile", ge=2, le=1024,
                        check=_power_of_two),
    "pyramid_levels": Param(int, 2, "levels prepared up front", ge=0, le=12, shapes_dag=True),
    "max_level": Param(int, 9, "deepest tile level", ge=0, le=20, shapes_dag=True),
    "max_crater_level": Param(int, 13, "deepest level with craters", ge=0, le=29),
    "threshold_px": Param(float, 1.5, "screen-space error that asks for refinement", gt=0,
                          le=1000.0, shapes_dag=True),
    "max_refine": Param(int, 8, "most tiles refined per phase", ge=0, le=100_000, shapes_dag=True),
    "refine_phases": Param(int, 4, "refinement phases", ge=0, le=100, shapes_dag=True),
    "image_width": Param(int, 400, "rendered width, pixels", ge=8, le=8192),
    "image_height": Param(int, 300, "rendered height, pixels", ge=8, le=8192),
    "exaggeration": Param(float, 6.0, "vertical exaggeration", gt=0, le=1000.0),
    "views": Param(list, list(DEFAULT_VIEWS), "cameras", length=(1, 64),
                   items=Param(dict, fields=_view_fields()), shapes_dag=True),
}  # fmt: skip


def check(params: Mapping[str, Any]) -> None:
    """Band limits within what each map resolves; every camera complete."""
    for band, nside in (("elevation_lmax", "elevation_nside"), ("albedo_lmax", "albedo_nside")):
        if params[band] > 3 * params[nside] - 1:
            raise UsageError(
                f"cosmoscout {band}={params[band]} exceeds 3 * {nside} - 1 = "
                f"{3 * params[nside] - 1}"
            )
    required = ("name", "altitude", "lat", "lon_offset", "fov_deg")
    for i, view in enumerate(params["views"]):
        missing = [k for k in required if k not in view]
        if missing:
            raise UsageError(f"cosmoscout views[{i}] lacks {', '.join(missing)}")


workflow = Workflow(
    "cosmoscout",
    description=(
        "CosmoScout-VR-style planetary data preparation: HEALPix terrain and imagery, LOD "
        "pyramids, view-dependent refinement, ephemerides, rendered views"
    ),
    presets={
        "small": Preset(
            dict(DEFAULTS),
            runs=1,
            description="Mars at nside 512, 64x64-sample tiles, 3 cameras, up to 4 refinements",
        ),
        "paper": Preset(
            {
                **DEFAULTS,
                "max_refine": 10,
                "refine_phases": 5,
                "image_width": 480,
                "image_height": 360,
            },
            runs=50,
            description="50 runs: the scene's time and cameras move on with each run",
        ),
    },
    preload=(
        "numpy",
        "healpy",
        "astropy.coordinates",
        "matplotlib.image",
        "daydream_cosmoscout.ephemeris",
    ),
    requirements=("numpy>=1.24", "healpy>=1.16", "astropy>=5.3", "matplotlib>=3.7"),
    params=PARAMS,
)
workflow.validator(check)


# ---------------------------------------------------------------------------------------------
# inputs shared between components: base maps, cached per instance (warm starts reuse them)

_MAPS: OrderedDict[str, np.ndarray] = OrderedDict()


def _load_map(ctx: ComponentContext, key: str) -> np.ndarray:
    if key not in _MAPS:
        _MAPS[key] = ctx.store.get_array(key)
        while len(_MAPS) > 4:
            _MAPS.popitem(last=False)
    return _MAPS[key]


def _surface(ctx: ComponentContext, spec: Mapping[str, Any]) -> Surface:
    return Surface(
        elevation_map=_load_map(ctx, str(spec["elevation_key"])),
        albedo_map=_load_map(ctx, str(spec["albedo_key"])),
        seed=int(spec["seed"]),
        radius_km=float(spec["radius_km"]),
        max_crater_level=int(spec["max_crater_level"]),
    )


# ---------------------------------------------------------------------------------------------
# components


@workflow.component
def terrain(
    ctx: ComponentContext,
    planet: str,
    nside: int,
    lmax: int,
    slope: float,
    relief_km: float,
    seed: int,
) -> dict[str, Any]:
    """Global relief: a fractal Gaussian field in planet radii; checks its spectral slope."""
    body = planet_by_name(planet)
    rms = relief_km / body.radius_km
    field = synthesise_map(nside, lmax, slope, rms=rms, mean=0.0, seed=seed, stream=1)
    key = ctx.key("elevation.npy")
    ctx.store.put_array(key, field)
    fit_lmax = min(lmax, 2 * nside) // 2
    return {
        "key": key,
        "nside": nside,
        "mean_km": float(field.mean(dtype=np.float64) * body.radius_km),
        "rms_km": float(field.std(dtype=np.float64) * body.radius_km),
        "min_km": float(field.min() * body.radius_km),
        "max_km": float(field.max() * body.radius_km),
        "spectral_slope": fitted_slope(field, lmin=8, lmax=fit_lmax),
    }


@workflow.component
def imagery(
    ctx: ComponentContext, nside: int, lmax: int, slope: float, mean: float, rms: float, seed: int
) -> dict[str, Any]:
    """Global albedo map (the imagery layer's base)."""
    field = synthesise_map(nside, lmax, slope, rms=rms, mean=mean, seed=seed, stream=2)
    field = np.clip(field, 0.03, 0.8)
    key = ctx.key("albedo.npy")
    ctx.store.put_array(key, field)
    return {"key": key, "nside": nside, "mean": float(field.mean(dtype=np.float64))}


@workflow.component
def ephemeris(ctx: ComponentContext, planet: str, time: str) -> dict[str, Any]:
    """Sun and Earth as seen from the planet at the scene's time (offline ephemeris)."""
    from daydream_cosmoscout.ephemeris import scene_ephemeris

    return scene_ephemeris(planet, time)


@workflow.component
def pyramid(
    ctx: ComponentContext, face: int, levels: int, resolution: int, surface: Mapping[str, Any]
) -> dict[str, Any]:
    """LOD pyramid of one base face: levels 0..`levels`, with per-tile geometric errors."""
    field = _surface(ctx, surface)
    finest = levels + 1
    nside = 2**finest * resolution
    elevation, albedo = field.sample(nside, tl.face_pixels(face, finest, resolution))
    elevation_levels = tl.pyramid(elevation, finest)[::-1]  # coarsest (face) first
    albedo_levels = tl.pyramid(albedo, finest)[::-1]
    samples = resolution * resolution
    out: dict[str, Any] = {"face": face, "resolution": resolution, "levels": []}
    for level in range(levels + 1):
        errors = tl.geometric_errors(elevation_levels[level], elevation_levels[level + 1], samples)
        elevation_key = ctx.key(f"elevation-L{level}.npy")
        albedo_key = ctx.key(f"albedo-L{level}.npy")
        ctx.store.put_array(elevation_key, elevation_levels[level].astype(np.float32))
        ctx.store.put_array(albedo_key, albedo_levels[level].astype(np.float32))
        out["levels"].append(
            {
                "level": level,
                "first_tile": face * 4**level,
                "elevation_key": elevation_key,
                "albedo_key": albedo_key,
                "errors": errors.tolist(),
                "mean": float(elevation_levels[level].mean()),
            }
        )
    out["finest_mean"] = float(elevation_levels[finest].mean())
    return out


@workflow.component
def refine(
    ctx: ComponentContext, level: int, index: int, resolution: int, surface: Mapping[str, Any]
) -> dict[str, Any]:
    """Prepare the four children of tile (level, index), and their geometric errors."""
    field = _surface(ctx, surface)
    nside = 2 ** (level + 2) * resolution
    elevation, albedo = field.sample(nside, tl.tile_pixels(level, index, resolution, depth=2))
    child_elevation = tl.coarsen(elevation)
    child_albedo = tl.coarsen(albedo)
    errors = tl.geometric_errors(child_elevation, elevation, resolution * resolution)
    elevation_key = ctx.key("elevation.npy")
    albedo_key = ctx.key("albedo.npy")
    ctx.store.put_array(elevation_key, child_elevation.astype(np.float32))
    ctx.store.put_array(albedo_key, child_albedo.astype(np.float32))
    return {
        "level": level + 1,
        "first_tile": 4 * index,
        "elevation_key": elevation_key,
        "albedo_key": albedo_key,
        "errors": errors.tolist(),
        "mean": float(child_elevation.mean()),
    }


@workflow.component
def render(
    ctx: ComponentContext,
    cut_key: str,
    camera: Mapping[str, Any],
    sun_direction: list[float],
    exaggeration: float,
) -> dict[str, Any]:
    """Ray-cast one camera's view of the tile cut; writes the shaded view and its LOD map."""
    from daydream_cosmoscout.render import CutSamples, png_bytes, render_view

    cut = ctx.store.get_json(cut_key)
    resolution = int(cut["resolution"])
    samples = resolution * resolution
    arrays: dict[str, np.ndarray] = {}

    def load(key: str) -> np.ndarray:
        if key not in arrays:
            arrays[key] = ctx.store.get_array(key)
        return arrays[key]

    leaves = cut["leaves"]
    elevation = np.concatenate([load(e)[off : off + samples] for _, _, e, _, off in leaves]).astype(
        np.float64
    )
    albedo = np.concatenate([load(a)[off : off + samples] for _, _, _, a, off in leaves]).astype(
        np.float64
    )
    samples_of_cut = CutSamples(
        levels=np.array([leaf[0] for leaf in leaves]),
        indices=np.array([leaf[1] for leaf in leaves]),
        elevation=elevation,
        albedo=albedo,
        resolution=resolution,
    )
    view = Camera.from_json(camera)
    rgb, level_image, stats = render_view(
        view, samples_of_cut, np.asarray(sun_direction), exaggeration
    )
    image_key = ctx.key(f"{view.name}.png")
    lod_key = ctx.key(f"{view.name}-lod.png")
    ctx.store.put(image_key, png_bytes(rgb))
    lod = np.where(level_image >= 0, level_image, np.nan).astype(np.float64)  # sky: no colour
    ctx.store.put(
        lod_key,
        png_bytes(lod, cmap="viridis", vmin=0, vmax=max(1, samples_of_cut.max_level)),
    )
    seen = level_image[level_image >= 0]
    return {
        "camera": view.name,
        "image_key": image_key,
        "lod_key": lod_key,
        **stats,
        "max_level_seen": int(seen.max()) if seen.size else -1,
        "level_histogram": np.bincount(seen, minlength=samples_of_cut.max_level + 1).tolist()
        if seen.size
        else [],
    }


# ---------------------------------------------------------------------------------------------
# the phase generator (runs on the controller)


def scene_time(epoch: str, hours_per_run: float, run_index: int) -> str:
    start = datetime.fromisoformat(epoch)
    return (start + timedelta(hours=hours_per_run * run_index)).isoformat()


class TileIndex:
    """What the controller knows of prepared tiles: geometric errors and where samples are."""

    def __init__(self, resolution: int) -> None:
        self.resolution = resolution
        self.errors: dict[tuple[int, int], float] = {}
        self.where: dict[tuple[int, int], tuple[str, str, int]] = {}

    def add(self, block: Mapping[str, Any]) -> None:
        """Record a block of consecutive tiles (a pyramid level of a face, or four children)."""
        level = int(block["level"])
        first = int(block["first_tile"])
        samples = self.resolution * self.resolution
        for i, error in enumerate(block["errors"]):
            tile = (level, first + i)
            self.errors[tile] = float(error)
            self.where[tile] = (str(block["elevation_key"]), str(block["albedo_key"]), i * samples)


@workflow.headliner
def headline(result: Mapping[str, Any]) -> str:
    """The level-of-detail selection reached and the views rendered."""
    return (
        f"{result['leaves']} tiles after {result['refinements']} refinements "
        f"({result['unrefined_candidates']} left unrefined), {len(result['images'])} views; "
        f"relief rms {result['relief_rms_km']:.2f} km"
    )


@workflow.phases
def plan(run: RunContext):  # type: ignore[no-untyped-def]
    p = {**DEFAULTS, **{k: v for k, v in run.params.items() if v is not None}}
    body = planet_by_name(str(p["planet"]))
    seed = int(run.seed)
    when = scene_time(str(p["epoch"]), float(p["hours_per_run"]), run.run_index)
    resolution = int(p["resolution"])
    # Each phase says what it knows of the next one's width (the hot-start predictor weighs
    # it): twelve faces, then refinements of at most max_refine tiles, then one render per
    # view.
    views_count = len(p["views"])
    refine_phases = int(p["refine_phases"])
    max_refine = int(p["max_refine"])

    def after_refinement(done: int) -> WidthHint:
        if done < refine_phases:
            return WidthHint(at_most=max(max_refine, views_count))
        return WidthHint(expected=views_count)

    relief, albedo, sky = yield Phase(
        [
            Call(
                "terrain",
                {
                    "planet": body.name,
                    "nside": p["elevation_nside"],
                    "lmax": p["elevation_lmax"],
                    "slope": p["elevation_slope"],
                    "relief_km": p["relief_km"],
                    "seed": seed,
                },
            ),
            Call(
                "imagery",
                {
                    "nside": p["albedo_nside"],
                    "lmax": p["albedo_lmax"],
                    "slope": p["albedo_slope"],
                    "mean": p["albedo_mean"],
                    "rms": p["albedo_rms"],
                    "seed": seed,
                },
            ),
            Call("ephemeris", {"planet": body.name, "time": when}),
        ],
        WidthHint(expected=12),
    )
    surface = {
        "elevation_key": relief["key"],
        "albedo_key": albedo["key"],
        "seed": seed,
        "radius_km": body.radius_km,
        "max_crater_level": p["max_crater_level"],
    }
    pyramids = [
        Call(
            "pyramid",
            {
                "face": face,
                "levels": p["pyramid_levels"],
                "resolution": resolution,
                "surface": surface,
            },
        )
        for face in range(12)
    ]
    faces = yield Phase(pyramids, after_refinement(0))
    index = TileIndex(resolution)
    for face in faces:
        for block in face["levels"]:
            index.add(block)
    cameras = [
        camera_from_view(
            view,
            float(sky["subsolar_lon_deg"]),
            run.run_index,
            int(p["image_width"]),
            int(p["image_height"]),
        )
        for view in p["views"]
    ]
    refinements: list[int] = []
    for _ in range(int(p["refine_phases"])):
        selection = select(
            index.errors, index.where, cameras, float(p["threshold_px"]), int(p["max_level"])
        )
        chosen = selection.candidates[: int(p["max_refine"])]
        if not chosen:
            break
        refinements.append(len(chosen))
        refines = [
            Call(
                "refine",
                {"level": level, "index": tile, "resolution": resolution, "surface": surface},
            )
            for _, (level, tile) in chosen
        ]
        blocks = yield Phase(refines, after_refinement(len(refinements)))
        for block in blocks:
            index.add(block)
    selection = select(
        index.errors, index.where, cameras, float(p["threshold_px"]), int(p["max_level"])
    )
    cut_key = f"{run.run_id}/controller/cut.json"
    run.store.put_json(
        cut_key,
        {
            "resolution": resolution,
            "leaves": [[lv, t, *index.where[(lv, t)]] for lv, t in selection.leaves],
        },
    )
    views = yield Phase(
        [
            Call(
                "render",
                {
                    "cut_key": cut_key,
                    "camera": camera.to_json(),
                    "sun_direction": sky["sun_direction_body"],
                    "exaggeration": p["exaggeration"],
                },
            )
            for camera in cameras
        ],
        WidthHint(expected=0),  # the run ends with its images
    )
    return {
        "time": when,
        "sun_distance_au": sky["sun_distance_au"],
        "subsolar_lat_deg": sky["subsolar_lat_deg"],
        "relief_rms_km": relief["rms_km"],
        "spectral_slope": relief["spectral_slope"],
        "refinements": refinements,
        "leaves": len(selection.leaves),
        "unrefined_candidates": len(selection.candidates),
        "images": [v["image_key"] for v in views],
    }
