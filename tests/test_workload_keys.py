"""Workloads keyed by what they are: app, preset, the values of the parameters declared to
shape the DAG (`Param.shapes_dag`), a trace by its content: unrelated workloads never share a
concurrency history."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from daydream_trace.workflow import BUNDLED_TRACE
from daydream_trace.workflow import workflow as trace_app

from daydream_core.cli import main
from daydream_core.params import Param, Parameters, content_hash
from daydream_core.profile import ProfileStore, workload
from daydream_core.workflow import Preset, Workflow

ONE_RUN = BUNDLED_TRACE / "run-1"


def _key(**params: object) -> str:
    return trace_app.workload("small", trace_app.validate(params))


def test_a_trace_is_keyed_by_its_content_not_its_name(tmp_path: Path) -> None:
    copy = tmp_path / "renamed"
    shutil.copytree(ONE_RUN, copy)
    assert _key(trace=str(ONE_RUN)) == _key(trace=str(copy))
    (copy / "components_original.txt").write_text(
        (copy / "components_original.txt").read_text() + "\n"
    )
    assert _key(trace=str(ONE_RUN)) != _key(trace=str(copy))  # edited: another workload
    assert _key(trace=str(ONE_RUN)) != _key(trace=str(BUNDLED_TRACE))


def test_only_the_parameters_that_shape_the_dag_change_the_key() -> None:
    base = _key(trace=str(ONE_RUN))
    assert _key(trace=str(ONE_RUN), scale=0.5) == base  # the same phases, more work each
    assert _key(trace=str(ONE_RUN), max_phases=3) != base
    assert base.startswith("trace:small ") and "max_phases=0" in base
    assert f"trace={content_hash(ONE_RUN)}" in base


def test_keys_read_well_and_long_values_are_hashed() -> None:
    params = Parameters(
        {
            "n": Param(int, 4, shapes_dag=True),
            "views": Param(list, [], shapes_dag=True),
            "label": Param(str, ""),
        }
    )
    shape = params.shape({"n": 8, "views": list(range(40)), "label": "x"})
    assert shape["n"] == "8" and shape["views"].startswith("sha256:") and "label" not in shape
    assert workload("demo", "small", shape) == f"demo:small n=8 views={shape['views']}"
    assert workload("demo", "small") == workload("demo", "small", {}) == "demo:small"
    undeclared = Workflow("undeclared-demo", presets={"small": Preset({})})
    assert undeclared.workload("small", {"n": 3}) == "undeclared-demo:small"


def test_histories_stay_apart_and_old_keys_still_open_and_reset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ProfileStore(tmp_path / "profile.sqlite")
    store.record_phase("trace:small", "old-run", 0, {"high": 3}, {"high": 2})  # a key made before
    short, full = _key(trace=str(ONE_RUN), max_phases=3), _key(trace=str(ONE_RUN))
    store.record_phase(short, "r1", 0, {"high": 5}, {"high": 5})
    assert store.width_history(full) == [] and store.width_history(short) == [[{"high": 5}]]
    assert store.width_history("trace:small") == [[{"high": 3}]]
    with pytest.raises(SystemExit):
        main(["--profile", str(store.path), "profile", "show"])
    shown = capsys.readouterr().out
    assert "max_phases=3" in shown and "trace:small" in shown
    assert store.reset("trace") == 2  # both the old key's row and the new one
