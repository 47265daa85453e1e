"""Scaling and merging of still-shot observations, and merging statistics.

Stills record partial reflections on an unknown per-shot scale (crystal size, pulse energy).
The merge, in the manner of cctbx.xfel's merging with a partiality model:

1. keep observations whose estimated partiality is at least `min_partiality`, correct them
   by it (I / p), and map their indices to the asymmetric unit with cctbx;
2. alternate between merging (weighted mean per unique reflection) and re-estimating each
   shot's scale factor against the merged intensities (least squares, mean scale one), a few
   cycles; no reference structure is used;
3. merge with cctbx (`merge_equivalents`), and report: completeness against the complete set
   to the resolution limit, multiplicity, CC1/2 (odd versus even shots), <I/sigma>, and, as
   validation only, CC and R against the true intensities.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from daydream_exafel.crystal import CrystalModel


@dataclass
class Merged:
    indices: np.ndarray  # (n, 3) asymmetric unit
    intensities: np.ndarray
    sigmas: np.ndarray
    multiplicity: np.ndarray
    stats: dict[str, Any]
    miller_array: Any  # cctbx miller array of merged intensities


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _asu_keys(model: CrystalModel, hkl: np.ndarray) -> np.ndarray:
    """Map indices to the asymmetric unit (cctbx), as integer keys."""
    from cctbx import miller
    from cctbx.array_family import flex

    if len(hkl) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    mset = miller.set(model.symmetry, flex.miller_index(hkl.astype(int).tolist()), False)
    return np.array(mset.map_to_asu().indices(), dtype=np.int64).reshape(-1, 3)


def _weighted_mean(
    group: np.ndarray, values: np.ndarray, weights: np.ndarray, n: int
) -> np.ndarray:
    total = np.bincount(group, weights=weights, minlength=n)
    return np.bincount(group, weights=weights * values, minlength=n) / np.maximum(total, 1e-300)


def scale_and_merge(
    observations: np.ndarray,
    shots: np.ndarray,
    model: CrystalModel,
    *,
    min_partiality: float = 0.3,
    cycles: int = 4,
    n_shells: int = 5,
) -> Merged:
    """Scale and merge observations (rows of `integration.OBSERVATION_COLUMNS`)."""
    from cctbx import miller
    from cctbx.array_family import flex

    keep = (observations[:, 5] >= min_partiality) & (observations[:, 4] > 0)
    asu = _asu_keys(model, observations[keep, :3])
    # Only reflections of the complete set (resolution limit, no systematic absences).
    complete = {tuple(h) for h in model.indices.tolist()}
    in_set = np.array([tuple(h) in complete for h in asu.tolist()], dtype=bool)
    keep[np.flatnonzero(keep)[~in_set]] = False
    obs, shot, asu = observations[keep], shots[keep], asu[in_set]
    unique, group = np.unique(asu, axis=0, return_inverse=True)
    group = group.ravel()
    n_unique = len(unique)
    intensity = obs[:, 3] / obs[:, 5]
    sigma = obs[:, 4] / obs[:, 5]
    shot_ids, shot_group = np.unique(shot, return_inverse=True)
    shot_group = shot_group.ravel()
    scale = np.ones(len(shot_ids))
    for _ in range(cycles):
        g = scale[shot_group]
        reference = _weighted_mean(group, intensity / g, (g / sigma) ** 2, n_unique)
        ref = reference[group]
        num = np.bincount(shot_group, weights=intensity * ref, minlength=len(shot_ids))
        den = np.bincount(shot_group, weights=ref * ref, minlength=len(shot_ids))
        scale = np.where(den > 0, num / np.maximum(den, 1e-300), 1.0)
        scale = np.clip(scale / np.exp(np.mean(np.log(np.maximum(scale, 1e-6)))), 0.05, 20.0)
    g = scale[shot_group]
    scaled_i, scaled_s = intensity / g, sigma / g

    # Final merge with cctbx.
    mset = miller.set(model.symmetry, flex.miller_index(asu.astype(int).tolist()), False)
    unmerged = miller.array(mset, flex.double(scaled_i), flex.double(scaled_s))
    unmerged.set_observation_type_xray_intensity()
    merged = unmerged.merge_equivalents(use_internal_variance=False).array()
    m_idx = np.array(merged.indices(), dtype=np.int64).reshape(-1, 3)
    m_int = np.array(merged.data())
    m_sig = np.array(merged.sigmas())
    counts = np.bincount(group, minlength=n_unique)
    # merged indices come back sorted like np.unique's; map multiplicities by key to be safe
    mult_lookup = {tuple(h): int(c) for h, c in zip(unique.tolist(), counts, strict=True)}
    m_mult = np.array([mult_lookup[tuple(h)] for h in m_idx.tolist()], dtype=np.int64)

    # CC1/2: odd against even shots.
    half = (shot % 2).astype(bool)
    halves = []
    for part in (half, ~half):
        w = (g[part] / sigma[part]) ** 2
        mean = _weighted_mean(group[part], scaled_i[part], w, n_unique)
        present = np.bincount(group[part], minlength=n_unique) > 0
        halves.append((mean, present))
    both = halves[0][1] & halves[1][1]
    cc_half = _pearson(halves[0][0][both], halves[1][0][both])

    # Validation against the truth (not used to scale or merge anything).
    truth = {tuple(h): i for h, i in zip(model.indices.tolist(), model.intensities, strict=True)}
    true_i = np.array([truth.get(tuple(h), np.nan) for h in m_idx.tolist()])
    known = np.isfinite(true_i)
    cc_truth = _pearson(m_int[known], true_i[known])
    k = float(np.sum(m_int[known] * true_i[known]) / max(np.sum(true_i[known] ** 2), 1e-300))
    r_truth = float(
        np.sum(np.abs(m_int[known] - k * true_i[known])) / max(np.sum(np.abs(m_int[known])), 1e-300)
    )
    n_possible = len(model.indices)
    completeness = float(np.count_nonzero(known)) / n_possible

    # Resolution shells (equal volume in reciprocal space).
    d_model = 1.0 / np.linalg.norm(model.indices @ model.b_matrix.T, axis=1)
    d_obs = 1.0 / np.linalg.norm(m_idx @ model.b_matrix.T, axis=1) if len(m_idx) else np.zeros(0)
    s3_max = (1.0 / model.d_min) ** 3
    s3_min = (1.0 / d_model.max()) ** 3
    edges = (s3_min + (s3_max - s3_min) * np.linspace(0, 1, n_shells + 1)) ** (1.0 / 3.0)
    edges[-1] *= 1.0 + 1e-9
    shells = []
    for lo, hi in itertools.pairwise(edges):
        in_model = np.count_nonzero((1 / d_model >= lo) & (1 / d_model < hi))
        sel = known & (1 / np.maximum(d_obs, 1e-9) >= lo) & (1 / np.maximum(d_obs, 1e-9) < hi)
        shells.append(
            {
                "d_max": round(1.0 / float(lo), 3),
                "d_min": round(1.0 / float(hi), 3),
                "completeness": round(np.count_nonzero(sel) / max(int(in_model), 1), 4),
                "multiplicity": round(float(np.mean(m_mult[sel])) if sel.any() else 0.0, 2),
                "i_over_sigma": round(
                    float(np.mean(m_int[sel] / m_sig[sel])) if sel.any() else 0.0, 2
                ),
                "cc_truth": _round(_pearson(m_int[sel], true_i[sel])),
            }
        )

    stats = {
        "shots": len(shot_ids),
        "observations": len(obs),
        "observations_rejected": int(np.count_nonzero(~keep)),
        "unique": len(m_idx),
        "possible": n_possible,
        "completeness": round(completeness, 4),
        "multiplicity": round(float(np.mean(m_mult)) if len(m_mult) else 0.0, 3),
        "i_over_sigma": round(float(np.mean(m_int / m_sig)) if len(m_int) else 0.0, 3),
        "cc_half": _round(cc_half),
        "cc_truth": _round(cc_truth),
        "r_truth": _round(r_truth),
        "scale_spread": _round(float(np.std(np.log(scale)))) if len(scale) else None,
        "shells": shells,
    }
    return Merged(
        indices=m_idx,
        intensities=m_int,
        sigmas=m_sig,
        multiplicity=m_mult,
        stats=stats,
        miller_array=merged,
    )


def _round(x: float, digits: int = 4) -> float | None:
    return None if not np.isfinite(x) else round(float(x), digits)


def mtz_bytes(merged: Merged, wavelength: float) -> bytes:
    """The merged intensities as an MTZ file (iotbx), returned as bytes."""
    dataset = merged.miller_array.as_mtz_dataset(column_root_label="I", wavelength=wavelength)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "merged.mtz")
        dataset.mtz_object().write(path)
        with open(path, "rb") as handle:
            return handle.read()


def csv_text(merged: Merged) -> str:
    """The merged intensities as CSV: h,k,l,I,sigI,multiplicity."""
    lines = ["h,k,l,I,sigI,multiplicity"]
    for (h, k, l_), i, s, m in zip(
        merged.indices.tolist(), merged.intensities, merged.sigmas, merged.multiplicity, strict=True
    ):
        lines.append(f"{h},{k},{l_},{i:.6g},{s:.6g},{m}")
    return "\n".join(lines) + "\n"
