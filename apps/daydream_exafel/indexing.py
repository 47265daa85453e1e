"""Known-cell indexing of a still shot: find the crystal orientation U from spot positions.

A still records each reflection where the Ewald sphere cuts its (small) reciprocal-space blob,
so a spot's reciprocal vector q_obs lies on the sphere while the lattice point U B h sits
slightly off it, along the diffracted ray. Lengths of *low-resolution* spots are therefore
nearly exact (the offset is almost perpendicular to q), while their directions are not.

1. **Candidate orientations** (as in known-cell indexing in XDS/MOSFLM): for pairs of strong
   low-resolution spots, list the lattice vectors of matching length (one per symmetry orbit
   for the first spot), keep the pairs of lattice vectors whose mutual angle matches the
   spots' (within the still-shot tolerance), and compute for each the rotation aligning them
   with the spots (TRIAD).
2. **Scoring**: a candidate indexes a spot when the spot's diffracted ray passes close to a
   lattice point, near the Ewald sphere. Each pair's best candidate on a subset of spots
   (spread in resolution) goes on to refinement.
3. **Refinement**: Gauss-Newton over a rotation vector, minimising the lattice points'
   offsets from their spots' rays and (with a lower weight) their excitation errors, with
   indices reassigned between macro-cycles.
4. **Choice**: stills have near-degenerate false solutions (rotations that slide lattice
   points along the rays) that index almost every spot, only less well; so a few refined
   solutions are gathered and the one with the smallest residual among those indexing nearly
   the most spots wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daydream_exafel.geometry import Geometry, lattice_points

# Weight of excitation errors relative to ray offsets in refinement (about the ratio of their
# scatters: centroid error ~0.0009/A against blob width ~0.0025/A).
EPS_WEIGHT = 0.35


@dataclass
class IndexingResult:
    indexed: bool
    orientation: np.ndarray  # U, 3x3
    miller: np.ndarray  # (n_spots, 3) indices assigned to spots (valid where `matched`)
    matched: np.ndarray  # (n_spots,) bool
    rmsd_q: float  # 1/Angstrom, perpendicular ray-to-lattice distance of matched spots
    sigma_eps: float  # RMS excitation error of matched spots (1/Angstrom)
    candidates: int  # orientations scored


def _orbit_representatives(lattice: np.ndarray, symmetry: np.ndarray | None) -> np.ndarray:
    """Mask of one lattice vector per orbit under index-space rotations R (h -> R^T h)."""
    if symmetry is None or len(symmetry) <= 1:
        return np.ones(len(lattice), dtype=bool)
    span = int(np.abs(lattice).max()) + 1
    base = 2 * span + 1

    def code(h: np.ndarray) -> np.ndarray:
        shifted = np.asarray(h, dtype=np.int64) + span
        return np.asarray((shifted[..., 0] * base + shifted[..., 1]) * base + shifted[..., 2])

    images = np.einsum("rji,nj->rni", symmetry, lattice).round().astype(np.int64)
    return code(lattice) == code(images).max(axis=0)  # type: ignore[no-any-return]


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
    eps_weight: float = EPS_WEIGHT,
) -> np.ndarray:
    """Gauss-Newton on a small rotation: minimise the lattice points' distances to rays.

    Besides the offsets perpendicular to each spot's ray (well measured: centroid errors), the
    excitation errors enter with weight `eps_weight` (they scatter by the blob width, and
    without them rotations that slide lattice points along the rays go unpunished).
    """
    projector = np.eye(3)[None] - rays[:, :, None] * rays[:, None, :]  # (n, 3, 3)
    radius = float(np.linalg.norm(s0))
    for _ in range(cycles):
        q_h = hkl @ (u @ b).T
        perpendicular = np.einsum("nij,nj->ni", projector, q_h + s0)
        eps = np.linalg.norm(q_h + s0, axis=1) - radius
        # d(q_h)/d(omega) = -[q_h]x for u <- exp([omega]x) u
        skew = np.zeros((len(q_h), 3, 3))
        skew[:, 0, 1], skew[:, 0, 2] = -q_h[:, 2], q_h[:, 1]
        skew[:, 1, 0], skew[:, 1, 2] = q_h[:, 2], -q_h[:, 0]
        skew[:, 2, 0], skew[:, 2, 1] = -q_h[:, 1], q_h[:, 0]
        jac_perp = -np.einsum("nij,njk->nik", projector, skew)
        jac_eps = eps_weight * np.cross(q_h, rays)  # d eps / d omega = q x ray
        jac = np.concatenate([jac_perp, jac_eps[:, None, :]], axis=1).reshape(-1, 3)
        residual = np.concatenate([perpendicular, eps_weight * eps[:, None]], axis=1)
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


def _refine_and_match(
    u: np.ndarray,
    b: np.ndarray,
    q_obs: np.ndarray,
    rays: np.ndarray,
    s0: np.ndarray,
    eps_max: float,
    match_tol: float,
    macro_cycles: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Refine U against the spots it indexes, reassigning indices between macro-cycles (a
    candidate's first assignment may put a few spots on the wrong lattice point, which holds
    it in a false minimum); then match all spots.

    Returns (U, hkl, distances, matched).
    """
    for cycle in range(macro_cycles):
        tol = match_tol if cycle == 0 else 0.75 * match_tol
        hkl, dist = _ray_residuals((u @ b)[None], q_obs, rays, s0, eps_max)
        matched = dist[0] < tol
        if np.count_nonzero(matched) < 4:
            break
        refined = _refine(u, b, hkl[0][matched], q_obs[matched], rays[matched], s0)
        change = np.arccos(np.clip((np.trace(refined @ u.T) - 1.0) / 2.0, -1.0, 1.0))
        u = refined
        if change < 1e-5:  # radians: converged, indices will not change
            break
    hkl, dist = _ray_residuals((u @ b)[None], q_obs, rays, s0, eps_max)
    matched = (dist[0] < match_tol) & np.any(hkl[0] != 0, axis=1)
    return u, hkl[0], dist[0], matched


