"""Angular power spectra, correlation functions, the data vector and its Gaussian covariance."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import pyccl as ccl
from scipy.special import jv

from daydream_ccl.survey import PROBE_TYPES, Survey
from daydream_ccl.threads import omp_threads

#: flat-sky Bessel order of each correlation type's kernel
BESSEL_ORDER = {"NN": 0, "GG+": 0, "NG": 2, "GG-": 4}


def tracers(cosmo: ccl.Cosmology, survey: Survey, names: Iterable[str]) -> dict[str, ccl.Tracer]:
    """pyccl tracers by name: ``srcN`` weak lensing, ``lensN`` number counts (b = b0 / D)."""
    z = survey.z
    sources = survey.source_nz()
    lenses = survey.lens_nz()
    out: dict[str, ccl.Tracer] = {}
    for name in names:
        if name in out:
            continue
        if name.startswith("src"):
            out[name] = ccl.WeakLensingTracer(cosmo, dndz=(z, sources[int(name[3:])]))
        elif name.startswith("lens"):
            bias = survey.lens_bias / ccl.growth_factor(cosmo, 1.0 / (1.0 + z))
            out[name] = ccl.NumberCountsTracer(
                cosmo, has_rsd=False, dndz=(z, lenses[int(name[4:])]), bias=(z, bias)
            )
        else:
            raise ValueError(f"unknown tracer {name!r}")
    return out


def angular_cls(
    cosmo: ccl.Cosmology,
    survey: Survey,
    pairs: Sequence[tuple[str, str]],
    ell: np.ndarray,
    *,
    l_limber: int = -1,
    fkem_nchi: int = 256,
) -> np.ndarray:
    """C_ell of each tracer pair, shape (len(pairs), len(ell)).

    Pairs involving galaxy clustering are computed without the Limber approximation (FKEM)
    below `l_limber`, where it matters for w(theta) and gamma_t on large scales; cosmic shear
    uses Limber throughout.
    """
    by_name = tracers(cosmo, survey, [name for pair in pairs for name in pair])
    rows = []
    for a, b in pairs:
        exact = l_limber > 0 and (a.startswith("lens") or b.startswith("lens"))
        # FKEM runs thousands of tiny OpenMP regions: one thread is as fast, and immune to
        # oversubscribed cores (see threads.py)
        with omp_threads(1) if exact else nullcontext():
            cl = ccl.angular_cl(
                cosmo,
                by_name[a],
                by_name[b],
                ell,
                l_limber=l_limber if exact else -1,
                fkem_chi_min=1.0e-6,
                fkem_Nchi=int(fkem_nchi),
            )
        rows.append(cl)
    return np.array(rows)


def correlations(
    cosmo: ccl.Cosmology,
    ell: np.ndarray,
    cls: np.ndarray,
    theta_arcmin: np.ndarray,
    corr_types: Sequence[str],
    method: str = "fftlog",
) -> np.ndarray:
    """Correlation functions of each C_ell row for each type, shape (rows, types, theta)."""
    theta_deg = theta_arcmin / 60.0
    return np.array(
        [
            [
                ccl.correlation(cosmo, ell=ell, C_ell=cl, theta=theta_deg, type=t, method=method)
                for t in corr_types
            ]
            for cl in cls
        ]
    )


@dataclass(frozen=True)
class Block:
    """One stretch of the data vector: a correlation type of one tracer pair, over theta."""

    probe: str
    pair: tuple[str, str]
    corr_type: str


def data_blocks(survey: Survey, probes: Sequence[str]) -> list[Block]:
    """The data vector's layout: probe by probe, pair by pair, type by type."""
    return [
        Block(probe, pair, corr_type)
        for probe in probes
        for pair in survey.pairs(probe)
        for corr_type in PROBE_TYPES[probe]
    ]


def assemble(probes: Sequence[str], xis: Mapping[str, np.ndarray]) -> np.ndarray:
    """Flatten per-probe correlation arrays (pairs, types, theta) into the data vector, in the
    order of `data_blocks`."""
    return np.concatenate([np.asarray(xis[probe]).reshape(-1) for probe in probes])


def scale_mask(
    cosmo: ccl.Cosmology,
    survey: Survey,
    blocks: Sequence[Block],
    theta_arcmin: np.ndarray,
    r_min_mpc: float,
) -> np.ndarray:
    """Which data points to keep: blocks with a lens bin keep the angles above
    ``r_min / chi(mean z of the lens bin)``, where a linear galaxy bias is adequate."""
    z = survey.z
    lens_chi = [
        float(ccl.comoving_radial_distance(cosmo, 1.0 / (1.0 + np.trapezoid(z * nz, z))))
        for nz in survey.lens_nz()
    ]
    theta_rad = np.radians(theta_arcmin / 60.0)
    keep = []
    for block in blocks:
        lens = [int(name[4:]) for name in block.pair if name.startswith("lens")]
        if lens and r_min_mpc > 0:
            keep.append(theta_rad > r_min_mpc / min(lens_chi[i] for i in lens))
        else:
            keep.append(np.ones(theta_rad.size, dtype=bool))
    return np.concatenate(keep)


