"""The built-in policies, registered through the same hook as third-party ones."""

from __future__ import annotations

from daydream_core.hookspecs import hookimpl
from daydream_core.model import HIGH, LOW
from daydream_core.policies.keepalive import PlatformKeepAlive
from daydream_core.policies.placement import AllTier, SlackPlacement
from daydream_core.policies.predictor import DayDreamPredictor, NoHotStart
from daydream_core.policies.registry import PolicySpec


@hookimpl
def daydream_policies() -> list[PolicySpec]:
    return [
        PolicySpec(
            "daydream",
            "Weibull hot-start prediction + cost-minimising placement within 5% slack",
            DayDreamPredictor,
            SlackPlacement,
        ),
        PolicySpec(
            "cold",
            "baseline: no hot starts, the platform's own keep-alive; daydream's placement",
            NoHotStart,
            SlackPlacement,
            PlatformKeepAlive,
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
    ]
