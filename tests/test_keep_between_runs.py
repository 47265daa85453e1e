"""Between runs: the instances daydream keeps for the next run outlive the platform's own
keep-alive when runs come further apart than it (a window learned from the profile, and
before the first gap, one assumed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from daydream_local.provider import LocalProvider

from daydream_core.engine import Engine
from daydream_core.plugins import policies
from daydream_core.profile import ProfileStore


def test_the_second_run_keeps_its_instances_for_as_long_as_the_runs_are_apart(
    tmp_path: Path, demo_workflows: Path
) -> None:
    import demo_workflow

    workflow = demo_workflow.workflow
    provider = LocalProvider(tmp_path / "state", concurrency=4)
    profile = ProfileStore(tmp_path / "profile.sqlite")
    engine = Engine(provider, profile, policies()["daydream"])
    try:
        params = workflow.preset("small").params
        runs = []
        for index in (1, 2):
            runs.append(
                engine.run(
                    workflow,
                    preset="small",
                    params=params,
                    seed=0,
                    run_index=index,
                    out_dir=tmp_path / "out",
                )
            )
            if index == 1:  # no gap between runs seen yet: the field's 10 minutes stand for one
                first = sum(phase.phase_time_s for phase in runs[0].phases)
                assert provider._pool.keep_idle_s == pytest.approx(1.5 * (600.0 + first))
        (first_start, first_end), (second_start, _) = profile.run_spans(
            workflow.workload("small", params)
        )
        assert (first_start, second_start) == (runs[0].started_at, runs[1].started_at)
        # A half more than the gap between the runs and the longer of them (the second, as
        # its phases measured it when the window was set).
        second = sum(phase.phase_time_s for phase in runs[1].phases)
        expected = 1.5 * (second_start - first_end + max(first_end - first_start, second))
        assert provider._pool.keep_idle_s == pytest.approx(expected)
    finally:
        provider.close()
        engine.close()
