"""Still-shot simulation: one femtosecond pulse, one randomly oriented microcrystal (or none).

Each pixel is the integral, over its sub-pixels and over the pulse's spectrum, of a
reciprocal-space model of the crystal (in the manner of nanoBragg, much simplified): every
lattice point h carries the true intensity |F_h|^2 spread as an isotropic Gaussian of width
`sigma_q` (finite domain size and mosaicity). Each wavelength of the spiky SASE spectrum has its
own Ewald sphere, which slices these blobs, so a spot's total is about
``scale * |F_h|^2 * exp(-eps^2 / (2 sigma_q^2))``: the *partiality* of a still comes out of the
physics rather than being imposed. The spectrum channels are what make simulation the heaviest
component, as it is in ExaFEL's own simulations. Added on top: solvent background with a
water ring, Poisson counting noise, and a few single-pixel "zingers" (cosmic rays, hot pixels).
Most shots are *blanks*: the pulse missed every crystal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from daydream_exafel.crystal import CrystalModel
from daydream_exafel.geometry import Geometry, random_rotation

WATER_RING_Q = 1.0 / 3.1  # 1/Angstrom
WATER_RING_WIDTH = 0.035


@dataclass(frozen=True)
class ShotParams:
    """Physics of a shot, shared by every shot of a run."""

    hit_rate: float = 0.35  # probability that a pulse hits a crystal
    sigma_q: float = 0.0025  # 1/Angstrom, reciprocal-space spot size (domain size, mosaicity)
    mean_spot_photons: float = 150.0  # photons in a fully recorded spot of mean intensity
    crystal_size_spread: float = 0.5  # log-normal sigma of the per-shot scale
    background: float = 0.05  # photons per microsteradian, flat part
    water_ring: float = 0.2  # photons per microsteradian at the water ring's peak
    oversample: int = 1  # sub-pixels per pixel side
    bandwidth: float = 0.001  # relative rms width of the SASE spectrum
    spectrum_channels: int = 8  # wavelengths sampled from each pulse's spectrum
    zingers: float = 3.0  # mean number of hot single pixels per image


@dataclass
class Shot:
    """A simulated detector image and its ground truth."""

    image: np.ndarray  # (size, size) int32 counts
    crystal: bool
    orientation: np.ndarray  # 3x3 rotation U (identity for blanks)
    scale: float  # photons per unit |F|^2 on a fully recorded spot


@lru_cache(maxsize=4)
def _subpixel_frame(geometry: Geometry, oversample: int) -> tuple[np.ndarray, np.ndarray]:
    """q vectors (n_pixels, o*o, 3) and q-space areas (n_pixels, o*o) of all sub-pixels."""
    n = geometry.size
    offsets = (np.arange(oversample) + 0.5) / oversample - 0.5
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    sub_r = rows.reshape(-1, 1, 1) + offsets.reshape(1, -1, 1)
    sub_c = cols.reshape(-1, 1, 1) + offsets.reshape(1, 1, -1)
    sub_r, sub_c = np.broadcast_arrays(sub_r, sub_c)
    sub_r = sub_r.reshape(n * n, -1)
    sub_c = sub_c.reshape(n * n, -1)
    q = geometry.pixel_to_q(sub_r, sub_c)
    cy, cx = geometry.beam_centre
    r2 = ((sub_c - cx) ** 2 + (sub_r - cy) ** 2) * geometry.pixel_mm**2 + geometry.distance_mm**2
    solid_angle = (geometry.pixel_mm / oversample) ** 2 * geometry.distance_mm / r2**1.5
    # A solid angle on the Ewald sphere (radius 1/wavelength) is an area in reciprocal space.
    return q, solid_angle / geometry.wavelength**2


def background_image(geometry: Geometry, params: ShotParams, ring_scale: float) -> np.ndarray:
    """Expected background photons per pixel: flat solvent scatter plus the water ring."""
    q = geometry.pixel_resolution
    ring = np.exp(-0.5 * ((q - WATER_RING_Q) / WATER_RING_WIDTH) ** 2)
    microsteradians = geometry.pixel_solid_angle * 1e6
    return (params.background + ring_scale * params.water_ring * ring) * microsteradians


def sase_spectrum(params: ShotParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A pulse's spectrum: relative wavelength offsets and weights (summing to one).

    Channels span +-2.5 rms of a Gaussian envelope; SASE spikiness is a gamma-distributed
    random weight per channel.
    """
    n = max(1, params.spectrum_channels)
    if n == 1:
        return np.zeros(1), np.ones(1)
    offsets = np.linspace(-2.5, 2.5, n) * params.bandwidth
    envelope = np.exp(-0.5 * (offsets / params.bandwidth) ** 2)
    weights = envelope * rng.gamma(2.0, 0.5, n)
    return offsets, weights / weights.sum()


