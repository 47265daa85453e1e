"""The data model: tiers, calls, components, invocation records, phase and run records.

Records come first: every invocation yields one `InvocationRecord`; output files, summaries and
the profile store are all derived from records.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

HIGH = "high"
LOW = "low"
TIER_NAMES = (HIGH, LOW)


class StartKind(str, enum.Enum):
    """How the instance that served an invocation came to be ready."""

    HOT = "hot"  # created ahead of need by daydream, first use
    WARM = "warm"  # reused after serving an earlier component
    COLD = "cold"  # created and initialised on the invocation's critical path
    RESTORED = "restored"  # created on the critical path from a platform snapshot (SnapStart)


@dataclass(frozen=True)
class Tier:
    """A size class of function."""

    name: str
    memory_mb: int
    vcpus: float

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / 1024


@dataclass(frozen=True)
class Call:
    """A request to run one registered component, by name, with JSON-serialisable arguments."""

    kind: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Component:
    """A call placed in a phase of a run."""

    id: str
    phase: int
    call: Call

    @property
    def kind(self) -> str:
        return self.call.kind


@dataclass
class InvocationRecord:
    """One invocation of one component, as measured."""

    component: str
    kind: str
    phase: int
    tier: str
    instance: str
    start: StartKind
    init_ms: float
    execution_ms: float
    billed_ms: float
    cost: float
    service_ms: float
    max_memory_mb: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.value
        return data


@dataclass
class HotStartRecord:
    """One instance hot started ahead of a phase (its init is billed whether used or not)."""

    phase: int
    tier: str
    instance: str
    init_ms: float
    billed_ms: float
    cost: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PhaseRecord:
    """What happened in one phase, and what was decided for it."""

    index: int
    width: int
    predicted: dict[str, int]
    placement: dict[str, str]
    phase_time_s: float
    invocations: list[InvocationRecord] = field(default_factory=list)
    hot_starts: list[HotStartRecord] = field(default_factory=list)

    @property
    def widths(self) -> dict[str, int]:
        counts = dict.fromkeys(TIER_NAMES, 0)
        for tier in self.placement.values():
            counts[tier] = counts.get(tier, 0) + 1
        return counts

    @property
    def cost(self) -> float:
        return sum(r.cost for r in self.invocations) + sum(h.cost for h in self.hot_starts)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "width": self.width,
            "widths": self.widths,
            "predicted": self.predicted,
            "placement": self.placement,
            "phase_time_s": self.phase_time_s,
            "cost": self.cost,
            "invocations": [r.to_json() for r in self.invocations],
            "hot_starts": [h.to_json() for h in self.hot_starts],
        }


@dataclass
class RunRecord:
    """One execution of a workflow: a sequence of phases."""

    run_id: str
    index: int
    app: str
    provider: str
    policy: str
    preset: str
    seed: int
    phases: list[PhaseRecord] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    instances: list[dict[str, Any]] = field(default_factory=list)
    deployment: str | None = None  # whose names and tags its functions carry (cleanup by it)

    @property
    def execution_time_s(self) -> float:
        return sum(p.phase_time_s for p in self.phases)

    @property
    def cost(self) -> float:
        return sum(p.cost for p in self.phases)

    def start_counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in StartKind}
        for phase in self.phases:
            for record in phase.invocations:
                counts[record.start.value] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "index": self.index,
            "app": self.app,
            "provider": self.provider,
            "policy": self.policy,
            "preset": self.preset,
            "seed": self.seed,
            "execution_time_s": self.execution_time_s,
            "cost": self.cost,
            "starts": self.start_counts(),
            "result": self.result,
            "error": self.error,
            "phases": [p.to_json() for p in self.phases],
            "instances": self.instances,
            "deployment": self.deployment,
        }
