"""Every policy on the same workload, calibration and seeds: the numbers of the table."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from daydream_core.controller import Controller
from daydream_core.policies.keepalive import run_spacing
from daydream_core.policies.predictor import (
    DEFAULT_TIME_VALUE_PER_S,
    Shape,
    StartCosts,
    start_costs,
)
from daydream_core.policies.registry import PolicySpec
from daydream_core.simulator.calibration import Calibration
from daydream_core.simulator.executor import (
    Learned,
    RunOutcome,
    simulate_artifact,
    simulate_daydream,
    start_noise,
    truth,
)
from daydream_core.simulator.platform import Platform
from daydream_core.simulator.predictors import Score, compare
from daydream_core.simulator.workload import Workload


@dataclass
class PolicyResult:
    policy: str
    runs: list[RunOutcome] = field(default_factory=list)
    fixed_cost: float = 0.0  # charged once, whatever the runs did (SnapStart caching)

    @property
    def execution_time_s(self) -> float:
        return sum(r.execution_time_s for r in self.runs)

    @property
    def cost(self) -> float:
        return sum(r.cost for r in self.runs) + self.fixed_cost

    @property
    def own_cost(self) -> float:
        return sum(r.own_cost for r in self.runs)

    @property
    def cold_fraction(self) -> float:
        starts = {k: sum(r.billing.starts[k] for r in self.runs) for k in ("hot", "warm", "cold")}
        total = sum(starts.values())
        return starts["cold"] / total if total else 0.0

    @property
    def idle_gb_s(self) -> float:
        return sum(r.idle_gb_s for r in self.runs)

    @property
    def width_mae(self) -> float:
        errors = [
            abs(p - sum(w.values()))
            for r in self.runs
            for p, w in zip(r.predicted, r.widths, strict=True)
        ]
        return float(np.mean(errors)) if errors else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "execution_time_s": self.execution_time_s,
            "cost": self.cost,
            "cold_start_fraction": self.cold_fraction,
            "idle_hot_start_gb_s": self.idle_gb_s,
            "width_mae": self.width_mae,
            "fixed_cost": self.fixed_cost,
            "runs": [
                {"execution_time_s": r.execution_time_s, "cost": r.cost, "own_cost": r.own_cost}
                for r in self.runs
            ],
        }


@dataclass
class Evaluation:
    workload: Workload
    calibration: Calibration
    seed: int
    results: dict[str, PolicyResult]

    def predictors(self) -> list[Score]:
        """The daydream predictor and every naive one on the workload's recorded phases,
        judged by newsvendor loss at this calibration's costs."""
        return compare(self.workload, tier_costs(self.calibration), self.calibration.concurrency)

    def beating(self, policy: str, among: Collection[str]) -> list[str]:
        """The policies of `among` both faster and cheaper than `policy`, strictly."""
        mine = self.results[policy]
        return [
            name
            for name in among
            if name != policy
            and self.results[name].execution_time_s < mine.execution_time_s
            and self.results[name].cost < mine.cost
        ]

    def ratio(self, policy: str, other: str) -> tuple[float, float]:
        mine, theirs = self.results[policy], self.results[other]
        return (
            mine.execution_time_s / theirs.execution_time_s if theirs.execution_time_s else 0.0,
            mine.cost / theirs.cost if theirs.cost else 0.0,
        )


def tier_costs(cal: Calibration) -> dict[str, StartCosts]:
    """What a hot-start prediction error costs per tier, on the calibrated platform."""
    return {
        name: start_costs(
            tier, cal.prices, cal.init_s[name] * 1000.0, time_value_per_s=DEFAULT_TIME_VALUE_PER_S
        )
        for name, tier in cal.tiers.items()
    }


def simulate_policy(
    policy: PolicySpec, workload: Workload, cal: Calibration, seed: int
) -> PolicyResult:
    """Run the workload's runs one after another, on one platform, under `policy`."""
    platform = Platform(cal, np.random.default_rng([seed, 7]))
    result = PolicyResult(policy.name, fixed_cost=cal.fixed_cost)
    history: list[list[dict[str, int]]] = []
    history_shapes: list[list[Shape]] = []
    learned = Learned()
    costs = tier_costs(cal)
    clock = 0.0
    spans: list[tuple[float, float]] = []  # the runs' (start, end) in virtual time
    for index, run in enumerate(workload.runs):
        seconds = truth(run, cal, seed, index)
        noise = start_noise(run, seed, index)
        run_gaps, run_times = run_spacing(spans, clock)
        controller = Controller(
            policy=policy,
            tiers=cal.tiers,
            prices=cal.prices,
            history=list(history),
            timings=learned.timings(),
            paired=learned.paired(),
            costs=costs,
            max_concurrency=cal.concurrency,
            seed=seed * 100_003 + index,
            peak=max(run.widths, default=0),
            history_shapes=list(history_shapes),
            run_gaps=run_gaps,
            run_times=run_times,
        )
        started = clock
        idle_before = platform.idle_gb_s
        if policy.mechanics == "artifact":
            outcome, clock = simulate_artifact(
                controller, platform, run, seconds, clock, learned, noise
            )
        else:
            outcome, clock = simulate_daydream(
                controller, platform, run, seconds, clock, learned, noise
            )
        history.append(controller.current)
        history_shapes.append(controller.shapes)
        result.runs.append(outcome)
        spans.append((started, clock))
        clock += cal.run_gap_s
        platform.reclaim(clock, controller.keep_alive_window())
        outcome.idle_gb_s = platform.idle_gb_s - idle_before
    if result.runs:  # hot starts still unused when the evaluation ends were idle too
        before = platform.idle_gb_s
        platform.release_all()
        result.runs[-1].idle_gb_s += platform.idle_gb_s - before
    return result


def evaluate(
    workload: Workload,
    cal: Calibration,
    policies: Mapping[str, PolicySpec],
    seed: int = 0,
) -> Evaluation:
    results = {name: simulate_policy(spec, workload, cal, seed) for name, spec in policies.items()}
    return Evaluation(workload, cal, seed, results)


def order(names: Sequence[str]) -> list[str]:
    preferred = ["daydream", "oracle", "oracle-kinds"]
    return [n for n in preferred if n in names] + [n for n in names if n not in preferred]


SNAPSTART_ROWS = {"daydream": "daydream+snapstart", "cold": "snapstart alone"}


def add_snapstart(evaluation: Evaluation, policies: Mapping[str, PolicySpec]) -> None:
    """Under the `aws` calibration: `daydream` with SnapStart, and SnapStart alone (the
    `cold` policy: no hot starts, every new instance restored), on the same workload and
    seed, as rows of the same table, so that one sees whether hot starts still pay when the
    platform restores snapshots."""
    from daydream_core.simulator.calibration import aws_snapstart

    if evaluation.calibration.name != "aws":
        return
    cal = aws_snapstart()
    for name, row in SNAPSTART_ROWS.items():
        if name in policies:
            result = simulate_policy(policies[name], evaluation.workload, cal, evaluation.seed)
            result.policy = row
            evaluation.results[row] = result
