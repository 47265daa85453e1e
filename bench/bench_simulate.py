"""Speed of the evaluation: every policy over a 50-run replay of the shared trace.

    python bench/bench_simulate.py [--trace apps/daydream_trace/data/ccl] [--calibration trace]

Prints the wall-clock seconds of `evaluate` (all registered policies, every run of the trace)
and the simulated seconds per wall-clock second.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from daydream_core.plugins import policies
from daydream_core.simulator import evaluate, load_workload, named_calibration

TRACE = Path(__file__).resolve().parents[1] / "apps" / "daydream_trace" / "data" / "ccl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--calibration", default="trace")
    options = parser.parse_args()
    workload = load_workload(trace=options.trace)
    specs = policies()
    started = time.perf_counter()
    result = evaluate(workload, named_calibration(options.calibration), specs)
    wall = time.perf_counter() - started
    simulated = sum(r.execution_time_s for r in result.results.values())
    print(
        f"{len(workload.runs)} runs x {len(specs)} policies ({options.calibration}): "
        f"{wall:.1f} s wall clock, {simulated / wall:,.0f} simulated s per s"
    )


if __name__ == "__main__":
    main()
