"""Exploration: what placement does for a kind with no data on a tier, and what it assumes.

A kind with no data for a tier is explored there with a bounded sample of its components,
`sample_size(n)` of the phase's n components of that kind:

    sample_size(n) = min(ceil(log2(n + 1)), max(1, n // 2))

1 component for a phase of 1 to 3, 2 for 4 to 7, 4 for 10, 7 for 100, 10 for 1,000 and 14 for
10,000: enough for a mean, growing with the logarithm of the width, so a wide phase of a new
kind neither splits in half between tiers (twice the instances, twice the cold starts under a
concurrency limit) nor pays for long on a tier that turns out slow.

The rest of the kind goes where the phase's expected time and cost are lowest given what is
known (`SlackPlacement`); a tier with no data for the kind is estimated from a ratio to the
reference (largest) tier (`tier_ratios`): the median of the ratios learned for other kinds
where any kind has data on both, else a prior from the tiers' vCPU shares (Amdahl's law with
half of a component's work parallel, `PRIOR_PARALLEL_FRACTION`).

A sample the phase would have to wait for (a tier expected slower than the phase's longest
known time) runs beside the phase as a probe instead (`beside_the_phase`), so that exploring
never lengthens a phase by more than `PROBE_SLACK`. A probe is paired with its original, so
one per kind and tier measures the tier ratio; more would pay again for the same ratio.

Exploring a kind pays only when the kind runs again. A new kind is not explored on a tier
whose ratio is settled (`settled`): every kind measured on it, and the vCPU prior, send a new
kind to the same tier. Such a kind is explored when it recurs, having data on one tier. On
WfCommons instances, whose kinds each run in one phase, one run used to spend 1-7% of its
cost on probes that confirmed the prior. Nor is a probe sent that would bill more than its
kind's work in the phase (`ProbeCosts`): that is a cold start's init measuring a component
shorter than it (SRA search's last phase, one 0.1 s component, waited 1.9 s for its probe).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from daydream_core.model import Tier
from daydream_core.pricing import PriceTable

Timings = Mapping[str, Mapping[str, float]]  # kind -> tier -> learned execution seconds

# Share of a component's work assumed to scale with vCPUs where nothing has been learned.
PRIOR_PARALLEL_FRACTION = 0.5


def sample_size(n: int) -> int:
    """Components of a kind (n in the phase) that explore one tier with no data for it."""
    if n <= 0:
        return 0
    return min(math.ceil(math.log2(n + 1)), max(1, n // 2))


def tier_ratios(timings: Timings, tiers: Mapping[str, Tier], reference: str) -> dict[str, float]:
    """Execution time on each tier relative to `reference`: learned where possible (median
    over kinds with data on both), else the vCPU prior."""
    ratios = {reference: 1.0}
    for tier in tiers:
        if tier == reference:
            continue
        learned = measured_ratios(timings, tier, reference)
        ratios[tier] = (
            statistics.median(learned) if learned else prior_ratio(tiers, reference, tier)
        )
    return ratios


def measured_ratios(timings: Timings, tier: str, reference: str) -> list[float]:
    """Each kind's time on `tier` over its time on `reference`, where it has both."""
    return [
        times[tier] / times[reference]
        for times in timings.values()
        if times.get(reference, 0.0) > 0 and times.get(tier, 0.0) > 0
    ]


def prior_ratio(tiers: Mapping[str, Tier], reference: str, tier: str) -> float:
    """Execution time on `tier` over `reference` by their vCPU shares (Amdahl's law with
    `PRIOR_PARALLEL_FRACTION` of the work parallel)."""
    ref_vcpus, vcpus = tiers[reference].vcpus, tiers[tier].vcpus
    if vcpus <= 0 or ref_vcpus <= 0:
        return 1.0
    p = PRIOR_PARALLEL_FRACTION
    return (1.0 - p) + p * ref_vcpus / vcpus


def settled(
    timings: Timings,
    tiers: Mapping[str, Tier],
    reference: str,
    choose: Callable[[Mapping[str, float]], str],
) -> set[str]:
    """Tiers a new kind need not explore: each kind measured on the tier and on `reference`,
    and the vCPU prior, would send a new kind to the same tier (`choose`, from tier ratios).

    Where what has been measured agrees with the prior, a new kind's ratio is predicted by it;
    where it disagrees (the records of a 2-core machine, where low is faster for most kinds),
    or nothing is measured yet, it is not."""
    ratios = tier_ratios(timings, tiers, reference)
    current = choose(ratios)
    result = set()
    for tier in tiers:
        if tier == reference:
            continue
        opinions = measured_ratios(timings, tier, reference)
        if not opinions:
            continue
        opinions.append(prior_ratio(tiers, reference, tier))
        if all(choose({**ratios, tier: r}) == current for r in opinions):
            result.add(tier)
    return result


