"""The hot-start predictors on recorded runs: newsvendor loss, and what kinds and hints add.

    python bench/bench_predictors.py [DIR ...]   # default: tests/data/records/<app>

Per records folder (`daydream run --out`), at the AWS calibration's costs of the high tier:
every predictor's loss (width MAE in brackets), then the daydream predictor's loss from the
widths only, from widths and kinds (the hints dropped), and from all of it.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from daydream_core.policies.predictor import DayDreamPredictor
from daydream_core.simulator import load_workload, named_calibration
from daydream_core.simulator.evaluate import tier_costs
from daydream_core.simulator.predictors import compare, score

RECORDS = Path(__file__).resolve().parents[1] / "tests" / "data" / "records"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="*", type=Path)
    folders = parser.parse_args().records or [RECORDS / a for a in ("ccl", "exafel", "cosmoscout")]
    costs = tier_costs(named_calibration("aws"))
    for folder in folders:
        workload = load_workload(records=folder)
        rows = " | ".join(
            f"{s.predictor} {s.loss:.4f} ({s.mae:.2f})" for s in compare(workload, costs)
        )
        print(f"{workload.name} ({len(workload.runs)} runs): {rows}")
        unhinted = replace(workload, runs=tuple(replace(r, hints=()) for r in workload.runs))
        kinds = compare(unhinted, costs)[0].loss
        widths = score(DayDreamPredictor(), [r.widths for r in workload.runs], costs).loss
        print(f"  daydream from widths only {widths:.4f}, + kinds {kinds:.4f}")


if __name__ == "__main__":
    main()
