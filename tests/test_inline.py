"""Running a workflow inline: the phase generator driven in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from daydream_core.inline import drive, run_inline
from daydream_core.objectstore import LocalObjectStore
from daydream_core.workflow import RunContext


def test_run_inline_calls_every_component(demo_workflows: Path, tmp_path: Path) -> None:
    import demo_workflow

    store = LocalObjectStore(tmp_path)
    made = run_inline(demo_workflow.workflow, {"width": 2, "size": 20, "phases": 3}, store)
    assert made.result == {"phases": 3}
    assert [len(p) for p in made.phases] == [len(o) for o in made.outputs] == [2, 3, 4]
    assert all(isinstance(r, float) and r < 1e-9 for phase in made.outputs for r in phase)
    assert store.exists("inline/p1-c1/a1/x.npy")


def test_drive_takes_any_executor(demo_workflows: Path, tmp_path: Path) -> None:
    import demo_workflow

    run = RunContext({"width": 3, "size": 5, "phases": 2}, 0, 1, LocalObjectStore(tmp_path))
    made = drive(demo_workflow.workflow, run, lambda phase, calls: [1.0] * len(calls))
    # Residuals of 1.0 are not machine precision: the width does not grow.
    assert [len(p) for p in made.phases] == [3, 3]


def test_failures_surface_as_the_component_raised(demo_workflows: Path, tmp_path: Path) -> None:
    import demo_workflow

    params = {"width": 1, "size": 5, "phases": 3, "fail_at": 1}
    with pytest.raises(ValueError, match="boom in phase 1"):
        run_inline(demo_workflow.workflow, params, LocalObjectStore(tmp_path))
