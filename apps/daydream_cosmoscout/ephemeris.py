"""Ephemerides for the scene's time, offline: astropy's built-in (ERFA) ephemeris.

No downloads: IERS auto-download is turned off before astropy's coordinates are used, and only
transformations that need no Earth-orientation table are made (barycentric positions,
geocentric GCRS apparent places).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from astropy.utils import iers

iers.conf.auto_download = False
iers.conf.auto_max_age = None

import astropy.units as u  # noqa: E402
from astropy.coordinates import get_body, get_body_barycentric, solar_system_ephemeris  # noqa: E402
from astropy.time import Time  # noqa: E402

# pyerfa (an astropy dependency) warns of "dubious years" past its leap-second table, where
# UTC is extrapolated: harmless for lighting a scene, and noise in every instance's log
from erfa import ErfaWarning  # noqa: E402

from daydream_cosmoscout.planet import planet as planet_by_name  # noqa: E402

AU_KM = 149_597_870.7


def _xyz(coord: Any) -> np.ndarray:
    return np.asarray(coord.get_xyz().to_value(u.km), dtype=np.float64)


def scene_ephemeris(body: str, when_iso: str, samples: int = 24) -> dict[str, Any]:
    """Where the Sun and Earth are, seen from `body`, at `when_iso` (UTC).

    Returns small JSON: distances in AU, the Sun's direction in the body-fixed frame (used to
    light the rendered views), the sub-solar point, and over one rotation of the body
    (`samples` instants) the sub-solar longitude track.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)
        return _scene_ephemeris(body, when_iso, samples)


def _scene_ephemeris(body: str, when_iso: str, samples: int) -> dict[str, Any]:
    target = planet_by_name(body)
    when = Time(when_iso, scale="utc")
    with solar_system_ephemeris.set("builtin"):
        sun = _xyz(get_body_barycentric("sun", when))
        earth = _xyz(get_body_barycentric("earth", when))
        here = _xyz(get_body_barycentric(body, when))
        apparent = get_body(body, when)
    days = float(when.tdb.jd - 2451545.0)
    rotation = target.icrf_to_body(days)
    to_sun = sun - here
    sun_body = rotation @ (to_sun / np.linalg.norm(to_sun))
    to_earth = earth - here
    earth_body = rotation @ (to_earth / np.linalg.norm(to_earth))
    subsolar_lat = float(np.degrees(np.arcsin(np.clip(sun_body[2], -1.0, 1.0))))
    subsolar_lon = float(np.degrees(np.arctan2(sun_body[1], sun_body[0])) % 360.0)
    period_days = 360.0 / target.w[1]
    track = []
    for k in range(samples):
        step = days + period_days * k / samples
        direction = target.icrf_to_body(step) @ (to_sun / np.linalg.norm(to_sun))
        track.append(float(np.degrees(np.arctan2(direction[1], direction[0])) % 360.0))
    # phase angle Sun-body-Earth
    cos_phase = float(to_sun @ to_earth / (np.linalg.norm(to_sun) * np.linalg.norm(to_earth)))
    return {
        "body": body,
        "time": when.isot,
        "sun_distance_au": float(np.linalg.norm(to_sun) / AU_KM),
        "earth_distance_au": float(np.linalg.norm(to_earth) / AU_KM),
        "sun_earth_distance_au": float(np.linalg.norm(earth - sun) / AU_KM),
        "sun_direction_body": sun_body.tolist(),
        "earth_direction_body": earth_body.tolist(),
        "subsolar_lat_deg": subsolar_lat,
        "subsolar_lon_deg": subsolar_lon,
        "subsolar_lon_track_deg": track,
        "phase_angle_deg": float(np.degrees(np.arccos(np.clip(cos_phase, -1.0, 1.0)))),
        "geocentric_ra_deg": float(apparent.ra.deg),
        "geocentric_dec_deg": float(apparent.dec.deg),
    }
