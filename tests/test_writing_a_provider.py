"""The example of docs/writing-a-provider.md works as the document says: its files are the
document's code blocks, its adapter is under 200 lines, it registers through the hook, it
passes the conformance suite with nothing skipped, and the suite fails an adapter of it that
is wrong in one way.

The example need not be installed: it is put on ``sys.path`` here and on ``PYTHONPATH`` for
its instance processes, and handed to the suite through the suite's own hook.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

# Imported here, so that pytester's in-process runs keep them (numpy cannot load twice).
import daydream_conformance.environment  # noqa: F401
import pluggy
import pytest

import daydream_core.engine
import daydream_core.policies.builtin  # noqa: F401
from daydream_core import hookspecs
from daydream_core.model import StartKind
from daydream_core.provider import Invocation, ProviderSettings

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "daydream-minifaas"
PACKAGE = EXAMPLE / "daydream_minifaas"
DOC = ROOT / "docs" / "writing-a-provider.md"
ADAPTER = ("adapter.py", "handler.py", "plugin.py")  # what an author writes for the contract
SHOWN = (*(f"daydream_minifaas/{name}" for name in ADAPTER), "daydream_minifaas/testing.py")
MAX_ADAPTER_LINES = 200


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    path = os.pathsep.join(p for p in (str(EXAMPLE), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)  # the platform's instances import the handler
    import daydream_minifaas.adapter
    import daydream_minifaas.testing

    yield daydream_minifaas


# -- the document and the example agree -------------------------------------------------------


def _blocks(doc: str) -> dict[str, list[str]]:
    """The document's code blocks, by the file each says it is (``<!-- file: PATH -->``)."""
    blocks: dict[str, list[str]] = {}
    pattern = r"<!-- file: (\S+) -->\s*```[a-z]*\n(.*?)```"
    for path, body in re.findall(pattern, doc, re.DOTALL):
        blocks.setdefault(path, []).append(body)
    return blocks


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("relative", [*SHOWN, "pyproject.toml"])
def test_document_shows_the_example_files_whole(relative: str) -> None:
    """Each file the document shows is there verbatim and whole, in order, split into pieces
    at blank lines (what lies between the pieces is prose)."""
    pieces = _blocks(DOC.read_text()).get(relative)
    assert pieces, f"{DOC.name} does not show {relative}"
    shown = [line for piece in pieces for line in _lines(piece)]
    assert shown == _lines((EXAMPLE / relative).read_text()), (
        f"{relative} differs from its copy in {DOC.name}"
    )


def test_document_shows_only_the_example_files() -> None:
    assert set(_blocks(DOC.read_text())) == {*SHOWN, "pyproject.toml"}


def code_lines(path: Path) -> int:
    """Lines holding code: not blank, not only a comment, not a docstring."""
    source = path.read_text()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.body[0] if node.body else None
        value = first.value if isinstance(first, ast.Expr) else None
        if first is not None and isinstance(value, ast.Constant) and isinstance(value.value, str):
            docstrings.update(range(first.lineno, (first.end_lineno or 0) + 1))
    skipped = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    code: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skipped | {tokenize.ENDMARKER}:
            code.update(range(token.start[0], token.end[0] + 1))
    return len(code - docstrings)


