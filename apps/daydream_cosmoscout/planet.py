"""Planets the workflow can prepare: radius and IAU rotation model (WGCCRE 2009, secular terms).

Body-fixed vectors are obtained from ICRF ones with the IAU convention
``M = Rz(W) · Rx(90° - delta0) · Rz(90° + alpha0)``, where alpha0, delta0 are the right
ascension and declination of the north pole and W the prime meridian angle, all functions of
time.
Periodic terms (at most a few degrees for the Moon, hundredths of a degree for Mars) are left
out: the rendered lighting does not need them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Planet:
    """A body with an IAU rotation model.

    ``alpha0 = a0 + a1·T``, ``delta0 = d0 + d1·T``, ``W = w0 + w1·d`` (degrees; T in Julian
    centuries and d in days since J2000 TDB).
    """

    name: str
    radius_km: float
    alpha0: tuple[float, float]
    delta0: tuple[float, float]
    w: tuple[float, float]
    obliquity_deg: float  # bound on the sub-solar latitude, for sanity checks

    def pole_and_meridian(self, days_since_j2000: float) -> tuple[float, float, float]:
        """(alpha0, delta0, W) in degrees at TDB days since J2000."""
        centuries = days_since_j2000 / 36525.0
        alpha = self.alpha0[0] + self.alpha0[1] * centuries
        delta = self.delta0[0] + self.delta0[1] * centuries
        meridian = (self.w[0] + self.w[1] * days_since_j2000) % 360.0
        return alpha, delta, meridian

    def icrf_to_body(self, days_since_j2000: float) -> np.ndarray:
        """The 3x3 rotation taking ICRF vectors to this body's body-fixed frame."""
        alpha, delta, meridian = (np.radians(v) for v in self.pole_and_meridian(days_since_j2000))
        rotation: np.ndarray = (
            _rot_z(meridian) @ _rot_x(np.pi / 2 - delta) @ _rot_z(np.pi / 2 + alpha)
        )
        return rotation


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


PLANETS: dict[str, Planet] = {
    "mars": Planet(
        name="mars",
        radius_km=3389.5,
        alpha0=(317.68143, -0.1061),
        delta0=(52.88650, -0.0609),
        w=(176.630, 350.89198226),
        obliquity_deg=25.19,
    ),
    "moon": Planet(
        name="moon",
        radius_km=1737.4,
        alpha0=(269.9949, 0.0031),
        delta0=(66.5392, 0.0130),
        w=(38.3213, 13.17635815),
        obliquity_deg=1.6,
    ),
}


def planet(name: str) -> Planet:
    try:
        return PLANETS[name]
    except KeyError:
        raise ValueError(f"unknown planet {name!r}; known: {', '.join(PLANETS)}") from None
