"""Per-run output files, all derived from records.

``run-<i>/phase_time.txt`` (seconds per phase), ``function_service_time.txt`` (seconds per
invocation) and ``execution_cost.txt`` (dollars per phase) keep the original DayDream format,
one number a line; ``run.json`` holds every record and decision.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from daydream_core.model import RunRecord


def run_dir(out_dir: Path, index: int) -> Path:
    return out_dir / f"run-{index}"


def next_run_index(out_dir: Path) -> int:
    """The first run index not used in `out_dir`, so earlier results are never overwritten."""
    used = [
        int(p.name.removeprefix("run-"))
        for p in out_dir.glob("run-*")
        if p.is_dir() and p.name.removeprefix("run-").isdigit()
    ]
    return max(used, default=0) + 1


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _lines(values: Iterable[float]) -> str:
    return "".join(f"{v!r}\n" for v in values)


def write_run(run: RunRecord, out_dir: Path) -> Path:
    """Write (or rewrite, as phases complete) the files of one run."""
    directory = run_dir(out_dir, run.index)
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(directory / "phase_time.txt", _lines(p.phase_time_s for p in run.phases))
    _write_atomic(
        directory / "function_service_time.txt",
        _lines(r.service_ms / 1000.0 for p in run.phases for r in p.invocations),
    )
    _write_atomic(directory / "execution_cost.txt", _lines(p.cost for p in run.phases))
    _write_atomic(directory / "run.json", json.dumps(run.to_json(), indent=1) + "\n")
    return directory
