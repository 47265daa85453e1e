"""Bad input, hand-written, derived from declarations and generated: one line, exit 2.

Every case runs `daydream_core.cli.main` in-process, with `Engine.run` replaced by a tripwire:
a case that got as far as running a workflow is a case that validation let through.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bad_input_corpus import Case, corpus, expand, run_case, sandbox
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daydream_core import plugins
from daydream_core.engine import Engine
from daydream_core.params import Param

CASES = corpus()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return sandbox(tmp_path_factory.mktemp("bad-input"))


@pytest.fixture(autouse=True)
def tripwire(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def reached(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("bad input reached Engine.run")

    monkeypatch.setattr(Engine, "run", reached)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    yield


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 300
    assert len({c.name for c in CASES}) == len(CASES), "case names are unique"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case: Case, files: dict[str, str]) -> None:
    outcome = run_case(expand(case, files))
    assert outcome.problems(case.code) == [], outcome.stderr[-2000:]


# -- generated -----------------------------------------------------------------------------

APPS = ("ccl", "exafel", "cosmoscout", "trace")


def _declared(app: str) -> dict[str, Param]:
    workflow = plugins.apps()[app].load()
    assert workflow.parameters is not None
    return workflow.parameters.params


def _out_of_range(param: Param) -> st.SearchStrategy[str]:
    """JSON texts of numbers past one of `param`'s bounds."""
    if param.type is int:
        ints: list[st.SearchStrategy[int]] = []
        if param.ge is not None:
            ints.append(st.integers(max_value=math.ceil(param.ge) - 1))
        if param.gt is not None:
            ints.append(st.integers(max_value=math.floor(param.gt)))
        if param.le is not None:
            ints.append(st.integers(min_value=math.floor(param.le) + 1))
        if param.lt is not None:
            ints.append(st.integers(min_value=math.ceil(param.lt)))
        return st.one_of(ints).map(str)
    floats: list[st.SearchStrategy[float]] = []
    low = param.ge if param.ge is not None else param.gt
    high = param.le if param.le is not None else param.lt
    if low is not None:
        floats.append(st.floats(max_value=low, exclude_max=param.ge is not None))
    if high is not None:
        floats.append(st.floats(min_value=high, exclude_min=param.le is not None))
    return st.one_of(floats).filter(math.isfinite).map(repr)


@st.composite
def bad_parameter(draw: st.DrawFn) -> tuple[str, str, str]:
    app = draw(st.sampled_from(APPS))
    declared = _declared(app)
    numeric = sorted(n for n, p in declared.items() if p.type in (int, float))
    kind = draw(st.sampled_from(["unknown key", "out of range", "wrong type"]))
    if kind == "unknown key":
        key = draw(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True))
        if key in declared:
            key += "_nosuch"
        return app, key, draw(st.sampled_from(["1", "x", "[]", "{}", "null"]))
    name = draw(st.sampled_from(numeric))
    if kind == "out of range" and any(
        b is not None for b in (declared[name].ge, declared[name].gt, declared[name].le)
    ):
        return app, name, draw(_out_of_range(declared[name]))
    text = draw(st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), min_size=1))
    if _is_number(text):
        text = f"x{text}"
    return app, name, text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=bad_parameter())
def test_generated_parameters_are_refused(
    case: tuple[str, str, str], files: dict[str, str]
) -> None:
    app, key, value = case
    outcome = run_case(["run", app, "--out", f"{files['root']}/out", "-p", f"{key}={value}"])
    assert outcome.problems(2) == [], outcome.stderr[-2000:]


@st.composite
def bad_option(draw: st.DrawFn) -> list[str]:
    option = draw(st.sampled_from(["--seed", "--timeout", "--scale", "--runs", "--max-width"]))
    bounds = {
        "--seed": (0, 2**63 - 1),
        "--runs": (1, 100_000),
        "--max-width": (1, 1_000_000),
    }
    if option in bounds:
        low, high = bounds[option]
        value = draw(st.integers(max_value=low - 1) | st.integers(min_value=high + 1))
        return ["run", "trace", option, str(value)]
    number = draw(
        st.floats(max_value=0.0)
        | st.just(math.nan)
        | st.just(math.inf)
        | st.floats(min_value=1e7, allow_infinity=True)
    )
    return ["run", "trace", option, repr(number)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv=bad_option())
def test_generated_options_are_refused(argv: list[str], files: dict[str, str]) -> None:
    outcome = run_case([*argv, "--out", f"{files['root']}/out"])
    assert outcome.problems(2) == [], outcome.stderr[-2000:]


def test_a_fifo_as_trace_never_blocks(files: dict[str, str], tmp_path: Path) -> None:
    """A FIFO would block whoever opens it: it is refused by its mode, unopened."""
    outcome = run_case(["run", "trace", "--trace", files["fifo"], "--out", str(tmp_path)])
    assert "is a FIFO" in outcome.stderr and outcome.code == 2
