"""Integration of an indexed still: predict every reflection near the Ewald sphere and measure
it by summation with a local background.

Prediction uses the refined orientation: each reciprocal lattice point within the resolution
limit whose excitation error is below a few `sigma_eps` (the excitation-error spread estimated
at indexing) is projected onto the detector along its diffracted ray. The summation integrates
a disc around the predicted centre and subtracts the median of a surrounding annulus (robust to
neighbouring spots). Each observation carries its estimated partiality
``exp(-eps^2 / (2 sigma_eps^2))`` for the merging step.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from daydream_exafel.geometry import Geometry, lattice_points

OBSERVATION_COLUMNS = ("h", "k", "l", "intensity", "sigma", "partiality", "eps", "d")


@lru_cache(maxsize=4)
def _patch_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return rows.ravel(), cols.ravel()


def predict(
    orientation: np.ndarray,
    b: np.ndarray,
    geometry: Geometry,
    d_min: float,
    max_eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reflections near the Ewald sphere: (hkl, rows, cols, eps) on the detector."""
    hkl, _ = lattice_points(tuple(b.ravel()), 1.0 / d_min)
    q = hkl @ (orientation @ b).T
    rows, cols, eps = geometry.q_to_pixel(q)
    keep = (np.abs(eps) < max_eps) & np.isfinite(rows)
    return hkl[keep], rows[keep], cols[keep], eps[keep]


def integrate(
    image: np.ndarray,
    orientation: np.ndarray,
    b: np.ndarray,
    geometry: Geometry,
    *,
    d_min: float,
    sigma_eps: float,
    n_sigma: float = 2.5,
    foreground_px: float = 3.0,
    background_px: tuple[float, float] = (4.5, 7.0),
) -> np.ndarray:
    """Summation integration of predicted reflections. Returns (n, 8) `OBSERVATION_COLUMNS`."""
    hkl, rows, cols, eps = predict(orientation, b, geometry, d_min, n_sigma * sigma_eps)
    radius = int(np.ceil(background_px[1]))
    inside = (
        (rows >= radius)
        & (rows < geometry.size - radius - 1)
        & (cols >= radius)
        & (cols < geometry.size - radius - 1)
    )
    hkl, rows, cols, eps = hkl[inside], rows[inside], cols[inside], eps[inside]
    if len(hkl) == 0:
        return np.zeros((0, len(OBSERVATION_COLUMNS)))
    d_rows, d_cols = _patch_offsets(radius)
    r0 = np.rint(rows).astype(np.int64)
    c0 = np.rint(cols).astype(np.int64)
    pr = r0[:, None] + d_rows[None, :]
    pc = c0[:, None] + d_cols[None, :]
    pixels = image[pr, pc].astype(np.float64)
    distance = np.hypot(pr - rows[:, None], pc - cols[:, None])
    foreground = distance <= foreground_px
    annulus = (distance >= background_px[0]) & (distance <= background_px[1])
    background = np.nanmedian(np.where(annulus, pixels, np.nan), axis=1)
    n_fg = foreground.sum(axis=1)
    n_bg = annulus.sum(axis=1)
    total = np.where(foreground, pixels, 0.0).sum(axis=1)
    intensity = total - n_fg * background
    # Poisson variance of the foreground plus the uncertainty of the background level
    # (the median's variance is ~ pi/2 times the mean's).
    variance = np.maximum(total, 1.0) + n_fg**2 * (np.pi / 2) * np.maximum(background, 1.0) / n_bg
    partiality = np.exp(-0.5 * (eps / sigma_eps) ** 2)
    q = hkl @ (orientation @ b).T
    d = 1.0 / np.linalg.norm(q, axis=1)
    return np.column_stack([hkl, intensity, np.sqrt(variance), partiality, eps, d])
