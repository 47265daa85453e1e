"""Adaptive refinement of the posterior peak: where to evaluate next, and when to stop.

Pure numpy, run by the phase generator on the controller. Parameters live in the unit cube
(the prior box mapped to [0, 1]^d). Every likelihood evaluation leaves its *whitened residual*
``r = L^-1 (data - model)`` (with ``C = L L^T`` the data covariance, so ``chi^2 = |r|^2``).
Each round:

1. a Gauss-Newton model of the residuals around the best point, ``r(u) ~ r_b + G (u - u_b)``,
   is fitted by least squares to the evaluated points nearest the best one; its minimum is the
   peak estimate (the step is capped by a trust radius that shrinks round by round) and
   ``G^T G`` is the Fisher matrix of the Laplace approximation of the posterior;
2. the number of new cosmologies grows with the number of points already within
   `delta_chi2` of the best (a peak that is well mapped asks for more points around it), so
   the widths of the next phases depend on the results;
3. proposals are the peak estimate plus Gaussian draws around it with the (inflated) Fisher
   covariance, capped by the trust radius;
4. the run has converged when the peak estimate moved by less than `tol_chi2` in Delta chi^2
   (the Fisher metric: 0.25 is half a standard deviation) since the last round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RefineSettings:
    delta_chi2: float = 6.17  # 2-sigma region for two parameters
    per_good: float = 1.0  # new cosmologies per point within delta_chi2 of the best
    min_new: int = 2
    max_new: int = 6
    initial_radius: float = 0.4  # trust radius in unit-cube coordinates
    shrink: float = 0.6
    min_radius: float = 0.005
    inflate: float = 1.5  # proposals spread over `inflate` Fisher standard deviations
    tol_chi2: float = 0.25  # converged: the peak moved by less than this Delta chi^2 (0.5 sigma)
    neighbours: int = 6  # evaluated points nearest the best used in the Gauss-Newton fit

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RefineSettings:
        fields = cls.__dataclass_fields__
        return cls(**{name: params[name] for name in fields if name in params})


@dataclass(frozen=True)
class Step:
    """One refinement decision."""

    proposals: np.ndarray  # (n, d) unit-cube points to evaluate next (empty when converged)
    best: np.ndarray
    best_chi2: float
    peak: np.ndarray
    predicted_chi2: float  # the Gauss-Newton model's chi^2 at `peak`
    fisher: np.ndarray | None  # Fisher matrix in unit-cube coordinates
    radius: float
    n_good: int
    converged: bool

    @property
    def covariance(self) -> np.ndarray | None:
        if self.fisher is None:
            return None
        return np.asarray(np.linalg.inv(self.fisher))


class Bounds:
    """The prior box of the varied parameters, and its map to the unit cube."""

    def __init__(self, names: Sequence[str], box: Mapping[str, Sequence[float]]) -> None:
        self.names = tuple(names)
        self.lo = np.array([float(box[n][0]) for n in self.names])
        self.hi = np.array([float(box[n][1]) for n in self.names])
        if np.any(self.hi <= self.lo):
            raise ValueError(f"empty prior box: {dict(box)}")

    @property
    def width(self) -> np.ndarray:
        return np.asarray(self.hi - self.lo)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        return np.asarray((np.asarray(x, dtype=float) - self.lo) / self.width)

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(self.lo + np.asarray(u, dtype=float) * self.width)

    def as_dict(self, u: np.ndarray) -> dict[str, float]:
        x = self.from_unit(u)
        return {n: round(float(v), 8) for n, v in zip(self.names, x, strict=True)}


def latin_hypercube(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """n points in [0, 1]^d, one per stratum along every axis."""
    columns = [(rng.permutation(n) + rng.random(n)) / n for _ in range(d)]
    return np.column_stack(columns)


def fit_jacobian(
    u: np.ndarray, residuals: np.ndarray, i_best: int, neighbours: int
) -> np.ndarray | None:
    """Least-squares G (n_data, d) of r(u) ~ r_b + G (u - u_b) from the points nearest the best.

    Returns None when there are too few points or G^T G is singular.
    """
    d = u.shape[1]
    du = u - u[i_best]
    dist = np.linalg.norm(du, axis=1)
    others = [int(i) for i in np.argsort(dist, kind="stable") if i != i_best][:neighbours]
    if len(others) < d:
        return None
    x, y = du[others], residuals[others] - residuals[i_best]
    weight = 1.0 / np.maximum(dist[others], 1e-9)  # nearer points know the local slope better
    g_t, *_ = np.linalg.lstsq(x * weight[:, None], y * weight[:, None], rcond=None)
    jac = np.asarray(g_t.T)
    fisher = jac.T @ jac
    if not np.all(np.isfinite(fisher)) or np.linalg.cond(fisher) > 1e12:
        return None
    return jac


def propose(
    u: np.ndarray,
    residuals: np.ndarray,
    *,
    iteration: int,
    previous_peak: np.ndarray | None,
    rng: np.random.Generator,
    settings: RefineSettings,
) -> Step:
    """Decide the next round from every evaluation so far.

    `u` (m, d) are the evaluated unit-cube points, `residuals` (m, n_data) their whitened
    residuals. `iteration` counts the rounds decided before this one.
    """
    u = np.atleast_2d(np.asarray(u, dtype=float))
    residuals = np.atleast_2d(np.asarray(residuals, dtype=float))
    chi2 = np.sum(residuals**2, axis=1)
    ok = np.isfinite(chi2)
    u, residuals, chi2 = u[ok], residuals[ok], chi2[ok]
    if chi2.size == 0:
        raise ValueError("no finite chi^2 to refine from")
    d = u.shape[1]
    i_best = int(np.argmin(chi2))
    best, best_chi2 = u[i_best], float(chi2[i_best])
    radius = max(settings.initial_radius * settings.shrink**iteration, settings.min_radius)

    jac = fit_jacobian(u, residuals, i_best, settings.neighbours)
    fisher: np.ndarray | None = None
    if jac is None:
        peak, predicted = best, best_chi2
    else:
        fisher = jac.T @ jac
        step = -np.linalg.solve(fisher, jac.T @ residuals[i_best])  # Gauss-Newton step
        length = float(np.linalg.norm(step))
        if length > radius:
            step = step * (radius / length)
        peak = np.clip(best + step, 0.0, 1.0)
        model = residuals[i_best] + jac @ (peak - best)
        predicted = float(model @ model)
    converged = False
    if fisher is not None and previous_peak is not None:
        moved = peak - previous_peak
        converged = bool(moved @ fisher @ moved < settings.tol_chi2)
    n_good = int(np.sum(chi2 - best_chi2 < settings.delta_chi2))
    if converged:
        return Step(
            np.empty((0, d)), best, best_chi2, peak, predicted, fisher, radius, n_good, True
        )

    n_new = int(np.clip(round(settings.per_good * n_good) + 1, settings.min_new, settings.max_new))
    if fisher is not None:
        cov = np.linalg.inv(fisher) * settings.inflate**2
        sigma = np.sqrt(np.diag(cov))
        scale = np.minimum(1.0, radius / sigma)  # no wider than the trust radius
        cov = cov * np.outer(scale, scale)
    else:
        cov = np.eye(d) * radius**2
    draws = rng.multivariate_normal(np.zeros(d), cov, size=n_new - 1, method="eigh")
    proposals = np.clip(np.vstack([peak, peak + draws]), 0.0, 1.0)
    if np.min(np.linalg.norm(u - proposals[0], axis=1)) < 1e-6:
        # the peak estimate was evaluated already: spend that call on another draw
        extra = rng.multivariate_normal(np.zeros(d), cov, method="eigh")
        proposals[0] = np.clip(peak + extra, 0.0, 1.0)
    return Step(proposals, best, best_chi2, peak, predicted, fisher, radius, n_good, False)
