"""Registers the workflow with daydream. Keep this module light: it is imported whenever
daydream lists apps, so it names the workflow's module instead of importing it."""

from __future__ import annotations

from daydream_core.apps import AppSpec
from daydream_core.hookspecs import hookimpl


@hookimpl
def daydream_apps() -> list[AppSpec]:
    return [
        AppSpec(
            "quadrature",
            "Adaptive Gauss-Legendre quadrature: intervals that miss the tolerance are split",
            "daydream_quadrature.workflow:workflow",
        )
    ]
