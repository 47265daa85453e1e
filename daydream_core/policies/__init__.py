"""Pure policies, shared by the live engine and the simulator."""

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
    "NoHotStart",
    "Observation",
    "Placement",
    "PolicySpec",
    "Predictor",
    "SlackPlacement",
    "StartCosts",
    "WeibullFit",
    "start_costs",
]
