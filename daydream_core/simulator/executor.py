"""The simulator's executor: a run's controller decisions carried out in virtual time.

The same `Controller` as the live engine decides placement, hot starts and keep-alive; this
executor plays them on the `Platform` model. Two mechanics, as the policy declares:

- ``daydream``: a phase's components are dispatched at once; while they run, the next phase's
  hot starts are issued (the shortfall against instances alive), and again at each result
  that teaches something new, as the engine does; the phase ends with its slowest component;
- ``artifact``: the original DayDream controller: at the phase's start it creates its drawn
  hot-start functions one at a time, then per component takes a pooled function or creates
  one, pausing after each, runs them all, and deletes every function it used one at a time;
  then it pauses outside the phase time. Every function it invokes is new to the platform, so
  each invocation pays a platform start as well.

Execution-time noise is drawn per (seed, run, component), so every policy meets the same
components with the same times; so is the init of a component's cold start (and of its
probe's), so that a policy's hot starts or probes do not change the draws of the others.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from daydream_core.controller import Controller, Upcoming
from daydream_core.model import InvocationRecord, StartKind
from daydream_core.policies.learned import learned_timings, paired, teaches
from daydream_core.simulator.calibration import Calibration
from daydream_core.simulator.platform import Billing, Instance, Platform
from daydream_core.simulator.workload import TraceRun


@dataclass
class RunOutcome:
    """One simulated run."""

    phase_times: list[float] = field(default_factory=list)
    phase_costs: list[float] = field(default_factory=list)
    predicted: list[int] = field(default_factory=list)  # total instances predicted per phase
    widths: list[dict[str, int]] = field(default_factory=list)
    billing: Billing = field(default_factory=Billing)
    idle_gb_s: float = 0.0
    own_cost: float = 0.0  # the artifact's own accounting (summed service x its tier mix)
    # One record per component, as the live engine makes them, in virtual time (started_s
    # from the run's start): what a timeline of a simulated run is drawn from.
    invocations: list[InvocationRecord] = field(default_factory=list)
    probes: list[InvocationRecord] = field(default_factory=list)  # beside the phases
    # After the last phase, for probes still running: the controller's time, as live, where
    # `run.json`'s execution time is its phases' too; the next run starts after it.
    probe_wait_s: float = 0.0

    @property
    def execution_time_s(self) -> float:
        return sum(self.phase_times)

    @property
    def cost(self) -> float:
        return sum(self.phase_costs)


class Learned:
    """What the profile store would hold: per-kind execution seconds per tier, and probes'
    paired tier ratios (`daydream_core.policies.learned`)."""

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str], tuple[int, float]] = {}
        self._pairs: dict[tuple[str, str, str], tuple[int, float]] = {}

    def add(self, kind: str, tier: str, seconds: float) -> bool:
        """Learn a sample; whether it is the kind's first on the tier."""
        n, total = self._sums.get((kind, tier), (0, 0.0))
        self._sums[(kind, tier)] = (n + 1, total + seconds)
        return n == 0

    def pair(self, kind: str, tier: str, base: str, ratio: float) -> bool:
        """Learn a probe's ratio to its original; whether it is the kind's first such one."""
        if not teaches(tier, base, ratio):
            return False
        n, total = self._pairs.get((kind, tier, base), (0, 0.0))
        self._pairs[(kind, tier, base)] = (n + 1, total + math.log(ratio))
        return n == 0

    def copy(self) -> Learned:
        twin = Learned()
        twin._sums, twin._pairs = dict(self._sums), dict(self._pairs)
        return twin

    def paired(self) -> set[tuple[str, str]]:
        return paired(self._pairs)

    def timings(self) -> dict[str, dict[str, float]]:
        means = {key: (n, total / n) for key, (n, total) in self._sums.items()}
        pairs = {key: (n, total / n) for key, (n, total) in self._pairs.items()}
        return learned_timings(means, pairs)


Truth = list[list[dict[str, float]]]  # phase -> component -> tier -> execution seconds


def truth(run: TraceRun, cal: Calibration, seed: int, index: int) -> Truth:
    """Every component's execution seconds on every tier, noise included (shared by policies)."""
    rng = np.random.default_rng([seed, index])
    phases: Truth = []
    for phase in run.phases:
        noise = rng.standard_normal(len(phase))
        rows = []
        for task, z in zip(phase, noise, strict=True):
            row = {}
            recorded = task.seconds
            if cal.service_includes_start:  # the start is the platform model's to add
                recorded = max(0.0, recorded - cal.init_s[cal.reference_tier])
            for tier in cal.tiers:
                base = cal.seconds(task.kind, recorded, tier, task.tier_seconds)
                exact = tier in task.tier_seconds
                row[tier] = base if exact else base * math.exp(cal.execution_spread * float(z))
            rows.append(row)
        phases.append(rows)
    return phases


