"""The example of docs/writing-a-workflow.md works as the document says."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pluggy
import pytest

from daydream_core import hookspecs
from daydream_core.errors import UsageError
from daydream_core.inline import run_inline
from daydream_core.model import Call
from daydream_core.objectstore import LocalObjectStore
from daydream_core.workflow import RunContext, Workflow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "quadrature"
DOC = ROOT / "docs" / "writing-a-workflow.md"


@pytest.fixture(scope="module")
def example() -> Iterator[Any]:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from daydream_quadrature import workflow as module

        yield module
    finally:
        sys.path.remove(str(EXAMPLE))


def drive(
    workflow: Workflow, store: LocalObjectStore, params: Mapping[str, Any]
) -> tuple[Any, list[list[Call]]]:
    """What the engine does, in-process: run each phase's components, send back results."""
    made = run_inline(workflow, params, store)
    return made.result, made.phases


def exact_two_peaks(a: float, b: float) -> float:
    def lorentz(centre: float, width: float) -> float:
        return (math.atan((b - centre) / width) - math.atan((a - centre) / width)) / width

    return lorentz(0.3, 0.01) + lorentz(0.71, 0.02)


def test_example_integrates_adaptively(example: Any, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    params = example.workflow.preset("small").params
    result, phases = drive(example.workflow, store, params)
    assert result["integral"] == pytest.approx(exact_two_peaks(0.0, 1.0), rel=1e-10)
    widths = [len(p) for p in phases]
    assert widths[0] == params["pieces"]
    assert len(widths) > 2  # later phases exist only because earlier results asked for them
    assert [c.kind for c in phases[-1]] == ["report"]
    csv = store.get(result["csv"]).decode().splitlines()
    assert csv[0] == "a,b,value,error" and len(csv) == result["intervals"] + 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"integrand": "nope"}, "integrand='nope' is not valid; valid: one of 'two-peaks'"),
        ({"pieces": 0}, "pieces=0 is out of range; valid: an integer >= 1 and <= 1000"),
        ({"tolerance": "tiny"}, "tolerance='tiny' is not a number > 0 and <= 1"),
        ({"typo": 1}, "unknown parameter typo; valid parameters: a, b, integrand, pieces"),
        ({"a": 2.0}, "quadrature needs a < b, not a=2, b=1"),
    ],
)
def test_example_rejects_bad_input_with_a_usage_error(
    example: Any, override: dict[str, Any], message: str
) -> None:
    params = {**example.workflow.preset("small").params, **override}
    with pytest.raises(UsageError) as raised:
        example.workflow.validate(params)
    assert message in str(raised.value)


def test_example_fills_declared_defaults(example: Any, tmp_path: Path) -> None:
    parsed = example.workflow.validate({"pieces": 2})
    assert parsed == {**example.workflow.preset("small").params, "pieces": 2}
    run = RunContext(params=parsed, seed=0, run_index=1, store=LocalObjectStore(tmp_path))
    assert len(next(example.workflow.plan(run))) == 2


def test_example_plugin_registers_through_the_hook(example: Any) -> None:
    from daydream_quadrature import plugin

    manager = pluggy.PluginManager("daydream")
    manager.add_hookspecs(hookspecs)
    manager.register(plugin, name="quadrature")
    (specs,) = manager.hook.daydream_apps()
    (spec,) = specs
    assert spec.name == "quadrature"
    assert spec.load() is example.workflow
    assert example.workflow.runtime.module == "daydream_quadrature.workflow"


def test_example_entry_point_matches_the_plugin_module() -> None:
    text = (EXAMPLE / "pyproject.toml").read_text()
    assert "[project.entry-points.daydream]" in text
    assert re.search(r'^quadrature = "daydream_quadrature.plugin"$', text, re.MULTILINE)


def test_document_shows_the_example_files() -> None:
    """The code blocks in the document are the example's files, verbatim."""
    doc = DOC.read_text()
    for relative in ("daydream_quadrature/workflow.py", "daydream_quadrature/plugin.py"):
        source = (EXAMPLE / relative).read_text().strip()
        assert source in doc, f"{relative} differs from its copy in {DOC.name}"