def test_code_lines_counts_code_only(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Doc."""\n\n# a comment\nx = 1  # one\n\n\n'
        'def f():\n    """Doc\n    two."""\n    return (\n        x\n    )\n'
    )
    assert code_lines(sample) == 5


def test_adapter_is_under_200_lines() -> None:
    physical = len((PACKAGE / "adapter.py").read_text().splitlines())
    assert physical < MAX_ADAPTER_LINES, f"adapter.py has {physical} lines"
    code = sum(code_lines(PACKAGE / name) for name in ADAPTER)
    assert code < MAX_ADAPTER_LINES, f"{', '.join(ADAPTER)} hold {code} lines of code"
    claim = re.search(
        r"(\d+) lines in\s+`adapter\.py`,\s+(\d+)\s+lines\s+of\s+code", DOC.read_text()
    )
    assert claim, f"{DOC.name} does not say how long the adapter is"
    assert (int(claim[1]), int(claim[2])) == (physical, code), (
        f"{DOC.name} says {claim[0]!r}; the example has {physical} and {code}"
    )


def test_entry_point_names_the_plugin_module() -> None:
    text = (EXAMPLE / "pyproject.toml").read_text()
    assert re.search(
        r'^\[project\.entry-points\.daydream\]\nminifaas = "daydream_minifaas\.plugin"$',
        text,
        re.MULTILINE,
    )


def test_plugin_registers_through_the_hook(example: Any, tmp_path: Path) -> None:
    from daydream_minifaas import plugin

    manager = pluggy.PluginManager("daydream")
    manager.add_hookspecs(hookspecs)
    manager.register(plugin, name="minifaas")
    ((spec,),) = manager.hook.daydream_providers()
    assert spec.name == "minifaas" and not spec.missing()
    with example.testing.conformance_environment(tmp_path) as environment:
        provider = spec.create(environment.settings)
        assert provider.name == "minifaas" and set(provider.tiers()) == {"high", "low"}
        provider.close()


def test_bad_options_are_one_line_configuration_errors(example: Any, tmp_path: Path) -> None:
    from daydream_minifaas.adapter import MiniFaasProvider

    from daydream_core.errors import ConfigurationError

    cases = {
        "endpoint": ({"endpoint": "http://127.0.0.1:1"}, "minifaas endpoint=http://127.0.0.1:1"),
        "unknown": ({"nope": "1"}, "unknown minifaas option 'nope'; valid options: endpoint"),
        "memory": ({"low_memory_mb": "64"}, "minifaas needs 128 <= low_memory_mb"),
        "number": ({"low_memory_mb": "lots"}, "low_memory_mb='lots' is not a valid int"),
    }
    for options, message in cases.values():
        settings = ProviderSettings(tmp_path, options=options)
        with pytest.raises(ConfigurationError) as raised:
            MiniFaasProvider(settings)
        assert message in str(raised.value) and "\n" not in str(raised.value)


# -- the conformance suite ----------------------------------------------------------------------


class ExampleEnvironment:
    """Hands the suite the example's own environment, with `factory` as the adapter."""

    def __init__(self, factory: type) -> None:
        self.factory = factory

    def pytest_daydream_conformance_environment(
        self, config: pytest.Config, provider: str, workdir: Path
    ) -> AbstractContextManager[Any]:
        from daydream_minifaas.testing import conformance_environment

        @contextmanager
        def environment() -> Iterator[Any]:
            with conformance_environment(workdir) as found:
                yield replace(found, factory=self.factory)

        return environment()


def _suite(pytester: pytest.Pytester, factory: type, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(
        "--pyargs",
        "daydream_conformance",
        "-p",
        "no:cacheprovider",
        "-rs",
        "--daydream-provider",
        "minifaas",
        *args,
        plugins=[ExampleEnvironment(factory)],
    )


def test_example_passes_the_conformance_suite(example: Any, pytester: pytest.Pytester) -> None:
    result = _suite(pytester, example.adapter.MiniFaasProvider)
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 33
    assert set(outcomes) == {"passed"}, "nothing skipped, nothing failed"


def test_the_suite_fails_the_example_made_wrong(example: Any, pytester: pytest.Pytester) -> None:
    """An adapter of minifaas that calls a cold start warm is caught by the cases that
    compare start kinds with the platform's records."""

    class HidesColdStarts(example.adapter.MiniFaasProvider):  # type: ignore[misc]
        def invoke(self, *args: Any, **kwargs: Any) -> Invocation:
            result: Invocation = super().invoke(*args, **kwargs)
            if result.start is StartKind.COLD:
                return replace(result, start=StartKind.WARM)
            return result

    cases = ("test_cold_start_is_reported_cold", "test_start_kinds_agree_with_the_platform")
    result = _suite(pytester, HidesColdStarts, "-k", " or ".join(cases))
    assert result.ret != 0
    assert result.parseoutcomes().get("failed") == len(cases), result.stdout.str()


# -- the platform itself ------------------------------------------------------------------------


def test_platform_reports_a_failed_init_and_keeps_nothing(example: Any, tmp_path: Path) -> None:
    from daydream_minifaas.platform import Platform, PlatformError

    platform = Platform(tmp_path)
    try:
        platform.put("broken", {"handler": "no_such_module", "memory_mb": 256, "cpus": 1})
        attempts = (
            lambda: platform.invoke("broken", {}, 30.0),
            lambda: platform.provision("broken", 2),
        )
        for attempt in attempts:
            with pytest.raises(PlatformError) as raised:
                attempt()
            assert raised.value.status == 502 and "failed its init" in str(raised.value)
        assert platform.live("broken") == []
        assert not any(i.alive for i in platform.history)
    finally:
        platform.close()


def test_platform_reclaims_idle_instances(example: Any, tmp_path: Path) -> None:
    import time

    from daydream_minifaas.platform import Platform

    platform = Platform(tmp_path, keep_alive_s=0.2)
    try:  # the handler: a standard-library module, imported at init, never called
        platform.put("idle", {"handler": "json", "memory_mb": 256, "cpus": 1})
        (bill,) = platform.provision("idle", 1)
        assert bill.init_ms > 0 and bill.billed_ms >= bill.init_ms
        deadline = time.monotonic() + 30.0
        while platform.live("idle") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert platform.live("idle") == [], "an idle instance outlived its keep-alive"
        assert not platform.history[0].alive
    finally:
        platform.close()
