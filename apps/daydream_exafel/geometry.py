"""Experiment geometry: a monochromatic beam along +z and a flat detector normal to it.

Conventions (as in DIALS, with the beam along +z): the incident wave vector is
``s0 = (0, 0, 1/wavelength)``; a reflection h of a crystal in orientation U has reciprocal
vector ``q = U @ B @ h``; it diffracts towards ``s1 = s0 + q`` and its *excitation error* is
``|s1| - 1/wavelength`` (zero on the Ewald sphere). Pixel (row i, column j) has its centre at
lab position ``((j - cx) * pixel_mm, (i - cy) * pixel_mm, distance_mm)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Geometry:
    """Beam and detector."""

    wavelength: float = 1.3  # Angstrom
    distance_mm: float = 90.0
    pixel_mm: float = 0.2
    size: int = 512  # square detector, pixels a side

    @property
    def beam_centre(self) -> tuple[float, float]:
        """(row, column) of the direct beam, between the central pixels."""
        c = (self.size - 1) / 2.0
        return c, c

    @property
    def s0(self) -> np.ndarray:
        return np.array([0.0, 0.0, 1.0 / self.wavelength])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Geometry:
        return cls(**{k: data[k] for k in ("wavelength", "distance_mm", "pixel_mm", "size")})

    def _resolution_at(self, radius_mm: float) -> float:
        two_theta = np.arctan2(radius_mm, self.distance_mm)
        return float(self.wavelength / (2.0 * np.sin(two_theta / 2.0)))

    @property
    def edge_resolution(self) -> float:
        """Resolution (Angstrom) at the middle of the detector's edge."""
        return self._resolution_at(self.size / 2.0 * self.pixel_mm)

    @property
    def corner_resolution(self) -> float:
        """Resolution (Angstrom) at the detector's corners (the best it records)."""
        return self._resolution_at(self.size / 2.0 * self.pixel_mm * np.sqrt(2.0))

    def pixel_to_q(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Reciprocal vectors (n, 3) of points on the detector (fractional pixel positions)."""
        cy, cx = self.beam_centre
        lab = np.stack(
            [
                (np.asarray(cols, dtype=float) - cx) * self.pixel_mm,
                (np.asarray(rows, dtype=float) - cy) * self.pixel_mm,
                np.full(np.shape(rows), self.distance_mm),
            ],
            axis=-1,
        )
        s1 = lab / np.linalg.norm(lab, axis=-1, keepdims=True) / self.wavelength
        return s1 - self.s0  # type: ignore[no-any-return]

    def q_to_pixel(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where reciprocal vectors q (n, 3) diffract: (rows, cols, excitation errors).

        A lattice point off the Ewald sphere is projected onto it along the ray from the sphere's
        centre (the still-shot prediction). Rows/cols are NaN for rays missing the detector side.
        """
        s = q + self.s0
        norm = np.linalg.norm(s, axis=-1)
        excitation = norm - 1.0 / self.wavelength
        with np.errstate(divide="ignore", invalid="ignore"):
            forward = s[..., 2] > 1e-9
            scale = np.where(forward, self.distance_mm / np.where(forward, s[..., 2], 1.0), np.nan)
        cy, cx = self.beam_centre
        cols = s[..., 0] * scale / self.pixel_mm + cx
        rows = s[..., 1] * scale / self.pixel_mm + cy
        return rows, cols, excitation

    @cached_property
    def pixel_q(self) -> np.ndarray:
        """Reciprocal vector of every pixel centre, (size, size, 3)."""
        rows, cols = np.meshgrid(np.arange(self.size), np.arange(self.size), indexing="ij")
        return self.pixel_to_q(rows, cols)

    @cached_property
    def pixel_resolution(self) -> np.ndarray:
        """|q| of every pixel centre, (size, size), in 1/Angstrom."""
        return np.linalg.norm(self.pixel_q, axis=-1)  # type: ignore[no-any-return]

    @cached_property
    def pixel_solid_angle(self) -> np.ndarray:
        """Solid angle of every pixel (steradian), (size, size)."""
        rows, cols = np.meshgrid(np.arange(self.size), np.arange(self.size), indexing="ij")
        cy, cx = self.beam_centre
        r2 = ((cols - cx) ** 2 + (rows - cy) ** 2) * self.pixel_mm**2 + self.distance_mm**2
        cos_t = self.distance_mm / np.sqrt(r2)
        return self.pixel_mm**2 * cos_t / r2


@lru_cache(maxsize=8)
def lattice_points(b_key: tuple[float, ...], q_max: float) -> tuple[np.ndarray, np.ndarray]:
    """All non-zero lattice vectors h with |B h| <= q_max, sorted by length, and the lengths.

    `b_key` is the reciprocal basis B flattened to a tuple (hashable, for the cache).
    """
    b = np.array(b_key).reshape(3, 3)
    limits = np.ceil(q_max * np.linalg.norm(np.linalg.inv(b), axis=1)).astype(int)
    ranges = [np.arange(-m, m + 1) for m in limits]
    hkl = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    lengths = np.linalg.norm(hkl @ b.T, axis=1)
    keep = (lengths <= q_max) & (lengths > 0)
    order = np.argsort(lengths[keep])
    return hkl[keep][order], lengths[keep][order]


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix drawn uniformly from SO(3) (normalised Gaussian quaternion)."""
    w, x, y, z = rng.normal(size=4) / 1.0
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def misorientation_deg(u1: np.ndarray, u2: np.ndarray, operators: np.ndarray) -> float:
    """Smallest rotation angle (degrees) between two crystal orientations, up to symmetry."""
    best = 180.0
    for m in operators:
        r = u1.T @ u2 @ m
        cos_angle = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
        best = min(best, float(np.degrees(np.arccos(cos_angle))))
    return best
