"""The CCL workflow: its registration and the phase generator.

Each evaluation round is four phases::

    sample_cosmology x n  (+ mock_data x 1 in the first round)
    angular_power    x n * probes
    correlation      x n * probes
    likelihood       x n

After each round the generator reads the whitened residuals, fits a Gauss-Newton model of the
posterior peak (`refine.propose`) and either stops (converged, or `max_rounds` reached) or
proposes the next round's cosmologies; how many depends on how many evaluated cosmologies lie
within `delta_chi2` of the best, so the widths of later phases depend on earlier results.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from daydream_ccl import components
from daydream_ccl.config import AnalysisConfig, prior_box
from daydream_ccl.cosmology import VARIED
from daydream_ccl.presets import PARAMS, PRESETS
from daydream_ccl.refine import Bounds, RefineSettings, Step, latin_hypercube, propose
from daydream_core.errors import UsageError
from daydream_core.model import Call, WidthHint
from daydream_core.workflow import Phase, PhaseGenerator, RunContext, Workflow

workflow = Workflow(
    "ccl",
    presets=PRESETS,
    params=PARAMS,
    preload=("numpy", "pyccl", "camb"),
    requirements=("pyccl>=3.0", "camb>=1.5", "numpy>=1.24"),
    description="Adaptive 3x2pt cosmology with pyccl and CAMB: power spectra, angular power "
    "spectra, correlation functions, likelihoods, refined around the posterior peak",
    module=__name__,
)
for _fn in (
    components.sample_cosmology,
    components.mock_data,
    components.angular_power,
    components.correlation,
    components.likelihood,
):
    workflow.component(_fn)


@workflow.validator
def check(params: Mapping[str, Any]) -> None:
    """What the declared ranges cannot say alone: pairs that must be ordered."""
    for low, high in (
        ("min_new", "max_new"),
        ("theta_min_arcmin", "theta_max_arcmin"),
        ("ell_min", "ell_max"),
        ("min_radius", "initial_radius"),
    ):
        if params[low] > params[high]:
            raise UsageError(f"ccl {low}={params[low]!r} exceeds {high}={params[high]!r}")
    for name, (lo, hi) in prior_box(params).items():
        if not lo < hi:
            raise UsageError(f"ccl prior of {name} is [{lo:g}, {hi:g}]; low must be below high")


@workflow.headliner
def headline(result: Mapping[str, Any]) -> str:
    """The best fit, its chi-squared, and whether the refinement converged."""
    fit = " ".join(f"{name}={value:.4f}" for name, value in result["best_fit"].items())
    state = "converged" if result["converged"] else "not converged"
    return (
        f"best fit {fit}; chi2_min={result['chi2_min']:.2f} ({result['n_data']} data), "
        f"{state} after {result['iterations']} round{'s' * (result['iterations'] != 1)}"
    )


@workflow.phases
def plan(run: RunContext) -> PhaseGenerator:
    params = run.params
    cfg = AnalysisConfig.from_params(params)
    config = cfg.to_json()
    bounds = Bounds(VARIED, prior_box(params))
    settings = RefineSettings.from_params(params)
    max_rounds = int(params.get("max_rounds", 2))
    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")

    unit = latin_hypercube(run.rng, int(params.get("n_initial", 4)), len(VARIED))
    noise_seed = int(run.rng.integers(2**31))
    mock: dict[str, Any] | None = None
    seen_u: list[np.ndarray] = []
    seen_r: list[np.ndarray] = []
    evaluations: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    step: Step | None = None
    previous_peak: np.ndarray | None = None

    n_probes = len(cfg.probes)
    for round_index in range(max_rounds):
        # Each phase says what it knows of the next one's width (the hot-start predictor
        # weighs it): within a round the widths follow from the round's cosmologies; the
        # next round's count is known only from the likelihoods, bounded by max_new.
        n = len(unit)
        cosmologies = [cfg.cosmology(bounds.as_dict(u)) for u in unit]
        calls = [
            Call("sample_cosmology", {"cosmology_params": c, "config": config}) for c in cosmologies
        ]
        if mock is None:
            calls.append(Call("mock_data", {"config": config, "noise_seed": noise_seed}))
        samples = list((yield Phase(calls, WidthHint(expected=n * n_probes))))
        if mock is None:
            mock = samples.pop()

        power_calls = [
            Call(
                "angular_power",
                {
                    "cosmology_params": s["cosmology"],
                    "power": s["power"],
                    "probe": probe,
                    "config": config,
                },
            )
            for s in samples
            for probe in cfg.probes
        ]
        spectra = yield Phase(power_calls, WidthHint(expected=n * n_probes))
        correlation_calls = [
            Call(
                "correlation",
                {
                    "cosmology_params": s["cosmology"],
                    "probe": a["probe"],
                    "cls": a["cls"],
                    "ell": a["ell"],
                    "config": config,
                },
            )
            for s, a in zip(_repeat(samples, len(cfg.probes)), spectra, strict=True)
        ]
        correlations = yield Phase(correlation_calls, WidthHint(expected=n))
        likelihood_calls = [
            Call(
                "likelihood",
                {
                    "cosmology_params": s["cosmology"],
                    "xi": {
                        c["probe"]: c["xi"] for c in correlations[i * n_probes : (i + 1) * n_probes]
                    },
                    "mock": {k: mock[k] for k in ("data", "cov", "mask")},
                    "config": config,
                },
            )
            for i, s in enumerate(samples)
        ]
        final = round_index + 1 == max_rounds  # else: converged (none) or up to max_new
        after = WidthHint(expected=0) if final else WidthHint(at_most=settings.max_new)
        likelihoods = yield Phase(likelihood_calls, after)

        for u, s, like in zip(unit, samples, likelihoods, strict=True):
            seen_u.append(np.asarray(u))
            seen_r.append(run.store.get_array(like["residual"]))
            evaluations.append(
                {
                    "round": round_index,
                    **{n: s["cosmology"][n] for n in VARIED},
                    "S8": s["derived"]["S8"],
                    "chi2": like["chi2"],
                }
            )
        step = propose(
            np.array(seen_u),
            np.array(seen_r),
            iteration=round_index,
            previous_peak=previous_peak,
            rng=run.rng,
            settings=settings,
        )
        previous_peak = step.peak
        last = round_index + 1 == max_rounds
        history.append(
            {
                "round": round_index,
                "cosmologies": len(unit),
                "best_chi2": step.best_chi2,
                "peak": bounds.as_dict(step.peak),
                "n_good": step.n_good,
                "next": 0 if (step.converged or last) else len(step.proposals),
            }
        )
        if step.converged or last:
            break
        unit = step.proposals

    assert step is not None and mock is not None
    return _summary(cfg, bounds, step, mock, evaluations, history)


def _repeat(items: list[Any], times: int) -> list[Any]:
    return [item for item in items for _ in range(times)]


def _summary(
    cfg: AnalysisConfig,
    bounds: Bounds,
    step: Step,
    mock: dict[str, Any],
    evaluations: list[dict[str, Any]],
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    best = min(evaluations, key=lambda e: e["chi2"])
    fiducial = {n: cfg.fiducial[n] for n in VARIED}
    sigma = None
    if step.covariance is not None:
        errors = np.sqrt(np.diag(step.covariance)) * bounds.width
        sigma = {n: float(e) for n, e in zip(VARIED, errors, strict=True)}
    return {
        "best_fit": {n: best[n] for n in (*VARIED, "S8")},
        "chi2_min": best["chi2"],
        "n_data": mock["n_data"],
        "snr": mock["snr"],
        "peak": bounds.as_dict(step.peak),
        "sigma": sigma,
        "fiducial": fiducial,
        "converged": step.converged,
        "iterations": len(history),
        "evaluations": len(evaluations),
        "history": history,
    }
