"""Per-run output files, all derived from records.

``run-<i>/phase_time.txt`` (seconds per phase), ``function_service_time.txt`` (seconds per
invocation) and ``execution_cost.txt`` (dollars per phase) keep the original DayDream format,
one number a line; ``run.json`` holds every record and decision; ``error.log`` the remote
traceback of what stopped the run. ``summary.json`` sums every run in the folder.

While a run runs, its phases are appended to ``journal.jsonl`` (`daydream_core.journal`);
``run.json`` and the text files are written once, when it stops (finished, failed or
interrupted). A run whose controller was killed has only its journal: readers take its records
from there (`read_run`), marked interrupted.

Run directories are reserved with an atomic ``mkdir``: two commands writing into one folder
get different run numbers, and a run's files are written only by the controller that reserved
them. Everything is private to the user (0700 directories, 0600 files).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from daydream_core import journal
from daydream_core.model import INTERRUPTED, RunRecord

DIR_MODE = 0o700
FILE_MODE = 0o600  # what mkstemp gives every file written here


def run_dir(out_dir: Path, index: int) -> Path:
    return out_dir / f"run-{index}"


def _indices(out_dir: Path) -> list[int]:
    return sorted(
        int(p.name.removeprefix("run-"))
        for p in out_dir.glob("run-*")
        if p.is_dir() and p.name.removeprefix("run-").isdigit()
    )


def next_run_index(out_dir: Path) -> int:
    """The first run index not used in `out_dir` (a hint: `reserve_run` is what claims one)."""
    return max(_indices(out_dir), default=0) + 1


def reserve_run(out_dir: Path) -> int:
    """Claim the next free run index in `out_dir` by creating its directory; ``mkdir`` is
    atomic, so a concurrent command that raced for the same index takes the next one."""
    out_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    index = next_run_index(out_dir)
    while True:
        try:
            run_dir(out_dir, index).mkdir(mode=DIR_MODE)
        except FileExistsError:
            index += 1
            continue
        return index


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lines(values: Iterable[float]) -> str:
    return "".join(f"{v!r}\n" for v in values)


RUN_FILES = ("phase_time.txt", "function_service_time.txt", "execution_cost.txt", "run.json")


def write_run(run: RunRecord, out_dir: Path) -> Path:
    """Write the files of one run, from its records (when it stops)."""
    directory = run_dir(out_dir, run.index)
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _write_atomic(directory / "phase_time.txt", _lines(p.phase_time_s for p in run.phases))
    _write_atomic(
        directory / "function_service_time.txt",
        _lines(r.service_ms / 1000.0 for p in run.phases for r in p.invocations),
    )
    _write_atomic(directory / "execution_cost.txt", _lines(p.cost for p in run.phases))
    _write_atomic(directory / "run.json", json.dumps(run.to_json(), indent=1) + "\n")
    return directory


def write_error_log(out_dir: Path, index: int, text: str) -> Path:
    """Keep the remote traceback of what stopped run `index` beside its records."""
    path = run_dir(out_dir, index) / "error.log"
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _write_atomic(path, text.rstrip() + "\n")
    return path


def discard_run_files(directory: Path) -> None:
    """Remove a stopped run's files before its run is resumed: its journal is the record until
    the resumed run writes them anew (stale files would hide the phases resumed)."""
    for name in RUN_FILES:
        (directory / name).unlink(missing_ok=True)


def journaled_run(directory: Path) -> dict[str, Any] | None:
    """The records of a stopped run that has no ``run.json`` (its controller was killed),
    rebuilt from its journal and marked ``"interrupted": true``; None if there is none, its
    controller is still running, or the journal is corrupt."""
    if (directory / "run.json").exists() or not (directory / journal.JOURNAL).is_file():
        return None
    if journal.running(directory):
        return None
    try:
        return journal.read(directory).record().to_json()
    except journal.JournalError:
        return None


def read_run(directory: Path) -> dict[str, Any] | None:
    """The records of the run in `directory`: its ``run.json``, else `journaled_run`; None
    for a run still running, a directory only reserved, or files that are not a run's."""
    try:
        data = json.loads((directory / "run.json").read_text())
    except (OSError, ValueError, RecursionError):
        data = None
    return data if isinstance(data, dict) else journaled_run(directory)


def read_runs(out_dir: Path) -> list[dict[str, Any]]:
    """The records of every run in `out_dir` that has stopped, by run index."""
    found = (read_run(run_dir(out_dir, index)) for index in _indices(out_dir))
    return [run for run in found if run is not None]


def journaled_runs(out_dir: Path) -> list[dict[str, Any]]:
    """`journaled_run` of every run in `out_dir`: for readers of ``run.json`` files."""
    found = (journaled_run(run_dir(out_dir, index)) for index in _indices(out_dir))
    return [run for run in found if run is not None]


def run_metrics(record: dict[str, Any]) -> tuple[list[float], list[float], list[float]]:
    """Phase times, service times and phase costs of a run's records, as its text files."""
    phases = record.get("phases", [])
    return (
        [float(p["phase_time_s"]) for p in phases],
        [float(r["service_ms"]) / 1000.0 for p in phases for r in p["invocations"]],
        [float(p["cost"]) for p in phases],
    )


def summarise_folder(out_dir: Path) -> dict[str, Any]:
    """Totals over every run recorded in `out_dir`, whichever command made it, and a row per
    run (`summary.run_row`: its command, status, headline result). A run whose controller was
    killed before it wrote ``run.json`` is rebuilt from its journal and marked interrupted."""
    from daydream_core.summary import command_labels, run_row, status

    runs: list[dict[str, Any]] = []
    unrecorded: list[int] = []
    for index in _indices(out_dir):
        record = read_run(run_dir(out_dir, index))
        if record is None:
            unrecorded.append(index)  # reserved by a run not written yet (or still running)
        else:
            runs.append(record)
    rows = [run_row(run) for run in runs]
    starts = {"hot": 0, "warm": 0, "cold": 0}
    for run in runs:
        for kind, count in run.get("starts", {}).items():
            starts[kind] = starts.get(kind, 0) + int(count)
    return {
        "runs": [r["index"] for r in runs],
        "failed": [r["index"] for r in runs if r.get("error")],
        "components": sum(p["width"] for r in runs for p in r.get("phases", [])),
        "execution_time_s": sum(float(r.get("execution_time_s", 0.0)) for r in runs),
        "cost": sum(float(r.get("cost", 0.0)) for r in runs),
        "starts": starts,
        "interrupted": [r["index"] for r in runs if status(r) == INTERRUPTED],
        "unrecorded": unrecorded,
        "commands": [c for c in command_labels(rows) if c is not None],
        "table": rows,
    }


def write_summary(out_dir: Path) -> Path:
    path = out_dir / "summary.json"
    _write_atomic(path, json.dumps(summarise_folder(out_dir), indent=1) + "\n")
    return path
