"""Policies side by side on one app, in one run: execution time, cost and start kinds.

    python bench/bench_policies.py [--app ccl] [--preset small] [--runs 3] [--keep DIR]

Each policy starts from an empty profile store and a fresh local platform, so each learns from
nothing over the same runs (same seeds); the runs are interleaved (run 1 of every policy, then
run 2, in one order), so the machine's changing load is shared and every policy waits as
long between its runs; ratios are against the `cold` baseline. Then the
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


class Live:
    """One policy on its own fresh local platform and empty profile store, run by run."""

    def __init__(self, app: str, preset: str, policy: str, work: Path) -> None:
        self.workflow = apps()[app].load()
        self.preset = preset
        self.out = work / policy / "out"
        self.provider = LocalProvider(work / policy)
        self.engine = Engine(
            self.provider, ProfileStore(work / f"{policy}.sqlite"), policies()[policy]
        )
        self.runs: list[RunRecord] = []

    def run(self) -> None:
        params = self.workflow.preset(self.preset).params
        index = len(self.runs) + 1
        self.runs.append(
            self.engine.run(
                self.workflow,
                preset=self.preset,
                params=params,
                seed=0,
                run_index=index,
                out_dir=self.out,
            )
        )

    def close(self) -> None:
        self.provider.close()
        self.engine.close()


def measure_interleaved(
    app: str, preset: str, chosen: list[str], runs: int, work: Path
) -> dict[str, list[RunRecord]]:
    """Run i of every policy before run i + 1 of any, so a change in the machine's load (2
    shared cores) falls on every policy alike rather than on whichever ran last. One order
    every round, so that between two of its runs every policy waits for the others' runs
    once: an order rotating each round gave the policy that went from first to last twice
    as long a wait, past the local platform's 60 s keep-alive (with 5 policies, `cold`'s
    and `daydream`'s instances expired between one pair of runs each, the others' never)."""
    lives = {policy: Live(app, preset, policy, work) for policy in chosen}
    try:
        for _ in range(runs):
            for policy in chosen:
                lives[policy].run()
    finally:
        for live in lives.values():
            live.close()
    return {policy: live.runs for policy, live in lives.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="ccl")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--keep", type=Path, help="keep the runs' records in this directory")
    options = parser.parse_args()
    chosen = options.policies.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = options.keep or Path(tmp)
        rows = measure_interleaved(options.app, options.preset, chosen, options.runs, work)
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
