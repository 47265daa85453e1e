"""The journal of a run: what `daydream run --resume` needs to continue it, appended as it goes.

``run-<i>/journal.jsonl`` is append-only JSON lines, private (0600), one entry per line:

- ``run``: the run's identity, written when it starts (app, preset, params, seed, policy,
  provider, run_id, index);
- ``phase``: one per completed phase, fsync'd before the controller goes on: the phase's
  `PhaseRecord`, a digest of the calls the phase generator yielded for it, and the outputs of
  its components, as the components returned them;
- ``resumed``: a controller continued the run from phase ``phase`` (later phase entries
  replace earlier ones from that index on);
- ``end``: the run stopped, finished (``error`` null) or not.

Outputs are kept inline. They are what components return: JSON that already crossed the
provider's payload limit, and by convention large data stays in the object store, under the
run's own keys (`ComponentContext.key`), with its key in the output. A resumed run keeps its
run_id, so those keys stay valid.

A controller holds an exclusive `flock` on its journal while it runs; the kernel drops it
however the controller dies. So a reader tells a run in progress (locked) from one whose
controller is gone without an ``end`` (interrupted, perhaps killed), and two controllers never
continue one run. Only the last line may be torn (a controller killed mid-write): it was never
acknowledged, so it is ignored; a bad line anywhere else makes the journal corrupt.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from daydream_core.errors import UsageError
from daydream_core.model import (
    INTERRUPTED,
    Call,
    HotStartRecord,
    InvocationRecord,
    PhaseRecord,
    RunRecord,
    StartKind,
    WidthHint,
)

JOURNAL = "journal.jsonl"
VERSION = 1
FILE_MODE = 0o600

_Record = TypeVar("_Record")


class JournalError(UsageError):
    """A journal that cannot be resumed: missing, corrupt, finished, or not this run's."""


def calls_digest(calls: Sequence[Call]) -> str:
    """What a phase generator yielded for a phase, as a digest: a replay must yield the same."""
    canonical = json.dumps(
        [[c.kind, dict(c.args)] for c in calls], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, sort_keys=True))


# -- records back from JSON -------------------------------------------------------------------


