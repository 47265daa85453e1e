"""Reading recorded workflows into phases of tasks to replay.

Two formats:

- **DayDream evaluation trace**: a run folder with ``components_original.txt`` (one line per
  phase, a Python list of component-kind ids) and ``function_service_time-baseline.txt`` (one
  service time in seconds per component, in the same order). A folder of ``run-<i>`` folders
  is a whole trace; run ``i`` of daydream (written to ``run-<i>/``, counted from 1) replays
  ``run-<i>``, wrapping around after the last folder (with 50 folders, run 51 replays
  ``run-1``).
- **WfCommons WfFormat** JSON instances: tasks become components, dependency levels become
  phases (a task with no parent is at level 0, any other one level below its deepest parent),
  recorded runtime x CPU share, memory and file sizes size the work. 1.5+ instances are read
  with the ``wfcommons`` package (validated against a schema shipped here, so offline);
  older ones (``workflow.tasks`` / ``workflow.jobs``) with a small reader of their documented
  layout.

Anything invalid or truncated raises `UsageError` with one line naming the file and the fault.
"""

from __future__ import annotations

import ast
import functools
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daydream_core.errors import UsageError
from daydream_core.model import LONGEST_COMPONENT_S

KINDS = 32  # a DayDream trace's component ids: 0 … 31
# Component kinds registered (kind-0 …): a WfFormat instance's categories, in order of
# appearance; beyond this many they share kinds (Nextflow's nf-core pipelines: up to 75).
COMPONENT_KINDS = 256
MIB = float(1 << 20)
SCHEMA = Path(__file__).with_name("wfformat-subset.schema.json")
COMPONENTS = "components_original.txt"
SERVICE_TIMES = "function_service_time-baseline.txt"
# What the artifact measured, one number a phase: predicted by the simulator, never its input.
PHASE_TIMES = "phase_time-baseline.txt"
COSTS = "execution_cost-baseline.txt"


@dataclass(frozen=True)
class TraceTask:
    """One recorded task, unscaled. `memory_mb` and output sizes are None when not recorded."""

    name: str
    category: str
    seconds: float
    memory_mb: float | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[tuple[str, float | None], ...] = ()


@dataclass(frozen=True)
class Trace:
    """A recorded run as phases of tasks, with the files it needs from outside."""

    source: Path
    format: str  # "daydream" | "wfformat"
    name: str
    phases: tuple[tuple[TraceTask, ...], ...]
    external_inputs: Mapping[str, float] = field(default_factory=dict)  # file id -> MB
    kinds: Mapping[str, int] = field(default_factory=dict)  # category -> kind number

    @property
    def widths(self) -> list[int]:
        return [len(phase) for phase in self.phases]

    @property
    def seconds(self) -> float:
        return sum(task.seconds for phase in self.phases for task in phase)

    def kind(self, task: TraceTask) -> str:
        return f"kind-{self.kinds[task.category] % COMPONENT_KINDS}"


def _fail(path: Path, what: str) -> UsageError:
    one_line = " ".join(str(what).split())
    return UsageError(f"trace {path}: {one_line}")


def _shorten(text: str, limit: int = 40) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# choosing what to read


def _run_number(path: Path) -> int:
    match = re.fullmatch(r"run-(\d+)", path.name)
    return int(match.group(1)) if match else -1


def _pick(items: Sequence[Path], run_index: int) -> Path:
    """Run i (counted from 1, like daydream's ``run-<i>`` outputs) takes item i, wrapping."""
    return items[(max(run_index, 1) - 1) % len(items)]


