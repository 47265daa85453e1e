"""The analysis configuration shared by every component of a run, built from workflow params.

The phase generator passes the configuration to each component as a small JSON dict
(`AnalysisConfig.to_json`), so components need nothing but their call arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from daydream_ccl.cosmology import FIDUCIAL, PRIOR, VARIED
from daydream_ccl.survey import PROBES, Survey


@dataclass(frozen=True)
class AnalysisConfig:
    """What is computed, and how finely."""

    survey: Survey = field(default_factory=Survey)
    probes: tuple[str, ...] = PROBES
    fiducial: Mapping[str, float] = field(default_factory=lambda: dict(FIDUCIAL))
    # CAMB through pyccl
    kmax: float = 30.0  # 1/Mpc; xi_- at a few arcmin needs k of tens per Mpc
    camb_accuracy: int = 1  # CAMB's AccuracyTarget
    halofit: str = "mead2020"  # HMCode-2020 non-linear power spectrum
    # angular power spectra: every integer ell below l_limber, then n_ell log-spaced up to ell_max
    ell_min: int = 2
    ell_max: float = 3.0e4
    n_ell: int = 40
    l_limber: int = 200  # below it, spectra with galaxy clustering are non-Limber (FKEM)
    fkem_nchi: int = 256
    # correlation functions
    theta_min_arcmin: float = 2.5
    theta_max_arcmin: float = 250.0
    n_theta: int = 10
    corr_method: str = "bessel"
    # scale cut of w(theta) and gamma_t: linear bias holds above ~8 Mpc/h (0 keeps every scale)
    r_min_mpc: float = 12.0
    # covariance
    n_ell_cov: int = 1500
    mock_noise: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> AnalysisConfig:
        names = {f.name for f in fields(cls)} - {"survey"}
        values: dict[str, Any] = {n: params[n] for n in names if n in params}
        if "probes" in values:
            values["probes"] = tuple(values["probes"])
            unknown = set(values["probes"]) - set(PROBES)
            if unknown or not values["probes"]:
                raise ValueError(f"probes must be some of {PROBES}, got {params['probes']}")
        if "fiducial" in values:
            values["fiducial"] = {**FIDUCIAL, **values["fiducial"]}
        return cls(survey=Survey.from_params(params), **values)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = self.survey.to_params()
        for f in fields(self):
            if f.name == "survey":
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out["fiducial"] = dict(self.fiducial)
        return out

    @property
    def ell(self) -> np.ndarray:
        if self.l_limber > self.ell_min:
            exact = np.arange(self.ell_min, self.l_limber, dtype=float)
            return np.concatenate([exact, np.geomspace(self.l_limber, self.ell_max, self.n_ell)])
        return np.geomspace(self.ell_min, self.ell_max, self.n_ell)

    @property
    def theta_edges(self) -> np.ndarray:
        """Log-spaced angular bin edges, in arcmin."""
        return np.geomspace(self.theta_min_arcmin, self.theta_max_arcmin, self.n_theta + 1)

    @property
    def theta(self) -> np.ndarray:
        """Angular bin centres (geometric), in arcmin."""
        edges = self.theta_edges
        return np.asarray(np.sqrt(edges[1:] * edges[:-1]))

    def cosmology(self, varied: Mapping[str, float]) -> dict[str, float]:
        """Full cosmological parameters: the fiducial ones with `varied` replaced."""
        unknown = set(varied) - set(self.fiducial)
        if unknown:
            raise ValueError(f"unknown cosmological parameters: {sorted(unknown)}")
        return {**self.fiducial, **{k: float(v) for k, v in varied.items()}}


def prior_box(params: Mapping[str, Any], varied: Sequence[str] = VARIED) -> dict[str, list[float]]:
    box = {**PRIOR, **params.get("prior", {})}
    return {name: [float(box[name][0]), float(box[name][1])] for name in varied}
