"""The `exafel` workflow: serial femtosecond crystallography, collected until complete.

Phases (the widths of all but the first depend on results)::

    build_model (1)
    repeat per batch of shots, until the merged data reach the completeness target:
        simulate        (shots / shots_per_component)
        find_hits       (one per simulate component)
        find_spots      (hits / hits_per_component)       <- width set by the hit count
        index_integrate (hits / hits_per_component)
        merge           (1, over every batch so far)

Each batch's size is chosen from the previous merges: the completeness curve so far
(assumed ``1 - exp(-n / tau)`` in the number n of indexed shots) and the yield of indexed
shots per shot give the shots still needed. Images, spot lists and integrated observations
travel through the object store by key; payloads and results are small JSON.

This module must not import cctbx at import time: the controller imports it (to read the
workflow), and cctbx must be imported before scipy in any process that uses both (see
`daydream_exafel.cctbx_first`). Components import it inside the instance, where the runtime
environment's preload list imports it first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from daydream_core.errors import UsageError
from daydream_core.model import Call, WidthHint
from daydream_core.params import Param
from daydream_core.workflow import (
    ComponentContext,
    Phase,
    PhaseGenerator,
    Preset,
    RunContext,
    Workflow,
)
from daydream_exafel.cctbx_first import ensure_cctbx_importable
from daydream_exafel.images import get_image, put_image

# How shots are batched and spread over components, in both presets.
BATCHING = {
    "first_batch": 32,
    "min_batch": 16,
    "max_batch": 32,
    "shots_per_component": 8,
    "hits_per_component": 2,
}

DEFAULTS: dict[str, Any] = {
    "unit_cell": [34.0, 45.0, 52.0, 90.0, 90.0, 90.0],
    "space_group": "P 21 21 21",
    "d_min": 2.5,
    "geometry": {},
    "shot": {},
    "hit": {},
    "spots": {},
    "indexing": {},
    "merge": {},
    "first_batch": 32,
    "min_batch": 16,
    "max_batch": 48,
    "shots_per_component": 8,
    "hits_per_component": 2,
    "completeness_target": 0.9,
    "max_batches": 6,
}

_MODELS: dict[tuple[str, str], Any] = {}


def _group(**fields: Param) -> Param:
    """A mapping of optional settings, each checked when given (the component's own defaults
    apply to the rest)."""
    return Param(dict, {}, fields=fields)


def _pos(le: float) -> Param:
    return Param(float, gt=0, le=le)


def _count(ge: int, le: int) -> Param:
    return Param(int, ge=ge, le=le)


def _fraction(gt: float = 0.0) -> Param:
    return Param(float, gt=gt, le=1.0)


PARAMS: dict[str, Param] = {
    "unit_cell": Param(
        list,
        DEFAULTS["unit_cell"],
        "a, b, c (A), alpha, beta, gamma (degrees)",
        items=Param(float, gt=0, lt=1000.0),
        length=(6, 6),
    ),
    "space_group": Param(str, DEFAULTS["space_group"], "a space-group symbol (cctbx)"),
    "d_min": Param(float, DEFAULTS["d_min"], "resolution limit, A", ge=0.5, le=50.0),
    "geometry": _group(
        wavelength=_pos(10.0), distance_mm=_pos(10_000.0), pixel_mm=_pos(10.0),
        size=_count(16, 8192),
    ),
    "shot": _group(
        hit_rate=_fraction(), sigma_q=_pos(1.0), mean_spot_photons=_pos(1e9),
        crystal_size_spread=Param(float, ge=0, le=5.0), background=Param(float, ge=0, le=1e6),
        water_ring=Param(float, ge=0, le=1e6), oversample=_count(1, 8),
        bandwidth=Param(float, ge=0, le=0.5), spectrum_channels=_count(1, 1024),
        zingers=Param(float, ge=0, le=1e6),
    ),
    "hit": _group(sigma=_pos(1000.0), min_peaks=_count(1, 100_000)),
    "spots": _group(
        kernel=_count(1, 255), sigma_background=_pos(1000.0), sigma_strong=_pos(1000.0),
        min_pixels=_count(1, 100_000), max_pixels=_count(1, 10_000_000),
    ),
    "indexing": _group(
        n_basis=_count(3, 10_000), n_score=_count(1, 100_000), length_tol=_pos(1.0),
        angle_tol_deg=_pos(90.0), eps_max=_pos(1.0), match_tol=_pos(1.0),
        accept_fraction=_fraction(), n_solutions=_count(1, 1000),
        min_matched=_count(1, 100_000), min_fraction=_fraction(),
    ),
    "merge": _group(
        min_partiality=_fraction(), cycles=_count(1, 1000), n_shells=_count(1, 100)
    ),
    "first_batch": Param(int, DEFAULTS["first_batch"], "shots of the first batch", ge=1,
                         le=100_000, shapes_dag=True),
    "min_batch": Param(int, DEFAULTS["min_batch"], "fewest shots of a later batch", ge=1,
                       le=100_000, shapes_dag=True),
    "max_batch": Param(int, DEFAULTS["max_batch"], "most shots of a later batch", ge=1,
                       le=100_000, shapes_dag=True),
    "shots_per_component": Param(int, DEFAULTS["shots_per_component"],
                                 "shots simulated by one component", ge=1, le=10_000,
                                 shapes_dag=True),
    "hits_per_component": Param(int, DEFAULTS["hits_per_component"],
                                "hits processed by one component", ge=1, le=10_000,
                                shapes_dag=True),
    "completeness_target": Param(float, DEFAULTS["completeness_target"],
                                 "stop once the merged data are this complete", gt=0, le=1.0,
                                 shapes_dag=True),
    "max_batches": Param(int, DEFAULTS["max_batches"], "most batches of shots", ge=1, le=1000,
                         shapes_dag=True),
}  # fmt: skip
workflow = Workflow(
    "exafel",
    description="Serial femtosecond crystallography (cctbx): simulate still shots, find hits, "
    "find spots, index and integrate, merge; collect batches until complete.",
    module="daydream_exafel.workflow",
    # cctbx first: its bundled libstdc++ must be loaded before scipy's C++ extensions.
    preload=("cctbx.array_family.flex", "cctbx.miller", "iotbx.mtz", "numpy", "scipy.ndimage"),
    requirements=("cctbx-base>=2024.1", "numpy>=1.24", "scipy>=1.10"),
    params=PARAMS,
    presets={
        "small": Preset(
            {
                "unit_cell": [34.0, 45.0, 52.0, 90.0, 90.0, 90.0],
                "space_group": "P 21 21 21",
                "d_min": 2.5,
                "geometry": {"wavelength": 1.3, "distance_mm": 90.0, "pixel_mm": 0.2, "size": 512},
                "shot": {"hit_rate": 0.35, "spectrum_channels": 12},
                **BATCHING,
                "completeness_target": 0.95,
                "max_batches": 6,
            },
            runs=1,
            description="a small orthorhombic protein-like crystal to 2.5 A; about a minute",
        ),
        "paper": Preset(
            {
                "unit_cell": [79.1, 79.1, 37.9, 90.0, 90.0, 90.0],
                "space_group": "P 43 21 2",
                "d_min": 2.2,
                "geometry": {"wavelength": 1.3, "distance_mm": 75.0, "pixel_mm": 0.2, "size": 512},
                "shot": {"hit_rate": 0.3, "spectrum_channels": 16},
                **BATCHING,
                "completeness_target": 0.98,
                "max_batches": 10,
            },
            runs=50,
            description="a lysozyme-like tetragonal cell (P 43 21 2) to 2.2 A, 50 runs",
        ),
    },
)


@workflow.validator
def validate(params: Mapping[str, Any]) -> None:
    """What the declared ranges cannot say alone (run after them, before anything is
    deployed): batch bounds in order, a known space group, a detector reaching d_min."""
    from daydream_exafel.geometry import Geometry

    p = {**DEFAULTS, **dict(params)}
    if int(p["min_batch"]) > int(p["max_batch"]):
        raise UsageError("exafel min_batch must not exceed max_batch")
    # The space group itself is checked by cctbx in the first component: cctbx cannot be
    # imported by a controller that has loaded scipy (their libstdc++ versions conflict).
    if not str(p["space_group"]).strip():
        raise UsageError("exafel space_group must be a space-group symbol, e.g. 'P 21 21 21'")
    geometry = Geometry(**dict(p["geometry"]))
    corner = geometry.corner_resolution
    if corner > float(p["d_min"]):
        raise UsageError(
            f"exafel detector reaches only ~{corner:.2f} A in its corners, short of d_min "
            f"{float(p['d_min']):.2f} A: move it closer or make it larger"
        )


def _model(ctx: ComponentContext, key: str) -> Any:
    """The crystal model stored at `key`, cached for the life of the instance."""
    ensure_cctbx_importable()
    from daydream_exafel.crystal import CrystalModel

    cache_key = (ctx.store.uri, key)
    if cache_key not in _MODELS:
        _MODELS[cache_key] = CrystalModel.from_bytes(ctx.store.get(key))
    return _MODELS[cache_key]


def _geometry(data: Mapping[str, Any]) -> Any:
    from daydream_exafel.geometry import Geometry

    return Geometry(**dict(data))


# -- components ---------------------------------------------------------------------------------


@workflow.component
def build_model(
    ctx: ComponentContext,
    unit_cell: Sequence[float],
    space_group: str,
    d_min: float,
    seed: int,
) -> dict[str, Any]:
    """A seeded random protein-like structure and its true intensities (cctbx)."""
    ensure_cctbx_importable()
    from daydream_exafel.crystal import build_crystal_model

    model = build_crystal_model(list(unit_cell), space_group, d_min, seed)
    key = ctx.key("model.npz")
    ctx.store.put(key, model.to_bytes())
    return {
        "model": key,
        "unique": len(model.indices),
        "mean_intensity": float(np.mean(model.intensities)),
    }


@workflow.component
def simulate(
    ctx: ComponentContext,
    model: str,
    geometry: Mapping[str, Any],
    shot: Mapping[str, Any],
    seed: int,
    first: int,
    count: int,
) -> dict[str, Any]:
    """Simulate shots first .. first+count-1; each image goes to the store."""
    from daydream_exafel.simulation import ShotParams, simulate_shot

    crystal = _model(ctx, model)
    geo = _geometry(geometry)
    params = ShotParams(**dict(shot))
    shots, truth = [], []
    for index in range(first, first + count):
        result = simulate_shot(crystal, geo, params, seed, index)
        key = ctx.key(f"shot-{index:06d}.npy.z")
        put_image(ctx.store, key, result.image)
        shots.append({"shot": index, "image": key})
        truth.append(
            {
                "shot": index,
                "crystal": result.crystal,
                "orientation": result.orientation.tolist(),
                "scale": result.scale,
            }
        )
    truth_key = ctx.key("truth.json")
    ctx.store.put_json(truth_key, truth)
    # Ground truth is reported for validation only; no later step reads it to decide anything.
    return {"shots": shots, "truth": truth_key, "crystals": [t["crystal"] for t in truth]}


@workflow.component
def find_hits(
    ctx: ComponentContext,
    shots: Sequence[Mapping[str, Any]],
    geometry: Mapping[str, Any],
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Veto blanks: keep the shots with enough multi-pixel peaks."""
    from daydream_exafel.spotfinding import hit_score

    geo = _geometry(geometry)
    hits, peaks = [], []
    for entry in shots:
        score = hit_score(get_image(ctx.store, str(entry["image"])), geo, **dict(options))
        peaks.append(score.peaks)
        if score.hit:
            hits.append({"shot": int(entry["shot"]), "image": str(entry["image"])})
    return {"hits": hits, "peaks": peaks, "shots": [int(e["shot"]) for e in shots]}