def resolve(path: str | Path, run_index: int) -> tuple[Path, str]:
    """The file that run `run_index` replays, and its format ("daydream" or "wfformat").

    For a DayDream trace the file is a run's components file; its service times are read from
    ``function_service_time-baseline.txt`` beside it.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise _fail(root, "no such file or directory")
    if root.is_dir():
        if (root / COMPONENTS).is_file():
            return root / COMPONENTS, "daydream"
        runs = sorted(
            (p for p in root.iterdir() if p.is_dir() and (p / COMPONENTS).is_file()),
            key=_run_number,
        )
        runs = [p for p in runs if _run_number(p) >= 0]
        if runs:
            return _pick(runs, run_index) / COMPONENTS, "daydream"
        instances = sorted(p for p in root.iterdir() if p.suffix == ".json" and p.is_file())
        if instances:
            return _pick(instances, run_index), "wfformat"
        raise _fail(
            root,
            f"holds no DayDream run folders (run-<i>/{COMPONENTS}) and no WfFormat .json files",
        )
    if root.suffix == ".json":
        return root, "wfformat"
    try:
        head = root.read_text(encoding="utf-8", errors="replace").lstrip()[:1]
    except OSError as exc:
        raise _fail(root, f"cannot be read ({exc.strerror})") from None
    return root, ("wfformat" if head == "{" else "daydream")


def load_trace(path: str | Path, run_index: int = 1) -> Trace:
    """Read the recorded run that run `run_index` replays from `path`."""
    source, kind = resolve(path, run_index)
    try:
        stat = source.stat()
    except OSError:
        stat = None
    if kind != "wfformat" or stat is None:  # a DayDream run is several files; or let the
        return _read(source, kind)  # reader say what is wrong with it
    return _read_unchanged(source, kind, stat.st_mtime_ns, stat.st_size)


def _read(source: Path, kind: str) -> Trace:
    if kind == "daydream":
        return read_daydream(source)
    return read_wfformat(source)


@functools.lru_cache(maxsize=16)
def _read_unchanged(source: Path, kind: str, mtime_ns: int, size: int) -> Trace:
    """A WfFormat file read once per version: a command validates its trace, then every run
    replays it (parsing a 1,000-task instance with wfcommons takes seconds). Traces are
    immutable."""
    return _read(source, kind)


# ---------------------------------------------------------------------------------------------
# DayDream evaluation trace


def _read_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read as text ({exc})") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise _fail(path, "is empty")
    return lines


def _numbers(path: Path, unit: str, valid: str, upper: float) -> list[float]:
    """One number a line, each in 0..`upper` (`valid` names the range in an error)."""
    values = []
    for number, line in _read_lines(path):
        try:
            value = float(line)
        except ValueError:
            raise _fail(
                path, f"line {number} is not a number of {unit}: {_shorten(line)!r}"
            ) from None
        if not (math.isfinite(value) and 0 <= value <= upper):
            raise _fail(path, f"line {number}: {line.strip()} is not a {valid}")
        values.append(value)
    return values


def read_measured(folder: Path, phases: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The artifact's measured time and cost of each of a run folder's `phases`, or None where
    the folder holds neither file (a trace written by another tool need not)."""
    files = (folder / PHASE_TIMES, folder / COSTS)
    present = [f for f in files if f.is_file()]
    if not present:
        return None
    if len(present) == 1:
        missing = next(f for f in files if f not in present)
        raise _fail(present[0], f"has no {missing.name} beside it (both or neither)")
    times = _numbers(files[0], "seconds", "phase time (a finite number of seconds >= 0)", math.inf)
    costs = _numbers(files[1], "dollars", "phase cost (a finite number of dollars >= 0)", math.inf)
    for path, values in zip(files, (times, costs), strict=True):
        if len(values) != phases:
            raise _fail(path, f"has {len(values)} numbers for the {phases} phases of {COMPONENTS}")
    return tuple(times), tuple(costs)


def read_daydream(components_file: Path) -> Trace:
    """A DayDream run folder: phases of kind ids, sized by the measured service times."""
    phases_ids: list[list[int]] = []
    for number, line in _read_lines(components_file):
        try:
            value = ast.literal_eval(line.strip())
        except (ValueError, SyntaxError):
            raise _fail(
                components_file,
                f"line {number} is not a list of component ids: {_shorten(line)!r}",
            ) from None
        if not isinstance(value, list) or not value:
            raise _fail(
                components_file,
                f"line {number} is not a non-empty list of component ids: {_shorten(line)!r}",
            )
        for item in value:
            if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item < KINDS:
                raise _fail(
                    components_file,
                    f"line {number}: component id {item!r} is not an integer in 0..{KINDS - 1}",
                )
        phases_ids.append(value)
    times_file = components_file.parent / SERVICE_TIMES
    if not times_file.is_file():
        raise _fail(components_file, f"has no {SERVICE_TIMES} beside it")
    service = f"service time (0 to {LONGEST_COMPONENT_S:,.0f} s)"
    times = _numbers(times_file, "seconds", service, LONGEST_COMPONENT_S)
    needed = sum(len(ids) for ids in phases_ids)
    if len(times) != needed:
        hint = " (truncated?)" if len(times) < needed else ""
        raise _fail(
            times_file,
            f"has {len(times)} service times for the {needed} components of "
            f"{components_file.name}{hint}",
        )
    phases: list[tuple[TraceTask, ...]] = []
    position = 0
    for p, ids in enumerate(phases_ids):
        tasks = []
        for c, kind in enumerate(ids):
            inputs = (f"p{p - 1}-c{c % len(phases_ids[p - 1])}",) if p else ()
            tasks.append(
                TraceTask(
                    name=f"p{p}-c{c}",
                    category=str(kind),
                    seconds=times[position],
                    inputs=inputs,
                    outputs=((f"p{p}-c{c}", None),),
                )
            )
            position += 1
        phases.append(tuple(tasks))
    folder = components_file.parent
    return Trace(
        source=folder,
        format="daydream",
        name=f"{folder.parent.name}/{folder.name}",
        phases=tuple(phases),
        kinds={str(k): k for k in range(KINDS)},
    )


