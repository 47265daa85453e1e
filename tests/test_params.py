"""Declared parameters: parsing, ranges, defaults, nested fields, and the apps' declarations."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daydream_core import plugins
from daydream_core.errors import UsageError
from daydream_core.params import Param, Parameters, readable_path, writable_dir, writable_file
from daydream_core.workflow import Preset, Workflow

DECLARED = Parameters(
    {
        "n": Param(int, 4, "width", ge=1, le=100),
        "rate": Param(float, 0.5, gt=0, lt=1),
        "mode": Param(str, "fast", choices=("fast", "exact")),
        "flag": Param(bool, False),
        "box": Param(list, [0.0, 1.0], items=Param(float, ge=0), length=(2, 2)),
        "geometry": Param(dict, {}, fields={"size": Param(int, ge=16)}),
        "rate_or_none": Param(float, None, gt=0, nullable=True),
    }
)


def test_defaults_fill_what_is_not_given() -> None:
    parsed = DECLARED.parse({"n": 7})
    assert parsed == {
        "n": 7,
        "rate": 0.5,
        "mode": "fast",
        "flag": False,
        "box": [0.0, 1.0],
        "geometry": {},
        "rate_or_none": None,
    }


def test_integral_numbers_convert_and_ints_are_numbers() -> None:
    parsed = DECLARED.parse({"n": 3.0, "rate": 1 // 2 + 0.25, "box": [0, 1]})
    assert parsed["n"] == 3 and isinstance(parsed["n"], int)
    assert parsed["box"] == [0.0, 1.0] and all(isinstance(v, float) for v in parsed["box"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"nosuch": 1}, "unknown parameter nosuch; valid parameters: box, flag, geometry, mode, n"),
        ({"n": 0}, "n=0 is out of range; valid: an integer >= 1 and <= 100"),
        ({"n": 1.5}, "n=1.5 is not an integer"),
        ({"n": True}, "n=True is not an integer"),
        ({"n": "abc"}, "n='abc' is not an integer"),
        ({"rate": 1.0}, "rate=1.0 is out of range; valid: a number > 0 and < 1"),
        ({"rate": math.nan}, "rate=nan is not a finite number"),
        ({"rate": None}, "rate must be a number > 0 and < 1, not null"),
        ({"mode": "slow"}, "mode='slow' is not valid; valid: one of 'fast', 'exact'"),
        ({"flag": 1}, "flag=1 is not true or false"),
        ({"box": [1.0]}, "box has 1 item; valid: a list of 2 items"),
        ({"box": [1.0, -1.0]}, "box[1]=-1.0 is out of range"),
        ({"geometry": {"size": 8}}, "geometry.size=8 is out of range"),
        ({"geometry": {"sise": 8}}, "unknown parameter geometry.sise; valid parameters: "),
        ({"geometry": 3}, "geometry=3 is not a mapping"),
    ],
)
def test_bad_values_are_one_line_naming_what_is_valid(values: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as raised:
        DECLARED.parse(values)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@given(st.integers() | st.floats(allow_nan=True, allow_infinity=True))
def test_whatever_is_accepted_lies_in_range(value: float) -> None:
    try:
        parsed = DECLARED.parse({"rate": value})["rate"]
    except UsageError:
        return
    assert math.isfinite(parsed) and 0 < parsed < 1


def test_a_workflow_checks_declared_parameters_then_its_validator() -> None:
    workflow = Workflow(
        "declared-demo",
        presets={"small": Preset({"n": 4})},
        params={"n": Param(int, 4, ge=1), "m": Param(int, 8, ge=1)},
    )
    seen: list[dict[str, Any]] = []

    @workflow.validator
    def check(params: Any) -> None:
        seen.append(dict(params))
        if params["n"] > params["m"]:
            raise UsageError("n must not exceed m")

    assert workflow.validate({"n": 2}) == {"n": 2, "m": 8}
    assert seen == [{"n": 2, "m": 8}]  # the validator sees parsed values, defaults filled
    with pytest.raises(UsageError, match="declared-demo: n=0 is out of range"):
        workflow.validate({"n": 0})
    with pytest.raises(UsageError, match="n must not exceed m"):
        workflow.validate({"n": 9})


def test_a_preset_setting_an_undeclared_parameter_is_a_bug_of_the_workflow() -> None:
    with pytest.raises(ValueError, match="undeclared parameter 'typo'"):
        Workflow("typo-demo", presets={"small": Preset({"typo": 1})}, params={})


def test_an_undeclared_workflow_keeps_its_old_behaviour() -> None:
    workflow = Workflow("legacy-demo", presets={"small": Preset({"anything": 1})})
    assert workflow.parameters is None
    assert workflow.validate({"anything": 2, "else": 3}) == {"anything": 2, "else": 3}


@pytest.mark.parametrize("app", ["ccl", "exafel", "cosmoscout", "trace"])
def test_every_app_declares_what_its_presets_set(app: str) -> None:
    workflow = plugins.apps()[app].load()
    assert workflow.parameters is not None
    for preset in workflow.presets.values():
        parsed = workflow.validate(preset.params)
        assert set(parsed) == set(workflow.parameters)


def test_ccl_declared_defaults_are_its_dataclass_defaults() -> None:
    """Filling a default must not change what a run computes."""
    from daydream_ccl.config import AnalysisConfig
    from daydream_ccl.presets import PARAMS
    from daydream_ccl.refine import RefineSettings
    from daydream_ccl.survey import Survey

    for cls in (AnalysisConfig, Survey, RefineSettings):
        for f in dataclasses.fields(cls):
            if f.name == "survey":
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            default = list(default) if isinstance(default, tuple) else default
            assert PARAMS[f.name].default == default, f.name


def test_ccl_refuses_n_initial_0_before_anything_runs() -> None:
    workflow = plugins.apps()["ccl"].load()
    with pytest.raises(UsageError, match="ccl: n_initial=0 is out of range"):
        workflow.validate({**workflow.preset("small").params, "n_initial": 0})


def test_paths_are_checked_for_what_they_must_be(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert readable_path(plain) == plain and readable_path(tmp_path) == tmp_path
    with pytest.raises(ValueError, match="is a FIFO, not a file or directory"):
        readable_path(fifo)
    with pytest.raises(ValueError, match="is a character device"):
        readable_path("/dev/null")
    with pytest.raises(ValueError, match="does not exist"):
        readable_path(tmp_path / "nosuch")
    assert writable_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing is created by a check
    with pytest.raises(ValueError, match=r"its parent .*plain.* is a regular file"):
        writable_dir(plain / "x")
    with pytest.raises(ValueError, match="is a FIFO, not a directory"):
        writable_dir(fifo)
    assert writable_file(plain) == plain and writable_file(tmp_path / "n.sqlite")
    with pytest.raises(ValueError, match="is a FIFO, not a regular file"):
        writable_file(fifo)
