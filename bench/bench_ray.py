"""Start latencies on the ray provider, on a local Ray instance, reported as ratios in one run.

    python bench/bench_ray.py [--samples 5] [--app-runtime ccl]

1. Starting the local Ray instance (what `daydream --provider ray run` pays once per command).
2. Service time of one component (the conformance workflow's `echo`) by start kind:
   cold (actor created and its runtime environment loaded on the critical path), hot (the
   actor created ahead by `warm`, first use), warm (an idle actor reused); for the conformance
   runtime and a real app's runtime (pyccl + CAMB by default).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from daydream_conformance.workflow import workflow as conformance
from daydream_ray.cluster import Cluster
from daydream_ray.options import RayOptions
from daydream_ray.provider import RayProvider

from daydream_core.model import LOW, StartKind
from daydream_core.plugins import apps
from daydream_core.provider import ProviderSettings
from daydream_core.workflow import RuntimeEnvironment

# Harmless stdlib preloads: each gives the runtime environment a fresh hashed name, so that
# every sample starts from a function with no instances.
FRESH = ("string", "json", "base64", "textwrap", "difflib", "shlex", "fnmatch", "calendar")
FRESH += ("colorsys", "csv", "heapq", "bisect", "glob", "gzip", "hmac", "html", "netrc")
FRESH += ("pprint", "quopri", "sched", "secrets", "statistics", "tabnanny", "zipfile")


def fresh(runtime: RuntimeEnvironment, index: int) -> RuntimeEnvironment:
    return replace(runtime, preload=(*runtime.preload, FRESH[index]))


def service_ms(provider: RayProvider, function: Any, payload: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = provider.invoke(function, payload, 300.0)
    return (time.perf_counter() - started) * 1000.0, result.start


def start_latency(
    provider: RayProvider, runtime: RuntimeEnvironment, samples: int
) -> dict[str, float]:
    """Per sample: a fresh function (a new hashed name), one cold invocation then one warm;
    another fresh function, one hot start, then its first invocation."""
    payload = {"kind": "echo", "args": {"value": 1}, "store": provider.store().uri}
    measured: dict[str, list[float]] = {"cold": [], "warm": [], "hot": []}
    for index in range(samples):
        cold = provider.deploy(fresh(runtime, 2 * index), provider.tiers()[LOW])
        for expected in (StartKind.COLD, StartKind.WARM):
            ms, start = service_ms(provider, cold, payload)
            assert start is expected, (start, expected)
            measured[expected.value].append(ms)
        provider.delete(cold)
        hot = provider.deploy(fresh(runtime, 2 * index + 1), provider.tiers()[LOW])
        provider.warm(hot, 1)
        ms, start = service_ms(provider, hot, payload)
        assert start is StartKind.HOT, start
        measured["hot"].append(ms)
        provider.delete(hot)
    medians = {f"{kind}_ms_median": statistics.median(v) for kind, v in measured.items()}
    medians["cold_over_hot"] = medians["cold_ms_median"] / medians["hot_ms_median"]
    medians["cold_over_warm"] = medians["cold_ms_median"] / medians["warm_ms_median"]
    return medians


def with_echo(runtime: RuntimeEnvironment) -> RuntimeEnvironment:
    """An app's runtime environment (its preloads) serving the conformance workflow's echo."""
    return replace(conformance.runtime, preload=(*runtime.preload, runtime.module))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5, choices=range(1, len(FRESH) // 2 + 1))
    parser.add_argument("--app-runtime", default="ccl")
    args = parser.parse_args()
    started = time.perf_counter()
    cluster = Cluster.connect(RayOptions())
    ray_start_s = time.perf_counter() - started
    try:
        with tempfile.TemporaryDirectory() as work:
            provider = RayProvider(ProviderSettings(state_dir=Path(work)), cluster=cluster)
            try:
                print(f"local Ray instance start: {ray_start_s:.2f} s")
                runtimes = {"conformance": conformance.runtime}
                if args.app_runtime in apps():
                    runtimes[args.app_runtime] = with_echo(apps()[args.app_runtime].load().runtime)
                for name, runtime in runtimes.items():
                    result = start_latency(provider, runtime, args.samples)
                    print(
                        f"{name}: cold {result['cold_ms_median']:.0f} ms, "
                        f"hot {result['hot_ms_median']:.1f} ms, "
                        f"warm {result['warm_ms_median']:.1f} ms "
                        f"(median of {args.samples}); cold/hot {result['cold_over_hot']:.0f}x, "
                        f"cold/warm {result['cold_over_warm']:.0f}x"
                    )
            finally:
                provider.cleanup()
                provider.close()
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
