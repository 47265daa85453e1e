"""The trace workflow: reading DayDream and WfFormat traces, and replaying them."""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from daydream_trace import formats, work
from daydream_trace.formats import load_trace
from daydream_trace.workflow import BUNDLED_TRACE, workflow

from daydream_core.errors import UsageError
from daydream_core.inline import run_inline
from daydream_core.model import Call, Tier
from daydream_core.objectstore import LocalObjectStore
from daydream_core.workflow import ComponentContext, RunContext

HIGH = Tier("high", 10240, 2)
DATA = Path(__file__).parent / "data" / "wfformat"
RATE = 200.0  # units per second: fixed, so that tests do a known, tiny amount of work
FAST = {"units_per_second": RATE, "memory_mb": 1.0, "io_mb": 0.01}


def context(store: LocalObjectStore, name: str, phase: int = 0) -> ComponentContext:
    return ComponentContext(
        store=store, tier=HIGH, threads=2, run_id="run-0", component_id=name, phase=phase
    )


def drive(
    store: LocalObjectStore, params: Mapping[str, Any], run_index: int = 1
) -> tuple[Any, list[list[Call]], list[list[Any]]]:
    made = run_inline(workflow, params, store, seed=11, run_index=run_index, tier=HIGH)
    return made.result, made.phases, made.outputs


# --- registration --------------------------------------------------------------------------


def test_plugin_registers_the_workflow() -> None:
    from daydream_trace import plugin

    (spec,) = plugin.daydream_apps()
    assert spec.name == "trace"
    loaded = spec.load()
    assert loaded is workflow
    assert loaded.presets["paper"].runs == 50
    assert "max_phases" not in loaded.presets["small"].params  # the whole trace, by default
    limited = loaded.presets["first-6-phases"]
    assert limited.params["max_phases"] == 6 and "LIMITS PHASES" in limited.description
    assert "daydream_trace.calibrate" in loaded.runtime.preload
    assert {f"kind-{n}" for n in range(10)} <= set(loaded.components)


def test_bundled_trace_is_attributed() -> None:
    readme = (BUNDLED_TRACE.parent / "README.md").read_text()
    assert "CC BY 4.0" in readme and "DayDream" in readme


# --- the DayDream trace --------------------------------------------------------------------


def test_every_bundled_run_matches_its_recorded_concurrency() -> None:
    total_components, total_seconds = 0, 0.0
    for index in range(1, 51):
        trace = load_trace(BUNDLED_TRACE, index)
        assert trace.source.name == f"run-{index}"
        recorded = (trace.source / "concurrency_original.txt").read_text().split()
        assert trace.widths == [int(float(w)) for w in recorded]
        lines = (trace.source / "components_original.txt").read_text().splitlines()
        kinds = [ast.literal_eval(line) for line in lines if line.strip()]
        assert [[int(t.category) for t in phase] for phase in trace.phases] == kinds
        total_components += sum(trace.widths)
        total_seconds += trace.seconds
    assert total_components == 1623
    assert total_seconds == pytest.approx(11716.9, abs=0.1)


def test_run_index_wraps_and_paths_may_name_a_run_or_its_file() -> None:
    # daydream counts runs from 1, as its run-<i> output folders
    assert load_trace(BUNDLED_TRACE, 1).source.name == "run-1"
    assert load_trace(BUNDLED_TRACE, 10).source.name == "run-10"
    assert load_trace(BUNDLED_TRACE, 51).source.name == "run-1"
    assert load_trace(BUNDLED_TRACE, 0).source.name == "run-1"
    by_folder = load_trace(BUNDLED_TRACE / "run-7", 1)
    by_file = load_trace(BUNDLED_TRACE / "run-7" / "components_original.txt", 3)
    assert by_folder == by_file
    assert by_folder.widths == load_trace(BUNDLED_TRACE, 7).widths


