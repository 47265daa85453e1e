"""Known-cell indexing of a still shot: find the crystal orientation U from spot positions.

A still records each reflection where the Ewald sphere cuts its (small) reciprocal-space blob,
so a spot's reciprocal vector q_obs lies on the sphere while the lattice point U B h sits
slightly off it, along the diffracted ray. Lengths of *low-resolution* spots are therefore
nearly exact (the offset is almost perpendicular to q), while their directions are not.

1. **Candidate orientations** (as in known-cell indexing in XDS/MOSFLM): for pairs of strong
   low-resolution spots, list the lattice vectors of matching length, keep the pairs of
   lattice vectors whose mutual angle matches the spots' (within the still-shot tolerance),
   and compute for each the rotation aligning them with the spots (TRIAD).
2. **Scoring**: a candidate indexes a spot when the spot's diffracted ray passes close to a
   lattice point (allowing for the offset along the ray). The best-scoring candidate wins.
3. **Refinement**: Gauss-Newton over a rotation vector, minimising the distances between the
   indexed lattice points and their spots' rays; indices are reassigned between cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daydream_exafel.geometry import Geometry, lattice_points


@dataclass
class IndexingResult:
    indexed: bool
    orientation: np.ndarray  # U, 3x3
    miller: np.ndarray  # (n_spots, 3) indices assigned to spots (valid where `matched`)
    matched: np.ndarray  # (n_spots,) bool
    rmsd_q: float  # 1/Angstrom, perpendicular ray-to-lattice distance of matched spots
    sigma_eps: float  # RMS excitation error of matched spots (1/Angstrom)
    candidates: int  # orientations scored


def _triad(v1: np.ndarray, v2: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Rotations R (n, 3, 3) with R v1 || w1 and R v2 in the plane of (w1, w2)."""

    def frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        e1 = a / np.linalg.norm(a, axis=-1, keepdims=True)
        e3 = np.cross(a, b)
        e3 /= np.linalg.norm(e3, axis=-1, keepdims=True)
        e2 = np.cross(e3, e1)
        return np.stack([e1, e2, e3], axis=-1)  # columns

    f_model = frame(v1, v2)
    f_lab = frame(w1, w2)
    return f_lab @ np.swapaxes(f_model, -1, -2)  # type: ignore[no-any-return]


def _ray_residuals(
    a: np.ndarray, q_obs: np.ndarray, rays: np.ndarray, s0: np.ndarray, max_eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """For orientation matrices a (m, 3, 3): nearest lattice point to each spot's ray.

    Returns (hkl (m, n, 3), distance (m, n)) where distance is from the lattice point to the
    segment of the ray within `max_eps` of the Ewald sphere.
    """
    a_inv = np.linalg.inv(a)
    h_frac = np.einsum("mij,nj->mni", a_inv, q_obs)
    d = np.einsum("mij,nj->mni", a_inv, rays)  # index change per unit step along the ray
    hkl = np.rint(h_frac)
    # Step along the ray that brings the fractional index closest to the rounded one.
    t = np.einsum("mni,mni->mn", hkl - h_frac, d) / np.einsum("mni,mni->mn", d, d)
    t = np.clip(t, -max_eps, max_eps)
    hkl = np.rint(h_frac + t[..., None] * d)
    q_h = np.einsum("mij,mnj->mni", a, hkl)
    # Distance of the lattice point from the ray's segment near the sphere.
    rel = q_h + s0 - (q_obs + s0)
    along = np.clip(np.einsum("mni,ni->mn", rel, rays), -max_eps, max_eps)
    dist = np.linalg.norm(rel - along[..., None] * rays, axis=-1)
    return hkl.astype(np.int64), dist


def _refine(
    u: np.ndarray,
    b: np.ndarray,
    hkl: np.ndarray,
    q_obs: np.ndarray,
    rays: np.ndarray,
    s0: np.ndarray,
    cycles: int = 5,
) -> np.ndarray:
    """Gauss-Newton on a small rotation: minimise the lattice points' distances to rays."""
    projector = np.eye(3)[None] - rays[:, :, None] * rays[:, None, :]  # (n, 3, 3)
    for _ in range(cycles):
        q_h = hkl @ (u @ b).T
        residual = np.einsum("nij,nj->ni", projector, q_h + s0)  # perpendicular offsets
        # d(q_h)/d(omega) = -[q_h]x for u <- exp([omega]x) u
        skew = np.zeros((len(q_h), 3, 3))
        skew[:, 0, 1], skew[:, 0, 2] = -q_h[:, 2], q_h[:, 1]
        skew[:, 1, 0], skew[:, 1, 2] = q_h[:, 2], -q_h[:, 0]
        skew[:, 2, 0], skew[:, 2, 1] = -q_h[:, 1], q_h[:, 0]
        jac = -np.einsum("nij,njk->nik", projector, skew).reshape(-1, 3)
        step, *_ = np.linalg.lstsq(jac, -residual.reshape(-1), rcond=None)
        angle = float(np.linalg.norm(step))
        if angle < 1e-9:
            break
        axis = step / angle
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rotation = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)
        u = rotation @ u
    # Re-orthonormalise against drift.
    left, _, right = np.linalg.svd(u)
    return left @ right  # type: ignore[no-any-return]


