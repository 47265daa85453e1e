"""View-dependent level of detail: cameras, screen-space error, and the tile cut.

The screen-space error of a tile is its geometric error projected to pixels at the closest
distance the camera can be from it (as in Cesium and CosmoScout VR's LOD bodies)::

    sse = geometric_error · screen_height / (2 · distance · tan(fov / 2))

Tiles behind the horizon or outside the view frustum have no screen-space error. A tile is
refined while its error exceeds the threshold (in pixels); tiles whose children have not been
prepared yet are the *candidates* for the next phase, largest error first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from daydream_cosmoscout import tiles as tl


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in the body-fixed frame, in planet radii."""

    name: str
    position: tuple[float, float, float]
    target: tuple[float, float, float]
    fov_deg: float
    width: int
    height: int

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(forward, right, up) unit vectors."""
        position = np.asarray(self.position)
        forward = np.asarray(self.target) - position
        forward /= np.linalg.norm(forward)
        hint = np.array([0.0, 0.0, 1.0])
        if abs(forward @ hint) > 0.99:
            hint = np.array([1.0, 0.0, 0.0])
        right = np.cross(forward, hint)
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        return forward, right, up

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "position": list(self.position),
            "target": list(self.target),
            "fov_deg": self.fov_deg,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Camera:
        position = tuple(float(v) for v in data["position"])  # type: ignore[attr-defined]
        target = tuple(float(v) for v in data["target"])  # type: ignore[attr-defined]
        return cls(
            name=str(data["name"]),
            position=position,  # type: ignore[arg-type]
            target=target,  # type: ignore[arg-type]
            fov_deg=float(data["fov_deg"]),  # type: ignore[arg-type]
            width=int(data["width"]),  # type: ignore[call-overload]
            height=int(data["height"]),  # type: ignore[call-overload]
        )


def unit_vector(lat_deg: float, lon_deg: float) -> np.ndarray:
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    return np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])


def camera_from_view(
    view: Mapping[str, float | str], sun_lon_deg: float, run_index: int, width: int, height: int
) -> Camera:
    """Place a view: above (lat, sun longitude + lon offset, moved on by the run), altitude in
    planet radii, looking at the surface point `look_ahead_deg` further north (0: nadir)."""
    lat = float(view["lat"])
    lon = sun_lon_deg + float(view["lon_offset"]) + float(view.get("lon_step", 0.0)) * run_index
    altitude = float(view["altitude"])
    position = unit_vector(lat, lon) * (1.0 + altitude)
    target = unit_vector(lat + float(view.get("look_ahead_deg", 0.0)), lon)
    return Camera(
        name=str(view["name"]),
        position=(float(position[0]), float(position[1]), float(position[2])),
        target=(float(target[0]), float(target[1]), float(target[2])),
        fov_deg=float(view["fov_deg"]),
        width=width,
        height=height,
    )


def screen_space_error(camera: Camera, level: int, index: int, geometric_error: float) -> float:
    """Pixels of error if tile (level, index) is drawn instead of its children; 0 if unseen."""
    centre = tl.tile_centre(level, index)
    radius = tl.tile_angular_radius(level)
    position = np.asarray(camera.position)
    distance_to_centre = float(np.linalg.norm(position))
    # horizon: a surface point p is visible from c if p·c ≥ 1 (unit sphere)
    horizon = math.acos(min(1.0, 1.0 / distance_to_centre))
    angle = math.acos(float(np.clip(centre @ position / distance_to_centre, -1.0, 1.0)))
    if angle > horizon + radius:
        return 0.0
    chord = 2.0 * math.sin(min(radius, math.pi / 2) / 2.0)
    offset = centre - position
    distance = float(np.linalg.norm(offset))
    forward, _, _ = camera.basis()
    half_diagonal = math.atan(
        math.tan(math.radians(camera.fov_deg) / 2.0) * math.hypot(1.0, camera.width / camera.height)
    )
    spread = math.asin(min(1.0, chord / max(distance, 1e-9)))
    off_axis = math.acos(float(np.clip(offset @ forward / distance, -1.0, 1.0)))
    if off_axis > half_diagonal + spread:
        return 0.0
    closest = max(distance - chord, 1e-4)
    focal = camera.height / (2.0 * math.tan(math.radians(camera.fov_deg) / 2.0))
    return geometric_error * focal / closest


TileKey = tuple[int, int]


@dataclass
class Selection:
    """The cut of the tile tree for some cameras, and the tiles that want refining next."""

    leaves: list[TileKey]
    candidates: list[tuple[float, TileKey]]  # (screen-space error, tile), largest first


def select(
    errors: Mapping[TileKey, float],
    prepared: Iterable[TileKey],
    cameras: list[Camera],
    threshold_px: float,
    max_level: int,
) -> Selection:
    """Traverse from the 12 faces: refine where the error is above threshold and children
    exist; where they do not, the tile is a leaf now and a candidate for refinement."""
    ready = set(prepared)
    leaves: list[TileKey] = []
    candidates: list[tuple[float, TileKey]] = []
    stack: list[TileKey] = [(0, face) for face in range(11, -1, -1)]
    while stack:
        level, index = stack.pop()
        error = errors.get((level, index), 0.0)
        sse = max((screen_space_error(c, level, index, error) for c in cameras), default=0.0)
        if sse > threshold_px and level < max_level:
            kids = [(level + 1, child) for child in tl.children(index)]
            if all(kid in ready for kid in kids):
                stack.extend(reversed(kids))
                continue
            candidates.append((sse, (level, index)))
        leaves.append((level, index))
    candidates.sort(key=lambda item: (-item[0], item[1]))
    return Selection(leaves=leaves, candidates=candidates)
