"""Hit finding and spot finding on detector images.

- `hit_score`: a cheap per-image test, as run at the beamline to veto blanks. The background
  is modelled as a robust radial profile (sigma-clipped mean per ring of pixels, which follows
  the water ring); pixels well above it are grouped into 8-connected peaks, and single-pixel
  peaks (zingers) are ignored. An image is a hit when it has enough peaks.
- `find_spots`: the dispersion spot finder of DIALS (Parkhurst et al., J. Appl. Cryst. 2016):
  a pixel is strong when the index of dispersion (variance / mean) of its neighbourhood is
  too large for Poisson noise *and* the pixel is well above the local mean. Strong pixels are
  labelled into spots, reported with their intensity-weighted centroids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from daydream_exafel.geometry import Geometry

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
SPOT_COLUMNS = ("row", "col", "intensity", "pixels")


@dataclass(frozen=True)
class HitResult:
    peaks: int
    hit: bool


def radial_background(image: np.ndarray, geometry: Geometry, clip: float = 3.0) -> np.ndarray:
    """Background per pixel from a two-pass sigma-clipped radial (1-pixel ring) mean."""
    cy, cx = geometry.beam_centre
    rows, cols = np.indices(image.shape)
    ring = np.hypot(rows - cy, cols - cx).astype(np.int64).ravel()
    values = image.astype(np.float64).ravel()
    keep = np.ones(values.size, dtype=bool)
    n_rings = int(ring.max()) + 1
    for _ in range(2):
        count = np.bincount(ring, weights=keep, minlength=n_rings)
        total = np.bincount(ring, weights=values * keep, minlength=n_rings)
        total2 = np.bincount(ring, weights=values**2 * keep, minlength=n_rings)
        mean = total / np.maximum(count, 1)
        sd = np.sqrt(np.maximum(total2 / np.maximum(count, 1) - mean**2, 0.0))
        keep = values <= mean[ring] + clip * np.maximum(sd[ring], 1.0)
    return mean[ring].reshape(image.shape)  # type: ignore[no-any-return]


def hit_score(
    image: np.ndarray,
    geometry: Geometry,
    *,
    sigma: float = 5.0,
    min_peaks: int = 12,
) -> HitResult:
    """Count multi-pixel peaks above the radial background; enough of them make a hit."""
    background = radial_background(image, geometry)
    z = (image - background) / np.sqrt(np.maximum(background, 1.0))
    labels, n = ndimage.label(z > sigma, structure=_EIGHT_CONNECTED)
    if n == 0:
        return HitResult(peaks=0, hit=False)
    sizes = np.bincount(labels.ravel())[1:]
    peaks = int(np.count_nonzero(sizes >= 2))
    return HitResult(peaks=peaks, hit=peaks >= min_peaks)


def find_spots(
    image: np.ndarray,
    *,
    kernel: int = 5,
    sigma_background: float = 6.0,
    sigma_strong: float = 3.0,
    min_pixels: int = 2,
    max_pixels: int = 80,
) -> np.ndarray:
    """Dispersion spot finding. Returns an (n, 4) array of `SPOT_COLUMNS`.

    The centroid is weighted by the counts above the local mean; the intensity is the sum of
    those counts over the spot's strong pixels (a rough measure: integration is done later,
    at predicted positions).
    """
    data = image.astype(np.float64)
    size = 2 * kernel + 1
    n = size * size
    mean = ndimage.uniform_filter(data, size=size, mode="reflect")
    mean_sq = ndimage.uniform_filter(data * data, size=size, mode="reflect")
    var = np.maximum(mean_sq - mean * mean, 0.0) * n / (n - 1)
    safe_mean = np.maximum(mean, 1e-6)
    dispersion = var / safe_mean
    strong = (dispersion > 1.0 + sigma_background * np.sqrt(2.0 / (n - 1))) & (
        data > mean + sigma_strong * np.sqrt(safe_mean)
    )
    labels, count = ndimage.label(strong, structure=_EIGHT_CONNECTED)
    if count == 0:
        return np.zeros((0, len(SPOT_COLUMNS)))
    index = np.arange(1, count + 1)
    pixels = ndimage.sum_labels(np.ones_like(data), labels, index)
    signal = np.maximum(data - mean, 0.0) + 1e-9
    weight = ndimage.sum_labels(signal, labels, index)
    rows, cols = np.indices(data.shape)
    row_c = ndimage.sum_labels(signal * rows, labels, index) / weight
    col_c = ndimage.sum_labels(signal * cols, labels, index) / weight
    spots = np.stack([row_c, col_c, weight, pixels], axis=1)
    keep = (pixels >= min_pixels) & (pixels <= max_pixels)
    return spots[keep]  # type: ignore[no-any-return]
