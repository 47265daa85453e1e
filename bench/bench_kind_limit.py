"""Placement told kinds, not components: how much of the oracle's cost a learner could reach.

    python bench/bench_kind_limit.py [--slack 0.02] [--seed 0] [PATH ...]
    # PATH: a trace (DayDream folder, WfFormat JSON) or a records folder (`daydream run --out`);
    # default: the shared CCL trace and tests/data/records/<app>

Placement only (no starts, no dispatch; phases wider than the platform's limit are left out),
under the `aws` calibration, on every component's true execution seconds per tier (`truth`: the
draws every policy of `daydream simulate` sees). Each kind's time on each tier is fitted as a
log-normal over the whole workload, more than a learner knows at any phase. Each phase is then
placed four ways, and its time (its slowest component) and cost (the tiers' GB-seconds)
totalled:

- `all-high`: every component on the largest tier;
- `kind means`: daydream's placement (`within_budget`: the cheapest tiers within the slack of
  the all-fastest phase time) told each kind's mean on each tier;
- `kind spreads`: the counts per kind and tier whose *expected* phase time (the expected
  maximum of the components' times, integrated from the fitted distributions, as if
  independent) stays within the slack of the all-fastest one's, moves to a cheaper tier taken
  greedily by expected delay per dollar saved;
- `components`, the ratios' denominator: `within_budget` told every component's own seconds
  (the oracle's placement).

Where both per-kind placements place like `all-high`, knowing kinds buys nothing on placement:
what a learner spends learning (its probes, its first runs) is then a net cost, and a policy
told to run everything high is as good as any that learns.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy.stats import norm

from daydream_core.errors import UsageError
from daydream_core.model import Tier
from daydream_core.policies.placement import within_budget
from daydream_core.pricing import PriceTable
from daydream_core.simulator import load_workload, named_calibration
from daydream_core.simulator.calibration import Calibration, from_records_folder
from daydream_core.simulator.executor import Truth, truth
from daydream_core.simulator.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = [
    ROOT / "apps" / "daydream_trace" / "data" / "ccl",
    *(ROOT / "tests" / "data" / "records" / app for app in ("ccl", "exafel", "cosmoscout")),
]
GRID = 512  # points of the integral of the expected maximum

LogNormal = tuple[float, float]  # mean and standard deviation of log seconds


def load(path: Path) -> tuple[Workload, Calibration]:
    cal = named_calibration("aws")
    if (path / "run-1" / "run.json").is_file():
        return load_workload(records=path), from_records_folder(cal, path)
    return load_workload(trace=path), cal


def fit(workload: Workload, seconds: Sequence[Truth]) -> dict[tuple[str, str], LogNormal]:
    logs: dict[tuple[str, str], list[float]] = {}
    for run, phases in zip(workload.runs, seconds, strict=True):
        for phase, rows in zip(run.phases, phases, strict=True):
            for task, row in zip(phase, rows, strict=True):
                for tier, s in row.items():
                    logs.setdefault((task.kind, tier), []).append(math.log(max(s, 1e-6)))
    return {key: (float(np.mean(v)), float(np.std(v)) + 1e-6) for key, v in logs.items()}


def mean(fitted: Mapping[tuple[str, str], LogNormal], kind: str, tier: str) -> float:
    """A fitted log-normal's mean seconds."""
    mu, sigma = fitted[(kind, tier)]
    return math.exp(mu + sigma * sigma / 2)


def expected_max(counts: Mapping[tuple[str, str], int], fitted: Mapping, grid: np.ndarray) -> float:
    """E[max] of independent log-normal times: the integral of 1 - prod F_i(t), below the
    grid (where every F_i is 0) and along it."""
    log_cdf = np.zeros_like(grid)
    log_t = np.log(grid)
    for key, n in counts.items():
        if n:
            mu, sigma = fitted[key]
            log_cdf += n * norm.logcdf((log_t - mu) / sigma)
    return float(grid[0] + np.trapezoid(1.0 - np.exp(log_cdf), grid))