def test_a_limited_preset_replays_a_prefix_and_says_so(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    params = {**workflow.preset("first-6-phases").params, **FAST, "scale": 0.002}
    with pytest.warns(UserWarning, match=r"replaying 6 of its 10 phases"):
        result, phases, _ = drive(store, params)
    trace = load_trace(BUNDLED_TRACE, 1)
    assert [len(p) for p in phases] == trace.widths[: params["max_phases"]]
    assert result["phases"] == f"{params['max_phases']}/{len(trace.widths)}"
    assert result["phases_in_input"] == len(trace.widths)


def test_small_preset_replays_the_whole_run_with_data_flowing_between_phases(
    tmp_path: Path,
) -> None:
    store = LocalObjectStore(tmp_path)
    params = {**workflow.preset("small").params, **FAST, "scale": 0.002}
    result, phases, outputs = drive(store, params)
    trace = load_trace(BUNDLED_TRACE, 1)
    assert [len(p) for p in phases] == trace.widths
    assert result["phases"] == f"{len(trace.widths)}/{len(trace.widths)}"
    for calls, recorded in zip(phases, trace.phases, strict=False):
        assert [c.kind for c in calls] == [f"kind-{t.category}" for t in recorded]
        for call, task in zip(calls, recorded, strict=True):
            assert call.args["cpu_s"] == pytest.approx(task.seconds * 0.002)
    # each component of a phase reads an output of the previous phase
    assert all(not c.args["reads"] for c in phases[0])
    written = {key for results in outputs for r in results for key in r["outputs"].values()}
    for calls, results in zip(phases[1:], outputs[1:], strict=True):
        for call, out in zip(calls, results, strict=True):
            assert len(call.args["reads"]) == 1 and call.args["reads"][0] in written
            assert out["read_mb"] == pytest.approx(0.01, rel=0.05)
    assert result["cpu_units"] == sum(r["cpu_units"] for rs in outputs for r in rs)


# --- the component -------------------------------------------------------------------------


def test_replay_does_the_sized_work(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.put("in/a", b"x" * 1000)
    fn = workflow.component_fn("kind-3")
    out = fn(
        context(store, "c"),
        name="t",
        cpu_s=0.05,
        memory_mb=2.0,
        reads=["in/a"],
        writes=[["out.bin", 0.25]],
        seed=1,
        rate=RATE,
    )
    assert out["cpu_units"] == round(0.05 * RATE)
    assert out["read_mb"] == pytest.approx(1000 / 2**20)
    assert out["written_mb"] == pytest.approx(0.25)
    assert len(store.get(out["outputs"]["out.bin"])) == int(0.25 * 2**20)
    again = fn(
        context(store, "c2"),
        name="t",
        cpu_s=0.05,
        memory_mb=2.0,
        reads=["in/a"],
        writes=[["out.bin", 0.25]],
        seed=1,
        rate=RATE,
    )
    assert again["checksum"] == out["checksum"] and again["result"] == out["result"]


def test_calibration_and_thread_split() -> None:
    assert work.units_per_second() > 0
    assert work.units_per_second() == work.units_per_second()  # measured once per process
    units, _ = work.run_cpu(0.1, threads=3, rate=100.0)
    assert units == 10
    assert work.run_cpu(0.0, threads=2) == (0, 0.0)
    assert work.touch_memory(1.5).nbytes == int(1.5 * 2**20)


# --- WfFormat ------------------------------------------------------------------------------


def test_wfformat_levels_become_phases() -> None:
    trace = load_trace(DATA / "montage-mini.json")
    assert trace.format == "wfformat"
    assert trace.widths == [4, 3, 1, 1, 4, 1]
    assert [trace.kind(phase[0]) for phase in trace.phases] == [
        "kind-0",
        "kind-1",
        "kind-2",
        "kind-3",
        "kind-4",
        "kind-5",
    ]
    add = trace.phases[-1][0]
    assert add.category == "mAdd"
    assert add.seconds == pytest.approx(20.0 * 1.8)  # runtime x avgCPU share
    assert add.memory_mb == pytest.approx(900.0)
    assert dict(add.outputs) == {"mosaic.fits": pytest.approx(200.0)}
    assert set(trace.external_inputs) == {f"raw_{i}.fits" for i in range(4)}


def test_wfformat_legacy_layout_and_core_cap() -> None:
    trace = load_trace(DATA / "blast-mini-1.4.json")
    assert trace.widths == [1, 3, 1]
    blast = trace.phases[1][0]
    assert blast.category == "blastall"
    assert blast.seconds == pytest.approx(40.0 * 3.5)
    assert trace.external_inputs == {"query.fasta": 12.0, "nr.db": 500.0}


def test_wfcommons_and_plain_readers_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    with_wfcommons = [load_trace(DATA / n) for n in ("montage-mini.json", "genome-mini.json")]
    monkeypatch.setattr(formats, "_wfcommons_available", lambda: False)
    plain = [load_trace(DATA / n) for n in ("montage-mini.json", "genome-mini.json")]
    assert with_wfcommons == plain


def test_a_folder_of_instances_is_replayed_one_per_run() -> None:
    names = [load_trace(DATA, index).name for index in range(1, 5)]
    assert names == ["blast-mini", "1000genome-mini", "montage-mini", "blast-mini"]


def test_wfformat_replay_passes_files_from_producers_to_consumers(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    params = {**FAST, "trace": str(DATA / "genome-mini.json"), "scale": 0.001}
    result, phases, outputs = drive(store, params)
    assert result["widths"] == [4, 1, 4]
    assert result["kinds"]["kind-0"] == "individuals"
    merge = phases[1][0]
    produced = {k for r in outputs[0] for k in r["outputs"].values()}
    assert len(merge.args["reads"]) == 3 and set(merge.args["reads"]) <= produced
    # workflow inputs are staged once, scaled, and shared by the runs of the trace
    staged = [k for k in store.list("trace-inputs")]
    assert len(staged) == 2
    assert len(store.get(next(k for k in staged if k.endswith("chr1.vcf")))) == int(
        300 * 0.001 * 2**20
    )
    mem = {c.args["name"]: c.args["memory_mb"] for c in phases[0]}
    assert mem["individuals_ID0000000"] == pytest.approx(0.4)
    # each component is labelled with the task it replays (run.json keeps the label)
    assert all(c.label == c.args["name"] for phase in phases for c in phase)
    capped, _, _ = drive(
        store,
        {
            **params,
            "scale": 1.0,
            "max_memory_mb": 8.0,
            "max_file_mb": 0.5,
            "units_per_second": 0.01,
        },
    )
    assert capped["cpu_units"] == 0


# --- invalid traces ------------------------------------------------------------------------


def _daydream_run(tmp_path: Path, components: str, times: str | None) -> Path:
    run = tmp_path / "run-1"
    run.mkdir(parents=True)
    (run / "components_original.txt").write_text(components)
    if times is not None:
        (run / "function_service_time-baseline.txt").write_text(times)
    return run


BAD_DAYDREAM = [
    ("[1, 2]\n[3, 4\n", "1.0\n2.0\n3.0\n4.0\n", "line 2 is not a list of component ids"),
    ("[1, 2]\n[]\n", "1.0\n2.0\n", "line 2 is not a non-empty list"),
    ("[1, 99]\n", "1.0\n2.0\n", "component id 99"),
    ("[1, 2]\n[3]\n", "1.0\n2.0\n", "has 2 service times for the 3 components"),
    ("[1, 2]\n", "1.0\nfast\n", "line 2 is not a number of seconds"),
    ("[1, 2]\n", "1.0\n-2\n", "line 2: -2 is not a service time (0 to 31,622,400 s)"),
    ("[1, 2]\n", "1.0\nnan\n", "line 2: nan is not a service time"),
    ("[1, 2]\n", "1e308\n1.0\n", "line 1: 1e308 is not a service time"),  # billing overflowed
    ("\n\n", "1.0\n", "is empty"),
    ("[1, 2]\n", None, "has no function_service_time-baseline.txt"),
]


@pytest.mark.parametrize(("components", "times", "message"), BAD_DAYDREAM)
def test_bad_daydream_traces_are_one_line_usage_errors(
    tmp_path: Path, components: str, times: str | None, message: str
) -> None:
    run = _daydream_run(tmp_path, components, times)
    with pytest.raises(UsageError) as caught:
        load_trace(tmp_path, 1)
    text = str(caught.value)
    assert message in text
    assert str(run) in text and "\n" not in text


def _truncated(tmp_path: Path) -> Path:
    text = (DATA / "montage-mini.json").read_text()
    path = tmp_path / "truncated.json"
    path.write_text(text[: len(text) // 2])
    return path


def _edited(tmp_path: Path, edit: Any) -> Path:
    data = json.loads((DATA / "genome-mini.json").read_text())
    edit(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return path


def _cycle(data: dict[str, Any]) -> None:
    tasks = data["workflow"]["specification"]["tasks"]
    tasks[0]["parents"] = [tasks[3]["id"]]
    tasks[3]["children"].append(tasks[0]["id"])


def _unknown_parent(data: dict[str, Any]) -> None:
    data["workflow"]["specification"]["tasks"][2]["parents"] = ["nobody"]


def _no_parents_field(data: dict[str, Any]) -> None:
    del data["workflow"]["specification"]["tasks"][1]["parents"]


def _no_runtimes(data: dict[str, Any]) -> None:
    del data["workflow"]["execution"]


def _endless_runtime(data: dict[str, Any]) -> None:
    data["workflow"]["execution"]["tasks"][0]["runtimeInSeconds"] = 1e308


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_truncated, "is not valid JSON (line"),
        (lambda tmp: _edited(tmp, _cycle), "cycle"),
        (lambda tmp: _edited(tmp, _unknown_parent), "nobody"),
        (lambda tmp: _edited(tmp, _no_parents_field), "'parents' is a required property"),
        (lambda tmp: _edited(tmp, _no_runtimes), "records no task runtimes"),
        (lambda tmp: _edited(tmp, _endless_runtime), "has runtime 1e+308 s (valid: 0 to"),
        (lambda tmp: _legacy(tmp, "1e400"), "task 'b' has runtime inf (valid: a number"),
        (lambda tmp: _legacy(tmp, '"12 s"'), "task 'b' has runtime '12 s' (valid: a number"),
        (lambda tmp: _write(tmp, "[]"), "is not a WfFormat instance"),
        (lambda tmp: _write(tmp, ""), "is empty"),
    ],
)
def test_bad_wfformat_instances_are_one_line_usage_errors(
    tmp_path: Path, make: Any, message: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(UsageError) as caught:
        load_trace(path)
    text = str(caught.value)
    assert message in text, text
    assert str(path) in text and "\n" not in text


def _legacy(tmp_path: Path, runtime: str) -> Path:
    """A WfFormat 1.3 instance (tasks inline) whose second task's runtime is `runtime`, as
    JSON text (1e400 is read as infinity)."""
    return _write(
        tmp_path,
        '{"name": "x", "schemaVersion": "1.3", "workflow": {"tasks": ['
        '{"name": "a", "type": "compute", "parents": [], "runtime": 1}, '
        f'{{"name": "b", "type": "compute", "parents": ["a"], "runtime": {runtime}}}]}}}}',
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "instance.json"
    path.write_text(text)
    return path


def test_missing_path_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file or directory"):
        load_trace(tmp_path / "absent")
    with pytest.raises(UsageError, match="holds no DayDream run folders"):
        load_trace(tmp_path)


def test_the_phase_generator_fails_before_any_phase(tmp_path: Path) -> None:
    run = RunContext(
        params={"trace": str(tmp_path / "nope.json")},
        seed=1,
        run_index=1,
        store=LocalObjectStore(tmp_path),
    )
    with pytest.raises(UsageError, match=r"nope\.json"):
        workflow.plan(run)


def test_a_copied_trace_folder_replays_like_the_bundled_one(tmp_path: Path) -> None:
    shutil.copytree(BUNDLED_TRACE / "run-3", tmp_path / "ccl" / "run-3")
    assert load_trace(tmp_path / "ccl", 5).widths == load_trace(BUNDLED_TRACE, 3).widths


def test_the_plain_reader_reports_cycles_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_wfcommons_available", lambda: False)
    path = _edited(tmp_path, _cycle)
    with pytest.raises(UsageError, match="dependency cycle among tasks"):
        load_trace(path)


def test_a_components_file_of_any_name_reads_its_service_times_beside_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "phases.txt").write_text("[1, 2]\n[3]\n")
    (tmp_path / "function_service_time-baseline.txt").write_text("1.0\n2.0\n3.0\n")
    trace = load_trace(tmp_path / "phases.txt")
    assert trace.widths == [2, 1] and trace.seconds == pytest.approx(6.0)
    (tmp_path / "broken.txt").write_text("[1, 2]\n[3, 4\n")
    with pytest.raises(UsageError, match=r"broken\.txt: line 2 is not a list"):
        load_trace(tmp_path / "broken.txt")


def test_an_unexpected_wfcommons_release_falls_back_to_the_plain_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = load_trace(DATA / "montage-mini.json")

    def incompatible(path: Path, data: Any) -> Any:
        raise AttributeError("'Task' object has no attribute 'avg_cpu'")

    monkeypatch.setattr(formats, "_read_with_wfcommons", incompatible)
    assert load_trace(DATA / "montage-mini.json") == expected


def _names_carry_inputs(data: dict[str, Any]) -> None:
    # Real Pegasus instances: no category, and names that carry their inputs
    # (`fast2bfq_fast2bfq_HEP2_MSP1_Digests_s_1_sequence_10_ID0000003`)
    for number, task in enumerate(data["workflow"]["specification"]["tasks"]):
        task.pop("category", None)
        task["name"] = f"{task['id'].split('_')[0]}_sample_{number}_ID{number:07d}"


def test_a_task_s_category_is_the_one_command_it_ran(tmp_path: Path) -> None:
    trace = load_trace(_edited(tmp_path, _names_carry_inputs))
    programs = {t["command"]["program"] for t in json.loads(
        (DATA / "genome-mini.json").read_text())["workflow"]["execution"]["tasks"]}  # fmt: skip
    assert set(trace.kinds) == programs  # by name, each task was a category of its own


def test_a_script_recorded_as_the_program_leaves_the_category_to_the_name(tmp_path: Path) -> None:
    def scripts(data: dict[str, Any]) -> None:  # Nextflow records a process's whole script
        for task in data["workflow"]["specification"]["tasks"]:
            task.pop("category", None)
        for task in data["workflow"]["execution"]["tasks"]:
            task["command"]["program"] = "samtools faidx genome.fa\n    cut -f 1,2"

    declared = {t["category"] for t in json.loads(
        (DATA / "genome-mini.json").read_text())["workflow"]["specification"]["tasks"]}  # fmt: skip
    assert set(load_trace(_edited(tmp_path, scripts)).kinds) == declared  # `<name>_ID0000042`
