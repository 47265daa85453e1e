"""The data model: tiers, calls, components, invocation records, phase and run records.

Records come first: every invocation yields one `InvocationRecord`; output files, summaries and
the profile store are all derived from records.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

HIGH = "high"
LOW = "low"
TIER_NAMES = (HIGH, LOW)
INTERRUPTED = "interrupted"  # the error of a run stopped before it finished or failed
# The longest a recorded or traced component may take: a year (more overflows billing).
LONGEST_COMPONENT_S = 366 * 86400.0


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
    # What the component stands for in the workflow's own terms (a trace replay: the task it
    # replays), recorded with its invocation so records can be traced back to the input.
    label: str | None = None


@dataclass(frozen=True)
class WidthHint:
    """What a workflow knows, when it yields a phase, of the width of the phase after it.

    `expected` is its estimate (exact where it knows; 0: the run ends there), `at_most` a bound
    it can promise. Predictors weigh a hint against how well earlier hints held; they do not
    take it on trust.
    """

    expected: int | None = None
    at_most: int | None = None

    def __post_init__(self) -> None:
        for name in ("expected", "at_most"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"width hint {name}={value!r} must be an integer or None")
            if value is not None and value < 0:
                raise ValueError(f"width hint {name}={value} must be 0 or more")
        if self.expected is not None and self.at_most is not None and self.expected > self.at_most:
            raise ValueError(
                f"width hint expects {self.expected}, more than its bound of {self.at_most}"
            )

    def to_json(self) -> dict[str, int | None]:
        return {"expected": self.expected, "at_most": self.at_most}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> WidthHint | None:
        if data is None:
            return None
        return cls(
            expected=None if data.get("expected") is None else int(data["expected"]),
            at_most=None if data.get("at_most") is None else int(data["at_most"]),
        )


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
class AttemptRecord:
    """One failed attempt of a component that was then retried (`InvocationRecord.attempts`)."""

    attempt: int  # 1-based; the outputs of attempt n are under `ctx.key` of attempt n
    tier: str
    fault: str  # throttled | lost | memory | timeout | store | rejected | other
    error: str  # the typed error, "Type: message"
    wait_s: float = 0.0  # the backoff before the next request
    by: str = "engine"  # who retried: the engine, or the provider's adapter (same payload)


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
    # Seconds from the run's start to the dispatch (the live engine's clock or the
    # simulator's virtual one); it ends `service_ms` later. None in records made before.
    started_s: float | None = None

    @property
    def ended_s(self) -> float | None:
        return None if self.started_s is None else self.started_s + self.service_ms / 1000.0

    # Of service_ms, the wait for a dispatch slot (the platform's concurrency limit) before
    # the request was sent, then its wait at the platform for an instance where the provider
    # says (`Invocation.queued_ms`): a phase wider than the limit queues.
    queued_ms: float = 0.0
    label: str | None = None  # the call's label (a trace replay: the task it replays)
    # The failed attempts before the one measured above (empty: it succeeded, or failed, at
    # once); the measured fields are the last attempt's.
    attempts: list[AttemptRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.value
        data["ended_s"] = self.ended_s
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
    # Seconds from the run's start to when it was issued; ready `init_ms` later.
    started_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ready_s"] = None if self.started_s is None else self.started_s + self.init_ms / 1e3
        return data


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
    # The controller's time after this phase, to the next phase's dispatch (or the run's end),
    # and what it went to (learn, write, plan, place, ...): see daydream_core.accounting.
    controller_time_s: float = 0.0
    controller_parts: dict[str, float] = field(default_factory=dict)
    hint: WidthHint | None = None  # what the workflow said, with this phase, of the next one
    # Probes that ended during this phase (or, for the last phase, before the run ended):
    # duplicates of components on a tier their kind had no data for, run beside the phase
    # and not waited for (`daydream_core.policies.exploration.beside_the_phase`); each
    # record's `phase` is the phase that dispatched it. Billed; their outputs discarded.
    probes: list[InvocationRecord] = field(default_factory=list)

    @property
    def widths(self) -> dict[str, int]:
        counts = dict.fromkeys(TIER_NAMES, 0)
        for tier in self.placement.values():
            counts[tier] = counts.get(tier, 0) + 1
        return counts

    @property
    def cost(self) -> float:
        return (
            sum(r.cost for r in self.invocations)
            + sum(h.cost for h in self.hot_starts)
            + sum(r.cost for r in self.probes)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,  # from 0; messages and component ids count from 1 (`number`)
            "number": self.index + 1,
            "width": self.width,
            "widths": self.widths,
            "predicted": self.predicted,
            "placement": self.placement,
            "phase_time_s": self.phase_time_s,
            "cost": self.cost,
            "invocations": [r.to_json() for r in self.invocations],
            "hot_starts": [h.to_json() for h in self.hot_starts],
            "probes": [r.to_json() for r in self.probes],
            "controller_time_s": self.controller_time_s,
            "controller_parts": self.controller_parts,
            "next_width_hint": self.hint.to_json() if self.hint is not None else None,
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
    command: str | None = None  # the id of the command that made the run (many share a folder)
    headline: str | None = None  # the workflow's scientific result in one line
    started_at: float = field(default_factory=time.time)  # wall clock, for people
    # The run's origin on the monotonic clock: records' offsets (started_s) count from it.
    origin_s: float = field(default_factory=time.perf_counter, repr=False, compare=False)
    setup_time_s: float = 0.0  # the controller's time before the first phase's dispatch
    setup_parts: dict[str, float] = field(default_factory=dict)  # what it went to (plan, place)
    wall_time_s: float = 0.0  # from the run's start to its end, as the engine measured
    resumed_at: list[int] = field(default_factory=list)  # phases a resumed run continued from

    @property
    def interrupted(self) -> bool:
        """Stopped before it finished or failed (Ctrl-C, SIGTERM, a killed controller)."""
        return self.error == INTERRUPTED

    deployment: str | None = None  # whose names and tags its functions carry (cleanup by it)

    @property
    def execution_time_s(self) -> float:
        return sum(p.phase_time_s for p in self.phases)

    @property
    def controller_time_s(self) -> float:
        """The controller's time outside phases: setup and between (and after) phases."""
        return self.setup_time_s + sum(p.controller_time_s for p in self.phases)

    @property
    def accounted_s(self) -> float:
        """Phase times plus controller time: the wall time, interval by interval."""
        return self.execution_time_s + self.controller_time_s

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
            "command": self.command,
            "started_at": self.started_at,
            "headline": self.headline,
            "execution_time_s": self.execution_time_s,
            "controller_time_s": self.controller_time_s,
            "setup_time_s": self.setup_time_s,
            "setup_parts": self.setup_parts,
            "wall_time_s": self.wall_time_s,
            "cost": self.cost,
            "starts": self.start_counts(),
            "result": self.result,
            "error": self.error,
            "phases": [p.to_json() for p in self.phases],
            "instances": self.instances,
            "interrupted": self.interrupted,
            "resumed_at": self.resumed_at,
            "deployment": self.deployment,
        }