def by_spreads(
    kinds: Sequence[str],
    fitted: Mapping[tuple[str, str], LogNormal],
    slack: float,
    order: Sequence[str],
    cost_per_s: Mapping[str, float],
) -> list[str]:
    """Counts per kind and tier, from each kind on its fastest tier (by mean), moved greedily
    to cheaper tiers while the expected phase time stays within the slack."""

    members = Counter(kinds)
    fastest = {k: min(order, key=lambda t: mean(fitted, k, t)) for k in members}
    counts = Counter({(k, fastest[k]): n for k, n in members.items()})
    spans = [fitted[(k, t)] for k in members for t in order]
    grid = np.geomspace(
        min(math.exp(mu - 6 * sigma) for mu, sigma in spans),
        max(math.exp(mu + 6 * sigma) for mu, sigma in spans),
        GRID,
    )
    current = expected_max(counts, fitted, grid)
    budget = (1.0 + slack) * current
    while True:
        best: tuple[float, tuple[str, str], tuple[str, str], float] | None = None
        for (kind, tier), n in list(counts.items()):
            if n == 0:
                continue
            for cheaper in order:
                saved = cost_per_s[tier] * mean(fitted, kind, tier)
                saved -= cost_per_s[cheaper] * mean(fitted, kind, cheaper)
                if saved <= 0:
                    continue
                counts[(kind, tier)] -= 1
                counts[(kind, cheaper)] += 1
                after = expected_max(counts, fitted, grid)
                counts[(kind, tier)] += 1
                counts[(kind, cheaper)] -= 1
                if after <= budget and (best is None or (after - current) / saved < best[0]):
                    best = ((after - current) / saved, (kind, tier), (kind, cheaper), after)
        if best is None:
            break
        _, source, target, current = best
        counts[source] -= 1
        counts[target] += 1
    placement = []
    for kind in kinds:  # which of a kind's components go where is not known: in order
        tier = next(t for t in order if counts[(kind, t)] > 0)
        counts[(kind, tier)] -= 1
        placement.append(tier)
    return placement


def measure(path: Path, slack: float, seed: int) -> dict[str, tuple[float, float]]:
    workload, cal = load(path)
    seconds = [truth(run, cal, seed, i) for i, run in enumerate(workload.runs)]
    fitted = fit(workload, seconds)
    tiers: Mapping[str, Tier] = cal.tiers
    prices: PriceTable = cal.prices
    order = sorted(tiers, key=lambda t: -tiers[t].memory_mb)
    cost_per_s = {t: prices.gb_second_cost(tiers[t].memory_mb, 1.0, tiers[t].vcpus) for t in tiers}
    totals = {name: [0.0, 0.0] for name in ("all-high", "kind means", "kind spreads", "components")}
    for run, phases in zip(workload.runs, seconds, strict=True):
        for phase, rows in zip(run.phases, phases, strict=True):
            if len(phase) > cal.concurrency:
                continue
            kinds = [task.kind for task in phase]
            means = {k: {t: mean(fitted, k, t) for t in order} for k in set(kinds)}
            placements = {
                "all-high": [order[0]] * len(kinds),
                "kind means": within_budget(
                    [means[k] for k in kinds], slack, None, order, tiers, prices
                ),
                "kind spreads": by_spreads(kinds, fitted, slack, order, cost_per_s),
                "components": within_budget(rows, slack, None, order, tiers, prices),
            }
            for name, placed in placements.items():
                times = [row[t] for row, t in zip(rows, placed, strict=True)]
                totals[name][0] += max(times)
                totals[name][1] += sum(map(lambda t, s: cost_per_s[t] * s, placed, times))
    limit_time, limit_cost = totals["components"]
    return {name: (t / limit_time, c / limit_cost) for name, (t, c) in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--slack", type=float, default=0.02, help="daydream's placement slack")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    names = ("all-high", "kind means", "kind spreads")
    print("| workload | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for path in options.paths or DEFAULTS:
        try:
            ratios = measure(path, options.slack, options.seed)
        except UsageError as error:
            parser.exit(2, f"bench_kind_limit: error: {error}\n")
        cells = " | ".join(f"{ratios[n][0]:.3f}, {ratios[n][1]:.3f}" for n in names)
        print(f"| {path.parent.name}/{path.name} | {cells} |")


if __name__ == "__main__":
    main()