def all_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(names) for b in names[i:]]


def covariance_ells(ell_min: float, ell_max: float, n: int) -> np.ndarray:
    """Every integer multipole up to ~1000 (where Bessel kernels oscillate slowly in log ell),
    then `n` log-spaced ones up to `ell_max`."""
    ell_lin = min(1000.0, ell_max)
    linear = np.arange(max(2.0, np.ceil(ell_min)), ell_lin)
    return np.concatenate([linear, np.geomspace(ell_lin, ell_max, n)])


def bin_averaged_kernels(
    order: int, ell: np.ndarray, edges_arcmin: np.ndarray, n_sub: int = 24
) -> np.ndarray:
    """Area-weighted average of J_order(ell theta) over each angular bin, (n_theta, n_ell)."""
    edges = np.radians(edges_arcmin / 60.0)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        theta = np.linspace(lo, hi, n_sub)
        weights = theta / np.trapezoid(theta, theta)
        values = jv(order, np.outer(theta, ell))
        rows.append(np.trapezoid(weights[:, None] * values, theta, axis=0))
    return np.array(rows)


def gaussian_covariance(
    survey: Survey,
    blocks: Sequence[Block],
    names: Sequence[str],
    ell: np.ndarray,
    cls: np.ndarray,
    edges_arcmin: np.ndarray,
    n_ell_cov: int = 1500,
    ell_cov_max: float = 3.0e4,
) -> np.ndarray:
    """Gaussian covariance of the correlation-function data vector (flat sky).

    Cov[xi_A(t), xi_B(t')] = sum_ell (2 ell + 1) / (16 pi^2 f_sky) M_AB(ell) J_A(ell t) J_B(ell t')
    with M_AB = C^ac C^bd + C^ad C^bc for pairs A = (a, b), B = (c, d), where the auto-spectra
    include shape or shot noise; shear-shear blocks add the B-mode shape noise with sign + for
    (+,+) and (-,-) and - for (+,-). `cls` holds C_ell at `ell` for `all_pairs(names)`.
    """
    pairs = all_pairs(names)
    index = {pair: i for i, pair in enumerate(pairs)}
    lc = covariance_ells(ell[0], min(ell_cov_max, ell[-1]), n_ell_cov)
    # trapezoid weights in ell for the sum over integer multipoles, times the mode count
    dl = np.gradient(lc)
    weight = dl * (2.0 * lc + 1.0) / (16.0 * np.pi**2 * survey.f_sky)
    spectra = np.empty((len(pairs), lc.size))
    for i, cl in enumerate(cls):
        if np.all(cl > 0):
            spectra[i] = np.exp(np.interp(np.log(lc), np.log(ell), np.log(cl)))
        else:
            spectra[i] = np.interp(np.log(lc), np.log(ell), cl)
    noise = {name: survey.noise(name) for name in names}

    def power(a: str, b: str, with_noise: bool = True) -> np.ndarray:
        c = spectra[index[(a, b)] if (a, b) in index else index[(b, a)]]
        return np.asarray(c + noise[a]) if with_noise and a == b else c

    def noise_only(a: str, b: str) -> float:
        return noise[a] if a == b else 0.0

    kernels = {
        order: bin_averaged_kernels(order, lc, edges_arcmin) for order in set(BESSEL_ORDER.values())
    }
    n_theta = edges_arcmin.size - 1
    size = len(blocks) * n_theta
    cov = np.zeros((size, size))
    for i, x in enumerate(blocks):
        a, b = x.pair
        for j in range(i, len(blocks)):
            y = blocks[j]
            c, d = y.pair
            m = power(a, c) * power(b, d) + power(a, d) * power(b, c)
            if x.corr_type in ("GG+", "GG-") and y.corr_type in ("GG+", "GG-"):
                sign = 1.0 if x.corr_type == y.corr_type else -1.0
                bmode = noise_only(a, c) * noise_only(b, d) + noise_only(a, d) * noise_only(b, c)
                m = m + sign * bmode
            kx = kernels[BESSEL_ORDER[x.corr_type]]
            ky = kernels[BESSEL_ORDER[y.corr_type]]
            sub = (kx * (weight * m)) @ ky.T
            rows = slice(i * n_theta, (i + 1) * n_theta)
            cols = slice(j * n_theta, (j + 1) * n_theta)
            cov[rows, cols] = sub
            cov[cols, rows] = sub.T
    return cov
