"""Compute time of each component kind on 1 and 2 threads: ``python -m daydream_ccl.bench``.

Runs every kind in this process on a local store, alternating the thread count (CAMB's via
``ctx.threads``, pyccl's with `omp_threads`) so that both see the same machine load, and
reports the fastest of `--reps` repetitions (the least disturbed by other processes).
Start it with OMP_NUM_THREADS=2 (the default here) so that two threads exist to use.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from itertools import count
from typing import Any, TypeVar

from daydream_ccl import components
from daydream_ccl.config import AnalysisConfig
from daydream_ccl.threads import omp_threads
from daydream_ccl.workflow import workflow
from daydream_core.model import Tier
from daydream_core.objectstore import LocalObjectStore
from daydream_core.workflow import ComponentContext

T = TypeVar("T")


def measure(params: dict[str, Any], reps: int = 3) -> dict[str, dict[int, float]]:
    """Fastest compute time (s) of each kind (per probe for the per-probe kinds), by threads."""
    store = LocalObjectStore(tempfile.mkdtemp(prefix="ccl-bench-"))
    cfg = AnalysisConfig.from_params(params)
    config = cfg.to_json()
    ids = count()
    times: dict[str, dict[int, float]] = {}

    def ctx(threads: int) -> ComponentContext:
        tier = Tier("bench", 10240, threads)
        return ComponentContext(store, tier, threads, "bench", f"c{next(ids)}", 0)

    def timed(kind: str, threads: int, fn: Callable[..., T], *args: Any) -> T:
        with omp_threads(threads):
            started = time.perf_counter()
            out = fn(ctx(threads), *args)
            elapsed = time.perf_counter() - started
        best = times.setdefault(kind, {}).get(threads, float("inf"))
        times[kind][threads] = min(best, elapsed)
        return out

    def one_round(threads: int, sigma8: float) -> None:
        mock = timed("mock_data", threads, components.mock_data, config)
        varied = cfg.cosmology({"sigma8": sigma8})
        sample = timed("sample_cosmology", threads, components.sample_cosmology, varied, config)
        params, xi = sample["cosmology"], {}
        for probe in cfg.probes:
            spectra = timed(
                f"angular_power[{probe}]",
                threads,
                components.angular_power,
                params,
                sample["power"],
                probe,
                config,
            )
            corr = timed(
                f"correlation[{probe}]",
                threads,
                components.correlation,
                params,
                probe,
                spectra["cls"],
                spectra["ell"],
                config,
            )
            xi[probe] = corr["xi"]
        data = {k: mock[k] for k in ("data", "cov", "mask")}
        timed("likelihood", threads, components.likelihood, params, xi, data, config)

    for rep in range(reps):
        for threads in (1, 2):
            one_round(threads, 0.78 + 0.01 * rep)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    times = measure(dict(workflow.preset(args.preset).params), args.reps)
    if args.json:
        print(json.dumps(times))
        return
    print(f"{'kind':28s} {'1 thread':>9s} {'2 threads':>10s} {'speed-up':>9s}")
    for kind, by_threads in times.items():
        one, two = by_threads[1], by_threads[2]
        print(f"{kind:28s} {one:8.3f}s {two:9.3f}s {one / two:8.2f}x")


if __name__ == "__main__":
    main()