# ---------------------------------------------------------------------------------------------
# WfCommons WfFormat


@dataclass
class _Task:
    id: str
    name: str
    category: str
    runtime: float
    avg_cpu: float | None
    cores: float | None
    memory_bytes: float | None
    parents: list[str]
    inputs: list[tuple[str, float]]  # (file id, bytes)
    outputs: list[tuple[str, float]]


def _category(name: str, declared: object, program: object = None) -> str:
    """A task's category: as declared; else the program it ran, where that is one command
    (Pegasus, Makeflow; Nextflow records a whole script there); else its name's stem.

    Real Pegasus names carry their inputs (Epigenomics'
    `fast2bfq_fast2bfq_HEP2_MSP1_Digests_s_1_sequence_10_ID0000003`): by name stem alone every
    task was a category of its own, and 73 of them folded onto the 32 component kinds put a
    0.1 s task and a 107 s one in one kind."""
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(program, str) and program.strip() and len(program.split()) == 1:
        return Path(program.strip()).name
    # WfCommons task names are "<category>_ID0000042" or "<category>_00000042"
    stem = re.sub(r"[_-]?(ID)?\d+$", "", name)
    return stem or name


def _program(entry: Mapping[str, Any]) -> object:
    command = entry.get("command")
    return command.get("program") if isinstance(command, dict) else None


def read_wfformat(path: Path) -> Trace:
    """A WfFormat instance: dependency levels become phases."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read as text ({exc})") from None
    if not text.strip():
        raise _fail(path, "is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise _fail(path, "is nested too deeply to be a workflow instance") from None
    if not isinstance(data, dict) or not isinstance(data.get("workflow"), dict):
        raise _fail(path, "is not a WfFormat instance (no 'workflow' object)")
    workflow = data["workflow"]
    if "specification" in workflow:
        tasks = _read_modern(path, data)
    elif isinstance(workflow.get("tasks"), list) or isinstance(workflow.get("jobs"), list):
        tasks = _read_legacy(path, workflow)
    else:
        raise _fail(path, "has neither workflow.specification.tasks nor workflow.tasks")
    if not tasks:
        raise _fail(path, "declares no tasks")
    for task in tasks:
        if not 0 <= task.runtime <= LONGEST_COMPONENT_S:
            raise _fail(
                path,
                f"task {task.name!r} has runtime {task.runtime:g} s (valid: 0 to "
                f"{LONGEST_COMPONENT_S:,.0f} s)",
            )
    if all(task.runtime <= 0 for task in tasks):
        raise _fail(path, "records no task runtimes (no workflow execution data)")
    name = str(data.get("name") or path.stem)
    return _levels(path, name, tasks)


def _wfcommons_available() -> bool:
    try:
        import wfcommons.wfinstances.instance  # noqa: F401
    except ImportError:
        return False
    return True


def _read_modern(path: Path, data: dict[str, Any]) -> list[_Task]:
    """WfFormat 1.5+: with wfcommons when installed, else from the documented layout.

    An invalid instance is a `UsageError`; if this wfcommons release validates or reads
    instances differently than expected, the documented layout is read instead (the plain
    reader reports what it cannot read as a `UsageError` too).
    """
    if not _wfcommons_available():
        return _read_modern_plain(path, data)
    try:
        _validate_with_wfcommons(path, data)
        return _read_with_wfcommons(path, data)
    except (ImportError, AttributeError, TypeError, KeyError, ValueError):
        return _read_modern_plain(path, data)


def _quiet_logger() -> logging.Logger:
    quiet = logging.getLogger("daydream.trace.wfcommons")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return quiet


def _validate_with_wfcommons(path: Path, data: dict[str, Any]) -> None:
    """Validate against the shipped schema and wfcommons' semantic checks."""
    from wfcommons.wfinstances.schema import SchemaValidator

    validator = SchemaValidator(SCHEMA, logger=_quiet_logger())
    try:
        validator.validate_instance(data)
    except (RuntimeError, KeyError, TypeError) as exc:
        problem = validator.errors[0] if validator.errors else str(exc)
        raise _fail(path, f"is not a valid WfFormat instance: {problem}") from None


