"""The components of the CCL workflow: each is one serverless invocation doing real cosmology.

Arguments and results are small JSON; arrays travel through the object store by key.

=================  =========================================================  ==============
kind               computes                                                   cost
=================  =========================================================  ==============
sample_cosmology   CAMB linear + HMCode non-linear P(k, z) of one cosmology   ~1 s, OpenMP
mock_data          the fiducial data vector and its Gaussian covariance       ~4 s, OpenMP
angular_power      C_ell of one probe's tracer pairs (non-Limber at low ell)  0.1-1 s
correlation        xi(theta) of one probe by Bessel integration of C_ell      0.01-0.3 s
likelihood         chi^2 and whitened residual of one cosmology               ~10 ms
=================  =========================================================  ==============
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyccl as ccl
from scipy.linalg import cho_factor, solve_triangular

from daydream_ccl import cosmology, spectra
from daydream_ccl.config import AnalysisConfig
from daydream_ccl.survey import PROBE_TYPES
from daydream_core.objectstore import ObjectStore
from daydream_core.workflow import ComponentContext


def sample_cosmology(
    ctx: ComponentContext, cosmology_params: Mapping[str, float], config: Mapping[str, Any]
) -> dict[str, Any]:
    """Run CAMB for one cosmology; store its linear and non-linear P(k, a)."""
    cfg = AnalysisConfig.from_params(config)
    params = dict(cosmology_params)
    cosmo = _camb(cfg, params, ctx.threads)
    keys = _put_power(ctx, cosmology.power_arrays(cosmo))
    return {"cosmology": params, "power": keys, "derived": cosmology.derived(cosmo, params)}


def mock_data(
    ctx: ComponentContext, config: Mapping[str, Any], noise_seed: int = 0
) -> dict[str, Any]:
    """The mock data vector (fiducial cosmology, same pipeline as the model) and its Gaussian
    covariance, from the C_ell of every pair of tracers including shape and shot noise."""
    cfg = AnalysisConfig.from_params(config)
    params = dict(cfg.fiducial)
    arrays = cosmology.power_arrays(_camb(cfg, params, ctx.threads))
    calc = cosmology.calculator(params, arrays)
    # every pair of tracers (the covariance needs them all); each probe's pairs are among them
    names = cfg.survey.tracer_names(cfg.probes)
    pairs = spectra.all_pairs(names)
    cls = spectra.angular_cls(
        calc, cfg.survey, pairs, cfg.ell, l_limber=cfg.l_limber, fkem_nchi=cfg.fkem_nchi
    )
    xis = {}
    for probe in cfg.probes:
        rows = [pairs.index(pair) for pair in cfg.survey.pairs(probe)]
        xis[probe] = _correlation(cfg, calc, probe, cls[rows])
    data = spectra.assemble(cfg.probes, xis)
    blocks = spectra.data_blocks(cfg.survey, cfg.probes)
    cov = spectra.gaussian_covariance(
        cfg.survey, blocks, names, cfg.ell, cls, cfg.theta_edges, n_ell_cov=cfg.n_ell_cov
    )
    if cov.shape != (data.size, data.size):
        raise RuntimeError(f"covariance {cov.shape} does not match data vector {data.size}")
    mask = spectra.scale_mask(calc, cfg.survey, blocks, cfg.theta, cfg.r_min_mpc)
    if cfg.mock_noise:
        rng = np.random.default_rng(noise_seed)
        sigma = np.sqrt(np.diag(cov))
        lower = np.linalg.cholesky(cov / np.outer(sigma, sigma))
        data = data + sigma * (lower @ rng.standard_normal(data.size))
    whitened = _whiten(cov[np.ix_(mask, mask)], data[mask])
    keys = {"data": ctx.key("data.npy"), "cov": ctx.key("cov.npy"), "mask": ctx.key("mask.npy")}
    ctx.store.put_array(keys["data"], data)
    ctx.store.put_array(keys["cov"], cov)
    ctx.store.put_array(keys["mask"], mask)
    return {
        **keys,
        "n_data": int(mask.sum()),
        "n_full": int(data.size),
        "snr": float(np.sqrt(whitened @ whitened)),
        "blocks": len(blocks),
    }


def angular_power(
    ctx: ComponentContext,
    cosmology_params: Mapping[str, float],
    power: Mapping[str, str],
    probe: str,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """C_ell of the tracer pairs of one probe, from one cosmology's stored P(k, a)."""
    cfg = AnalysisConfig.from_params(config)
    calc = cosmology.calculator(dict(cosmology_params), _get_power(ctx.store, power))
    cls = _angular(cfg, calc, probe)
    keys = {"cls": ctx.key("cls.npy"), "ell": ctx.key("ell.npy")}
    ctx.store.put_array(keys["cls"], cls)
    ctx.store.put_array(keys["ell"], cfg.ell)
    return {
        "probe": probe,
        "pairs": [list(p) for p in cfg.survey.pairs(probe)],
        **keys,
        "cl_ell100": [float(np.interp(100.0, cfg.ell, cl)) for cl in cls],
    }


