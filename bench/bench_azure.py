"""Start latencies of the azure adapter against its offline fake, as ratios measured in one run.

    python bench/bench_azure.py [--samples 3]

For each sample, a fresh function app (a variant of the runtime environment) is deployed; its
first component is a cold start, the next one on the same instance a warm start; another fresh
app is hot started (`warm(1)`) and its first component is a hot start. Reported: the median
service time (the client's wall time of `invoke`: HTTPS, the instance's init where it runs,
the component) per start kind, the instances' own init, and the ratios cold/hot and hot/warm.
The fake runs each instance as a real process on this machine, so the figures are this
machine's process start and imports, not Azure's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from daydream_azure.testing import AzureFake, fake_provider
from daydream_conformance.workflow import workflow

from daydream_core.model import LOW

STDLIB = (  # one more stdlib preload per sample: a fresh app each time
    "string",
    "json",
    "base64",
    "textwrap",
    "bisect",
    "colorsys",
    "fractions",
    "heapq",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    runtime = workflow.runtime
    times: dict[str, list[float]] = {"cold": [], "warm": [], "hot": []}
    inits: dict[str, list[float]] = {"cold": [], "hot": []}
    with AzureFake() as fake, tempfile.TemporaryDirectory() as tmp:
        provider = fake_provider(fake, Path(tmp))
        tier = provider.tiers()[LOW]
        store = provider.store().uri

        def invoke(function: object) -> tuple[float, object]:
            payload = {"component": "echo", "kind": "echo", "args": {"value": 1}, "store": store}
            started = time.perf_counter()
            result = provider.invoke(function, payload, 120.0)  # type: ignore[arg-type]
            return (time.perf_counter() - started) * 1000.0, result

        try:
            for sample in range(args.samples):
                preload = STDLIB[sample % len(STDLIB)]
                cold_app = provider.deploy(
                    replace(runtime, preload=(*runtime.preload, preload)), tier
                )
                elapsed, result = invoke(cold_app)
                times["cold"].append(elapsed)
                inits["cold"].append(result.init_ms)  # type: ignore[attr-defined]
                times["warm"].append(invoke(cold_app)[0])
                hot_runtime = replace(runtime, preload=(*runtime.preload, preload, "heapq"))
                hot_app = provider.deploy(hot_runtime, tier)
                inits["hot"].extend(w.init_ms for w in provider.warm(hot_app, 1))
                times["hot"].append(invoke(hot_app)[0])
                provider.delete(cold_app)
                provider.delete(hot_app)
        finally:
            provider.cleanup()
            provider.close()
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"runtime {runtime.name}, {args.samples} samples, low tier ({tier.memory_mb} MB)")
    for start in ("cold", "hot", "warm"):
        print(f"  {start:4s} service time median {median[start]:8.1f} ms")
    print(
        f"  init (instance's own) median: cold {statistics.median(inits['cold']):.1f} ms, "
        f"hot {statistics.median(inits['hot']):.1f} ms"
    )
    print(
        f"  cold/hot {median['cold'] / median['hot']:.1f}x, hot/warm "
        f"{median['hot'] / median['warm']:.2f}x"
    )


if __name__ == "__main__":
    main()
