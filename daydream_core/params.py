"""Declared workflow parameters: types, ranges, choices and defaults, checked at the edge.

A workflow declares what it accepts::

    Workflow("demo", params={
        "n": Param(int, 4, ge=1, le=10_000, help="components of the first phase"),
        "mode": Param(str, "fast", choices=("fast", "exact")),
        "box": Param(list, [0.0, 1.0], items=Param(float), length=(2, 2)),
    }, presets=...)

`Parameters.parse` turns what the user gave (a preset's values, ``-p KEY=VALUE`` overrides)
into checked values, defaults filled, before anything is deployed: an unknown key names the
valid ones, a bad value says what is valid, all as one `UsageError` line. Cross-field checks
stay with `Workflow.validator`, which runs after this.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daydream_core.errors import UsageError

#: the types a parameter may have: what JSON can carry
TYPES: tuple[type, ...] = (int, float, bool, str, list, dict)
_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_NAMES.update({list: "a list", dict: "a mapping"})
IDENTITY_CHARS = 40  # a DAG-shaping value longer than this keys its workload by its hash


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default, the range or choices it must lie in, and its help.

    `ge`/`gt`/`le`/`lt` bound numbers (and, for lists, nothing: use `length`); `choices`
    enumerates valid values; `items` checks each element of a list; `fields` declares the
    keys of a mapping (unknown keys rejected; given keys checked, absent ones left absent);
    `nullable` admits ``null``; `check` is a last test that raises `ValueError` with what is
    wrong (e.g. `readable_path`). Numbers must be finite.

    `shapes_dag` says the value changes the workflow's DAG (its phases and their widths), so
    runs that differ in it never share a concurrency history: ``True`` keys the history by the
    value itself, a function by what it returns for the value (e.g. `content_hash` of a
    path, so that the same file under two names is one workload and an edited file another).
    """

    type: type
    default: Any = None
    help: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: Sequence[Any] | None = None
    items: Param | None = None
    length: tuple[int, int] | None = None
    fields: Mapping[str, Param] | None = None
    nullable: bool = False
    check: Callable[[Any], None] | None = field(default=None, compare=False)
    shapes_dag: bool | Callable[[Any], str] = field(default=False, compare=False)

    def identity(self, value: Any) -> str | None:
        """What `value` contributes to a workload's key (None: it does not shape the DAG)."""
        if self.shapes_dag is False:
            return None
        if self.shapes_dag is True:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
            if len(text) <= IDENTITY_CHARS:
                return text
            return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]  # a long list
        return str(self.shapes_dag(value))

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            valid = ", ".join(t.__name__ for t in TYPES)
            raise TypeError(f"parameter type {self.type!r} is not one of {valid}")

    def describe(self) -> str:
        """What is valid, in words (for error messages and `apps --params`)."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = _NAMES[self.type]
        bounds = [
            f"{op} {_number(v)}"
            for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if v is not None
        ]
        if bounds:
            text += " " + " and ".join(bounds)
        if self.length is not None:
            low, high = self.length
            count = f"{low}" if low == high else f"{low}-{high}"
            text += f" of {count} item{'s' * (high != 1)}"
        return text

    def parse(self, value: Any, where: str) -> Any:
        """`value` checked and converted, or a one-line `UsageError` naming `where`."""
        if value is None:
            if self.nullable:
                return None
            raise UsageError(f"{where} must be {self.describe()}, not null")
        converted = self._convert(value, where)
        if self.choices is not None and converted not in self.choices:
            raise UsageError(f"{where}={_shown(value)} is not valid; valid: {self.describe()}")
        if self.type in (int, float):
            self._check_range(converted, value, where)
        if self.type is list:
            converted = self._parse_list(converted, value, where)
        if self.type is dict and self.fields is not None:
            converted = Parameters(self.fields).parse(converted, prefix=f"{where}.", fill=False)
        if self.check is not None:
            try:
                self.check(converted)
            except ValueError as exc:
                raise UsageError(f"{where}: {exc}") from None
        return converted

    def _convert(self, value: Any, where: str) -> Any:
        wrong = UsageError(f"{where}={_shown(value)} is not {self.describe()}")
        if self.type is bool:
            if not isinstance(value, bool):
                raise wrong
            return value
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise wrong
            if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
                raise wrong
            return int(value)
        if self.type is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise wrong
            if not math.isfinite(value):
                raise UsageError(f"{where}={_shown(value)} is not a finite number")
            return float(value)
        if self.type is str:
            if not isinstance(value, str):
                raise wrong
            return value
        if self.type is list:
            if not isinstance(value, list | tuple):
                raise wrong
            return list(value)
        if not isinstance(value, Mapping):
            raise wrong
        return dict(value)

    def _check_range(self, number: float, given: Any, where: str) -> None:
        if (
            (self.ge is not None and number < self.ge)
            or (self.gt is not None and number <= self.gt)
            or (self.le is not None and number > self.le)
            or (self.lt is not None and number >= self.lt)
        ):
            raise UsageError(f"{where}={_shown(given)} is out of range; valid: {self.describe()}")

    def _parse_list(self, items: list[Any], given: Any, where: str) -> list[Any]:
        if self.length is not None and not self.length[0] <= len(items) <= self.length[1]:
            raise UsageError(
                f"{where} has {len(items)} item{'s' * (len(items) != 1)}; valid: {self.describe()}"
            )
        if self.items is None:
            return items
        return [self.items.parse(item, f"{where}[{i}]") for i, item in enumerate(items)]


class Parameters:
    """A workflow's declared parameters, by name."""

    def __init__(self, params: Mapping[str, Param]) -> None:
        for name, param in params.items():
            if not isinstance(param, Param):
                raise TypeError(f"parameter {name!r} must be declared with Param(...)")
        self.params = dict(params)

    def __contains__(self, name: object) -> bool:
        return name in self.params

    def __iter__(self) -> Any:
        return iter(self.params)

    def names(self) -> str:
        return ", ".join(sorted(self.params))

    def shape(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The values of the parameters that shape the DAG, as they key a workload."""
        shape = {}
        for name in sorted(self.params):
            if name in values and (ident := self.params[name].identity(values[name])) is not None:
                shape[name] = ident
        return shape

    def unknown(self, values: Mapping[str, Any]) -> list[str]:
        return sorted(set(values) - set(self.params))

    def parse(
        self, values: Mapping[str, Any], *, prefix: str = "", fill: bool = True
    ) -> dict[str, Any]:
        """Checked values; with `fill`, every declared parameter is present (its default when
        not given)."""
        unknown = self.unknown(values)
        if unknown:
            raise UsageError(
                f"unknown parameter {prefix}{unknown[0]}; valid parameters: "
                + ", ".join(prefix + n for n in sorted(self.params))
            )
        parsed: dict[str, Any] = {}
        for name, param in self.params.items():
            if name in values:
                parsed[name] = param.parse(values[name], prefix + name)
            elif fill:
                parsed[name] = param.default
        return parsed


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- paths ------------------------------------------------------------------------------------
# What a path given by the user must be, checked without opening it: opening a FIFO blocks
# until a writer appears, so FIFOs, sockets and devices are refused by their mode.


def readable_path(path: str | os.PathLike[str], *, kind: str = "file or directory") -> Path:
    """`path` if it is a readable regular file (or directory, if `kind` allows); else
    `ValueError` saying what it is instead."""
    target = Path(path)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        raise ValueError(f"{target} does not exist") from None
    except OSError as exc:
        raise ValueError(f"{target} cannot be read: {exc.strerror}") from None
    want_dir = "directory" in kind
    want_file = "file" in kind
    if stat.S_ISDIR(mode) and want_dir:
        readable = os.access(target, os.R_OK | os.X_OK)
    elif stat.S_ISREG(mode) and want_file:
        readable = os.access(target, os.R_OK)
    else:
        raise ValueError(f"{target} is {_file_kind(mode)}, not a {kind}")
    if not readable:
        raise ValueError(f"{target} is not readable")
    return target


def content_hash(path: str | os.PathLike[str], length: int = 12) -> str:
    """A short SHA-256 of a file's bytes, or of a directory's files (relative names and
    bytes, in sorted order): what a path *is*, whatever it is called."""
    root = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    for file in files:
        if root.is_dir():
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return f"sha256:{digest.hexdigest()[:length]}"


def writable_dir(path: str | os.PathLike[str]) -> Path:
    """`path` if it is, or can be created as, a directory this process can write; else
    `ValueError`. Nothing is created."""
    target = Path(path).absolute()
    probe = target
    while True:
        try:
            mode = probe.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            probe = probe.parent  # the nearest thing that exists says what is wrong
            continue
        except OSError as exc:
            raise ValueError(f"{probe} cannot be used: {exc.strerror}") from None
        break
    if not stat.S_ISDIR(mode):
        what = "" if probe == target else f" (its parent {probe})"
        raise ValueError(f"{target}{what} is {_file_kind(mode)}, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{probe} is not writable")
    return target


def writable_file(path: str | os.PathLike[str]) -> Path:
    """`path` if it is a regular file this process can read and write, or can be created as
    one; else `ValueError`."""
    target = Path(path).absolute()
    try:
        mode = target.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        writable_dir(target.parent)
        return target
    except OSError as exc:
        raise ValueError(f"{target} cannot be used: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{target} is {_file_kind(mode)}, not a regular file")
    if not os.access(target, os.R_OK | os.W_OK):
        raise ValueError(f"{target} is not writable")
    return target


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "a special file"
