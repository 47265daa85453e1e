"""The bad-input corpus: command lines that must each fail as one line with exit status 2.

Two sources: hand-written cases (options, paths, provider settings, trace files, cross-field
checks) and cases derived from every app's parameter declarations (wrong types, values just
past each bound, non-finite numbers, unknown choices and keys). `tests/test_bad_input.py`
runs them, with hypothesis-generated cases beside them; `bench/bench_reliability.py` counts
them for `docs/reliability.md`. Placeholders such as ``{fifo}`` name files of `sandbox`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from daydream_core import plugins
from daydream_core.params import Param


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    code: int = 2


@dataclass(frozen=True)
class Outcome:
    code: int
    stderr: str

    def problems(self, expected: int) -> list[str]:
        """What is wrong with this outcome (empty: it kept the contract)."""
        found = []
        lines = self.stderr.strip().splitlines()
        if "Traceback" in self.stderr:
            found.append("traceback")
        if self.code != expected:
            found.append(f"exit {self.code}, not {expected}")
        if len(lines) != 1 or not lines[0].startswith("daydream: error: "):
            found.append(f"{len(lines)} lines")
        return found


def sandbox(root: Path) -> dict[str, str]:
    """Files the hand-written cases name: a FIFO, a regular file, trace files gone wrong."""
    root.mkdir(parents=True, exist_ok=True)
    files = {"root": str(root)}
    fifo = root / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    files["fifo"] = str(fifo)
    plain = root / "plain.txt"
    plain.write_text("not a directory\n")
    files["file"] = str(plain)
    files["dir"] = str(root)
    traces = {
        "truncated": '{"name": "x", "workflow": {"tasks": [',
        "empty": "",
        "deep": "[" * 100_000 + "]" * 100_000,
        "not_object": "[1, 2, 3]",
        "no_workflow": '{"name": "x"}',
        "legacy_size": json.dumps(
            {
                "name": "x",
                "workflow": {
                    "tasks": [
                        {
                            "name": "a",
                            "runtime": 1.0,
                            "files": [{"name": "f", "link": "output", "sizeInBytes": "abc"}],
                        }
                    ]
                },
            }
        ),
        "unknown_parent": json.dumps(
            {"name": "x", "workflow": {"tasks": [{"name": "a", "parents": ["zz"]}]}}
        ),
        "binary": "\udcff",
    }
    for name, text in traces.items():
        path = root / f"{name}.json"
        path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
        files[f"trace_{name}"] = str(path)
    return files


def hand_written() -> list[Case]:
    """Options, paths and settings a new user or an attacker might type."""
    run = ("run", "trace", "--out", "{root}/out")
    cases: list[tuple[str, Sequence[str]]] = [
        # apps, presets, policies, providers
        ("unknown app", ("run", "nosuchapp")),
        ("unknown preset", ("run", "ccl", "--preset", "huge")),
        ("unknown policy", ("run", "ccl", "--policy", "psychic")),
        ("unknown provider", ("--provider", "nosuchcloud", "run", "ccl")),
        ("unknown provider, cleanup", ("cleanup", "--provider", "nosuchcloud")),
        ("unknown command", ("frobnicate",)),
        ("missing app", ("run",)),
        ("unknown option", ("run", "ccl", "--colour", "red")),
        # numbers
        *[
            (f"--seed {v}", (*run, "--seed", v))
            for v in ("-1", "-9999999999", "9223372036854775808", "1e3", "abc", "", "0x10")
        ],
        *[
            (f"--timeout {v}", (*run, "--timeout", v))
            for v in ("nan", "NaN", "inf", "-inf", "0", "-1", "1e300", "abc", "")
        ],
        *[
            (f"--scale {v}", (*run, "--scale", v))
            for v in ("nan", "inf", "0", "-0.5", "1e7", "abc")
        ],
        *[(f"--runs {v}", (*run, "--runs", v)) for v in ("0", "-3", "1e22", "abc", "100001")],
        *[
            (f"--concurrency {v}", ("--concurrency", v, *run))
            for v in ("0", "-1", "10000000000000000000000", "1.5", "abc")
        ],
        *[(f"--max-width {v}", (*run, "--max-width", v)) for v in ("0", "-1", "abc", "1e9")],
        # paths
        ("--out under a regular file", ("run", "trace", "--out", "{file}/out")),
        ("--out is a regular file", ("run", "trace", "--out", "{file}")),
        ("--out is a FIFO", ("run", "trace", "--out", "{fifo}")),
        ("--out under a FIFO", ("run", "trace", "--out", "{fifo}/x")),
        ("--out under /dev/null", ("run", "trace", "--out", "/dev/null/x")),
        ("--trace is a FIFO", (*run, "--trace", "{fifo}")),
        ("--trace is a device", (*run, "--trace", "/dev/null")),
        ("--trace is missing", (*run, "--trace", "{root}/nosuch")),
        ("-p trace is a FIFO", (*run, "-p", "trace={fifo}")),
        ("-p trace is a device", (*run, "-p", "trace=/dev/zero")),
        ("--profile is a FIFO", ("--profile", "{fifo}", *run)),
        ("--profile is a directory", ("--profile", "{dir}", *run)),
        ("--profile is a device", ("--profile", "/dev/null", *run)),
        ("--profile under a file", ("--profile", "{file}/p.sqlite", *run)),
        ("--profile is not SQLite", ("--profile", "{file}", *run)),
        ("--profile is a JSON file", ("--profile", "{trace_truncated}", *run)),
        # trace files
        *[
            (f"trace {name}", (*run, "--trace", "{trace_" + name + "}"))
            for name in (
                "truncated",
                "empty",
                "deep",
                "not_object",
                "no_workflow",
                "legacy_size",
                "unknown_parent",
                "binary",
            )
        ],
        # -p and -o syntax
        ("-p without =", (*run, "-p", "scale")),
        ("-p empty key", (*run, "-p", "=1")),
        ("-p unknown key", (*run, "-p", "nosuch=1")),
        ("-p deeply nested", (*run, "-p", "scale=" + "[" * 100_000 + "]" * 100_000)),
        ("-p nested 65 deep", (*run, "-p", "scale=" + "[" * 65 + "]" * 65)),
        ("-p huge value", (*run, "-p", "scale=" + "1" * 1_000_001)),
        ("-o without =", ("-o", "colour", *run)),
        ("-o empty key", ("-o", "=1", *run)),
        # local provider options
        ("local unknown option", ("-o", "colour=red", *run)),
        *[
            (f"local {k}={v}", ("-o", f"{k}={v}", *run))
            for k, v in (
                ("high_memory_mb", "1"),
                ("high_memory_mb", "0"),
                ("high_memory_mb", "-5"),
                ("high_memory_mb", "abc"),
                ("high_memory_mb", "99999999"),
                ("low_memory_mb", "127"),
                ("low_memory_mb", "1e3"),
                ("keep_alive_s", "0"),
                ("keep_alive_s", "nan"),
                ("keep_alive_s", "inf"),
                ("keep_alive_s", "-1"),
                ("keep_alive_s", "1e9"),
                ("prices", "gcp"),
                ("store", "{file}"),
                ("store", "{fifo}"),
                ("store", "{file}/x"),
                ("store", "/dev/null"),
            )
        ],
        ("local low above high", ("-o", "low_memory_mb=9000", "-o", "high_memory_mb=4000", *run)),
        # aws provider options (checked before any call: no network)
        *[
            (f"aws {k}={v}", ("--provider", "aws", "-o", f"{k}={v}", *run))
            for k, v in (
                ("endpoint_url", "not a url"),
                ("endpoint_url", "ftp://127.0.0.1:1"),
                ("endpoint_url", "http://"),
                ("endpoint_url", "http://127.0.0.1:99999"),
                ("region", "us east 1"),
                ("region", "US-EAST-1"),
                ("region", "../../etc"),
                ("high_memory_mb", "1"),
                ("high_memory_mb", "20000"),
                ("low_memory_mb", "abc"),
                ("architecture", "sparc"),
                ("python_runtime", "python2.7"),
                ("function_timeout_s", "0"),
                ("function_timeout_s", "901"),
                ("bucket", "Not_A_Bucket"),
                ("prefix", "../x"),
                ("max_attempts", "0"),
                ("backoff_base_s", "nan"),
                ("timeout_slack_s", "-1"),
                ("install_requirements", "maybe"),
                ("colour", "red"),
            )
        ],
        (
            "aws low above high",
            ("--provider", "aws", "-o", "low_memory_mb=9000", "-o", "high_memory_mb=4000", *run),
        ),
        ("aws cleanup bad endpoint", ("--provider", "aws", "-o", "endpoint_url=x", "cleanup")),
        ("aws cleanup bad region", ("cleanup", "--provider", "aws", "-o", "region=x y")),
        # cross-field checks
        ("ccl min_new > max_new", ("run", "ccl", "-p", "min_new=9", "-p", "max_new=3")),
        ("ccl theta range", ("run", "ccl", "-p", "theta_min_arcmin=300")),
        ("ccl prior reversed", ("run", "ccl", "-p", 'prior={"Omega_c": [0.3, 0.2]}')),
        ("exafel min_batch > max_batch", ("run", "exafel", "-p", "min_batch=40")),
        ("exafel space group blank", ("run", "exafel", "-p", "space_group= ")),
        ("exafel detector short of d_min", ("run", "exafel", "-p", "d_min=0.6")),
        ("cosmoscout lmax past nside", ("run", "cosmoscout", "-p", "elevation_lmax=5000")),
        ("cosmoscout view lacks fields", ("run", "cosmoscout", "-p", 'views=[{"name": "x"}]')),
    ]
    return [Case(name, tuple(argv)) for name, argv in cases]


def invalid_values(param: Param) -> Iterator[tuple[str, str]]:
    """(what, JSON text) of values `param` must refuse."""
    numeric = param.type in (int, float)
    if param.type is not str:
        yield "a string", '"abc"'
    if param.type is not list:
        yield "a list", "[1]"
    if param.type is not dict:
        yield "a mapping", '{"a": 1}'
    if param.type is not bool and not (param.type is str and param.choices is None):
        yield "a boolean", "true"
    if not param.nullable:
        yield "null", "null"
    if param.type is int:
        yield "a fraction", "1.5"
    if numeric:
        for word in ("NaN", "Infinity", "-Infinity"):
            yield word, word
        if param.ge is not None:
            yield "below its minimum", _json(param.type, param.ge, -1)
        if param.gt is not None:
            yield "at its open minimum", _json(param.type, param.gt, 0)
        if param.le is not None:
            yield "above its maximum", _json(param.type, param.le, +1)
        if param.lt is not None:
            yield "at its open maximum", _json(param.type, param.lt, 0)
    if param.choices is not None:
        yield "not a choice", '"no-such-choice"'
    if param.type is list and param.length is not None:
        low, high = param.length
        yield "too long", json.dumps([param.items.default if param.items else 0] * (high + 1))
        if low > 0:
            yield "empty", "[]"
    if param.type is list and param.items is not None:
        for what, text in invalid_values(param.items):
            yield f"an item {what}", f"[{text}]"
    if param.type is dict and param.fields is not None:
        yield "an unknown field", '{"no_such_field": 1}'
        for field_name, field in param.fields.items():
            for what, text in invalid_values(field):
                yield f"field {field_name} {what}", f'{{"{field_name}": {text}}}'


def _json(kind: type, bound: float, step: int) -> str:
    if kind is int:
        return str(int(bound) + step)
    value = bound + step * max(1.0, abs(bound)) * 0.5 if step else bound
    return repr(float(value))


def derived(apps: Sequence[str] = ("ccl", "exafel", "cosmoscout", "trace")) -> list[Case]:
    """Invalid values for every declared parameter of every app."""
    cases: list[Case] = []
    for app in apps:
        workflow = plugins.apps()[app].load()
        assert workflow.parameters is not None, f"{app} declares no parameters"
        for name, param in workflow.parameters.params.items():
            for what, text in invalid_values(param):
                cases.append(
                    Case(
                        f"{app} {name} {what}",
                        ("run", app, "--out", "{root}/out", "-p", f"{name}={text}"),
                    )
                )
    return cases


def corpus() -> list[Case]:
    return hand_written() + derived()


def expand(case: Case, files: dict[str, str]) -> list[str]:
    argv = []
    for arg in case.argv:
        for name, path in files.items():
            arg = arg.replace("{" + name + "}", path)
        argv.append(arg)
    return argv


def run_case(argv: Sequence[str]) -> Outcome:
    """Run ``daydream ARGV`` in this process; what it printed on stderr and its status."""
    from daydream_core.cli import main

    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(list(argv))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            import traceback

            err.write(traceback.format_exc())
            code = -1
    return Outcome(code, err.getvalue())
