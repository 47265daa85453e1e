"""Procedural planetary fields on HEALPix: fractal relief, albedo, and a hierarchy of craters.

The surface is a well-defined function of position at any resolution:

- a smooth *base* field, a Gaussian random field with angular power spectrum
  ``C_l ∝ l^(-β)`` synthesised from seeded spherical-harmonic coefficients (``healpy.alm2map``)
  on a HEALPix map and interpolated bilinearly between pixel centres;
- *craters* generated per HEALPix tile and level: level ``l`` has ``12·4^l`` tiles, each with a
  few crater slots whose radii are a fraction of the tile size, so the cumulative size-frequency
  distribution follows ``N(>r) ∝ r^-2``, the slope observed on the Moon and Mars. Crater
  parameters are counter-based hashes of ``(seed, level, tile, slot)``, so every component that
  evaluates the same point gets the same crater, whichever tile it is preparing.

Sampling at a given resolution includes the crater levels that the sample spacing resolves
(`crater_levels_for`), which is how finer levels of detail reveal more craters.
"""

from __future__ import annotations

from dataclasses import dataclass

import healpy as hp
import numpy as np

# simple-to-complex crater transition on Mars (km); depth/diameter laws from Garvin et al.
_SIMPLE_COMPLEX_KM = 7.0
_SLOTS = 4
_SLOT_PROBABILITY = 0.6
_MIN_CRATER_LEVEL = 1
_TYPICAL_RADIUS = 0.07  # of the tile size (radii span 0.04..0.14)
_SUBPIXEL_ORDER = 12  # crater centres are placed on a grid 2^12 finer than their tile


def power_spectrum(lmax: int, slope: float) -> np.ndarray:
    """``C_l = l^(-slope)`` for l ≥ 2, zero for the monopole and dipole."""
    ell = np.arange(lmax + 1, dtype=np.float64)
    cl = np.zeros(lmax + 1)
    cl[2:] = ell[2:] ** (-slope)
    return cl


