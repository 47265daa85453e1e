"""Registers the ``trace`` workflow (loaded lazily: listing apps imports nothing heavy)."""

from __future__ import annotations

from daydream_core.apps import AppSpec
from daydream_core.hookspecs import hookimpl


@hookimpl
def daydream_apps() -> list[AppSpec]:
    return [
        AppSpec(
            "trace",
            "Replay a recorded workflow (DayDream evaluation trace, WfCommons WfFormat) with "
            "calibrated CPU, memory and I/O work",
            "daydream_trace.workflow:workflow",
        )
    ]