def start_noise(run: TraceRun, seed: int, index: int) -> list[np.ndarray]:
    """Per phase, each component's standard normal draws for a cold start's init: its own
    (column 0) and its probe's (column 1)."""
    rng = np.random.default_rng([seed, index, 1])
    return [rng.standard_normal((len(phase), 2)) for phase in run.phases]


def _upcoming(controller: Controller, run: TraceRun, seconds: Truth, k: int) -> Upcoming | None:
    if not controller.clairvoyant or k >= len(run.phases):
        return None
    return Upcoming([t.kind for t in run.phases[k]], seconds[k])


def simulate_daydream(
    controller: Controller,
    platform: Platform,
    run: TraceRun,
    seconds: Truth,
    clock: float,
    learned: Learned,
    noise: Sequence[np.ndarray],
) -> tuple[RunOutcome, float]:
    cal = platform.cal
    out = RunOutcome()
    origin = clock
    probing: Probing = []
    controller.first(_upcoming(controller, run, seconds, 0), platform.alive())
    for k, phase in enumerate(run.phases):
        start = clock
        platform.reclaim(start, controller.keep_alive_window())
        kinds = [t.kind for t in phase]
        upcoming = _upcoming(controller, run, seconds, k)
        plan = controller.place(kinds, upcoming, platform.ready(start))
        controller.phase_started(plan, kinds, run.hint(k))
        out.predicted.append(sum(plan.predicted.values()))
        out.widths.append(plan.widths)
        cost = 0.0
        end = start
        arrival = start + cal.dispatch_s
        # The components, then the probes (dispatched last: they queue behind the phase).
        dispatches = [(i, tier, False) for i, tier in enumerate(plan.placement)]
        dispatches += [(i, tier, True) for i, tier in plan.probes]
        results: list[Result] = []  # the components' (ends at, kind, tier, seconds)
        for i, tier, probe in dispatches:
            instance, kind, begins = platform.acquire(tier, arrival, noise[k][i, int(probe)])
            execution = seconds[k][i][tier]
            finished = platform.run_on(instance, begins, execution)
            if probe:  # the phase does not wait for it; its ratio is learned once both end
                original = plan.placement[i]
                ran = seconds[k][i][original]
                ratio = execution / ran if ran > 0 else math.inf
                ends = max(finished + cal.dispatch_s, results[i][0])
                probing.append((ends, kinds[i], tier, original, ratio))
            else:
                end = max(end, finished + cal.dispatch_s)
                results.append((finished + cal.dispatch_s, kinds[i], tier, execution))
            spec = cal.tiers[tier]
            init_ms = instance.init_s * 1000.0 if kind is StartKind.COLD else 0.0
            cost += cal.prices.cost(spec.memory_mb, execution * 1000.0, init_ms, spec.vcpus)
            if kind is StartKind.COLD:
                cost += cal.start_charge(tier)
            if not probe:  # start counts are components', as in the live engine's records
                out.billing.starts[kind.value] += 1
            span = (start - origin, finished + cal.dispatch_s - start, execution)
            record = _record(k, i, kinds[i], tier, instance, kind, span)
            (out.probes if probe else out.invocations).append(record)
        # While the phase runs: the next phase's hot starts, short of what is alive; again
        # each time a result teaches something new (the live engine learns as they arrive).
        if k + 1 < len(run.phases) or not controller.clairvoyant:
            upcoming = _upcoming(controller, run, seconds, k + 1)
            ready_by = end if controller.clairvoyant else None  # the next phase's start
            cost += _hot_start(controller, platform, k + 1, upcoming, start, out.billing, ready_by)
            if controller.splits_by_placement and not controller.clairvoyant:
                for when, lessons in _as_results_arrive(learned, results, probing, end):
                    controller.learned(lessons.timings(), lessons.paired())
                    cost += _hot_start(controller, platform, k + 1, None, when, out.billing)
        phase_time = end - start
        for task, tier, row in zip(phase, plan.placement, seconds[k], strict=True):
            learned.add(task.kind, tier, row[tier])
        probing = _learn_probes(probing, end, learned)
        controller.phase_done(phase_time, learned.timings(), learned.paired())
        out.phase_times.append(phase_time)
        out.phase_costs.append(cost)
        clock = end
    # The run waits for its probes (the live engine does too, outside every phase: its
    # results are written, the probes' bills and lessons are not yet).
    wait = max((ends for ends, *_ in probing), default=clock)
    _learn_probes(probing, wait, learned)
    out.probe_wait_s = max(0.0, wait - clock)
    return out, clock + out.probe_wait_s


Probing = list[tuple[float, str, str, str, float]]  # (ends at, kind, tier, base, ratio)
Result = tuple[float, str, str, float]  # a component's (ends at, kind, tier, seconds)


def _hot_start(
    controller: Controller,
    platform: Platform,
    phase: int,
    upcoming: Upcoming | None,
    now: float,
    billing: Billing,
    ready_by: float | None = None,
) -> float:
    """Hot start what `phase` is predicted to be short of, now; what that costs."""
    alive = platform.alive()
    predicted = controller.predict(phase, upcoming, alive)
    before = billing.cost
    for tier, wanted in predicted.items():
        platform.hot_start(tier, wanted - alive.get(tier, 0), now, billing, ready_by)
    spent = billing.cost - before
    billing.cost = before
    return spent