def random_alm(cl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian a_lm with variance C_l, in healpy's packing, from an explicit generator.

    ``healpy.synalm`` draws from NumPy's global state; drawing here keeps the field a pure
    function of the seed.
    """
    lmax = len(cl) - 1
    ell, m = hp.Alm.getlm(lmax)
    sigma = np.sqrt(cl[ell])
    real = rng.standard_normal(ell.size)
    imag = rng.standard_normal(ell.size)
    alm = np.where(m == 0, real * sigma, (real + 1j * imag) * sigma / np.sqrt(2.0))
    out: np.ndarray = alm.astype(np.complex128)
    return out


def synthesise_map(
    nside: int, lmax: int, slope: float, rms: float, mean: float, seed: int, stream: int
) -> np.ndarray:
    """A NESTED HEALPix map with the given spectrum, normalised to ``mean`` and ``rms``."""
    rng = np.random.default_rng([seed, stream])
    alm = random_alm(power_spectrum(lmax, slope), rng)
    field = hp.alm2map(alm, nside, lmax=lmax)
    field = hp.reorder(field, r2n=True)
    field = (field - field.mean()) / field.std() * rms + mean
    out: np.ndarray = field.astype(np.float32)
    return out


def fitted_slope(field_nested: np.ndarray, lmin: int, lmax: int) -> float:
    """The log-log slope of the map's measured angular power spectrum over [lmin, lmax]."""
    cl = hp.anafast(hp.reorder(field_nested, n2r=True), lmax=lmax)
    ell = np.arange(lmin, lmax + 1)
    slope, _ = np.polyfit(np.log(ell), np.log(cl[lmin : lmax + 1]), 1)
    return float(slope)


# ---------------------------------------------------------------------------------------------
# craters


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: np.ndarray = x ^ (x >> np.uint64(31))
    return out


def _uniform(seed: int, level: int, tiles: np.ndarray, slot: int, channel: int) -> np.ndarray:
    """Uniform [0, 1) numbers that are a pure function of their arguments."""
    head = _splitmix(np.array([seed * 1_000_003 + level * 101 + slot * 11 + channel], np.uint64))
    bits = _splitmix(tiles.astype(np.uint64) ^ head)
    out: np.ndarray = (bits >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return out


@dataclass(frozen=True)
class Craters:
    """The craters of one slot for an array of tiles at one level (arrays shaped like tiles)."""

    exists: np.ndarray
    centre: np.ndarray  # (n, 3) unit vectors
    radius: np.ndarray  # radians
    depth: np.ndarray  # planet radii
    rim: np.ndarray  # planet radii
    freshness: np.ndarray  # 0..1, brightens ejecta


def crater_slot(seed: int, level: int, tiles: np.ndarray, slot: int, radius_km: float) -> Craters:
    """The crater in `slot` of each tile of `level` (``exists`` says whether there is one)."""
    exists = _uniform(seed, level, tiles, slot, 0) < _SLOT_PROBABILITY
    sub = np.uint64(1 << (2 * _SUBPIXEL_ORDER))
    offset = (_uniform(seed, level, tiles, slot, 1) * float(sub)).astype(np.uint64)
    sub_pixels = (tiles.astype(np.uint64) * sub + offset).astype(np.int64)
    centre = np.stack(hp.pix2vec(2 ** (level + _SUBPIXEL_ORDER), sub_pixels, nest=True), axis=-1)
    tile_size = hp.nside2resol(2**level)
    u = _uniform(seed, level, tiles, slot, 2)
    radius = tile_size * (0.04 + 0.10 * u * u)
    diameter_km = 2.0 * radius * radius_km
    depth_km = np.where(
        diameter_km < _SIMPLE_COMPLEX_KM,
        0.2 * diameter_km,
        0.36 * np.power(np.maximum(diameter_km, 1e-9), 0.49),
    )
    depth = depth_km / radius_km
    return Craters(
        exists=exists,
        centre=centre,
        radius=radius,
        depth=depth,
        rim=0.25 * depth,
        freshness=_uniform(seed, level, tiles, slot, 3),
    )


def crater_profile(x: np.ndarray, depth: np.ndarray, rim: np.ndarray) -> np.ndarray:
    """Relief of a simple crater at normalised distance ``x = θ / r``: bowl, rim, ejecta."""
    bowl = rim + (depth + rim) * (x * x - 1.0)
    ejecta = rim * np.square(np.clip(2.0 - x, 0.0, 1.0))
    return np.where(x < 1.0, bowl, ejecta)


def crater_albedo(x: np.ndarray, freshness: np.ndarray) -> np.ndarray:
    """Albedo change: darker floors, bright ejecta blankets on fresh craters."""
    floor = -0.03 * (1.0 - x * x)
    ejecta = 0.06 * freshness * np.clip(2.0 - x, 0.0, 1.0)
    return np.where(x < 1.0, floor, ejecta)


def crater_levels_for(sample_nside: int, max_level: int) -> range:
    """Crater levels resolved by samples at `sample_nside`: typical radius ≥ one sample."""
    spacing = hp.nside2resol(sample_nside)
    top = _MIN_CRATER_LEVEL - 1
    for level in range(_MIN_CRATER_LEVEL, max_level + 1):
        if _TYPICAL_RADIUS * hp.nside2resol(2**level) >= spacing:
            top = level
    return range(_MIN_CRATER_LEVEL, top + 1)


def add_craters(
    vectors: np.ndarray,
    levels: range,
    seed: int,
    radius_km: float,
    elevation: np.ndarray,
    albedo: np.ndarray,
) -> None:
    """Add the craters of `levels` to `elevation` (planet radii) and `albedo` in place."""
    for level in levels:
        nside = 2**level
        own = hp.vec2pix(nside, vectors[:, 0], vectors[:, 1], vectors[:, 2], nest=True)
        tiles, inverse = np.unique(own, return_inverse=True)
        neighbours = hp.get_all_neighbours(nside, tiles, nest=True)  # (8, n); -1 if none
        table = np.vstack([tiles[None, :], neighbours])  # (9, n)
        for row in table:
            valid_tile = row >= 0
            safe = np.where(valid_tile, row, 0)
            for slot in range(_SLOTS):
                craters = crater_slot(seed, level, safe, slot, radius_km)
                present = (craters.exists & valid_tile)[inverse]
                if not present.any():
                    continue
                idx = np.nonzero(present)[0]
                tile_index = inverse[idx]
                centre = craters.centre[tile_index]
                cosine = np.einsum("ij,ij->i", vectors[idx], centre)
                theta = np.arccos(np.clip(cosine, -1.0, 1.0))
                x = theta / craters.radius[tile_index]
                near = x < 2.0
                if not near.any():
                    continue
                hit = idx[near]
                tile_hit = tile_index[near]
                elevation[hit] += crater_profile(
                    x[near], craters.depth[tile_hit], craters.rim[tile_hit]
                )
                albedo[hit] += crater_albedo(x[near], craters.freshness[tile_hit])


@dataclass(frozen=True)
class Surface:
    """The inputs that define the surface: base maps (NESTED) and crater parameters."""

    elevation_map: np.ndarray  # planet radii
    albedo_map: np.ndarray
    seed: int
    radius_km: float
    max_crater_level: int

    def sample(self, sample_nside: int, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Elevation (planet radii) and albedo at the centres of NESTED `pixels`."""
        vectors = np.stack(hp.pix2vec(sample_nside, pixels, nest=True), axis=-1)
        elevation = _base(self.elevation_map, sample_nside, pixels, vectors)
        albedo = _base(self.albedo_map, sample_nside, pixels, vectors)
        levels = crater_levels_for(sample_nside, self.max_crater_level)
        add_craters(vectors, levels, self.seed, self.radius_km, elevation, albedo)
        return elevation, np.clip(albedo, 0.02, 0.9)


def _base(
    field: np.ndarray, sample_nside: int, pixels: np.ndarray, vectors: np.ndarray
) -> np.ndarray:
    nside = hp.npix2nside(field.size)
    if sample_nside <= nside:
        # exact: the mean of the NESTED children of each sample pixel
        factor = (nside // sample_nside) ** 2
        blocks = field.reshape(-1, factor).astype(np.float64).mean(axis=1)
        exact: np.ndarray = blocks[pixels]
        return exact
    theta, phi = hp.vec2ang(vectors)
    return np.asarray(hp.get_interp_val(field.astype(np.float64), theta, phi, nest=True))
