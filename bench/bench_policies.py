"""Policies side by side on one app, in one run: execution time, cost and start kinds.

    python bench/bench_policies.py [--app ccl] [--preset small] [--runs 3]

Each policy starts from an empty profile store and a fresh local platform, so each learns from
nothing over the same runs (same seeds); ratios are against the `cold` baseline.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from daydream_local.provider import LocalProvider

from daydream_core.engine import Engine
from daydream_core.model import RunRecord
from daydream_core.plugins import apps, policies
from daydream_core.profile import ProfileStore

POLICIES = ("cold", "daydream", "all-high", "all-low")


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
    options = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for policy in POLICIES:
            rows[policy] = measure(options.app, options.preset, policy, options.runs, Path(tmp))
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


if __name__ == "__main__":
    main()
