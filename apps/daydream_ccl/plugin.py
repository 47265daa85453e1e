"""Registers the CCL workflow as a daydream app (entry point ``ccl``)."""

from __future__ import annotations

from daydream_core.apps import AppSpec
from daydream_core.hookspecs import hookimpl


@hookimpl
def daydream_apps() -> list[AppSpec]:
    return [
        AppSpec(
            "ccl",
            "Adaptive 3x2pt cosmology (pyccl + CAMB): power spectra, C_ell, correlation "
            "functions, likelihoods, refined around the posterior peak",
            "daydream_ccl.workflow:workflow",
            requires=("pyccl", "camb", "scipy"),
            extra="apps",
        )
    ]