def index_spots(
    spots_rc: np.ndarray,
    intensities: np.ndarray,
    b: np.ndarray,
    geometry: Geometry,
    *,
    d_min: float,
    symmetry: np.ndarray | None = None,
    n_basis: int = 16,
    n_score: int = 120,
    length_tol: float = 0.0025,
    angle_tol_deg: float = 5.0,
    eps_max: float = 0.008,
    match_tol: float = 0.004,
    accept_fraction: float = 0.9,
    n_solutions: int = 3,
    min_matched: int = 10,
    min_fraction: float = 0.5,
) -> IndexingResult:
    """Index spots (rows, cols as an (n, 2) array) against the reciprocal basis `b`.

    Pairs of basis spots are tried in order of brightness; each pair's best candidate (scored
    on a subset of spots) is refined and matched against all spots. The search stops once
    `n_solutions` solutions index `accept_fraction` of the spots; of the solutions indexing
    nearly the most spots, the one with the smallest refinement residual wins. `symmetry`
    (index-space rotations of the point group) prunes candidates that are symmetry copies of
    one another.
    """
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
    # The first spot of a pair need only be matched to one lattice vector per symmetry orbit:
    # the others give symmetry-equivalent orientations.
    first = _orbit_representatives(lattice, symmetry)
    angle_tol = np.radians(angle_tol_deg)
    # Candidates are scored on a subset of spots spread evenly in resolution (high-resolution
    # spots tell orientations apart best).
    by_resolution = np.argsort(q_len)
    scored = by_resolution[np.unique(np.linspace(0, n - 1, min(n, n_score)).astype(int))]

    # Refined solutions: (objective, n_matched, u, hkl, dist, matched).
    solutions: list[tuple[float, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    n_candidates = 0
    pairs = [(i, j) for jj, j in enumerate(basis) for i in basis[:jj]]
    for i, j in pairs:
        angle_obs = np.arccos(np.clip(q_obs[i] @ q_obs[j] / (q_len[i] * q_len[j]), -1, 1))
        if not np.radians(15) < angle_obs < np.radians(165):
            continue
        lo_i, hi_i = np.searchsorted(lengths, [q_len[i] - length_tol, q_len[i] + length_tol])
        lo_j, hi_j = np.searchsorted(lengths, [q_len[j] - length_tol, q_len[j] + length_tol])
        shell_i = lo_i + np.flatnonzero(first[lo_i:hi_i])
        if len(shell_i) == 0 or hi_j == lo_j:
            continue
        vi, vj = lattice_q[shell_i], lattice_q[lo_j:hi_j]
        cos_model = (vi @ vj.T) / np.outer(lengths[shell_i], lengths[lo_j:hi_j])
        pi, pj = np.nonzero(np.abs(np.arccos(np.clip(cos_model, -1, 1)) - angle_obs) < angle_tol)
        if len(pi) == 0:
            continue
        u = _triad(vi[pi], vj[pj], q_obs[i][None], q_obs[j][None])
        n_candidates += len(u)
        pair_best, pair_score = u[0], -1
        for start in range(0, len(u), 1024):
            batch = u[start : start + 1024]
            _, dist = _ray_residuals(batch @ b, q_obs[scored], rays[scored], s0, eps_max)
            scores = np.count_nonzero(dist < match_tol, axis=1)
            k = int(np.argmax(scores))
            if scores[k] > pair_score:
                pair_score, pair_best = int(scores[k]), batch[k]
        if pair_score < min(min_matched, len(scored)):
            continue
        u, hkl, dist, matched = _refine_and_match(pair_best, b, q_obs, rays, s0, eps_max, match_tol)
        n_matched = int(np.count_nonzero(matched))
        if n_matched == 0:
            continue
        eps = np.linalg.norm(hkl[matched] @ (u @ b).T + s0, axis=1) - 1.0 / geometry.wavelength
        objective = float(np.mean(dist[matched] ** 2 + (EPS_WEIGHT * eps) ** 2))
        solutions.append((objective, n_matched, u, hkl, dist, matched))
        # Near-degenerate false solutions of stills can index almost every spot, only less
        # well: gather a few good ones before choosing.
        if sum(sol[1] >= accept_fraction * n for sol in solutions) >= n_solutions:
            break
    if not solutions:
        return IndexingResult(**{**empty.__dict__, "candidates": n_candidates})
    most = max(sol[1] for sol in solutions)
    _, best_matched, u, hkl, dist, matched = min(
        (sol for sol in solutions if sol[1] >= 0.95 * most), key=lambda sol: sol[0]
    )
    q_h = hkl @ (u @ b).T
    eps = np.linalg.norm(q_h + s0, axis=1) - 1.0 / geometry.wavelength
    indexed = best_matched >= min_matched and best_matched >= min_fraction * n
    return IndexingResult(
        indexed=indexed,
        orientation=u,
        miller=hkl,
        matched=matched,
        rmsd_q=float(np.sqrt(np.mean(dist[matched] ** 2))) if best_matched else float("nan"),
        sigma_eps=float(np.sqrt(np.mean(eps[matched] ** 2))) if best_matched else float("nan"),
        candidates=n_candidates,
    )