def _build(cls: type[_Record], data: Mapping[str, Any], **nested: Any) -> _Record:
    """A record dataclass from its `to_json`: derived keys (``cost``, ``widths``) are dropped,
    fields added later with defaults are taken when present."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names}, **nested)


def phase_from_json(data: Mapping[str, Any]) -> PhaseRecord:
    def invocations(key: str) -> list[InvocationRecord]:
        return [
            _build(InvocationRecord, {**r, "start": StartKind(r["start"])})
            for r in data.get(key, [])
        ]

    hot_starts = [_build(HotStartRecord, h) for h in data.get("hot_starts", [])]
    nested = ("invocations", "hot_starts", "probes", "hint")
    rest = {k: v for k, v in data.items() if k not in nested}
    hint = WidthHint.from_json(data.get("next_width_hint"))
    return _build(
        PhaseRecord,
        rest,
        invocations=invocations("invocations"),
        hot_starts=hot_starts,
        probes=invocations("probes"),
        hint=hint,
    )


# -- reading ----------------------------------------------------------------------------------


@dataclass
class JournaledPhase:
    """A completed phase as journaled: enough to replay the phase generator past it."""

    record: PhaseRecord
    calls: str  # `calls_digest` of what the generator yielded for it
    outputs: list[Any]
    failed: bool = False


@dataclass
class JournalState:
    """What a journal says of its run."""

    path: Path
    header: dict[str, Any]
    phases: list[JournaledPhase] = field(default_factory=list)  # the current attempt's
    resumed_at: list[int] = field(default_factory=list)
    end: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return str(self.header["run_id"])

    @property
    def finished(self) -> bool:
        return self.end is not None and self.end.get("error") is None

    @property
    def completed(self) -> list[JournaledPhase]:
        """The phases a resumed run replays: those before the first that failed."""
        done: list[JournaledPhase] = []
        for phase in self.phases:
            if phase.failed:
                break
            done.append(phase)
        return done

    def record(self) -> RunRecord:
        """The run as the journal has it (for readers of a run whose controller is gone)."""
        h = self.header
        run = RunRecord(
            run_id=self.run_id, index=int(h["index"]), app=h["app"], provider=h["provider"],
            policy=h["policy"], preset=h["preset"], seed=int(h["seed"]),
            phases=[p.record for p in self.phases],
        )  # fmt: skip
        run.resumed_at = list(self.resumed_at)
        if self.end is not None:
            run.result, run.error = self.end.get("result"), self.end.get("error")
        else:
            run.error = INTERRUPTED  # its controller died without a word
        return run

    def check(self, **given: Any) -> None:
        """Refuse to resume with anything other than what the run was started with."""
        where = self.path.parent
        if running(where):
            raise _busy(where)
        if self.finished:
            raise JournalError(
                f"cannot resume {where}: the run finished; valid: a run that was interrupted "
                "or failed"
            )
        for name, value in given.items():
            recorded = self.header.get(name)
            if _canonical(value) == recorded:
                continue
            if name == "params" and isinstance(recorded, dict):
                value = _canonical(value)
                keys = sorted(set(value) ^ set(recorded)) + sorted(
                    k for k in set(value) & set(recorded) if value[k] != recorded[k]
                )
                key = keys[0]
                raise JournalError(
                    f"cannot resume {where}: parameter {key!r} is "
                    f"{json.dumps(value.get(key))} here but {json.dumps(recorded.get(key))} "
                    "in its journal; give the interrupted run's parameters"
                )
            raise JournalError(
                f"cannot resume {where}: its journal has {name} {recorded!r}, not {value!r}; "
                "give the interrupted run's options"
            )


def _entries(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(
            f"{path.parent} has no journal ({JOURNAL}); valid: a run-<i> directory that "
            "`daydream run` wrote"
        ) from None
    except OSError as exc:
        raise JournalError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    # The last element is what follows the last newline: empty, or a torn final write.
    for number, line in enumerate(lines[:-1], start=1):
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            entry = None
        if not isinstance(entry, dict) or "type" not in entry:
            raise JournalError(
                f"{path}:{number}: corrupt journal entry; valid: the JSON lines "
                "`daydream run` appends"
            )
        yield number, entry


def read(directory: Path) -> JournalState:
    """The journal of the run in `directory`; `JournalError` (one line) if it has none or it
    is corrupt."""
    path = directory / JOURNAL
    state: JournalState | None = None
    try:
        for number, entry in _entries(path):
            kind = entry["type"]
            if state is None:
                if kind != "run" or entry.get("version") != VERSION:
                    raise JournalError(
                        f"{path}:{number}: not a daydream journal (version {VERSION} "
                        "starts with its run's identity)"
                    )
                state = JournalState(path, entry)
            elif kind == "phase":
                phase = JournaledPhase(
                    phase_from_json(entry["phase"]),
                    str(entry["calls"]),
                    list(entry.get("outputs") or []),
                    bool(entry.get("failed", False)),
                )
                del state.phases[phase.record.index :]
                state.phases.append(phase)
                state.end = None
            elif kind == "resumed":
                at = int(entry["phase"])
                del state.phases[at:]
                state.resumed_at.append(at)
                state.end = None
            elif kind == "end":
                state.end = entry
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, JournalError):
            raise
        raise JournalError(f"{path}: corrupt journal ({type(exc).__name__}: {exc})") from None
    if state is None:
        raise JournalError(f"{path} is empty; valid: a journal `daydream run` wrote")
    return state


def running(directory: Path) -> bool:
    """Whether a controller is running the run in `directory` now (it holds the lock)."""
    try:
        fd = os.open(directory / JOURNAL, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock, if taken
    return False


# -- writing ----------------------------------------------------------------------------------


class Journal:
    """The open journal of the run this controller runs (it holds the run's lock)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def begin(cls, directory: Path, run: RunRecord, params: Mapping[str, Any]) -> Journal:
        """Start the journal of a new run, with its identity."""
        path = directory / JOURNAL
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, FILE_MODE)
        except FileExistsError:
            raise JournalError(
                f"{directory} already holds a run; valid: a new run directory, or --resume "
                "to continue that run"
            ) from None
        journal = cls._locked(path, fd)
        journal._append(
            {
                "type": "run",
                "version": VERSION,
                "run_id": run.run_id,
                "index": run.index,
                "app": run.app,
                "preset": run.preset,
                "params": _canonical(dict(params)),
                "seed": run.seed,
                "policy": run.policy,
                "provider": run.provider,
                "started_at": time.time(),
            }
        )
        _fsync_dir(directory)  # the new file's name survives a crash too
        return journal

    @classmethod
    def resume(cls, state: JournalState, at_phase: int) -> Journal:
        """Continue the journal of `state`'s run, from phase `at_phase` on."""
        fd = os.open(state.path, os.O_WRONLY | os.O_APPEND)
        journal = cls._locked(state.path, fd)
        journal._append({"type": "resumed", "phase": at_phase, "at": time.time()})
        return journal

    @classmethod
    def _locked(cls, path: Path, fd: int) -> Journal:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(path.parent) from None
        return cls(path, fd)

    def phase(
        self, record: PhaseRecord, calls: Sequence[Call], outputs: Sequence[Any], failed: bool
    ) -> None:
        """Append a phase that completed (or `failed`), durably, before the run goes on."""
        self._append(
            {
                "type": "phase",
                "phase": record.to_json(),
                "calls": calls_digest(calls),
                "outputs": [] if failed else list(outputs),
                "failed": failed,
            }
        )

    def end(self, run: RunRecord) -> None:
        self._append({"type": "end", "error": run.error, "result": run.result, "at": time.time()})

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # and with it the lock
            self._fd = -1

    def _append(self, entry: Mapping[str, Any]) -> None:
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        view = memoryview(line)
        while view:  # O_APPEND: each write lands at the end, whatever else was written
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)


def _busy(directory: Path) -> JournalError:
    return JournalError(
        f"{directory} is being run by another controller; resume it once that stops"
    )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
