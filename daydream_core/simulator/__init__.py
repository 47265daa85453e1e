"""A discrete-event simulator of serverless platforms, in virtual time.

It executes the same `Controller` decisions as the live engine, on a calibrated model of a
platform (`calibration`), over recorded workloads (`workload`); `evaluate` runs every policy
on the same seeds and `report` prints the table. See docs/simulator.md.
"""

from daydream_core.simulator.calibration import CALIBRATIONS, Calibration, named_calibration
from daydream_core.simulator.evaluate import Evaluation, PolicyResult, evaluate
from daydream_core.simulator.workload import Task, TraceRun, Workload, load_workload

__all__ = [
    "CALIBRATIONS",
    "Calibration",
    "Evaluation",
    "PolicyResult",
    "Task",
    "TraceRun",
    "Workload",
    "evaluate",
    "load_workload",
    "named_calibration",
]
