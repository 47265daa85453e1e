"""Pure policies, shared by the live engine and the simulator."""

from daydream_core.policies.keepalive import HorizonKeepAlive, KeepAlive, PlatformKeepAlive
from daydream_core.policies.placement import AllTier, Placement, SlackPlacement
from daydream_core.policies.predictor import (
    DayDreamPredictor,
    NoHotStart,
    Observation,
    Predictor,
    StartCosts,
    WeibullFit,
    start_costs,
)
from daydream_core.policies.registry import PolicySpec

__all__ = [
    "AllTier",
    "DayDreamPredictor",
    "HorizonKeepAlive",
    "KeepAlive",
    "NoHotStart",
    "Observation",
    "Placement",
    "PlatformKeepAlive",
    "PolicySpec",
    "Predictor",
    "SlackPlacement",
    "StartCosts",
    "WeibullFit",
    "start_costs",
]
