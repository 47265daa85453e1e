"""Adaptive quadrature as a dynamic workflow.

Phase 1 integrates `pieces` equal intervals in parallel. Every later phase splits, in halves,
the intervals whose error estimate missed their share of the tolerance, so how wide the next
phase is depends on the results of this one. A last phase writes a report to the object store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from daydream_core.errors import UsageError
from daydream_core.model import Call
from daydream_core.params import Param
from daydream_core.workflow import ComponentContext, PhaseGenerator, Preset, RunContext, Workflow

# Components receive *names* and JSON arguments, never code: integrands are looked up here.
INTEGRANDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "two-peaks": lambda x: 1 / ((x - 0.3) ** 2 + 1e-4) + 1 / ((x - 0.71) ** 2 + 4e-4),
    "oscillating": lambda x: np.sin(40 * x) * np.exp(-x),
}

workflow = Workflow(
    "quadrature",
    description="Adaptive Gauss-Legendre quadrature",
    # Every parameter, declared: checked (and defaults filled) before anything is deployed.
    params={
        "integrand": Param(str, "two-peaks", "the function", choices=tuple(INTEGRANDS)),
        "a": Param(float, 0.0, "lower limit", ge=-1e6, le=1e6),
        "b": Param(float, 1.0, "upper limit", ge=-1e6, le=1e6),
        "pieces": Param(int, 4, "intervals of the first phase", ge=1, le=1000),
        "tolerance": Param(float, 1e-8, "absolute error wanted", gt=0, le=1.0),
        "points": Param(int, 24, "Gauss-Legendre nodes per rule", ge=2, le=200),
    },
    presets={
        "small": Preset(
            {
                "integrand": "two-peaks",
                "a": 0.0,
                "b": 1.0,
                "pieces": 4,
                "tolerance": 1e-8,
                "points": 24,
            }
        ),
        "paper": Preset(
            {
                "integrand": "two-peaks",
                "a": 0.0,
                "b": 1.0,
                "pieces": 8,
                "tolerance": 1e-10,
                "points": 24,
            },
            runs=50,
        ),
    },
    preload=("numpy",),  # imported at instance init: paid by cold or hot starts
    requirements=("numpy>=1.24",),  # what a cloud package must install
)


def gauss_legendre(f: Callable[[np.ndarray], np.ndarray], a: float, b: float, n: int) -> float:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    x = 0.5 * (b - a) * nodes + 0.5 * (a + b)
    return float(0.5 * (b - a) * np.dot(weights, f(x)))


@workflow.component
def integrate(
    ctx: ComponentContext, integrand: str, a: float, b: float, points: int
) -> dict[str, float]:
    """Integrate over [a, b] with two Gauss-Legendre rules; their difference is the error."""
    f = INTEGRANDS[integrand]
    fine = gauss_legendre(f, a, b, 2 * points)
    coarse = gauss_legendre(f, a, b, points)
    return {"a": a, "b": b, "value": fine, "error": abs(fine - coarse)}


@workflow.component
def report(ctx: ComponentContext, intervals: list[list[float]]) -> dict[str, str]:
    """Write the accepted intervals as CSV to the store; results stay small (a key)."""
    lines = ["a,b,value,error"] + [",".join(f"{v:.17g}" for v in row) for row in intervals]
    key = ctx.key("intervals.csv")
    ctx.store.put(key, "\n".join(lines).encode())
    return {"csv": key}


@workflow.validator
def check(params: Mapping[str, Any]) -> None:
    """What one parameter's range cannot say: how two relate."""
    if params["a"] >= params["b"]:
        raise UsageError(f"quadrature needs a < b, not a={params['a']:g}, b={params['b']:g}")


@workflow.phases
def plan(run: RunContext) -> PhaseGenerator:
    p = run.params  # checked against the declarations, defaults filled
    a, b, tolerance = float(p["a"]), float(p["b"]), float(p["tolerance"])
    edges = np.linspace(a, b, int(p["pieces"]) + 1)
    pending = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
    accepted: list[list[float]] = []
    phases = 0
    while pending:
        # one phase: every pending interval in parallel
        results = yield [
            Call(
                "integrate",
                {"integrand": p["integrand"], "a": lo, "b": hi, "points": int(p["points"])},
            )
            for lo, hi in pending
        ]
        phases += 1
        pending = []
        for r in results:
            share = tolerance * (r["b"] - r["a"]) / (b - a)
            if r["error"] <= share or phases >= 30:
                accepted.append([r["a"], r["b"], r["value"], r["error"]])
            else:
                middle = 0.5 * (r["a"] + r["b"])
                pending += [(r["a"], middle), (middle, r["b"])]
    (written,) = yield [Call("report", {"intervals": sorted(accepted)})]
    return {
        "integral": math.fsum(row[2] for row in accepted),
        "error": math.fsum(row[3] for row in accepted),
        "phases": phases + 1,
        "intervals": len(accepted),
        "csv": written["csv"],
    }