@workflow.component
def find_spots(
    ctx: ComponentContext,
    hits: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Dispersion spot finding on each hit; spot tables go to the store."""
    from daydream_exafel.spotfinding import find_spots as dispersion_spots

    out = []
    for entry in hits:
        table = dispersion_spots(get_image(ctx.store, str(entry["image"])), **dict(options))
        key = ctx.key(f"spots-{int(entry['shot']):06d}.npy")
        ctx.store.put_array(key, table)
        out.append({**entry, "spots": key, "n_spots": len(table)})
    return {"shots": out}


@workflow.component
def index_integrate(
    ctx: ComponentContext,
    model: str,
    shots: Sequence[Mapping[str, Any]],
    geometry: Mapping[str, Any],
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Index each hit against the known cell, then integrate its predicted reflections."""
    from daydream_exafel.indexing import index_spots
    from daydream_exafel.integration import integrate

    crystal = _model(ctx, model)
    geo = _geometry(geometry)
    observations, orientations, failed = [], {}, []
    summary = []
    for entry in shots:
        shot = int(entry["shot"])
        table = ctx.store.get_array(str(entry["spots"]))
        result = index_spots(
            table[:, :2],
            table[:, 2],
            crystal.b_matrix,
            geo,
            d_min=crystal.d_min,
            symmetry=crystal.index_rotations,
            **dict(options),
        )
        if not result.indexed:
            failed.append(shot)
            continue
        image = get_image(ctx.store, str(entry["image"]))
        obs = integrate(
            image,
            result.orientation,
            crystal.b_matrix,
            geo,
            d_min=crystal.d_min,
            sigma_eps=result.sigma_eps,
        )
        observations.append(np.column_stack([np.full(len(obs), shot, dtype=float), obs]))
        orientations[str(shot)] = result.orientation.tolist()
        summary.append(
            {
                "shot": shot,
                "spots": len(table),
                "indexed_spots": int(result.matched.sum()),
                "rmsd_q": round(result.rmsd_q, 6),
                "sigma_eps": round(result.sigma_eps, 6),
                "observations": len(obs),
            }
        )
    integrated_key = None
    if observations:
        integrated_key = ctx.key("integrated.npy")
        ctx.store.put_array(integrated_key, np.concatenate(observations))
    orientations_key = ctx.key("orientations.json")
    ctx.store.put_json(orientations_key, orientations)
    return {
        "integrated": integrated_key,
        "orientations": orientations_key,
        "indexed": summary,
        "failed": failed,
    }


@workflow.component
def merge(
    ctx: ComponentContext,
    model: str,
    integrated: Sequence[str],
    orientations: Sequence[str],
    truth: Sequence[str],
    geometry: Mapping[str, Any],
    options: Mapping[str, Any],
    batch: int,
) -> dict[str, Any]:
    """Scale and merge every integrated observation so far; write MTZ, CSV and statistics."""
    ensure_cctbx_importable()
    from daydream_exafel.geometry import misorientation_deg
    from daydream_exafel.merging import csv_text, mtz_bytes, scale_and_merge

    crystal = _model(ctx, model)
    geo = _geometry(geometry)
    arrays = [ctx.store.get_array(key) for key in integrated]
    data = np.concatenate(arrays) if arrays else np.zeros((0, 9))
    merged = scale_and_merge(data[:, 1:], data[:, 0].astype(np.int64), crystal, **dict(options))
    stats: dict[str, Any] = dict(merged.stats)

    # Validation against the simulator's truth: orientation error of every indexed shot.
    true_u: dict[str, Any] = {}
    for key in truth:
        for entry in ctx.store.get_json(key):
            true_u[str(entry["shot"])] = entry["orientation"]
    errors = []
    for key in orientations:
        for shot, u in ctx.store.get_json(key).items():
            errors.append(
                misorientation_deg(np.array(true_u[shot]), np.array(u), crystal.rotation_operators)
            )
    stats["orientation_error_deg_median"] = round(float(np.median(errors)), 4) if errors else None
    stats["orientation_error_deg_max"] = round(float(np.max(errors)), 4) if errors else None

    outputs = {
        "mtz": ctx.key(f"merged-batch{batch}.mtz"),
        "csv": ctx.key(f"merged-batch{batch}.csv"),
        "stats": ctx.key(f"stats-batch{batch}.json"),
    }
    ctx.store.put(outputs["mtz"], mtz_bytes(merged, geo.wavelength))
    ctx.store.put(outputs["csv"], csv_text(merged).encode())
    ctx.store.put_json(outputs["stats"], stats)
    return {"stats": stats, "outputs": outputs}


# -- the phase generator --------------------------------------------------------------------


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def next_batch_size(
    indexed: int,
    shots: int,
    completeness: float,
    target: float,
    *,
    minimum: int,
    maximum: int,
    multiple: int,
) -> int:
    """Shots to collect next, from the completeness curve and the indexing yield so far.

    Completeness after n indexed shots is modelled as ``1 - exp(-n / tau)`` (random
    orientations sample reciprocal space like a Poisson process); tau is fitted to the
    current point, giving the indexed shots still needed; dividing by the yield (indexed
    shots per shot) gives the shots. Clipped to [minimum, maximum], rounded up to `multiple`.
    """
    if indexed == 0 or completeness <= 0.0:
        need = maximum
    else:
        tau = -indexed / math.log(max(1e-9, 1.0 - min(completeness, 0.999999)))
        more_indexed = max(0.0, -tau * math.log(max(1e-9, 1.0 - target)) - indexed)
        need = math.ceil(1.1 * more_indexed * shots / indexed)
    need = int(min(maximum, max(minimum, need)))
    return int(math.ceil(need / multiple) * multiple)


@workflow.headliner
def headline(result: Mapping[str, Any]) -> str:
    """Completeness of the merged data against its target, and what it took."""
    final = result.get("final") or {}
    reached = "target reached" if result["target_reached"] else "below target"
    cc_half = final.get("cc_half")
    quality = f", CC1/2 {cc_half:.3f}" if isinstance(cc_half, float) else ""
    return (
        f"completeness {float(final.get('completeness', 0.0)):.3f} ({reached}){quality}; "
        f"{result['indexed']} of {result['shots']} shots indexed in {result['batches']} batches"
    )


@workflow.phases
def plan(run: RunContext) -> PhaseGenerator:
    p = {**DEFAULTS, **dict(run.params)}
    model_seed = int(run.rng.integers(2**31))
    shot_seed = int(run.rng.integers(2**31))
    geometry = dict(p["geometry"])
    per_sim = int(p["shots_per_component"])
    per_hit = int(p["hits_per_component"])

    # Each phase says what it knows of the next one's width (the hot-start predictor weighs
    # it): a batch's shots fix its simulations and hit finders, the hits bound the indexers,
    # and a later batch has at most max_batch shots.
    first_simulations = math.ceil(int(p["first_batch"]) / per_sim)
    later_at_most = math.ceil(int(p["max_batch"]) / per_sim)
    [built] = yield Phase(
        [
            Call(
                "build_model",
                {
                    "unit_cell": list(p["unit_cell"]),
                    "space_group": p["space_group"],
                    "d_min": p["d_min"],
                    "seed": model_seed,
                },
            )
        ],
        WidthHint(expected=first_simulations),
    )
    model = built["model"]

    integrated: list[str] = []
    orientation_keys: list[str] = []
    truth_keys: list[str] = []
    batches: list[dict[str, Any]] = []
    n_shots = n_indexed = 0
    batch_size = int(math.ceil(int(p["first_batch"]) / per_sim) * per_sim)
    last_stats: dict[str, Any] = {}
    last_outputs: dict[str, str] = {}
    for batch in range(int(p["max_batches"])):
        first = n_shots
        simulations = [
            Call(
                "simulate",
                {
                    "model": model,
                    "geometry": geometry,
                    "shot": dict(p["shot"]),
                    "seed": shot_seed,
                    "first": start,
                    "count": min(per_sim, first + batch_size - start),
                },
            )
            for start in range(first, first + batch_size, per_sim)
        ]
        simulated = yield Phase(simulations, WidthHint(expected=len(simulations)))
        n_shots += batch_size
        truth_keys += [s["truth"] for s in simulated]
        crystals = {
            s["shot"]: c for r in simulated for s, c in zip(r["shots"], r["crystals"], strict=True)
        }
        hit_results = yield [
            Call(
                "find_hits", {"shots": r["shots"], "geometry": geometry, "options": dict(p["hit"])}
            )
            for r in simulated
        ]
        hits = [h for r in hit_results for h in r["hits"]]
        indexed: list[dict[str, Any]] = []
        failed: list[int] = []
        if hits:
            spot_finders = [
                Call("find_spots", {"hits": chunk, "options": dict(p["spots"])})
                for chunk in _chunks(hits, per_hit)
            ]
            # The shots with spots are some of the hits: no more indexers than spot finders.
            spotted = yield Phase(spot_finders, WidthHint(at_most=len(spot_finders)))
            found = [s for r in spotted for s in r["shots"]]
            indexed_results = yield [
                Call(
                    "index_integrate",
                    {
                        "model": model,
                        "shots": chunk,
                        "geometry": geometry,
                        "options": dict(p["indexing"]),
                    },
                )
                for chunk in _chunks(found, per_hit)
            ]
            for r in indexed_results:
                indexed += r["indexed"]
                failed += r["failed"]
                orientation_keys.append(r["orientations"])
                if r["integrated"]:
                    integrated.append(r["integrated"])
        n_indexed += len(indexed)
        hit_shots = {h["shot"] for h in hits}
        record: dict[str, Any] = {
            "batch": batch,
            "shots": batch_size,
            "crystals": sum(crystals.values()),
            "hits": len(hits),
            "hits_true": sum(1 for s in hit_shots if crystals[s]),
            "blanks_rejected": sum(1 for s, c in crystals.items() if not c and s not in hit_shots),
            "indexed": len(indexed),
            "index_failed": len(failed),
        }
        if integrated and indexed:  # merge again only when this batch added data
            final = batch + 1 == int(p["max_batches"])  # else: done, or a batch of up to max
            [merged] = yield Phase(
                [
                    Call(
                        "merge",
                        {
                            "model": model,
                            "integrated": list(integrated),
                            "orientations": list(orientation_keys),
                            "truth": list(truth_keys),
                            "geometry": geometry,
                            "options": dict(p["merge"]),
                            "batch": batch,
                        },
                    )
                ],
                WidthHint(expected=0) if final else WidthHint(at_most=later_at_most),
            )
            last_stats, last_outputs = merged["stats"], merged["outputs"]
            record["merged"] = {k: v for k, v in last_stats.items() if k != "shells"}
        batches.append(record)
        completeness = float(last_stats.get("completeness", 0.0))
        if completeness >= float(p["completeness_target"]):
            break
        batch_size = next_batch_size(
            n_indexed,
            n_shots,
            completeness,
            float(p["completeness_target"]),
            minimum=int(p["min_batch"]),
            maximum=int(p["max_batch"]),
            multiple=per_sim,
        )
    return {
        "unique_reflections": built["unique"],
        "shots": n_shots,
        "indexed": n_indexed,
        "target_reached": float(last_stats.get("completeness", 0.0))
        >= float(p["completeness_target"]),
        "batches": batches,
        "final": last_stats,
        "outputs": last_outputs,
    }
