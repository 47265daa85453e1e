"""Click parameter types that check what an option must be, so bad input fails as one line.

Click's own `FloatRange` lets NaN through (every comparison with NaN is false) and its `Path`
opens nothing but accepts a FIFO, which then blocks whoever reads it; these refuse both.
"""

from __future__ import annotations

import json
import math
from typing import Any

import click

from daydream_core import params

MAX_VALUE_CHARS = 1_000_000  # a -p value longer than this is a mistake, not a parameter
MAX_NESTING = 64  # JSON nesting of a -p value (Python's json recurses: deep input overflows)


class FiniteFloat(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.2
    """A finite number within bounds: ``(low, high]`` when `low_open`, else ``[low, high]``."""

    name = "number"

    def __init__(self, low: float, high: float, *, low_open: bool = False) -> None:
        self.low, self.high, self.low_open = low, high, low_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(value)
            except ValueError:
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        too_low = number <= self.low if self.low_open else number < self.low
        if too_low or number > self.high:
            bracket = "(" if self.low_open else "["
            self.fail(
                f"{value!r} is not in the range {bracket}{self.low:g}, {self.high:g}]", param, ctx
            )
        return number


class ReadablePath(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.2
    """An existing regular file or directory that can be read (no FIFO, socket or device)."""

    name = "path"

    def __init__(self, kind: str = "file or directory") -> None:
        self.kind = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return params.readable_path(value, kind=self.kind)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class WritableDir(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.2
    """A directory that exists and can be written, or can be created."""

    name = "directory"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return params.writable_dir(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class WritableFile(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.2
    """A regular file that can be read and written, or can be created."""

    name = "file"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return params.writable_file(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def json_value(text: str, option: str) -> Any:
    """A ``-p`` value: JSON when it parses, else the text itself; bounded in size and depth."""
    if len(text) > MAX_VALUE_CHARS:
        raise click.BadParameter(
            f"a value of {len(text)} characters is longer than {MAX_VALUE_CHARS}",
            param_hint=option,
        )
    if _nesting(text) > MAX_NESTING:
        raise click.BadParameter(
            f"a value nested more than {MAX_NESTING} deep is not a parameter", param_hint=option
        )
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")  # NaN, Infinity: kept as text, refused


def _nesting(text: str) -> int:
    """Bracket depth, counted outside strings (an upper bound is enough here)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
