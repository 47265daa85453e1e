"""Fitting the artifact controller's latency constants on a few runs of a DayDream trace.

The artifact's phase time is linear in its per-function constants: (hot starts created +
cold starts) x create + width x (pause + delete) + the longest service time. So, with the
policy's own random draws fixed by the seed, each run's simulated time is
``a x create + b x delete + c``; the constants are the non-negative least squares of the run
totals against the measured ones (``phase_time-baseline.txt``), on at most `runs` runs. The
held-out runs, and traces of other workflows, are then predicted with them.

    python -m daydream_core.simulator.artifact_fit TRACE [--runs 10]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from daydream_core.errors import UsageError
from daydream_core.plugins import policies
from daydream_core.simulator.calibration import ArtifactConstants, Calibration, trace
from daydream_core.simulator.evaluate import simulate_policy
from daydream_core.simulator.workload import Workload, load_workload


def _times(workload: Workload, cal: Calibration, constants: ArtifactConstants) -> np.ndarray:
    result = simulate_policy(policies()["artifact"], workload, replace(cal, artifact=constants), 0)
    return np.array([r.execution_time_s for r in result.runs])


def fit(workload: Workload, runs: int = 10, cal: Calibration | None = None) -> ArtifactConstants:
    """Create and delete seconds fitted on the first `runs` runs of a DayDream trace."""
    fitted = workload.first(min(runs, len(workload.runs)))
    measured = [r.measured for r in fitted.runs]
    if not measured or any(m is None for m in measured):
        raise UsageError(f"{workload.source}: fitting needs the trace's measured phase times")
    cal = cal or trace()
    zero = replace(cal.artifact, create_s=0.0, delete_s=0.0)
    base = _times(fitted, cal, zero)
    per_create = _times(fitted, cal, replace(zero, create_s=1.0)) - base
    per_delete = _times(fitted, cal, replace(zero, delete_s=1.0)) - base
    target = np.array([m.execution_time_s for m in measured if m is not None]) - base
    (create, delete), _ = nnls(np.column_stack([per_create, per_delete]), target)
    return replace(cal.artifact, create_s=float(create), delete_s=float(delete))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    constants = fit(load_workload(trace=options.trace), options.runs)
    print(f"create_s={constants.create_s:.3f} delete_s={constants.delete_s:.3f}")


if __name__ == "__main__":
    main()
