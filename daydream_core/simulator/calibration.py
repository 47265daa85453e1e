"""Calibrations: a platform model's numbers, each with a name and a source.

- ``aws``: documented AWS Lambda facts (tiers 10240/5120 MB; 1769 MB ≈ 1 vCPU; x86 price per
  GB-second and per request; 1 ms billing with init billed since August 2025; 1,000
  concurrent executions by default) with cold-start and dispatch latencies of a Python
  runtime environment; execution times are the workload's measured seconds on the high-end
  tier, scaled to the low-end tier by its CPU share (Amdahl, `parallel_fraction`). With
  records (`from_records`, as for every calibration), each kind's times per tier and the
  init per tier are those the records measured, on the tiers they were made on.
- ``local``: this machine's measurements: init times and per-kind execution times per tier
  from ``daydream run`` records (``--records``) or the profile store, the local platform's
  tiers and keep-alive.
- ``trace``: a DayDream trace's own measured service times as execution times, the artifact's
  tiers and prices (10 GB at $0.0001667/s; its low-end $0.0000667/s is AWS's price of
  4 GB), and the artifact controller's latency constants (`ArtifactConstants`), fitted on at
  most 10 runs of the shared CCL trace (`daydream_core.simulator.artifact.fit`).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any

from daydream_core.errors import UsageError
from daydream_core.model import HIGH, LOW, Tier
from daydream_core.pricing import AWS_LAMBDA_X86, PriceTable

AWS_MB_PER_VCPU = 1769.0


@dataclass(frozen=True)
class ArtifactConstants:
    """The original DayDream controller's latencies (seconds), per function or dispatch.

    Fitted with `daydream_core.simulator.artifact_fit` on runs 1-10 of the shared CCL trace
    (non-negative least squares on run totals): creating a function through the CLI costs
    0.43 s beyond what the trace's service times already hold, deleting one 1.19 s (a CLI
    subprocess each, one after another).
    """

    create_s: float = 0.427
    delete_s: float = 1.185
    pause_s: float = 1.0  # after each dispatch (its code: time.sleep(1))
    phase_pause_s: float = 1.0  # after each phase, outside the phase time
    per_s_high: float = 0.0001667  # its own cost accounting: $ per second of service time
    per_s_low: float = 0.0000667


@dataclass(frozen=True)
class Calibration:
    """The numbers of a platform model."""

    name: str
    source: str
    tiers: Mapping[str, Tier]
    prices: PriceTable
    init_s: Mapping[str, float]  # median cold-start (init) seconds per tier
    init_spread: float = 0.25  # log-normal sigma of init times
    execution_spread: float = 0.10  # log-normal sigma of execution times around the measured
    parallel_fraction: float = 0.5  # Amdahl: share of a component that scales with vCPUs
    dispatch_s: float = 0.03  # per invocation: request to the platform and back
    keep_alive_s: float = 600.0  # the platform reclaims instances idle this long
    concurrency: int = 1000  # instances at once, all tiers together
    hold_s: float = 0.001  # billed time of a hot start beyond its init (the no-op call)
    run_gap_s: float = 5.0  # idle time between consecutive runs
    reference_tier: str = HIGH  # the tier the workload's seconds were measured on
    measured: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # kind->tier->s
    artifact: ArtifactConstants = field(default_factory=ArtifactConstants)
    # The workload's seconds are service times that already hold a Lambda start (a DayDream
    # trace: each of the artifact's invocations went to a newly created function).
    service_includes_start: bool = False
    # Charged for every new instance, cold or hot, per GB of memory: a SnapStart restore.
    start_charge_per_gb: float = 0.0
    # Charged once per evaluation, whatever the policy does: SnapStart's snapshot caching.
    fixed_cost: float = 0.0
    # Whether the platform lets daydream set how long it keeps an idle instance (the local
    # platform and Ray do): only there does a policy's keep-alive window apply, as live.
    policy_keep_alive: bool = False
    # The provider whose platform this models (records from it teach its start waits).
    provider: str | None = None
    # Per tier, a start's wait beyond its billed init (the local platform bills an init
    # without its wait for a CPU, which on a busy host is most of a start's latency).
    start_wait_s: Mapping[str, float] = field(default_factory=dict)

    def start_charge(self, tier: str) -> float:
        return self.tiers[tier].memory_gb * self.start_charge_per_gb

    def speed(self, tier: str) -> float:
        """Execution time on `tier` relative to the reference tier (Amdahl on vCPUs)."""
        ref = self.tiers[self.reference_tier].vcpus
        mine = self.tiers[tier].vcpus
        if mine <= 0 or ref <= 0:
            return 1.0
        p = self.parallel_fraction
        return (1.0 - p) + p * ref / mine

    def seconds(
        self, kind: str, recorded: float, tier: str, measured_on: Mapping[str, float]
    ) -> float:
        """Expected execution seconds of a task on `tier`: what was measured on that tier for
        this task, else this kind's measured mean on that tier, else the scaled recording."""
        if tier in measured_on:
            return measured_on[tier]
        known = self.measured.get(kind, {})
        if tier in known and not measured_on:
            return known[tier]
        if tier in known and measured_on:
            # scale the kind's tier ratio onto this task's own measurement
            other, seconds = next(iter(measured_on.items()))
            if other in known and known[other] > 0:
                return seconds * known[tier] / known[other]
            return known[tier]
        if measured_on:
            other, seconds = next(iter(measured_on.items()))
            return seconds * self.speed(tier) / self.speed(other)
        return recorded * self.speed(tier)