def _read_with_wfcommons(path: Path, data: dict[str, Any]) -> list[_Task]:
    from wfcommons.wfinstances.instance import Instance

    instance = Instance(path, schema_file=str(SCHEMA), logger=_quiet_logger())
    spec_tasks = {t["id"]: t for t in data["workflow"]["specification"]["tasks"]}
    tasks = []
    for task_id, task in instance.workflow.tasks.items():
        tasks.append(
            _Task(
                id=task_id,
                name=task.name,
                category=_category(
                    task.name,
                    task.category or spec_tasks[task_id].get("category"),
                    getattr(task, "program", None),
                ),
                runtime=float(task.runtime or 0.0),
                avg_cpu=_number(task.avg_cpu),
                cores=_number(task.cores),
                memory_bytes=_number(task.memory),
                parents=sorted(instance.workflow.tasks_parents.get(task_id, ())),
                inputs=[(f.file_id, float(f.size or 0)) for f in task.input_files],
                outputs=[(f.file_id, float(f.size or 0)) for f in task.output_files],
            )
        )
    return tasks


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _runtime(path: Path, task: object, value: object) -> float:
    """A task's runtime in seconds, 0 where none is recorded; one recorded that is not a
    finite number is one line naming the task (it used to be read as 0 s without a word)."""
    if value is None:
        return 0.0
    number = _number(value)
    if number is None:
        raise _fail(
            path,
            f"task {task!r} has runtime {_shorten(repr(value))} (valid: a number of seconds, "
            f"0 to {LONGEST_COMPONENT_S:,.0f})",
        )
    return number


def _size(path: Path, entry: Mapping[str, Any], key: str, unit: float) -> float | None:
    """A file's size in bytes from `key` (in `unit` bytes), None when absent; a size that is
    not a non-negative number is one line naming the file."""
    value = entry.get(key)
    if value is None:
        return None
    number = _number(value)
    if number is None or number < 0:
        raise _fail(path, f"file {entry.get('id', entry.get('name'))!r} has {key} {value!r}")
    return number * unit


def _need_list(path: Path, owner: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, f"{owner} is not a list")
    return value


def _read_modern_plain(path: Path, data: dict[str, Any]) -> list[_Task]:
    spec = data["workflow"]["specification"]
    if not isinstance(spec, dict):
        raise _fail(path, "workflow.specification is not an object")
    spec_tasks = _need_list(path, "workflow.specification.tasks", spec.get("tasks"))
    sizes = {}
    for f in _need_list(path, "workflow.specification.files", spec.get("files", [])):
        if not isinstance(f, dict) or "id" not in f:
            raise _fail(path, "a workflow.specification.files entry has no id")
        sizes[str(f["id"])] = _size(path, f, "sizeInBytes", 1.0) or 0.0
    execution = data["workflow"].get("execution") or {}
    runs = {
        str(t.get("id")): t
        for t in _need_list(path, "workflow.execution.tasks", execution.get("tasks", []))
        if isinstance(t, dict)
    }
    tasks = []
    for number, task in enumerate(spec_tasks):
        if not isinstance(task, dict) or "id" not in task or "name" not in task:
            raise _fail(path, f"workflow.specification.tasks[{number}] needs an id and a name")
        run = runs.get(str(task["id"]), {})
        tasks.append(
            _Task(
                id=str(task["id"]),
                name=str(task["name"]),
                category=_category(
                    str(task["name"]), run.get("category", task.get("category")), _program(run)
                ),
                runtime=_runtime(path, task["name"], run.get("runtimeInSeconds")),
                avg_cpu=_number(run.get("avgCPU")),
                cores=_number(run.get("coreCount")),
                memory_bytes=_number(run.get("memoryInBytes")),
                parents=[str(p) for p in task.get("parents", [])],
                inputs=[(str(f), sizes.get(str(f), 0.0)) for f in task.get("inputFiles", [])],
                outputs=[(str(f), sizes.get(str(f), 0.0)) for f in task.get("outputFiles", [])],
            )
        )
    return tasks