def index_spots(
    spots_rc: np.ndarray,
    intensities: np.ndarray,
    b: np.ndarray,
    geometry: Geometry,
    *,
    d_min: float,
    n_basis: int = 8,
    length_tol: float = 0.0025,
    angle_tol_deg: float = 5.0,
    eps_max: float = 0.012,
    match_tol: float = 0.004,
    min_matched: int = 10,
    min_fraction: float = 0.5,
) -> IndexingResult:
    """Index spots (rows, cols as an (n, 2) array) against the reciprocal basis `b`."""
    n = len(spots_rc)
    empty = IndexingResult(
        indexed=False,
        orientation=np.eye(3),
        miller=np.zeros((n, 3), dtype=np.int64),
        matched=np.zeros(n, dtype=bool),
        rmsd_q=float("nan"),
        sigma_eps=float("nan"),
        candidates=0,
    )
    if n < min_matched:
        return empty
    q_obs = geometry.pixel_to_q(spots_rc[:, 0], spots_rc[:, 1])
    s0 = geometry.s0
    rays = q_obs + s0
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    q_len = np.linalg.norm(q_obs, axis=1)
    q_max = 1.0 / d_min

    # Basis spots: the strongest among the low-resolution half.
    low = np.flatnonzero(q_len < 0.55 * q_max)
    basis = low[np.argsort(-intensities[low])][:n_basis]
    lattice, lengths = lattice_points(tuple(b.ravel()), 0.55 * q_max + length_tol)
    lattice_q = lattice @ b.T
    cos_tol = np.radians(angle_tol_deg)

    best_u, best_score, n_candidates = np.eye(3), -1, 0
    for ii in range(len(basis)):
        for jj in range(ii + 1, len(basis)):
            i, j = basis[ii], basis[jj]
            cos_obs = float(q_obs[i] @ q_obs[j] / (q_len[i] * q_len[j]))
            angle_obs = np.arccos(np.clip(cos_obs, -1, 1))
            if not np.radians(15) < angle_obs < np.radians(165):
                continue
            lo_i, hi_i = np.searchsorted(lengths, [q_len[i] - length_tol, q_len[i] + length_tol])
            lo_j, hi_j = np.searchsorted(lengths, [q_len[j] - length_tol, q_len[j] + length_tol])
            if hi_i == lo_i or hi_j == lo_j:
                continue
            vi, vj = lattice_q[lo_i:hi_i], lattice_q[lo_j:hi_j]
            cos_model = (vi @ vj.T) / np.outer(lengths[lo_i:hi_i], lengths[lo_j:hi_j])
            pi, pj = np.nonzero(np.abs(np.arccos(np.clip(cos_model, -1, 1)) - angle_obs) < cos_tol)
            if len(pi) == 0:
                continue
            u = _triad(vi[pi], vj[pj], q_obs[i][None], q_obs[j][None])
            n_candidates += len(u)
            a = u @ b
            _, dist = _ray_residuals(a, q_obs, rays, s0, eps_max)
            scores = np.count_nonzero(dist < match_tol, axis=1)
            k = int(np.argmax(scores))
            if scores[k] > best_score:
                best_score, best_u = int(scores[k]), u[k]
        if best_score >= 0.8 * n:
            break
    if best_score < min_matched:
        return IndexingResult(**{**empty.__dict__, "candidates": n_candidates})

    u = best_u
    for tol in (match_tol, 0.75 * match_tol, 0.5 * match_tol):
        hkl, dist = _ray_residuals((u @ b)[None], q_obs, rays, s0, eps_max)
        matched = dist[0] < max(tol, 0.0015)
        if np.count_nonzero(matched) < 4:
            break
        u = _refine(u, b, hkl[0][matched], q_obs[matched], rays[matched], s0)
    hkl, dist = _ray_residuals((u @ b)[None], q_obs, rays, s0, eps_max)
    matched = (dist[0] < match_tol) & np.any(hkl[0] != 0, axis=1)
    q_h = hkl[0] @ (u @ b).T
    eps = np.linalg.norm(q_h + s0, axis=1) - 1.0 / geometry.wavelength
    n_matched = int(np.count_nonzero(matched))
    indexed = n_matched >= min_matched and n_matched >= min_fraction * n
    return IndexingResult(
        indexed=indexed,
        orientation=u,
        miller=hkl[0],
        matched=matched,
        rmsd_q=float(np.sqrt(np.mean(dist[0][matched] ** 2))) if n_matched else float("nan"),
        sigma_eps=float(np.sqrt(np.mean(eps[matched] ** 2))) if n_matched else float("nan"),
        candidates=n_candidates,
    )
