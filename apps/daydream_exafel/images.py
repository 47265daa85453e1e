"""Detector images in the object store: 16-bit counts, zlib-compressed (about 10x smaller).

Counts saturate at 65535, like a 16-bit detector. Spot tables and other arrays use the store's
plain `put_array`/`get_array`.
"""

from __future__ import annotations

import io
import zlib

import numpy as np

from daydream_core.objectstore import ObjectStore

SATURATION = np.iinfo(np.uint16).max


def put_image(store: ObjectStore, key: str, image: np.ndarray, level: int = 1) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.clip(image, 0, SATURATION).astype(np.uint16), allow_pickle=False)
    store.put(key, zlib.compress(buffer.getvalue(), level))


def get_image(store: ObjectStore, key: str) -> np.ndarray:
    data = zlib.decompress(store.get(key))
    return np.load(io.BytesIO(data), allow_pickle=False)  # type: ignore[no-any-return]
