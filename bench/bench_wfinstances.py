"""Every policy on real WfCommons instances (WfInstances), one run each, AWS calibration.

    git clone https://github.com/wfcommons/WfInstances
    python bench/bench_wfinstances.py WfInstances/makeflow WfInstances/pegasus ...

Each `.json` under the given folders (or each file given) is replayed as `daydream simulate
--trace FILE --calibration aws` would: one row per instance (time and cost over the oracle),
then a summary: how many instances a baseline beats daydream on (both faster and cheaper),
and the medians. These are the recorded executions of real workflow systems (Pegasus,
Makeflow, Nextflow), with the phase shapes and uneven tasks that generated instances
(`bench_wfcommons.py`) smooth over.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from daydream_core.plugins import policies
from daydream_core.simulator import evaluate, load_workload
from daydream_core.simulator.calibration import named_calibration

SHOWN = ("daydream", "all-high", "all-low", "cold")


def instances(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.rglob("*.json")) if path.is_dir() else [path]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="WfFormat files or folders")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    specs = policies()
    cal = named_calibration("aws")
    print("| instance | widest | " + " | ".join(SHOWN) + " | both faster and cheaper |")
    print("| --- | --- | " + " | ".join("---" for _ in SHOWN) + " | --- |")
    beaten: dict[str, int] = {}
    ratios: dict[str, list[tuple[float, float]]] = {n: [] for n in SHOWN}
    found = instances(options.paths)
    for path in found:
        workload = load_workload(trace=path)
        result = evaluate(workload, cal, specs, seed=options.seed)
        beaten_by = result.beating("daydream", [n for n in specs if not specs[n].clairvoyant])
        for n in beaten_by:
            beaten[n] = beaten.get(n, 0) + 1
        cells = []
        for n in SHOWN:
            time, cost = result.ratio(n, "oracle")
            ratios[n].append((time, cost))
            cells.append(f"{time:.3f}, {cost:.3f}")
        widest = max(len(p) for p in workload.runs[0].phases)
        print(f"| {path.stem} | {widest} | " + " | ".join(cells) + f" | {', '.join(beaten_by)} |")
    print(f"\n{len(found)} instances; median time, cost over the oracle:")
    for n in SHOWN:
        times, costs = zip(*ratios[n], strict=True) if ratios[n] else ((), ())
        if times:
            print(f"  {n}: {statistics.median(times):.3f}, {statistics.median(costs):.3f}")
    print(
        "both faster and cheaper than daydream on: "
        + (", ".join(f"{n} {k}" for n, k in sorted(beaten.items())) or "none")
    )


if __name__ == "__main__":
    main()
