"""The built-in policies, registered through the same hook as third-party ones."""

from __future__ import annotations

from daydream_core.hookspecs import hookimpl
from daydream_core.model import HIGH, LOW
from daydream_core.policies.artifact import ArtifactPlacement, ArtifactPredictor
from daydream_core.policies.baselines import (
    HybridHistogramKeepAlive,
    HybridHistogramPredictor,
    OraclePredictor,
    clairvoyant_keep_alive,
    fixed_keep_alive,
)
from daydream_core.policies.keepalive import PlatformKeepAlive
from daydream_core.policies.placement import AllTier, SlackPlacement
from daydream_core.policies.predictor import DayDreamPredictor, NoHotStart
from daydream_core.policies.registry import PolicySpec


@hookimpl
def daydream_policies() -> list[PolicySpec]:
    return [
        PolicySpec(
            "daydream",
            "newsvendor hot starts from comparable widths + cheapest placement within 2% slack",
            DayDreamPredictor,
            lambda: SlackPlacement(slack=0.02),
        ),
        PolicySpec(
            "cold",
            "baseline: no hot starts, the platform's keep-alive; daydream's placement, 5% slack",
            NoHotStart,
            SlackPlacement,
            PlatformKeepAlive,
        ),
        PolicySpec(
            "keep-alive",
            "baseline: no hot starts, instances kept 10 minutes after their last use",
            NoHotStart,
            SlackPlacement,
            fixed_keep_alive,
        ),
        PolicySpec(
            "hybrid-histogram",
            "baseline: ATC'20 idle-time histogram (pre-warm and keep-alive windows), per tier",
            HybridHistogramPredictor,
            SlackPlacement,
            HybridHistogramKeepAlive,
        ),
        PolicySpec(
            "artifact",
            "baseline: the original DayDream artifact (random Weibull draw, half/half ±10%, "
            "serial dispatch with 1 s pauses)",
            ArtifactPredictor,
            ArtifactPlacement,
            PlatformKeepAlive,
            mechanics="artifact",
            dispatch_pause_s=1.0,
            phase_pause_s=1.0,
        ),
        PolicySpec(
            "all-high",
            "daydream hot starts, every component high-end",
            DayDreamPredictor,
            lambda: AllTier(HIGH),
        ),
        PolicySpec(
            "all-low",
            "daydream hot starts, every component low-end",
            DayDreamPredictor,
            lambda: AllTier(LOW),
        ),
        PolicySpec(
            "oracle",
            "the limit: knows each phase's components and times before it starts (simulation only)",
            OraclePredictor,
            SlackPlacement,
            clairvoyant_keep_alive,
            clairvoyant=True,
        ),
        PolicySpec(
            "oracle-kinds",
            "the oracle told kinds: each phase's kinds, their mean times in it and its "
            "widths before it starts, not each component's (simulation only)",
            OraclePredictor,
            SlackPlacement,
            clairvoyant_keep_alive,
            clairvoyant=True,
            sees="kinds",
        ),
    ]
