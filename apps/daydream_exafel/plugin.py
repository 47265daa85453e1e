"""Registers the `exafel` workflow (entry point ``exafel = "daydream_exafel.plugin"``)."""

from __future__ import annotations

from daydream_core.apps import AppSpec
from daydream_core.hookspecs import hookimpl


@hookimpl
def daydream_apps() -> list[AppSpec]:
    return [
        AppSpec(
            "exafel",
            "Serial femtosecond crystallography with cctbx: simulate still shots, find hits, "
            "find spots, index/integrate, merge; batches until the completeness target",
            "daydream_exafel.workflow:workflow",
            requires=("cctbx", "scipy"),
            extra="apps",
        )
    ]