def estimated(timings: Timings, ratios: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Each kind with any data, on every tier: learned where known, else scaled by the ratios
    from the tier it is known on (the fastest-known, for a stable estimate)."""
    result: dict[str, dict[str, float]] = {}
    for kind, known in timings.items():
        if not known:
            continue
        base_tier = min(known, key=lambda t: ratios.get(t, 1.0))
        base = known[base_tier] / ratios.get(base_tier, 1.0)  # seconds on the reference tier
        result[kind] = {t: known.get(t, base * r) for t, r in ratios.items()}
    return result


def cheapest_within(
    seconds: Mapping[str, float],
    order: Sequence[str],
    budget: float,
    tiers: Mapping[str, Tier],
    prices: PriceTable,
) -> str:
    """The cheapest tier that finishes within `budget` (ties: the earlier in `order`)."""
    feasible = [t for t in order if t in seconds and seconds[t] <= budget + 1e-12]
    if not feasible:
        return min((t for t in order if t in seconds), key=lambda t: seconds[t])
    return min(
        feasible,
        key=lambda t: prices.gb_second_cost(tiers[t].memory_mb, seconds[t], tiers[t].vcpus),
    )


def explore(
    kinds: Sequence[str],
    timings: Timings,
    order: Sequence[str],
    prior_tier: str,
    settled: Collection[str] = (),
) -> list[str | None]:
    """The exploration samples: a tier for each component that explores one, else None.

    Each kind's sample for a tier is its first components in the phase, so they are
    dispatched first and their time on a tier that may be slower overlaps the rest of the
    phase. A kind with no data at all keeps at least one component for its bulk, which goes
    to `prior_tier` and teaches that tier, and explores no tier in `settled`.
    """
    placement: list[str | None] = [None] * len(kinds)
    members: dict[str, list[int]] = {}
    for i, kind in enumerate(kinds):
        members.setdefault(kind, []).append(i)
    for kind, indices in members.items():
        known = timings.get(kind, {})
        missing = [t for t in order if t not in known]
        room = len(indices)
        if not known:
            missing = [t for t in missing if t != prior_tier and t not in settled]
            room -= 1
        take = sample_size(len(indices))
        position = 0
        for tier in missing:
            count = max(0, min(take, room - position))
            for i in indices[position : position + count]:
                placement[i] = tier
            position += count
    return placement


# How much an exploration sample may lengthen its phase before it runs beside the phase instead.
PROBE_SLACK = 0.05


@dataclass(frozen=True)
class ProbeCosts:
    """What a probe would bill, to weigh it against what it can teach: the tiers' prices, and
    per tier what a probe's start adds (a cold start's billed init; 0 where an idle instance
    is spare for it)."""

    prices: PriceTable
    start: Mapping[str, float]

    def worth(
        self, seconds: Mapping[str, float], tier: str, base: str, n: int, tiers: Mapping[str, Tier]
    ) -> bool:
        """Whether probing `tier` costs no more than the kind's work in the phase on `base`
        (`n` components of `seconds`): a probe that costs more, mostly its start, measures a
        choice worth less than the probe. Kinds with no data are always worth a probe."""
        if tier not in seconds or base not in seconds:
            return True

        def bill(t: str, s: float) -> float:
            return self.prices.gb_second_cost(tiers[t].memory_mb, s, tiers[t].vcpus)

        probe = bill(tier, seconds[tier]) + self.start.get(tier, 0.0)
        return probe <= n * bill(base, seconds[base])


def beside_the_phase(
    kinds: Sequence[str],
    placement: Sequence[str],
    timings: Timings,
    tiers: Mapping[str, Tier],
    concurrency: int,
    probing: Collection[tuple[str, str]] = (),
    paired: Collection[tuple[str, str]] = (),
    costs: ProbeCosts | None = None,
    explores: Collection[str] = (),
    opening: bool = False,
) -> tuple[list[str], list[tuple[int, str]]]:
    """Samples that would lengthen their phase become probes, and a kind's tiers without a
    paired ratio get one: (placement, probes).

    A sample on a tier its kind has no data for runs the component there, in the phase.
    Where that tier is expected slower than the phase's longest known time (within
    `PROBE_SLACK`), the phase would wait for it: then the component runs with its kind's
    bulk, and a probe, a duplicate whose output is discarded, runs on the sample's tier
    beside the phase, which does not wait for it: one per kind and tier, as a probe and its
    original measure the tier ratio between them. Waves do not absorb a sample: in a phase
    wider than the concurrency, a component on a slower tier delays the later ones on its
    slot (on WfCommons' 1000-genome, a 1,553-wide phase at a limit of 1,000 took 1.22x as
    long with its 11 samples in it). Probes take only the concurrency the phase leaves free,
    so they never queue ahead of its components; a sample with no room left is not explored
    in this phase, nor is a (kind, tier) in `probing`, whose probe has not reported yet. A
    kind with data on some tier is compared with the phase's longest known kind; one with
    none may be the phase's critical path, so only its tier ratio counts.

    A kind known on a tier besides its bulk's only by that tier's mean, not `paired` with it
    by a probe, is probed there once (room left): means of different components, run at
    different times, tell a component's size from its tier only roughly. Under the trace
    calibration, where both tiers are equally fast, those means sent a few of each run's
    longest components to the tier 2.5x as dear: 1.31x the oracle's cost, against 1.03x
    with each kind's ratio paired.

    With `costs`, a probe of a kind with data goes only where it bills no more than the
    kind's components in the phase (`ProbeCosts.worth`).

    A kind with no data whose one component is the phase's whole kind has no sample to spare
    (`explore` keeps it for its bulk): it is probed on each tier in `explores` (the tiers
    placement would explore a new kind on), as a lone component with data is. Without that,
    `ccl`'s `mock_data`, one per run, was first compared across tiers by other kinds' ratios
    and ran low in the second run, 2 s slower than high; `cosmoscout`'s first phase, three
    lone kinds, cost 1.47x the oracle over 5 runs instead of 1.26x. The run waits for a
    probe that outlasts its last phase (to record its bill and ratio; the next run starts
    after), so after the run's first phase (`opening`: the rest
    of the run lies ahead) a lone kind is probed only on a tier the ratios expect no slower
    than its own: a DAG that narrows to lone components often ends there (WfCommons' BLAST;
    a 1,000-wide phase's reducer, whose probe on low made its run wait 2.7 s, 1.21x).
    """
    room = max(0, concurrency - len(kinds))
    members: dict[str, list[int]] = {}
    for i, kind in enumerate(kinds):
        members.setdefault(kind, []).append(i)
    reference = max(tiers, key=lambda t: tiers[t].memory_mb)
    ratios = tier_ratios(timings, tiers, reference)
    known = estimated(timings, ratios)
    bulk = {k: _bulk(placement, idx, timings.get(k, {})) for k, idx in members.items()}
    critical = max(
        (known[k][bulk[k]] for k in members if k in known and bulk[k] in known[k]), default=0.0
    )
    absorbs = 1.0 + PROBE_SLACK

    def worth(kind: str, tier: str) -> bool:
        if costs is None or kind not in known:
            return True
        return costs.worth(known[kind], tier, bulk[kind], len(members[kind]), tiers)

    result = list(placement)
    probes: list[tuple[int, str]] = []
    probed: set[tuple[str, str]] = set()
    for kind, indices in members.items():
        own = timings.get(kind, {})
        for i in indices:
            tier = placement[i]
            if tier == bulk[kind] or tier in own:
                continue
            if (kind, tier) in probing:  # its probe is still running: no second sample
                result[i] = bulk[kind]
                continue
            slower = ratios.get(tier, 1.0) / ratios.get(bulk[kind], 1.0)
            if kind in known and critical > 0:
                lengthens = known[kind][bulk[kind]] * slower > absorbs * critical
            else:
                lengthens = slower > absorbs
            if lengthens:
                result[i] = bulk[kind]
                if len(probes) < room and (kind, tier) not in probed and worth(kind, tier):
                    probes.append((i, tier))
                    probed.add((kind, tier))
    for kind, indices in members.items():
        if kind in timings or len(indices) != 1:
            continue
        (i,) = indices
        for tier in explores:
            sent = (kind, tier) in probing or (kind, tier) in probed
            outlasts = ratios.get(tier, 1.0) / ratios.get(result[i], 1.0) > absorbs
            if tier != result[i] and not sent and (opening or not outlasts) and len(probes) < room:
                probes.append((i, tier))
                probed.add((kind, tier))
    measured = set(paired) | set(probing)
    for kind, indices in members.items():
        own, base = timings.get(kind, {}), bulk[kind]
        original = next((i for i in indices if result[i] == base), None)
        if base not in own or original is None:
            continue
        for tier in tiers:
            if tier == base or not 0.0 < own.get(tier, 0.0) < math.inf:
                continue  # no data there (exploration's), or a tier it cannot run on
            if (kind, tier) in measured or (kind, tier) in probed or len(probes) >= room:
                continue
            if not worth(kind, tier):
                continue
            probes.append((original, tier))
            probed.add((kind, tier))
    return result, probes


def _bulk(placement: Sequence[str], indices: Sequence[int], own: Mapping[str, float]) -> str:
    """The tier a kind's bulk runs on: where most of its components with data go. A kind
    whose every component is a sample (one component, say) has no bulk in the phase: the
    tier it would run on unsampled is its fastest known one. A kind with no data at all:
    where its last component goes (`explore` puts the samples first)."""
    counts: dict[str, int] = {}
    for i in indices:
        if placement[i] in own:
            counts[placement[i]] = counts.get(placement[i], 0) + 1
    if counts:
        return max(counts, key=lambda t: counts[t])
    return min(own, key=lambda t: own[t]) if own else placement[indices[-1]]
