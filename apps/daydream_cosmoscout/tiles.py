"""HEALPix tiles and their level-of-detail pyramids.

A tile ``(level, index)`` is pixel `index` of the NESTED HEALPix map of nside ``2^level``: the
12 base faces at level 0, four children per tile per level. A tile carries ``R x R`` samples,
the NESTED pixels of nside ``2^level · R`` that it contains, which are contiguous:
``[index·R², (index + 1)·R²)``. Because NESTED children are consecutive, coarsening a level by
one is a mean over groups of four consecutive samples, which is exactly ``healpy.ud_grade`` in
NESTED order; a pyramid built that way conserves the mean of the field at every level.
"""

from __future__ import annotations

import healpy as hp
import numpy as np


def coarsen(samples: np.ndarray) -> np.ndarray:
    """One level up a NESTED pyramid: the mean of each group of four children."""
    coarse: np.ndarray = samples.reshape(-1, 4).mean(axis=1)
    return coarse


def refine_repeat(samples: np.ndarray) -> np.ndarray:
    """One level down by repetition (each sample becomes its four children)."""
    return np.repeat(samples, 4)


def pyramid(finest: np.ndarray, levels: int) -> list[np.ndarray]:
    """``[finest, coarsen(finest), …]`` with ``levels + 1`` entries, finest first."""
    out = [np.asarray(finest, dtype=np.float64)]
    for _ in range(levels):
        out.append(coarsen(out[-1]))
    return out


def geometric_errors(coarse: np.ndarray, fine: np.ndarray, samples_per_tile: int) -> np.ndarray:
    """Per tile, the largest deviation of the fine samples from the coarse level.

    `coarse` holds consecutive tiles of `samples_per_tile` samples; `fine` the same area one
    level finer (four times the samples). This is the geometric error of rendering the coarse
    tile instead of its children (the quantity a screen-space error projects to pixels).
    """
    deviation = np.abs(fine - refine_repeat(coarse))
    return deviation.reshape(-1, 4 * samples_per_tile).max(axis=1)  # type: ignore[no-any-return]


def tile_pixels(level: int, index: int, resolution: int, depth: int = 0) -> np.ndarray:
    """NESTED pixel indices at nside ``2^(level+depth) · R`` covering tile ``(level, index)``."""
    count = (resolution * 2**depth) ** 2
    return np.arange(index * count, (index + 1) * count, dtype=np.int64)


def face_pixels(face: int, level: int, resolution: int) -> np.ndarray:
    """Samples of base face `face` at tile level `level` (nside ``2^level · R``)."""
    return tile_pixels(0, face, resolution, depth=level)


def tile_centre(level: int, index: int) -> np.ndarray:
    return np.array(hp.pix2vec(2**level, index, nest=True), dtype=np.float64)


def tile_angular_radius(level: int) -> float:
    """An upper bound on the angle between a tile's centre and any of its points."""
    return float(hp.max_pixrad(2**level))


def children(index: int) -> list[int]:
    return [4 * index + i for i in range(4)]


def parent(index: int) -> int:
    return index // 4


def face_of(level: int, index: int) -> int:
    return index >> (2 * level)
