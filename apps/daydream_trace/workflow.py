"""The ``trace`` workflow: replay recorded phase structures with calibrated real work.

Parameters (preset params, overridable from the CLI with ``--trace PATH`` and ``--scale F``):

``trace``
    A DayDream trace folder (``run-<i>`` folders), one run folder, its
    ``components_original.txt``, a WfFormat JSON instance, or a folder of instances. Defaults
    to the DayDream CCL trace shipped with this app (CC BY 4.0, see ``data/README.md``).
``scale``
    Seconds of calibrated CPU work per recorded second (and, for WfFormat, MB per recorded MB
    of memory and files), so that large traces fit a small machine.
``max_phases``
    Replay only the first phases (0: all).
``memory_mb`` / ``io_mb``
    Memory touched and MB written per component when the trace records none (DayDream).
``max_memory_mb`` / ``max_file_mb`` / ``max_input_mb``
    Caps per component, per file, and on the external inputs staged before the first phase.
``units_per_second``
    A fixed CPU work rate instead of each instance's own calibration (None: calibrate), so
    that comparisons across machines replay the same amount of work.

Every task becomes a ``kind-<n>`` component (the trace's kind id for DayDream traces, the
n-th task category in order of appearance for WfFormat), so the engine learns per kind.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daydream_core.model import Call
from daydream_core.params import Param, content_hash, readable_path
from daydream_core.workflow import ComponentContext, PhaseGenerator, Preset, RunContext, Workflow
from daydream_trace import work
from daydream_trace.formats import COMPONENT_KINDS, Trace, load_trace

BUNDLED_TRACE = Path(__file__).with_name("data") / "ccl"

DEFAULTS: dict[str, Any] = {
    "trace": str(BUNDLED_TRACE),
    "scale": 0.05,
    "max_phases": 0,
    "memory_mb": 64.0,
    "io_mb": 1.0,
    "max_memory_mb": 512.0,
    "max_file_mb": 64.0,
    "max_input_mb": 256.0,
    "units_per_second": None,
}


def _trace_path(value: str) -> None:
    readable_path(value)  # a regular file or a folder: never a FIFO, which would block


PARAMS: dict[str, Param] = {
    "trace": Param(str, DEFAULTS["trace"], "a DayDream trace folder or a WfFormat JSON file",
                   check=_trace_path, shapes_dag=content_hash),
    "scale": Param(float, 0.05, "scale factor of replayed work", gt=0, le=1.0e6),
    "max_phases": Param(int, 0, "replay at most this many phases (0: all)", ge=0,
                        le=1_000_000, shapes_dag=True),
    "memory_mb": Param(float, 64.0, "memory held by a task with none recorded", ge=0,
                       le=1.0e6),
    "io_mb": Param(float, 1.0, "size of an output with none recorded", ge=0, le=1.0e6),
    "max_memory_mb": Param(float, 512.0, "cap of memory held by one task", ge=0, le=1.0e6),
    "max_file_mb": Param(float, 64.0, "cap of one written file", ge=0, le=1.0e6),
    "max_input_mb": Param(float, 256.0, "cap of what one task reads", ge=0, le=1.0e6),
    "units_per_second": Param(float, None, "calibrated work rate (null: measure it)", gt=0,
                              le=1.0e15, nullable=True),
}  # fmt: skip

workflow = Workflow(
    "trace",
    description=(
        "Replay a recorded workflow (DayDream evaluation trace, WfCommons WfFormat) with "
        "calibrated CPU, memory and I/O work"
    ),
    presets={
        "small": Preset(
            {"scale": 0.1},
            runs=1,
            description="a whole bundled CCL run (run-<i> for run i) at scale 0.1",
        ),
        "first-6-phases": Preset(
            {"max_phases": 6, "scale": 0.2},
            runs=1,
            description="LIMITS PHASES: only the first 6 phases of a bundled CCL run, scale 0.2",
        ),
        "paper": Preset(
            {"scale": 0.05},
            runs=50,
            description="the whole bundled CCL trace (50 runs, 1,623 components) at scale 0.05",
        ),
    },
    preload=("numpy", "daydream_trace.calibrate"),
    requirements=("numpy>=1.24",),
    params=PARAMS,
)


def replay(
    ctx: ComponentContext,
    name: str,
    cpu_s: float,
    memory_mb: float,
    reads: list[str],
    writes: list[list[Any]],
    seed: int,
    rate: float | None = None,
) -> dict[str, Any]:
    """Read inputs, hold `memory_mb` resident while doing `cpu_s` of calibrated work, write
    outputs. Returns the output keys by file id and what was done."""
    read_bytes = 0
    digest = 1
    for key in reads:
        data = ctx.store.get(key)
        read_bytes += len(data)
        digest = work.checksum(data, digest)
    held = work.touch_memory(memory_mb) if memory_mb > 0 else None
    units, result = work.run_cpu(cpu_s, ctx.threads, salt=seed, rate=rate)
    if held is not None:
        digest = work.checksum(held[:: 1 << 12].tobytes(), digest)
        del held
    outputs: dict[str, str] = {}
    written = 0
    for file_id, megabytes in writes:
        data = work.payload(float(megabytes), seed, f"{name}/{file_id}")
        key = ctx.key(str(file_id).replace("/", "_"))
        ctx.store.put(key, data)
        outputs[str(file_id)] = key
        written += len(data)
    return {
        "name": name,
        "outputs": outputs,
        "cpu_units": units,
        "units_per_second": rate or work.units_per_second(),
        "read_mb": read_bytes / work.MIB,
        "written_mb": written / work.MIB,
        "memory_mb": memory_mb,
        "checksum": digest,
        "result": result,
    }


for _number in range(COMPONENT_KINDS):
    workflow.component(replay, name=f"kind-{_number}")


def _params(run: RunContext) -> dict[str, Any]:
    return {**DEFAULTS, **{k: v for k, v in run.params.items() if v is not None}}


@workflow.validator
def check(params: Mapping[str, Any]) -> None:
    """Read the trace before anything is deployed: a bad file is one line, exit 2."""
    p = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    load_trace(str(p["trace"]), 1)


@workflow.headliner
def headline(result: Mapping[str, Any]) -> str:
    """What was replayed of the input: phases, components, calibrated CPU seconds."""
    return (
        f"{result['name']}: {result['phases']} phases, {sum(result['widths'])} components, "
        f"{result['cpu_seconds']:.1f} s of CPU work ({result['recorded_seconds']:.1f} s recorded)"
    )


@workflow.phases
def plan(run: RunContext) -> PhaseGenerator:
    """Read the trace now (a bad file fails before any phase), then replay it."""
    p = _params(run)
    trace = load_trace(str(p["trace"]), run.run_index)
    return _replay(run, trace, p)


def _calls(
    trace: Trace, level: int, p: Mapping[str, Any], produced: Mapping[str, str], seed: int
) -> list[Call]:
    scale = float(p["scale"])
    calls = []
    for task in trace.phases[level]:
        recorded = task.memory_mb
        memory = float(p["memory_mb"]) if recorded is None else recorded * scale
        writes = [
            [
                file_id,
                min(float(p["io_mb"]) if size is None else size * scale, float(p["max_file_mb"])),
            ]
            for file_id, size in task.outputs
        ]
        calls.append(
            Call(
                trace.kind(task),
                {
                    "name": task.name,
                    "cpu_s": task.seconds * scale,
                    "memory_mb": min(memory, float(p["max_memory_mb"])),
                    "reads": [produced[f] for f in task.inputs if f in produced],
                    "writes": writes,
                    "seed": seed,
                    "rate": p["units_per_second"],
                },
                label=task.name,  # run.json says which task each component replayed
            )
        )
    return calls


def _stage_inputs(
    run: RunContext, trace: Trace, p: Mapping[str, Any], needed: set[str]
) -> dict[str, str]:
    """Write the workflow's external inputs once (shared by every run of the trace)."""
    budget = float(p["max_input_mb"])
    scale = float(p["scale"])
    keys: dict[str, str] = {}
    for file_id in sorted(needed & set(trace.external_inputs)):
        megabytes = min(trace.external_inputs[file_id] * scale, float(p["max_file_mb"]), budget)
        budget -= megabytes
        safe = file_id.replace("/", "_")
        key = f"trace-inputs/{trace.name.replace('/', '_')}/{run.seed}-{scale:g}/{safe}"
        if not run.store.exists(key):
            run.store.put(key, work.payload(megabytes, run.seed, file_id))
        keys[file_id] = key
    return keys