def _read_legacy(path: Path, workflow: dict[str, Any]) -> list[_Task]:
    """WfFormat ≤ 1.4: ``workflow.tasks`` (or ``jobs``) with runtimes and files inline."""
    entries: list[Any] = workflow.get("tasks") or workflow.get("jobs") or []
    tasks = []
    names: dict[str, str] = {}
    for number, task in enumerate(entries):
        if not isinstance(task, dict) or "name" not in task:
            raise _fail(path, f"workflow.tasks[{number}] has no name")
        names[str(task["name"])] = str(task.get("id", task["name"]))
    for task in entries:
        inputs: list[tuple[str, float]] = []
        outputs: list[tuple[str, float]] = []
        for f in task.get("files", []):
            if not isinstance(f, dict):
                raise _fail(path, f"task {task['name']!r} has a file that is not an object")
            file_id = str(f.get("id", f.get("name", "")))
            size = _size(path, f, "sizeInBytes", 1.0)
            size_bytes = size if size is not None else (_size(path, f, "size", 1024.0) or 0.0)
            (inputs if f.get("link") == "input" else outputs).append((file_id, size_bytes))
        memory = _number(task.get("memoryInBytes"))
        if memory is None and _number(task.get("memory")) is not None:
            memory = float(task["memory"]) * 1024  # KB in WfFormat ≤ 1.3
        if memory is not None and memory < 0:
            raise _fail(path, f"task {task['name']!r} has a negative memory")
        runtime = _runtime(path, task["name"], task.get("runtimeInSeconds", task.get("runtime")))
        tasks.append(
            _Task(
                id=names[str(task["name"])],
                name=str(task["name"]),
                category=_category(str(task["name"]), task.get("category"), _program(task)),
                runtime=runtime,
                avg_cpu=_number(task.get("avgCPU")),
                cores=_number(task.get("cores", task.get("coreCount"))),
                memory_bytes=memory,
                parents=[names.get(str(p), str(p)) for p in task.get("parents", [])],
                inputs=inputs,
                outputs=outputs,
            )
        )
    return tasks


def _levels(path: Path, name: str, tasks: Sequence[_Task]) -> Trace:
    by_id = {task.id: task for task in tasks}
    if len(by_id) != len(tasks):
        raise _fail(path, "declares a task id more than once")
    for task in tasks:
        for parent in task.parents:
            if parent not in by_id:
                raise _fail(path, f"task {task.id!r} names an unknown parent {parent!r}")
    level: dict[str, int] = {}
    remaining = {task.id: set(task.parents) for task in tasks}
    frontier = sorted(tid for tid, parents in remaining.items() if not parents)
    children: dict[str, list[str]] = {tid: [] for tid in by_id}
    for task in tasks:
        for parent in task.parents:
            children[parent].append(task.id)
    depth = 0
    while frontier:
        for tid in frontier:
            level[tid] = depth
        following = set()
        for tid in frontier:
            for child in children[tid]:
                remaining[child].discard(tid)
                if not remaining[child] and child not in level:
                    following.add(child)
        frontier = sorted(following)
        depth += 1
    if len(level) != len(by_id):
        stuck = sorted(set(by_id) - set(level))
        raise _fail(path, f"has a dependency cycle among tasks {', '.join(stuck[:5])}")
    kinds: dict[str, int] = {}
    for task in sorted(tasks, key=lambda t: (level[t.id], t.id)):
        kinds.setdefault(task.category, len(kinds))
    produced: dict[str, int] = {}
    for task in tasks:
        for file_id, _ in task.outputs:
            produced.setdefault(file_id, level[task.id])
    external: dict[str, float] = {}
    phases: list[list[TraceTask]] = [[] for _ in range(depth)]
    for task in sorted(tasks, key=lambda t: (level[t.id], t.id)):
        inputs = []
        for file_id, size in task.inputs:
            if produced.get(file_id, depth) >= level[task.id]:
                external[file_id] = size / MIB
            inputs.append(file_id)
        cpu_share = (task.avg_cpu / 100.0) if task.avg_cpu else 1.0
        if task.cores:
            cpu_share = min(cpu_share, task.cores)
        phases[level[task.id]].append(
            TraceTask(
                name=task.id,
                category=task.category,
                seconds=task.runtime * cpu_share,
                memory_mb=task.memory_bytes / MIB if task.memory_bytes else None,
                inputs=tuple(inputs),
                outputs=tuple((file_id, size / MIB) for file_id, size in task.outputs),
            )
        )
    return Trace(
        source=path,
        format="wfformat",
        name=name,
        phases=tuple(tuple(phase) for phase in phases),
        external_inputs=external,
        kinds=kinds,
    )
