"""Policy registrations: a policy is a named (predictor, placement) pair."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
