"""Cold, hot and warm starts of the gcp adapter against its offline fake, as ratios in one run.

    python bench/bench_gcp_starts.py --rounds 5

Each round deploys a fresh function (a variant of the conformance workflow's runtime
environment), then measures the service time of: a cold start (the first invocation creates
and initialises an instance), a warm start (the same instance again), and a hot start (an
instance started ahead by ``warm(1)``, then used). Instances are real functions-framework
processes; the numbers are this machine's, not Google's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from daydream_conformance.workflow import workflow
from daydream_gcp.testing import FunctionsFake, fake_provider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"cold": [], "warm": [], "hot": []}
    with tempfile.TemporaryDirectory() as tmp, FunctionsFake(Path(tmp) / "fake") as fake:
        provider = fake_provider(fake, Path(tmp))
        payload = {"kind": "echo", "args": {"value": 1}, "store": provider.store().uri}
        tier = provider.tiers()["low"]
        for i in range(args.rounds):
            runtime = replace(workflow.runtime, preload=(*workflow.runtime.preload, f"bench{i}"))
            runtime = replace(runtime, preload=runtime.preload[:-1] + ("json",) * (i + 1))
            function = provider.deploy(runtime, tier)
            for kind in ("cold", "warm"):
                started = time.perf_counter()
                result = provider.invoke(function, payload, 120)
                times[kind].append((time.perf_counter() - started) * 1000.0)
                assert result.start.value == kind, result.start
            hot_function = provider.deploy(runtime, provider.tiers()["high"])
            provider.warm(hot_function, 1)
            started = time.perf_counter()
            result = provider.invoke(hot_function, payload, 120)
            times["hot"].append((time.perf_counter() - started) * 1000.0)
            assert result.start.value == "hot", result.start
        provider.cleanup()
        provider.close()
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    for kind, value in medians.items():
        print(f"{kind:5s} median service time {value:8.1f} ms over {args.rounds} rounds")
    print(
        f"cold / hot = {medians['cold'] / medians['hot']:.1f}x, "
        f"cold / warm = {medians['cold'] / medians['warm']:.1f}x"
    )


if __name__ == "__main__":
    main()
