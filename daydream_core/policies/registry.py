"""Policy registrations: a policy is a named (predictor, placement) pair."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from daydream_core.policies.keepalive import HorizonKeepAlive, KeepAlive
from daydream_core.policies.placement import Placement
from daydream_core.policies.predictor import Predictor


@dataclass(frozen=True)
class PolicySpec:
    """A policy: how many instances to hot start, where components go, what idles on."""

    name: str
    description: str
    predictor: Callable[[], Predictor]
    placement: Callable[[], Placement]
    keep_alive: Callable[[], KeepAlive] = HorizonKeepAlive
    # The oracle: told each phase's components and execution times before the phase starts
    # (the simulator can; the live engine cannot, so it refuses such a policy).
    clairvoyant: bool = False
    # What a clairvoyant policy is told of each phase's times: "components" (each one's, per
    # tier: the oracle) or "kinds" (each kind's mean over the phase's components, per tier:
    # the limit of a policy that learns per kind, as daydream does).
    sees: Literal["components", "kinds"] = "components"
    # How the controller executes a phase: "daydream" (dispatch at once, hot starts issued
    # while the phase runs) or "artifact" (the original DayDream controller: one function
    # created per instance, dispatches one after another with pauses, deletions after).
    mechanics: str = "daydream"
    dispatch_pause_s: float = 0.0  # pause after each dispatch
    phase_pause_s: float = 0.0  # pause after each phase, outside its phase time
