"""What placement is told of a kind's execution times: means, and probes' paired ratios.

A kind's components are uneven (WfCommons tasks of one category differ many-fold) and their
durations drift over a run and across runs. A tier's plain mean compares whatever components
ran there, whenever they ran: one probe of a short component made a tier 1.5x as slow look
faster, and a tier last measured early in the runs kept its early mean while the other's grew
(`exafel`'s `simulate`, 2.2 s against 1.5 to 3.4 s), so placement swung between them.

A probe runs the same work as a component of the phase, on another tier, so its execution
over its original's is that work's tier ratio, free of both. Where a kind has such paired
ratios, its time on a tier they reach is its mean on its best-sampled tier (where its bulk
runs, so current) times their geometric mean; elsewhere, the tier's own mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

Means = Mapping[tuple[str, str], tuple[int, float]]  # (kind, tier) -> (samples, mean seconds)
# (kind, tier, base tier) -> (pairs, mean of log(execution on tier / execution on base))
Ratios = Mapping[tuple[str, str, str], tuple[int, float]]
# A probe against its original: (kind, probe's tier, original's tier, execution ratio).
Pair = tuple[str, str, str, float]
RatioKey = tuple[str, str, str]
Moments = tuple[int, float, float]  # samples, mean, sum of squared deviations (Welford's M2)


def teaches(tier: str, base: str, ratio: float) -> bool:
    """Whether a probe's ratio is one to learn: a finite positive one, across two tiers."""
    return 0 < ratio < math.inf and tier != base


def paired(ratios: Iterable[RatioKey]) -> set[tuple[str, str]]:
    """(kind, tier) of both tiers of each learned ratio: where a kind's ratio is measured."""
    return {(kind, t) for kind, tier, base in ratios for t in (tier, base)}


def fold_pairs(pairs: Iterable[Pair]) -> dict[RatioKey, Moments]:
    """Running moments of each (kind, tier, base)'s log ratios (Welford, in order)."""
    folded: dict[RatioKey, Moments] = {}
    for kind, tier, base, ratio in pairs:
        if not teaches(tier, base, ratio):
            continue
        n, mean, m2 = folded.get((kind, tier, base), (0, 0.0, 0.0))
        n += 1
        value = math.log(ratio)
        delta = value - mean
        mean += delta / n
        folded[(kind, tier, base)] = (n, mean, m2 + delta * (value - mean))
    return folded


def learned_timings(means: Means, pairs: Ratios) -> dict[str, dict[str, float]]:
    """kind -> tier -> execution seconds, from the kinds' means and their paired ratios."""
    timings: dict[str, dict[str, float]] = {}
    samples: dict[str, dict[str, int]] = {}
    for (kind, tier), (n, mean) in means.items():
        timings.setdefault(kind, {})[tier] = mean
        samples.setdefault(kind, {})[tier] = n
    # kind -> (tier, base) -> (pairs, mean log ratio), from either direction of a pair
    ratios: dict[str, dict[tuple[str, str], tuple[int, float]]] = {}
    for (kind, tier, base), (n, mean_log) in pairs.items():
        if n > 0 and tier != base:
            ratios.setdefault(kind, {})[(tier, base)] = (n, mean_log)
    for kind, paired in ratios.items():
        known = timings.get(kind)
        if not known:
            continue
        base = max(known, key=lambda t: (samples[kind][t], t))
        level = known[base]
        if not 0 < level < math.inf:
            continue
        for tier in {t for pair in paired for t in pair} - {base}:
            # log(tier / base), from probes on `tier` of originals on `base` and, inverted,
            # from probes on `base` of originals on `tier` (made before the bulk moved)
            n_on, log_on = paired.get((tier, base), (0, 0.0))
            n_of, log_of = paired.get((base, tier), (0, 0.0))
            if n_on + n_of:
                known[tier] = level * math.exp((n_on * log_on - n_of * log_of) / (n_on + n_of))
    return timings