def _as_results_arrive(
    learned: Learned, results: Sequence[Result], probing: Probing, end: float
) -> Iterator[tuple[float, Learned]]:
    """While a phase runs, each time a result gives a kind its first sample on a tier or a
    probe its first ratio: (when, what is learned by then). On a copy: the phase's results
    are learned for good when it ends (as the live engine's profile store does)."""
    lessons = learned.copy()
    arrivals: list[tuple[float, int, Callable[[], bool]]] = []  # a sample before a ratio
    for ends, kind, tier, value in results:
        arrivals.append((ends, 0, functools.partial(lessons.add, kind, tier, value)))
    for ends, kind, tier, base, ratio in probing:
        arrivals.append((ends, 1, functools.partial(lessons.pair, kind, tier, base, ratio)))
    for when, _, learn in sorted(arrivals, key=lambda a: a[:2]):
        if when >= end:
            return
        if learn():
            yield when, lessons


def _learn_probes(probing: Probing, now: float, learned: Learned) -> Probing:
    """Learn the probes that have ended by `now`; the rest, still running."""
    for ends, kind, tier, base, ratio in probing:
        if ends <= now:
            learned.pair(kind, tier, base, ratio)
    return [p for p in probing if p[0] > now]


def _record(
    phase: int,
    i: int,
    kind: str,
    tier: str,
    instance: Instance,
    start: StartKind,
    span: tuple[float, float, float],
) -> InvocationRecord:
    """A live engine's record of a simulated component; `span` is (started_s, service_s,
    execution_s) in virtual time."""
    started_s, service_s, execution_s = span
    init_ms = instance.init_s * 1000.0 if start is StartKind.COLD else 0.0
    return InvocationRecord(
        component=f"p{phase + 1}-c{i + 1}",
        kind=kind,
        phase=phase,
        tier=tier,
        instance=instance.name,
        start=start,
        init_ms=init_ms,
        execution_ms=execution_s * 1000.0,
        billed_ms=execution_s * 1000.0 + init_ms,
        cost=0.0,  # priced per phase (phase_costs); these records carry the times
        service_ms=service_s * 1000.0,
        started_s=started_s,
    )


def simulate_artifact(
    controller: Controller,
    platform: Platform,
    run: TraceRun,
    seconds: Truth,
    clock: float,
    learned: Learned,
    noise: Sequence[np.ndarray],
) -> tuple[RunOutcome, float]:
    cal = platform.cal
    constants = cal.artifact
    out = RunOutcome()
    for k, phase in enumerate(run.phases):
        width = len(phase)
        predicted = controller.predict(k)
        drawn = sum(predicted.values())
        controller.created(predicted)
        pooled = sum(controller.pool.values())
        kinds = [t.kind for t in phase]
        plan = controller.place(kinds)
        controller.phase_started(plan, kinds, run.hint(k))
        out.predicted.append(drawn)
        out.widths.append(plan.widths)
        cold = max(0, width - pooled)
        services: list[float] = []
        cost = 0.0
        for i, tier in enumerate(plan.placement):
            spec = cal.tiers[tier]
            execution = seconds[k][i][tier]
            # A new function: the platform starts an instance for its first call (in a trace's
            # service times, that start is the one recorded).
            if cal.service_includes_start:
                init = latency = cal.init_s[cal.reference_tier]
            else:
                init, latency = platform.init_draw(tier, noise[k][i, 0])
            service = cal.dispatch_s + latency + execution
            if i >= width - cold:
                service += constants.create_s
                out.billing.starts[StartKind.COLD.value] += 1
            else:
                out.billing.starts[StartKind.HOT.value] += 1
            services.append(service)
            cost += cal.prices.cost(spec.memory_mb, execution * 1000.0, init * 1000.0, spec.vcpus)
        phase_time = (
            (drawn + cold) * constants.create_s
            + width * constants.pause_s
            + max(services)
            + width * constants.delete_s
        )
        out.own_cost += _own_cost(
            services, predicted, width, constants.per_s_high, constants.per_s_low
        )
        controller.phase_done(phase_time)
        out.phase_times.append(phase_time)
        out.phase_costs.append(cost)
        clock += phase_time + constants.phase_pause_s
    return out, clock


def _own_cost(
    services: Sequence[float], drawn: dict[str, int], width: int, high: float, low: float
) -> float:
    """The artifact's ``generate_output``: summed service times priced by its high/low mix,
    where components beyond its hot starts count as high-end."""
    he, le = drawn.get("high", 0), drawn.get("low", 0)
    extra = max(0, width - (he + le))
    total = he + le + extra
    if total == 0:
        return 0.0
    return sum(services) * ((he + extra) / total * high + le / total * low)
