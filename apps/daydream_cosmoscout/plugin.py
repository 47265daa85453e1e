"""Registers the ``cosmoscout`` workflow (loaded lazily: listing apps imports no science stack)."""

from __future__ import annotations

from daydream_core.apps import AppSpec
from daydream_core.hookspecs import hookimpl


@hookimpl
def daydream_apps() -> list[AppSpec]:
    return [
        AppSpec(
            "cosmoscout",
            "Planetary data preparation in the spirit of CosmoScout VR: HEALPix terrain and "
            "imagery, LOD pyramids, view-dependent refinement, ephemerides, rendered views",
            "daydream_cosmoscout.workflow:workflow",
            requires=("healpy", "astropy", "scipy"),
            extra="apps",
        )
    ]