def correlation(
    ctx: ComponentContext,
    cosmology_params: Mapping[str, float],
    probe: str,
    cls: str,
    ell: str,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """Correlation functions of one probe (xi_+/-, gamma_t or w) from its stored C_ell."""
    cfg = AnalysisConfig.from_params(config)
    cosmo = ccl.Cosmology(**dict(cosmology_params))  # a container: no spectra are computed
    spectra_cls = ctx.store.get_array(cls)
    if not np.allclose(ctx.store.get_array(ell), cfg.ell):
        raise ValueError("stored C_ell were computed on another ell grid")
    xi = _correlation(cfg, cosmo, probe, spectra_cls)
    key = ctx.key("xi.npy")
    ctx.store.put_array(key, xi)
    return {"probe": probe, "xi": key, "shape": list(xi.shape)}


def likelihood(
    ctx: ComponentContext,
    cosmology_params: Mapping[str, float],
    xi: Mapping[str, str],
    mock: Mapping[str, str],
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """chi^2 of one cosmology's correlation functions against the mock data; stores the
    whitened residual L^-1 (data - model) that the refinement's Gauss-Newton model uses."""
    cfg = AnalysisConfig.from_params(config)
    model = spectra.assemble(cfg.probes, {p: ctx.store.get_array(xi[p]) for p in cfg.probes})
    data = ctx.store.get_array(mock["data"])
    cov = ctx.store.get_array(mock["cov"])
    mask = ctx.store.get_array(mock["mask"]).astype(bool)
    if model.shape != data.shape:
        raise ValueError(f"model vector {model.shape} does not match data {data.shape}")
    residual = _whiten(cov[np.ix_(mask, mask)], (data - model)[mask])
    key = ctx.key("residual.npy")
    ctx.store.put_array(key, residual)
    per_probe = {}
    start = 0
    for probe in cfg.probes:
        size = len(cfg.survey.pairs(probe)) * len(PROBE_TYPES[probe]) * cfg.n_theta
        part = np.zeros(data.size, dtype=bool)
        part[start : start + size] = True
        part &= mask
        r = _whiten(cov[np.ix_(part, part)], (data - model)[part])
        per_probe[probe] = float(r @ r)
        start += size
    return {
        "cosmology": dict(cosmology_params),
        "chi2": float(residual @ residual),
        "chi2_probe": per_probe,
        "n_data": int(mask.sum()),
        "residual": key,
    }


# -- shared steps -------------------------------------------------------------------------


def _camb(cfg: AnalysisConfig, params: Mapping[str, float], threads: int) -> ccl.Cosmology:
    return cosmology.camb_cosmology(
        params, kmax=cfg.kmax, accuracy=cfg.camb_accuracy, halofit=cfg.halofit, threads=threads
    )


def _angular(cfg: AnalysisConfig, cosmo: ccl.Cosmology, probe: str) -> np.ndarray:
    return spectra.angular_cls(
        cosmo,
        cfg.survey,
        cfg.survey.pairs(probe),
        cfg.ell,
        l_limber=cfg.l_limber,
        fkem_nchi=cfg.fkem_nchi,
    )


def _correlation(
    cfg: AnalysisConfig, cosmo: ccl.Cosmology, probe: str, cls: np.ndarray
) -> np.ndarray:
    return spectra.correlations(
        cosmo, cfg.ell, cls, cfg.theta, PROBE_TYPES[probe], method=cfg.corr_method
    )


def _whiten(cov: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """L^-1 v for C = L L^T, via the correlation matrix (the blocks differ by orders of
    magnitude in amplitude)."""
    sigma = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sigma, sigma)
    lower, _ = cho_factor(corr, lower=True)
    return np.asarray(solve_triangular(lower, vector / sigma, lower=True))


def _put_power(ctx: ComponentContext, arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    keys = {name: ctx.key(f"{name}.npy") for name in arrays}
    for name, key in keys.items():
        ctx.store.put_array(key, arrays[name])
    return keys


def _get_power(store: ObjectStore, keys: Mapping[str, str]) -> dict[str, np.ndarray]:
    return {name: store.get_array(key) for name, key in keys.items()}
