"""Cosmologies: CAMB power spectra through pyccl, and cosmologies rebuilt from stored spectra.

`sample_cosmology` runs CAMB (the expensive, OpenMP-parallel Boltzmann solve plus HMCode
non-linear corrections) once per cosmology and stores the linear and non-linear matter power
spectra on pyccl's spline grid. Later components rebuild the same cosmology from those arrays
with `pyccl.CosmologyCalculator`, so CAMB runs once per cosmology, not once per component.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyccl as ccl

#: the mock data are generated from this cosmology (flat LCDM, massless neutrinos)
FIDUCIAL: dict[str, float] = {
    "Omega_c": 0.27,
    "Omega_b": 0.045,
    "h": 0.67,
    "n_s": 0.96,
    "sigma8": 0.80,
}
#: parameters the workflow samples and fits; the others stay at their fiducial values
VARIED = ("Omega_c", "sigma8")
#: default prior box of the varied parameters
PRIOR: dict[str, tuple[float, float]] = {"Omega_c": (0.20, 0.34), "sigma8": (0.68, 0.92)}
PK = "delta_matter:delta_matter"


def camb_cosmology(
    params: Mapping[str, float],
    *,
    kmax: float = 10.0,
    accuracy: int = 0,
    halofit: str = "mead2020",
    threads: int = 0,
) -> ccl.Cosmology:
    """A pyccl cosmology whose linear and non-linear P(k) are computed by CAMB (now).

    `threads` sets CAMB's OpenMP thread count (0: OpenMP's default, i.e. OMP_NUM_THREADS).
    """
    import camb

    camb.config.ThreadNum = int(threads)
    cosmo = ccl.Cosmology(
        **params,
        transfer_function="boltzmann_camb",
        matter_power_spectrum="camb",
        extra_parameters={
            "camb": {
                "kmax": float(kmax),
                "AccuracyTarget": int(accuracy),
                "halofit_version": halofit,
            }
        },
    )
    cosmo.compute_nonlin_power()
    return cosmo


def power_arrays(cosmo: ccl.Cosmology) -> dict[str, np.ndarray]:
    """The spline arrays of a computed cosmology: a (na,), k (nk,) in 1/Mpc, pk (2, na, nk).

    ``pk[0]`` is the linear and ``pk[1]`` the non-linear matter power spectrum, in Mpc^3.
    """
    a, lk, pk_lin = cosmo.get_linear_power().get_spline_arrays()
    a_nl, lk_nl, pk_nl = cosmo.get_nonlin_power().get_spline_arrays()
    if not (np.array_equal(a, a_nl) and np.array_equal(lk, lk_nl)):
        raise RuntimeError("linear and non-linear spectra are on different grids")
    return {"a": np.asarray(a), "k": np.exp(lk), "pk": np.stack([pk_lin, pk_nl])}


def calculator(params: Mapping[str, float], arrays: Mapping[str, np.ndarray]) -> ccl.Cosmology:
    """Rebuild a cosmology from stored power spectra (no Boltzmann solve)."""
    a, k, pk = arrays["a"], arrays["k"], arrays["pk"]
    return ccl.CosmologyCalculator(
        **params,
        pk_linear={"a": a, "k": k, PK: pk[0]},
        pk_nonlin={"a": a, "k": k, PK: pk[1]},
    )


def derived(cosmo: ccl.Cosmology, params: Mapping[str, float]) -> dict[str, Any]:
    """Small derived quantities of a computed cosmology, for the run summary."""
    omega_m = params["Omega_c"] + params["Omega_b"]
    a_half = 1.0 / 1.5
    return {
        "sigma8": float(ccl.sigma8(cosmo)),
        "S8": float(ccl.sigma8(cosmo) * np.sqrt(omega_m / 0.3)),
        "Omega_m": omega_m,
        "growth_z0.5": float(ccl.growth_factor(cosmo, a_half)),
        "f_z0.5": float(ccl.growth_rate(cosmo, a_half)),
        "chi_z1_mpc": float(ccl.comoving_radial_distance(cosmo, 0.5)),
    }