def _aws_tier(name: str, memory_mb: int) -> Tier:
    return Tier(name, memory_mb, round(min(6.0, memory_mb / AWS_MB_PER_VCPU), 2))


def aws() -> Calibration:
    return Calibration(
        name="aws",
        provider="aws",
        source=(
            "AWS Lambda documentation (memory 128-10240 MB, 1769 MB = 1 vCPU, 1 ms billing, "
            "init billed since 2025-08, 1,000 concurrent executions) and x86 us-east-1 "
            "prices; Python runtime environment init 1.2 s (high) / 1.5 s (low), dispatch "
            "30 ms, keep-alive 10 min as in the literature's comparisons"
        ),
        tiers={HIGH: _aws_tier(HIGH, 10240), LOW: _aws_tier(LOW, 5120)},
        prices=AWS_LAMBDA_X86,
        init_s={HIGH: 1.2, LOW: 1.5},
    )


# What a SnapStart restore takes: AWS says sub-second (`daydream_aws.facts.RESTORE_LATENCY`);
# the median here is half that bound, to be replaced by measured `Restore Duration`s.
SNAPSTART_RESTORE_S = 0.5


def aws_snapstart() -> Calibration:
    """`aws` with SnapStart: every new instance restores a snapshot instead of running its
    init, pays the restore charge per GB, and each tier's published version caches its
    snapshot for at least the 3-hour minimum (`daydream_aws.facts`)."""
    from daydream_aws.facts import (  # type: ignore[import-untyped]
        RESTORE_LATENCY,
        SNAPSTART_PRICES,
    )

    base = aws()
    prices = SNAPSTART_PRICES["x86_64"]
    restore_s = min(SNAPSTART_RESTORE_S, RESTORE_LATENCY.upper_ms / 1000.0)
    caching = sum(prices.cache_cost(t.memory_mb, 0.0) for t in base.tiers.values())
    return replace(
        base,
        name="aws-snapstart",
        source=(
            f"{base.source}; SnapStart: restore {restore_s:.1f} s median instead of init "
            f"({RESTORE_LATENCY.source}), ${prices.restore_per_gb} per GB restored, snapshot "
            f"caching of one version per tier for the 3-hour minimum (${caching:.3f}), "
            f"{prices.source}"
        ),
        init_s={t: restore_s for t in base.tiers},
        start_charge_per_gb=prices.restore_per_gb,
        fixed_cost=caching,
    )


def trace() -> Calibration:
    """A DayDream trace's own measured service times, priced like the artifact."""
    prices = replace(
        AWS_LAMBDA_X86,
        name="daydream-artifact",
        per_request=0.0,
        source="the DayDream artifact's per-second prices (10 GB $0.0001667/s, low $0.0000667/s)",
    )
    low_mb = round(0.0000667 / AWS_LAMBDA_X86.per_gb_second * 1024)  # 4098 MB
    return Calibration(
        name="trace",
        source=(
            "the trace's own function_service_time-baseline.txt as execution times; tiers and "
            "per-second prices of the artifact; AWS Lambda cold starts and keep-alive; the "
            "artifact controller's constants fitted on runs 1-10 of the shared CCL trace"
        ),
        tiers={HIGH: _aws_tier(HIGH, 10240), LOW: _aws_tier(LOW, low_mb)},
        prices=prices,
        init_s={HIGH: 0.5, LOW: 0.5},  # a python3.6 zip function's start, inside the times
        parallel_fraction=0.0,  # the trace's times come from both tiers, not told apart
        dispatch_s=0.0,  # in its service times already
        service_includes_start=True,
    )


