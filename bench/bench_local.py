"""Benchmarks of the local platform and the engine, reported as ratios measured in one run.

    python bench/bench_local.py [--runs 3] [--app-runtime ccl]

1. Controller overhead per phase: phase time minus the longest service time of the phase.
2. Start latency: dispatch latency (service time minus execution time) of cold vs hot starts,
   for the bench runtime (numpy) and a real app's runtime (pyccl + CAMB by default).
3. Tier speed-up of a multi-threaded kernel: execution time on the low tier / on the high tier.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(BENCH), os.environ.get("PYTHONPATH")) if p
)

from daydream_local.provider import LocalProvider  # noqa: E402

from daydream_core.engine import Engine  # noqa: E402
from daydream_core.model import HIGH, LOW, StartKind  # noqa: E402
from daydream_core.plugins import apps, policies  # noqa: E402
from daydream_core.profile import ProfileStore  # noqa: E402


def controller_overhead(work: Path, runs: int) -> dict[str, float]:
    import bench_workflow

    provider = LocalProvider(work / "state")
    engine = Engine(provider, ProfileStore(work / "profile.sqlite"), policies()["daydream"])
    overheads, phase_times = [], []
    try:
        workflow = bench_workflow.workflow
        for index in range(1, runs + 1):
            run = engine.run(
                workflow,
                preset="small",
                params=workflow.preset("small").params,
                seed=0,
                run_index=index,
                out_dir=work / "out",
            )
            for phase in run.phases:
                longest = max(r.service_ms for r in phase.invocations) / 1000.0
                overheads.append(phase.phase_time_s - longest)
                phase_times.append(phase.phase_time_s)
    finally:
        provider.close()
        engine.close()
    return {
        "phases": len(overheads),
        "overhead_ms_median": 1000 * statistics.median(overheads),
        "overhead_ms_max": 1000 * max(overheads),
        "overhead_share": sum(overheads) / sum(phase_times),
    }


def start_latency(work: Path, runtime_name: str, samples: int) -> dict[str, float]:
    if runtime_name == "bench":
        import bench_workflow

        runtime, kind, args = (
            bench_workflow.workflow.runtime,
            "matmul",
            {"size": 64, "repeats": 1, "seed": 0},
        )
    else:
        runtime = apps()[runtime_name].load().runtime
        kind, args = "__warmup__", {}
    provider = LocalProvider(work / f"latency-{runtime_name}")
    function = provider.deploy(runtime, provider.tiers()[LOW])
    payload = {"kind": kind, "args": args, "store": (work / "store").as_uri()}
    cold, hot = [], []
    try:
        import time

        for _ in range(samples):
            provider.release(function, keep=0)
            started = time.perf_counter()
            result = provider.invoke(function, payload, timeout=300)
            assert result.start is StartKind.COLD
            cold.append(1000 * (time.perf_counter() - started) - result.duration_ms)
            provider.release(function, keep=0)
            provider.warm(function, 1)
            started = time.perf_counter()
            result = provider.invoke(function, payload, timeout=300)
            assert result.start is StartKind.HOT
            hot.append(1000 * (time.perf_counter() - started) - result.duration_ms)
    finally:
        provider.close()
    return {
        "cold_ms_median": statistics.median(cold),
        "hot_ms_median": statistics.median(hot),
        "ratio": statistics.median(cold) / statistics.median(hot),
    }


def tier_speedup(work: Path, samples: int) -> dict[str, float]:
    import bench_workflow

    provider = LocalProvider(work / "tiers")
    payload = {
        "kind": "matmul",
        "args": {"size": 1200, "repeats": 4, "seed": 1},
        "store": (work / "store").as_uri(),
    }
    times: dict[str, list[float]] = {HIGH: [], LOW: []}
    try:
        for tier in (HIGH, LOW):
            function = provider.deploy(bench_workflow.workflow.runtime, provider.tiers()[tier])
            provider.invoke(function, payload, timeout=300)  # the cold start is not measured
            for _ in range(samples):
                times[tier].append(provider.invoke(function, payload, timeout=300).duration_ms)
    finally:
        provider.close()
    return {
        "high_ms_median": statistics.median(times[HIGH]),
        "low_ms_median": statistics.median(times[LOW]),
        "low_over_high": statistics.median(times[LOW]) / statistics.median(times[HIGH]),
        "high_vcpus": provider.tiers()[HIGH].vcpus,
        "low_vcpus": provider.tiers()[LOW].vcpus,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--app-runtime", default="ccl", help="app whose runtime is cold-started")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        overhead = controller_overhead(work, options.runs)
        print(
            f"controller overhead per phase ({overhead['phases']} phases): median "
            f"{overhead['overhead_ms_median']:.1f} ms, max {overhead['overhead_ms_max']:.1f} ms, "
            f"{100 * overhead['overhead_share']:.2f}% of phase time"
        )
        for name in ("bench", options.app_runtime):
            latency = start_latency(work, name, options.samples)
            print(
                f"start latency, {name} runtime: cold {latency['cold_ms_median']:.0f} ms, "
                f"hot {latency['hot_ms_median']:.1f} ms, cold/hot = {latency['ratio']:.0f}x"
            )
        tiers = tier_speedup(work, options.samples)
        print(
            f"tier speed-up (multi-threaded matmul): high {tiers['high_ms_median']:.0f} ms "
            f"({tiers['high_vcpus']:g} vCPU), low {tiers['low_ms_median']:.0f} ms "
            f"({tiers['low_vcpus']:g} vCPU), low/high = {tiers['low_over_high']:.2f}x"
        )


if __name__ == "__main__":
    main()
