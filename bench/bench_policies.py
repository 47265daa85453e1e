"""Policies side by side on one app, in one run: execution time, cost and start kinds.

    python bench/bench_policies.py [--app ccl] [--preset small] [--runs 3] [--keep DIR]

Each policy starts from an empty profile store and a fresh local platform, so each learns from
nothing over the same runs (same seeds); ratios are against the `cold` baseline. Then the
simulator, calibrated on these very records (`local` calibration), replays the `cold` runs'
components under each policy: its totals beside the live ones give the simulator's error.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from daydream_local.provider import LocalProvider

from daydream_core.engine import Engine
from daydream_core.model import RunRecord
from daydream_core.plugins import apps, policies
from daydream_core.profile import ProfileStore

POLICIES = ("cold", "daydream", "keep-alive", "all-high", "all-low")


def measure(app: str, preset: str, policy: str, runs: int, work: Path) -> list[RunRecord]:
    workflow = apps()[app].load()
    provider = LocalProvider(work / policy)
    engine = Engine(provider, ProfileStore(work / f"{policy}.sqlite"), policies()[policy])
    try:
        return [
            engine.run(
                workflow,
                preset=preset,
                params=workflow.preset(preset).params,
                seed=0,
                run_index=index,
                out_dir=work / policy / "out",
            )
            for index in range(1, runs + 1)
        ]
    finally:
        provider.close()
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="ccl")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--keep", type=Path, help="keep the runs' records in this directory")
    options = parser.parse_args()
    rows = {}
    chosen = options.policies.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = options.keep or Path(tmp)
        for policy in chosen:
            rows[policy] = measure(options.app, options.preset, policy, options.runs, work)
        simulated = simulate(work, chosen, rows)
    base_time = sum(r.execution_time_s for r in rows["cold"])
    base_cost = sum(r.cost for r in rows["cold"])
    print("| policy | execution time (s) | vs cold | cost ($) | vs cold | hot | warm | cold |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for policy, runs in rows.items():
        time_s = sum(r.execution_time_s for r in runs)
        cost = sum(r.cost for r in runs)
        starts = {k: sum(r.start_counts()[k] for r in runs) for k in ("hot", "warm", "cold")}
        print(
            f"| {policy} | {time_s:.1f} | {time_s / base_time:.2f} | {cost:.4f} | "
            f"{cost / base_cost:.2f} | {starts['hot']} | {starts['warm']} | {starts['cold']} |"
        )
    print()
    print(
        "| policy | live time (s) | simulated (s) | error | live cost ($) | simulated ($) | error |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for policy, (sim_time, sim_cost) in simulated.items():
        time_s = sum(r.execution_time_s for r in rows[policy])
        cost = sum(r.cost for r in rows[policy])
        print(
            f"| {policy} | {time_s:.1f} | {sim_time:.1f} | {sim_time / time_s - 1:+.1%} | "
            f"{cost:.4f} | {sim_cost:.4f} | {sim_cost / cost - 1:+.1%} |"
        )


def simulate(
    work: Path, chosen: list[str], rows: dict[str, list[RunRecord]]
) -> dict[str, tuple[float, float]]:
    """The `local` calibration from every live record; the workload: the `cold` runs."""
    from daydream_core.simulator import Task, evaluate, load_workload
    from daydream_core.simulator import calibration as calibrations

    records = [r.to_json() for runs in rows.values() for r in runs]
    cal = calibrations.from_records(calibrations.local(), records)
    # The components of the first policy's runs, timed by the kinds' means over every live
    # run (the host's load differs from one policy's runs to the next).
    recorded = load_workload(records=work / chosen[0] / "out")
    workload = replace(
        recorded,
        runs=tuple(
            replace(
                run, phases=tuple(tuple(Task(t.kind, t.seconds) for t in p) for p in run.phases)
            )
            for run in recorded.runs
        ),
    )
    specs = {name: policies()[name] for name in chosen}
    result = evaluate(workload, cal, specs)
    return {n: (r.execution_time_s, r.cost) for n, r in result.results.items()}


if __name__ == "__main__":
    main()
