"""Ray-cast rendering of a tile cut: shaded view and level-of-detail map, written as PNG.

Each screen pixel casts a ray at the unit sphere; the hit point is looked up in the cut (the
deepest prepared tile containing it), its elevation and albedo interpolated bilinearly from
that tile's samples, the normal taken from central differences of the relief (exaggerated for
legibility), and the point lit by the Sun with Lambert's law.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import healpy as hp
import numpy as np

from daydream_cosmoscout.lod import Camera

MARS_TINT = np.array([1.0, 0.62, 0.42])


@dataclass
class CutSamples:
    """The samples of every leaf of a cut, concatenated, with a lookup from points to samples."""

    levels: np.ndarray  # per leaf
    indices: np.ndarray  # per leaf
    elevation: np.ndarray  # leaf i owns [i·R², (i+1)·R²)
    albedo: np.ndarray
    resolution: int

    def __post_init__(self) -> None:
        self.max_level = int(self.levels.max())
        # "uniq" numbering: 4^(level+1) + index is unique across levels
        uniq = 4 ** (self.levels.astype(np.int64) + 1) + self.indices.astype(np.int64)
        self._order = np.argsort(uniq)
        self._uniq = uniq[self._order]

    def locate(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For unit vectors, (leaf number, sample number within all samples); -1 if none."""
        leaf = np.full(len(points), -1, dtype=np.int64)
        level_of = np.zeros(len(points), dtype=np.int64)
        deepest = hp.vec2pix(2**self.max_level, points[:, 0], points[:, 1], points[:, 2], nest=True)
        for level in range(self.max_level, -1, -1):
            open_ = leaf < 0
            if not open_.any():
                break
            tile = deepest[open_] >> (2 * (self.max_level - level))
            uniq = 4 ** (level + 1) + tile
            where = np.searchsorted(self._uniq, uniq)
            where = np.clip(where, 0, len(self._uniq) - 1)
            found = self._uniq[where] == uniq
            rows = np.nonzero(open_)[0][found]
            leaf[rows] = self._order[where[found]]
            level_of[rows] = level
        sample = np.full(len(points), -1, dtype=np.int64)
        ok = leaf >= 0
        r2 = self.resolution**2
        for level in np.unique(level_of[ok]):
            rows = np.nonzero(ok & (level_of == level))[0]
            nside = int(2**level * self.resolution)
            pix = hp.vec2pix(nside, points[rows, 0], points[rows, 1], points[rows, 2], nest=True)
            within = pix - self.indices[leaf[rows]] * r2
            sample[rows] = leaf[rows] * r2 + within
        return leaf, sample

    def _leaves_at(self, level: int, tiles: np.ndarray) -> np.ndarray:
        """Leaf numbers of tiles (level, tiles); -1 where that tile is not a leaf."""
        uniq = 4 ** (level + 1) + tiles
        where = np.clip(np.searchsorted(self._uniq, uniq), 0, len(self._uniq) - 1)
        return np.where(self._uniq[where] == uniq, self._order[where], -1)

    def interpolate(self, points: np.ndarray, field: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of per-sample `field` at unit vectors (HEALPix weights).

        Neighbouring samples from leaves of another level are left out (their weights are
        renormalised away); points outside the cut get 0.
        """
        leaf, sample = self.locate(points)
        out = np.where(sample >= 0, field[np.maximum(sample, 0)], 0.0)
        ok = leaf >= 0
        r2 = self.resolution**2
        levels = np.where(ok, self.levels[np.maximum(leaf, 0)], -1)
        for level in np.unique(levels[ok]):
            rows = np.nonzero(levels == level)[0]
            theta, phi = hp.vec2ang(points[rows])
            pixels, weights = hp.get_interp_weights(
                int(2**level * self.resolution), theta, phi, nest=True
            )
            total = np.zeros(len(rows))
            weight = np.zeros(len(rows))
            for pix, w in zip(pixels, weights, strict=True):
                tiles = pix // r2
                owner = self._leaves_at(int(level), tiles)
                valid = owner >= 0
                index = np.maximum(owner, 0) * r2 + (pix - tiles * r2)
                total += np.where(valid, w * field[index], 0.0)
                weight += np.where(valid, w, 0.0)
            out[rows] = np.where(weight > 0, total / np.maximum(weight, 1e-12), out[rows])
        return out


def ray_hits(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(mask of pixels whose ray hits the unit sphere, hit points for those pixels)."""
    forward, right, up = camera.basis()
    half = np.tan(np.radians(camera.fov_deg) / 2.0)
    aspect = camera.width / camera.height
    xs = ((np.arange(camera.width) + 0.5) / camera.width * 2.0 - 1.0) * half * aspect
    ys = (1.0 - (np.arange(camera.height) + 0.5) / camera.height * 2.0) * half
    gx, gy = np.meshgrid(xs, ys)
    rays = forward[None, None, :] + gx[..., None] * right + gy[..., None] * up
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    origin = np.asarray(camera.position)
    b = rays @ origin
    disc = b * b - (origin @ origin - 1.0)
    distance = -b - np.sqrt(np.maximum(disc, 0.0))
    mask = (disc >= 0.0) & (distance > 0.0)
    points = origin + distance[mask][:, None] * rays[mask]
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return mask, points


def render_view(
    camera: Camera, cut: CutSamples, sun_direction: np.ndarray, exaggeration: float
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Shaded RGB image (float 0..1), per-pixel LOD level (-1 for sky), and statistics."""
    mask, points = ray_hits(camera)
    shape = (camera.height, camera.width)
    rgb = np.zeros((*shape, 3))
    level_image = np.full(shape, -1, dtype=np.int64)
    stats = {"coverage": float(mask.mean()), "mean_luminance": 0.0, "std_luminance": 0.0}
    if not mask.any():
        return rgb, level_image, stats
    leaf, sample = cut.locate(points)
    ok = sample >= 0
    albedo = np.where(ok, cut.interpolate(points, cut.albedo), 0.1)
    levels = np.where(ok, cut.levels[np.maximum(leaf, 0)], 0)
    step = np.array(
        [hp.nside2resol(int(2**lv * cut.resolution)) for lv in range(cut.max_level + 1)]
    )
    eps = step[levels]
    pole = np.array([0.0, 0.0, 1.0])
    east = np.cross(pole, points)
    norm = np.linalg.norm(east, axis=1, keepdims=True)
    east = np.where(norm > 1e-9, east / np.maximum(norm, 1e-12), np.array([1.0, 0.0, 0.0]))
    north = np.cross(points, east)
    gradient = np.zeros_like(points)
    for axis in (east, north):
        # central differences of the bilinearly interpolated relief, one sample each way
        ahead = _elevation_at(cut, points + eps[:, None] * axis)
        behind = _elevation_at(cut, points - eps[:, None] * axis)
        gradient += ((ahead - behind) / (2.0 * eps))[:, None] * axis
    normal = points - exaggeration * gradient
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    sun = np.asarray(sun_direction, dtype=np.float64)
    sun = sun / np.linalg.norm(sun)
    lambert = np.clip(normal @ sun, 0.0, None)
    luminance = albedo * (0.03 + 0.97 * lambert) * 2.5
    colour = np.clip(luminance[:, None] * MARS_TINT, 0.0, 1.0) ** (1.0 / 2.2)
    rgb[mask] = colour
    level_image[mask] = levels
    stats["mean_luminance"] = float(luminance.mean())
    stats["std_luminance"] = float(luminance.std())
    return rgb, level_image, stats


def _elevation_at(cut: CutSamples, points: np.ndarray) -> np.ndarray:
    return cut.interpolate(points / np.linalg.norm(points, axis=1, keepdims=True), cut.elevation)


def png_bytes(
    image: np.ndarray, cmap: str | None = None, vmin: float | None = None, vmax: float | None = None
) -> bytes:
    """Encode an RGB (H, W, 3) or scalar (H, W) image as PNG with matplotlib."""
    from matplotlib import image as mpimg

    buffer = io.BytesIO()
    mpimg.imsave(buffer, image, format="png", cmap=cmap, vmin=vmin, vmax=vmax)
    return buffer.getvalue()
