"""A 10,000-component no-op phase on the local platform, at its concurrency limit.

    python bench/bench_local_wide.py [--width 10000] [--concurrency 23] [--runs 2]

Each run is a phase of `--width` components that do nothing, then a 1-wide phase; the engine
(policy `daydream`) learns across the runs from an empty profile store. Reported per run: the
wide phase's time and invocations per second, hot/warm/cold starts (cold starts must stay
within the limit: the platform queues rather than evicts), and why instances ended.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(BENCH), os.environ.get("PYTHONPATH")) if p
)

from daydream_local.provider import LocalProvider  # noqa: E402

from daydream_core.engine import Engine  # noqa: E402
from daydream_core.model import RunRecord  # noqa: E402
from daydream_core.plugins import policies  # noqa: E402
from daydream_core.profile import ProfileStore  # noqa: E402


def measure(width: int, concurrency: int, runs: int, policy: str, work: Path) -> list[RunRecord]:
    import noop_workflow

    workflow = noop_workflow.workflow
    params = {"widths": [width, 1]}
    provider = LocalProvider(work / "state", concurrency=concurrency)
    engine = Engine(provider, ProfileStore(work / "profile.sqlite"), policies()[policy])
    try:
        return [
            engine.run(
                workflow, preset="wide", params=params, seed=0, run_index=i, out_dir=work / "out"
            )
            for i in range(1, runs + 1)
        ]
    finally:
        provider.close()
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=23)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--policy", default="daydream")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        runs = measure(options.width, options.concurrency, options.runs, options.policy, Path(tmp))
        wall = time.perf_counter() - started
    print(
        f"{options.width}-component no-op phase, concurrency limit {options.concurrency}, "
        f"policy {options.policy}, {options.runs} runs in {wall:.1f} s"
    )
    print()
    print("| run | phase time (s) | invocations/s | hot | warm | cold | cold <= limit | ended |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in runs:
        wide = run.phases[0]
        starts = collections.Counter(r.start.value for r in wide.invocations)
        ended = collections.Counter(life["ended_by"] for life in run.instances if life["ended_by"])
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(ended.items())) or "none"
        print(
            f"| {run.index} | {wide.phase_time_s:.2f} | {wide.width / wide.phase_time_s:.0f} | "
            f"{starts['hot']} | {starts['warm']} | {starts['cold']} | "
            f"{'yes' if starts['cold'] <= options.concurrency else 'NO'} | {reasons} |"
        )


if __name__ == "__main__":
    main()