def _replay(run: RunContext, trace: Trace, p: Mapping[str, Any]) -> PhaseGenerator:
    limit = int(p["max_phases"])
    levels = range(len(trace.phases) if limit <= 0 else min(limit, len(trace.phases)))
    if len(levels) < len(trace.phases):  # never a silent truncation
        warnings.warn(
            f"trace {trace.name}: replaying {len(levels)} of its {len(trace.phases)} phases "
            f"(max_phases={limit}; -p max_phases=0 replays all)",
            stacklevel=2,
        )
    needed = {f for level in levels for task in trace.phases[level] for f in task.inputs}
    produced: dict[str, str] = _stage_inputs(run, trace, p, needed)
    widths, units, rates = [], 0, []
    cpu_seconds = 0.0
    for level in levels:
        calls = _calls(trace, level, p, produced, run.seed)
        cpu_seconds += sum(float(c.args["cpu_s"]) for c in calls)
        widths.append(len(calls))
        results = yield calls
        for result in results:
            produced.update(result["outputs"])
            units += int(result["cpu_units"])
            rates.append(float(result["units_per_second"]))
    used = {task.category for level in levels for task in trace.phases[level]}
    return {
        "trace": str(trace.source),
        "format": trace.format,
        "name": trace.name,
        "phases": f"{len(widths)}/{len(trace.phases)}",
        "phases_in_input": len(trace.phases),  # the summary shows replayed / in the input
        "widths": widths,
        "recorded_seconds": sum(t.seconds for lv in levels for t in trace.phases[lv]),
        "cpu_seconds": cpu_seconds,
        "cpu_units": units,
        "median_units_per_second": statistics.median(rates) if rates else 0.0,
        "kinds": {f"kind-{trace.kinds[c] % COMPONENT_KINDS}": c for c in sorted(used)},
    }