def local(
    init_ms: Mapping[str, float] | None = None,
    measured: Mapping[str, Mapping[str, float]] | None = None,
    keep_alive_s: float = 60.0,
    concurrency: int | None = None,
    dispatch_s: float = 0.005,
) -> Calibration:
    """This machine: init and execution times as measured by the local platform."""
    from daydream_local.envelope import host_cpus  # type: ignore[import-untyped]
    from daydream_local.provider import (  # type: ignore[import-untyped]
        LocalProvider,
        default_concurrency,
    )

    host = len(host_cpus())
    tiers = {
        HIGH: LocalProvider._tier(HIGH, 10240, host),
        LOW: LocalProvider._tier(LOW, 5120, host),
    }
    cores = default_concurrency() if concurrency is None else concurrency
    init = {t: (init_ms or {}).get(t, 1500.0) / 1000.0 for t in (HIGH, LOW)}
    return Calibration(
        name="local",
        provider="local",
        policy_keep_alive=True,
        source="this machine's records (init and execution per kind and tier), local tiers",
        tiers=tiers,
        prices=AWS_LAMBDA_X86,
        init_s=init,
        init_spread=0.15,
        execution_spread=0.05,
        dispatch_s=dispatch_s,
        keep_alive_s=keep_alive_s,
        concurrency=cores,
        run_gap_s=0.5,
        measured=dict(measured or {}),
    )


def from_records(base: Calibration, runs: list[dict[str, Any]]) -> Calibration:
    """Fold into `base` what the records measured: init (cold and hot starts) and per-kind
    execution times; the time between consecutive runs; and, from records of the platform
    `base` models, each tier's wait beyond a cold start's billed init."""
    inits: dict[str, list[float]] = {}
    waits: dict[str, list[float]] = {}
    executions: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        own = base.provider is not None and run.get("provider") == base.provider
        for phase in run.get("phases", []):
            for r in phase["invocations"]:
                if r.get("error"):
                    continue
                executions.setdefault(r["kind"], {}).setdefault(r["tier"], []).append(
                    r["execution_ms"] / 1000.0
                )
                if r["start"] == "cold" and r["init_ms"] > 0:
                    inits.setdefault(r["tier"], []).append(r["init_ms"] / 1000.0)
                    if own:  # the start's latency: its service but for execution and queue
                        latency = r["service_ms"] - r["execution_ms"] - r.get("queued_ms", 0.0)
                        waits.setdefault(r["tier"], []).append(
                            max(0.0, latency - r["init_ms"]) / 1000.0
                        )
            for h in phase.get("hot_starts", []):
                if h["init_ms"] > 0:
                    inits.setdefault(h["tier"], []).append(h["init_ms"] / 1000.0)
    init = dict(base.init_s)
    init.update({t: median(v) for t, v in inits.items() if v})
    measured = {
        k: {t: sum(v) / len(v) for t, v in tiers.items()} for k, tiers in executions.items()
    }
    gaps = _run_gaps(runs)
    return replace(
        base,
        init_s=init,
        measured={**base.measured, **measured},
        start_wait_s={**base.start_wait_s, **{t: median(v) for t, v in waits.items()}},
        run_gap_s=median(gaps) if gaps else base.run_gap_s,
    )


def from_records_folder(base: Calibration, folder: Path) -> Calibration:
    """`from_records` of the runs a `daydream run --out` folder holds (`run-<i>/run.json`)."""
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("run-*/run.json"))]
    return from_records(base, runs)


def _run_gaps(runs: list[dict[str, Any]]) -> list[float]:
    """Seconds between one run's end and the next's start, among the runs of one app under
    one policy (the sequence the simulator replays), where the records say when they ran."""
    sequences: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for run in runs:
        started, wall = run.get("started_at"), run.get("wall_time_s")
        if isinstance(started, int | float) and isinstance(wall, int | float):
            key = (str(run.get("app")), str(run.get("policy")))
            sequences.setdefault(key, []).append((float(started), float(wall)))
    gaps = []
    for sequence in sequences.values():
        sequence.sort()
        for (start, wall), (following, _) in itertools.pairwise(sequence):
            gaps.append(max(0.0, following - start - wall))
    return gaps


CALIBRATIONS = ("aws", "aws-snapstart", "local", "trace")


def named_calibration(name: str) -> Calibration:
    if name == "aws":
        return aws()
    if name == "aws-snapstart":
        return aws_snapstart()
    if name == "trace":
        return trace()
    if name == "local":
        return local()
    raise UsageError(f"unknown calibration {name!r}; valid: {', '.join(CALIBRATIONS)}")


def lognormal_median(median_s: float, sigma: float, z: float) -> float:
    """A log-normal draw with median `median_s`, from a standard normal `z`."""
    return median_s * math.exp(sigma * z)