def bragg_image(
    model: CrystalModel,
    geometry: Geometry,
    orientation: np.ndarray,
    scale: float,
    params: ShotParams,
    spectrum: tuple[np.ndarray, np.ndarray] = (np.zeros(1), np.ones(1)),
) -> np.ndarray:
    """Expected Bragg photons per pixel for a crystal in `orientation` (no noise)."""
    grid, offset = model.p1_lookup
    q0, area0 = _subpixel_frame(geometry, params.oversample)
    a = orientation @ model.b_matrix
    a_inv = np.linalg.inv(a)
    shape = np.array(grid.shape)
    sigma2 = params.sigma_q**2
    photons = np.zeros(q0.shape[0])
    for rel_offset, weight in zip(*spectrum, strict=True):
        # At wavelength lambda0 * (1 + d), a pixel's q scales by 1 / (1 + d).
        k = 1.0 / (1.0 + rel_offset)
        q = q0 * k
        hkl = np.rint(q @ a_inv.T).astype(np.int64)
        dq = q - hkl @ a.T
        idx = hkl + offset
        inside = np.all((idx >= 0) & (idx < shape), axis=-1)
        idx = np.where(inside[..., None], idx, 0)
        intensity = np.where(inside, grid[idx[..., 0], idx[..., 1], idx[..., 2]], 0.0)
        density = np.exp(-0.5 * np.einsum("...i,...i->...", dq, dq) / sigma2)
        photons += weight * k * k * (intensity * density * area0).sum(axis=-1)
    photons *= scale / (2 * np.pi * sigma2)
    return photons.reshape(geometry.size, geometry.size)


def simulate_shot(
    model: CrystalModel,
    geometry: Geometry,
    params: ShotParams,
    seed: int,
    shot_index: int,
) -> Shot:
    """Simulate shot `shot_index` of a run; the same (seed, index) always gives the same shot."""
    rng = np.random.default_rng([seed, shot_index])
    crystal = bool(rng.random() < params.hit_rate)
    orientation = random_rotation(rng)
    size_factor = float(rng.lognormal(0.0, params.crystal_size_spread))
    ring_scale = float(rng.uniform(0.5, 1.5))
    scale = params.mean_spot_photons / float(np.mean(model.intensities)) * size_factor
    spectrum = sase_spectrum(params, rng)
    expected = background_image(geometry, params, ring_scale)
    if crystal:
        expected = expected + bragg_image(model, geometry, orientation, scale, params, spectrum)
    else:
        orientation = np.eye(3)
        scale = 0.0
    image = rng.poisson(expected).astype(np.int32)
    n_zingers = rng.poisson(params.zingers)
    rows = rng.integers(0, geometry.size, n_zingers)
    cols = rng.integers(0, geometry.size, n_zingers)
    image[rows, cols] += rng.integers(50, 500, n_zingers).astype(np.int32)
    return Shot(image=image, crystal=crystal, orientation=orientation, scale=scale)
