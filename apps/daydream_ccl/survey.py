"""The survey: tomographic redshift distributions, noise, and the tracer pairs of each probe.

An LSST-like "3x2pt" setup (LSST DESC Science Requirements Document, Year 1): Smail-type
parent distributions ``n(z) ~ z^2 exp(-(z/z0)^alpha)``, convolved with a Gaussian photo-z
scatter ``sigma_z (1+z)`` per tomographic bin. Sources are split into bins of equal number,
lenses into bins of equal width in photo-z. Shape noise ``sigma_e^2 / n`` and shot noise
``1 / n`` enter the Gaussian covariance.

Probes and the two-point functions they contribute:

- ``shear``: cosmic shear, every source pair (i <= j): xi_+ and xi_-;
- ``ggl``: galaxy-galaxy lensing, lens i x source j with the source bin behind the lens bin:
  gamma_t;
- ``clustering``: angular clustering, each lens bin with itself: w(theta).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import erf

PROBES = ("shear", "ggl", "clustering")
#: correlation types (pyccl names) of each probe, in data-vector order
PROBE_TYPES: dict[str, tuple[str, ...]] = {
    "shear": ("GG+", "GG-"),
    "ggl": ("NG",),
    "clustering": ("NN",),
}
ARCMIN2_PER_SR = (180.0 * 60.0 / np.pi) ** 2


@dataclass(frozen=True)
class Survey:
    """Survey configuration; every field can be overridden by a workflow parameter."""

    n_source_bins: int = 3
    n_lens_bins: int = 2
    source_z0: float = 0.13
    source_alpha: float = 0.78
    lens_z0: float = 0.26
    lens_alpha: float = 0.94
    sigma_z_source: float = 0.05
    sigma_z_lens: float = 0.03
    lens_z_min: float = 0.2
    lens_bin_width: float = 0.2
    n_source_arcmin2: float = 10.0
    n_lens_arcmin2: float = 18.0
    sigma_e: float = 0.26
    f_sky: float = 0.3
    lens_bias: float = 0.95  # b(z) = lens_bias / D(z)
    z_max: float = 3.5
    n_z: int = 256

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Survey:
        """Take the fields present in `params` (a preset's or a call's), defaults for the rest."""
        fields = cls.__dataclass_fields__
        return cls(**{name: params[name] for name in fields if name in params})

    def to_params(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def z(self) -> np.ndarray:
        return np.linspace(0.0, self.z_max, self.n_z)

    def source_nz(self) -> list[np.ndarray]:
        """Normalised n(z) of each source bin, on `self.z`."""
        parent = smail(self.z, self.source_z0, self.source_alpha)
        edges = equal_number_edges(self.z, parent, self.n_source_bins)
        return [photo_z_bin(self.z, parent, lo, hi, self.sigma_z_source) for lo, hi in edges]

    def lens_edges(self) -> list[tuple[float, float]]:
        lo = self.lens_z_min + self.lens_bin_width * np.arange(self.n_lens_bins)
        return [(float(a), float(a + self.lens_bin_width)) for a in lo]

    def lens_nz(self) -> list[np.ndarray]:
        """Normalised n(z) of each lens bin, on `self.z`."""
        parent = smail(self.z, self.lens_z0, self.lens_alpha)
        return [
            photo_z_bin(self.z, parent, lo, hi, self.sigma_z_lens) for lo, hi in self.lens_edges()
        ]

    def tracer_names(self, probes: tuple[str, ...] | list[str] = PROBES) -> list[str]:
        """Tracers used by `probes`: lens bins first, then source bins."""
        lens = any(p in ("ggl", "clustering") for p in probes)
        source = any(p in ("shear", "ggl") for p in probes)
        names = [f"lens{i}" for i in range(self.n_lens_bins)] if lens else []
        return names + ([f"src{i}" for i in range(self.n_source_bins)] if source else [])

    def pairs(self, probe: str) -> list[tuple[str, str]]:
        """Tracer pairs whose two-point functions make up `probe`."""
        if probe == "shear":
            n = self.n_source_bins
            return [(f"src{i}", f"src{j}") for i in range(n) for j in range(i, n)]
        if probe == "clustering":
            return [(f"lens{i}", f"lens{i}") for i in range(self.n_lens_bins)]
        if probe == "ggl":
            z = self.z
            src_mean = [float(np.trapezoid(z * n, z)) for n in self.source_nz()]
            return [
                (f"lens{i}", f"src{j}")
                for i, (_, hi) in enumerate(self.lens_edges())
                for j in range(self.n_source_bins)
                if src_mean[j] > hi
            ]
        raise ValueError(f"unknown probe {probe!r}; valid probes: {', '.join(PROBES)}")

    def noise(self, tracer: str) -> float:
        """Noise power of a tracer's auto-spectrum: shape noise or shot noise, per steradian."""
        if tracer.startswith("src"):
            density = self.n_source_arcmin2 / self.n_source_bins * ARCMIN2_PER_SR
            return self.sigma_e**2 / density
        index = int(tracer.removeprefix("lens"))
        z = self.z
        parent = smail(z, self.lens_z0, self.lens_alpha)
        parent = parent / np.trapezoid(parent, z)
        lo, hi = self.lens_edges()[index]
        inside = (z >= lo) & (z < hi)
        fraction = float(np.trapezoid(np.where(inside, parent, 0.0), z))
        return 1.0 / (self.n_lens_arcmin2 * fraction * ARCMIN2_PER_SR)


def smail(z: np.ndarray, z0: float, alpha: float) -> np.ndarray:
    """Unnormalised Smail-type parent distribution."""
    return np.asarray(z**2 * np.exp(-((z / z0) ** alpha)))


def equal_number_edges(z: np.ndarray, nz: np.ndarray, n_bins: int) -> list[tuple[float, float]]:
    """True-redshift edges that split `nz` into bins holding equal numbers of galaxies."""
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (nz[1:] + nz[:-1]) * np.diff(z))])
    cdf /= cdf[-1]
    cuts = np.interp(np.linspace(0.0, 1.0, n_bins + 1), cdf, z)
    cuts[0], cuts[-1] = z[0], z[-1]
    return [(float(a), float(b)) for a, b in itertools.pairwise(cuts)]


def photo_z_bin(
    z: np.ndarray, parent: np.ndarray, lo: float, hi: float, sigma_z: float
) -> np.ndarray:
    """n(z) of galaxies whose photo-z falls in [lo, hi), Gaussian scatter sigma_z (1+z)."""
    width = np.sqrt(2.0) * sigma_z * (1.0 + z)
    selected = 0.5 * parent * (erf((hi - z) / width) - erf((lo - z) / width))
    return np.asarray(selected / np.trapezoid(selected, z))
