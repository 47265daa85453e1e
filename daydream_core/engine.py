"""The engine (controller): runs a workflow's phases on a provider, under a policy.

Per phase: place each component on a tier (placement policy), dispatch the phase in parallel,
and while it runs predict the next phase's concurrency and hot start for it (predictor policy,
pool manager), again whenever a result that has arrived teaches something new
(`daydream_core.lessons`). Everything observed becomes records, and what was learned goes to
the profile store. The engine never imports a cloud SDK: it speaks only the provider contract.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import secrets
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daydream_core.accounting import RunClock
from daydream_core.backoff import recording
from daydream_core.controller import Controller, PhasePlan
from daydream_core.deployments import Deployments
from daydream_core.errors import ComponentFailed, DaydreamError, UsageError
from daydream_core.journal import Journal, JournalError, JournalState, calls_digest
from daydream_core.learning import RunLearning
from daydream_core.lessons import PhaseLessons
from daydream_core.model import (
    HIGH,
    INTERRUPTED,
    LOW,
    AttemptRecord,
    Call,
    Component,
    InvocationRecord,
    PhaseRecord,
    RunRecord,
    StartKind,
    Tier,
)
from daydream_core.outputs import DIR_MODE, discard_run_files, run_dir, write_run
from daydream_core.policies.keepalive import run_spacing
from daydream_core.policies.learned import Pair
from daydream_core.policies.predictor import (
    DEFAULT_TIME_VALUE_PER_S,
    Shape,
    StartCosts,
    start_costs,
)
from daydream_core.policies.registry import PolicySpec
from daydream_core.pool import PoolManager
from daydream_core.probes import PROBE_SUFFIX, Probes
from daydream_core.profile import PhaseWidths, ProfileStore
from daydream_core.provider import FunctionHandle, Invocation, Provider
from daydream_core.retries import RetryPolicy, fault_of
from daydream_core.workflow import RunContext, Workflow, hint_of, output_prefix

DEFAULT_INIT_MS = 1500.0  # a cold start's cost before any has been measured
DEFAULT_TIMEOUT_S = 900.0
DEFAULT_MAX_WIDTH = 10_000  # components in one phase; past it a run stops with one line


class RunStopped(DaydreamError):
    """A run stopped on a failure; the phases done are on disk. Carries what to show."""

    def __init__(self, message: str, remote_traceback: str) -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback
        self.run: RunRecord | None = None  # the run it stopped, set by the engine


class RunFailed(RunStopped):
    """A component failed; the run stopped after its phase."""

    def __init__(self, record: InvocationRecord, cause: Exception) -> None:
        self.record = record
        self.cause = cause
        super().__init__(
            f"component {record.kind!r} ({record.component}, phase {record.phase + 1}) "
            f"failed: {getattr(cause, 'message', cause)}",
            getattr(cause, "remote_traceback", ""),
        )


class PlanFailed(RunStopped):
    """The workflow's own phase generator raised (a bug in the app's planning code)."""

    def __init__(self, workflow: str, phase: int, cause: Exception) -> None:
        self.cause = cause
        super().__init__(
            f"workflow {workflow!r} failed planning phase {phase + 1}: "
            f"{type(cause).__name__}: {cause}",
            "".join(traceback.format_exception(cause)),
        )


class EngineEvents:
    """What the engine reports as it goes (the CLI draws progress from these)."""

    def phase_started(self, run: RunRecord, phase: int, placement: Sequence[str]) -> None: ...

    def invocation_done(self, run: RunRecord, record: InvocationRecord) -> None: ...

    def phase_done(self, run: RunRecord, phase: PhaseRecord) -> None: ...


@dataclass
class _Outcome:
    record: InvocationRecord
    output: Any = None
    error: Exception | None = None


class Engine:
    """Runs workflows; one engine keeps its instances warm across the runs it makes."""

    def __init__(
        self,
        provider: Provider,
        profile: ProfileStore,
        policy: PolicySpec,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        time_value_per_s: float = DEFAULT_TIME_VALUE_PER_S,
        events: EngineEvents | None = None,
        max_width: int = DEFAULT_MAX_WIDTH,
        command: str | None = None,
        retries: RetryPolicy | None = None,
    ) -> None:
        self.provider = provider
        self.command = command  # recorded in each run, so a shared folder says who made what
        self.retries = retries or RetryPolicy()
        self._memory_floors: dict[str, dict[str, int]] = {}  # per app: what ran out of memory
        self.max_width = max_width
        self.deployments = Deployments(provider)  # what a failed run may remove
        self.profile = profile
        self.policy = policy
        if policy.clairvoyant:
            raise UsageError(
                f"policy {policy.name!r} needs to know each phase before it starts; "
                "it runs only in `daydream simulate`"
            )
        self.timeout_s = timeout_s
        self.time_value_per_s = time_value_per_s
        self.events = events or EngineEvents()
        self.prices = provider.prices()
        self.tiers: dict[str, Tier] = {t: provider.tiers()[t] for t in (HIGH, LOW)}
        self._dispatch = ThreadPoolExecutor(
            max_workers=provider.capabilities().max_concurrency, thread_name_prefix="daydream"
        )
        self._pools: dict[str, PoolManager] = {}
        # What a phase taught is written while the next one runs (daydream_core.learning).
        self._persist = ThreadPoolExecutor(max_workers=1, thread_name_prefix="daydream-profile")

    def close(self) -> None:
        self._dispatch.shutdown(wait=True, cancel_futures=True)
        self._persist.shutdown(wait=True)
        for pool in self._pools.values():
            pool.close()

    def _pool(self, workflow: Workflow) -> PoolManager:
        if workflow.name not in self._pools:
            functions = {
                name: self.deployments.deploy(workflow.runtime, tier)
                for name, tier in self.tiers.items()
            }
            self._pools[workflow.name] = PoolManager(self.provider, functions)
        return self._pools[workflow.name]

    # -- a run ---------------------------------------------------------------------------------

    def controller(
        self,
        workflow: Workflow,
        history: Sequence[Sequence[Mapping[str, int]]],
        history_shapes: Sequence[Sequence[Shape]],
        learning: RunLearning,
        spacing: tuple[Sequence[float], Sequence[float]] = ((), ()),
    ) -> Controller:
        """A run's controller: the policy's decisions, with what the profile store knows (as
        the run's `learning` read it); `spacing`, earlier runs' gaps and lengths."""
        return Controller(
            policy=self.policy,
            tiers=self.tiers,
            prices=self.prices,
            history=history,
            history_shapes=history_shapes,
            timings=self._timings(workflow.name, learning.timings()),
            paired=learning.paired(),
            costs=self._start_costs(workflow),
            max_concurrency=self.provider.capabilities().max_concurrency,
            run_gaps=spacing[0],
            run_times=spacing[1],
        )

    def run(
        self,
        workflow: Workflow,
        *,
        preset: str,
        params: Mapping[str, Any],
        seed: int,
        run_index: int,
        out_dir: Path,
        resume: JournalState | None = None,
    ) -> RunRecord:
        """Run `workflow` once into ``out_dir/run-<run_index>``; with `resume`, continue the
        interrupted run of that journal: its completed phases are replayed into the phase
        generator from their recorded outputs (nothing is invoked), the rest run live."""
        pool = self._pool(workflow)
        store = self.provider.store()
        clock = RunClock()  # wall time = setup + phases + the controller between them
        run = RunRecord(
            run_id=(
                resume.run_id
                if resume is not None
                else f"{workflow.name}-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
            ),
            index=run_index,
            app=workflow.name,
            provider=self.provider.name,
            policy=self.policy.name,
            preset=preset,
            seed=seed,
            command=self.command,
            deployment=self.deployments.id,
        )
        pool.begin_run(run_index, origin_s=run.origin_s)
        key = workflow.workload(preset, params)
        learning = RunLearning(self.profile, workflow.name, self.provider.name, self._persist)
        controller = self.controller(
            workflow,
            self.profile.width_history(key, exclude_run=run.run_id),
            self.profile.shape_history(key, exclude_run=run.run_id),
            learning,
            run_spacing(self.profile.run_spans(key, exclude_run=run.run_id), run.started_at),
        )
        controller.first(alive=pool.alive())
        context = RunContext(
            params=params, seed=seed, run_index=run_index, store=store, run_id=run.run_id
        )
        phases = workflow.plan(context)

        def advance(outputs: list[Any] | None) -> list[Call]:
            try:
                calls = next(phases) if outputs is None else phases.send(outputs)
            except (StopIteration, UsageError):
                raise
            except Exception as exc:  # the app's own code: report it, keep what was done
                raise PlanFailed(workflow.name, len(run.phases), exc) from exc
            if len(calls) > self.max_width:
                raise UsageError(
                    f"phase {len(run.phases) + 1} of {workflow.name!r} has {len(calls)} "
                    f"components, more than the limit of {self.max_width} (--max-width)"
                )
            return calls

        # Replayed before anything is written: a journal the workflow no longer agrees with
        # is refused with the interrupted run's files untouched.
        calls: list[Call] | None
        try:
            with clock.part("plan"):
                calls = advance(None)
                if resume is not None:
                    calls = _replay(run, controller, resume, advance, calls)
                    controller.predict(len(run.phases), alive=pool.alive())
        except StopIteration as finished:  # every phase was journaled; only the end was lost
            calls, run.result = None, finished.value
        except BaseException:
            phases.close()
            raise
        directory = run_dir(out_dir, run_index)
        try:
            if resume is None:
                directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
                journal = Journal.begin(directory, run, params)
            else:
                run.instances = _earlier_instances(directory)
                discard_run_files(directory)
                run.resumed_at = [*resume.resumed_at, len(run.phases)]
                journal = Journal.resume(resume, len(run.phases))
        except BaseException:
            phases.close()
            raise

        probes = Probes(run.run_id, self.provider.store)
        try:
            while calls is not None:
                phase, outputs, failure = self._run_phase(
                    run,
                    pool,
                    controller,
                    calls,
                    store.uri,
                    clock=clock,
                    probes=probes,
                    learning=learning,
                )
                run.phases.append(phase)
                with clock.part("write"):
                    # First, durably: the phase is the run's whatever follows. Appending keeps
                    # the work per phase independent of the run's length (run.json is
                    # written once).
                    journal.phase(phase, calls, outputs, failed=failure is not None)
                with clock.part("learn"):
                    timings = self._learn(
                        learning,
                        run,
                        phase,
                        PhaseWidths(
                            key,
                            run.run_id,
                            phase.index,
                            phase.widths,
                            phase.predicted,
                            kinds=tuple(controller.kinds[phase.index]),
                            hint=phase.hint,
                        ),
                    )
                    controller.phase_done(phase.phase_time_s, timings, learning.paired())
                if pool.releases:
                    with clock.part("release"):
                        pool.release(phase.index, controller.keep())
                with clock.part("events"):
                    self.events.phase_done(run, phase)
                if failure is not None:
                    raise failure
                if self.policy.phase_pause_s:
                    with clock.part("pause"):
                        time.sleep(self.policy.phase_pause_s)  # the artifact's controller does
                with clock.part("plan"):
                    calls = advance(outputs)
        except StopIteration as finished:
            run.result = finished.value
            if len(probes):  # the run waits for its probes: billed and learned within it
                with clock.part("probes"):
                    late = _observed(probes.harvest(wait_all=True), pool)
                    run.phases[-1].probes.extend(late)
                    learning.learn_probes(_pairs(run, late))
                    self._learn_memory(learning.app, late)
        except RunStopped as failure:
            run.error = str(failure)
            failure.run = run
            raise
        except BaseException as stopped:  # interrupted, or a usage/profile/provider error
            run.error = (
                INTERRUPTED if isinstance(stopped, KeyboardInterrupt) else str(stopped)
            ) or type(stopped).__name__
            raise
        finally:
            phases.close()
            if run.error is None:
                run.headline = workflow.headline(run.result)
            elif run.phases:  # stopped early: what its probes cost so far is the run's too
                run.phases[-1].probes.extend(_observed(probes.abandon(), pool))
            # Hot starts not yet recorded (for a phase that never came, or untaken and still
            # starting when their phase ended) are billed all the same: charge them to the
            # last phase.
            unused = pool.hot_starts(len(run.phases), wait=True)
            if run.phases:
                run.phases[-1].hot_starts.extend(unused)
            write_run(run, out_dir)  # before the profile, which may be what failed
            try:
                learning.wait()  # the last phase's learning is in the store
                journal.end(run)
                self.profile.record_run(run)
                if pool.releases:  # between runs: keep what the next run needs at its peak
                    pool.release(len(run.phases), controller.keep_between_runs())
                # ... and for as long as the next run is expected to want it
                self.provider.keep_idle(controller.keep_alive_window())
            finally:
                try:
                    run.instances += [life.to_json() for life in pool.lives_of_run(run_index)]
                    clock.finish(run)  # the wall time as recorded: all but this last write
                    write_run(run, out_dir)
                finally:
                    journal.close()  # the run's lock, held until its last file is written
        return run

    def _run_phase(
        self,
        run: RunRecord,
        pool: PoolManager,
        controller: Controller,
        calls: Sequence[Call],
        store_uri: str,
        clock: RunClock,
        probes: Probes,
        learning: RunLearning,
    ) -> tuple[PhaseRecord, list[Any], RunFailed | None]:
        index = len(run.phases)
        with clock.part("place"):
            # A policy's keep-alive window, where the platform lets daydream set one (as the
            # simulator's `policy_keep_alive` platforms do).
            self.provider.keep_idle(controller.keep_alive_window())
            components = [
                Component(f"p{index + 1}-c{i + 1}", index, c) for i, c in enumerate(calls)
            ]
            kinds = [c.kind for c in components]
            plan = controller.place(kinds, ready=pool.ready(index))
        with clock.part("events"):
            self.events.phase_started(run, index, plan.placement)
        started = clock.dispatching(run)
        futures: list[Future[_Outcome]] = []
        for component, tier in zip(components, plan.placement, strict=True):
            futures.append(
                self._dispatch.submit(
                    self._invoke,
                    pool.functions[tier],
                    component,
                    run,
                    store_uri,
                    dispatched_at=time.perf_counter(),
                )
            )
            if self.policy.dispatch_pause_s:
                time.sleep(self.policy.dispatch_pause_s)  # the artifact's serial dispatch
        probes.dispatch(
            components,
            plan.probes,
            lambda tier, probe: self._dispatch.submit(
                self._invoke,
                pool.functions[tier],
                probe,
                run,
                store_uri,
                dispatched_at=time.perf_counter(),
            ),
        )
        # While this phase runs: predict the next one and hot start for it.
        hint = hint_of(calls)
        controller.phase_started(plan, kinds, hint)
        pool.prewarm(index + 1, controller.predict(index + 1, alive=pool.alive()))

        outcomes = self._as_they_end(run, pool, controller, futures, probes, learning)
        hot_starts = pool.hot_starts(index)
        ended = _observed(probes.harvest(), pool)
        phase = PhaseRecord(
            index=index,
            width=len(components),
            predicted=plan.predicted,
            placement={c.id: t for c, t in zip(components, plan.placement, strict=True)},
            phase_time_s=clock.phase_ended() - started,
            invocations=[o.record for o in outcomes],
            hot_starts=hot_starts,
            hint=hint,
            probes=ended,
        )
        outputs = [o.output for o in outcomes]
        failed = next((o for o in outcomes if o.error is not None), None)
        if failed is not None and failed.error is not None:
            return phase, outputs, RunFailed(failed.record, failed.error)
        return phase, outputs, None

    def _invoke(
        self,
        function: FunctionHandle,
        component: Component,
        run: RunRecord,
        store_uri: str,
        dispatched_at: float | None = None,
    ) -> _Outcome:
        """Invoke one component, retrying what `RetryPolicy` says is worth it; the record is
        the last attempt's, with every failed one before it in `attempts`."""
        started = time.perf_counter()
        # Service time runs from the dispatch (a wait for a slot under the limit is in it) and
        # spans every attempt and wait.
        dispatched_at = started if dispatched_at is None else dispatched_at
        record = InvocationRecord(
            component=component.id,
            kind=component.kind,
            phase=component.phase,
            tier=function.tier.name,
            instance="",
            start=StartKind.COLD,
            init_ms=0.0,
            execution_ms=0.0,
            billed_ms=0.0,
            cost=0.0,
            service_ms=0.0,
            started_s=dispatched_at - run.origin_s,
            queued_ms=(started - dispatched_at) * 1000.0,
            label=component.call.label,
        )
        attempt = 0
        while True:
            attempt += 1
            record.tier = function.tier.name
            error: DaydreamError | None = None
            with recording() as retried:  # the adapter's own retries, inside invoke
                try:
                    result = self.provider.invoke(
                        function, self._payload(component, run, store_uri, attempt), self.timeout_s
                    )
                except DaydreamError as exc:
                    error = exc
            record.service_ms = (time.perf_counter() - dispatched_at) * 1000.0
            for again in retried:
                fault = fault_of(again.error)
                record.attempts.append(
                    AttemptRecord(
                        attempt, record.tier, fault, _text(again.error), again.wait_s, "provider"
                    )
                )
            if error is None:
                self._measured(record, function, result)
                return _Outcome(record, output=result.output)
            failed = AttemptRecord(attempt, record.tier, fault_of(error), _text(error))
            retry = self.retries.decide(
                error,
                kind=component.kind,
                tier=record.tier,
                attempts=[*record.attempts, failed],
                tiers=self.tiers,
                timings=self._timings(run.app) if failed.fault == "timeout" else {},
                timeout_s=self.timeout_s,
            )
            self._discard_outputs(run, component, attempt, failed.fault)
            if retry is None:
                record.error = _text(error)
                if isinstance(error, ComponentFailed):
                    record.error += "\n" + error.remote_traceback
                return _Outcome(record, error=error)
            failed.wait_s = retry.wait_s
            record.attempts.append(failed)
            function = self._pools[run.app].functions[retry.tier]
            if retry.wait_s > 0:
                self.retries.backoff.sleep(retry.wait_s)

    @staticmethod
    def _payload(
        component: Component, run: RunRecord, store_uri: str, attempt: int
    ) -> dict[str, Any]:
        return {
            "component": component.id,
            "kind": component.kind,
            "args": dict(component.call.args),
            "run_id": run.run_id,
            "phase": component.phase,
            "store": store_uri,
            "attempt": attempt,  # scopes the outputs' keys (`ComponentContext.key`)
        }

    def _measured(
        self, record: InvocationRecord, function: FunctionHandle, result: Invocation
    ) -> None:
        record.instance = result.instance
        record.start = result.start
        record.init_ms = result.init_ms
        # The wait at the platform for an instance, after the one for a dispatch slot: the
        # request queued from `started_s` for `queued_ms` (if retried, the platform's part is
        # its last attempt's, which came later).
        record.queued_ms += result.queued_ms
        record.execution_ms = result.duration_ms
        record.billed_ms = result.billed_ms
        record.cost = (
            self.prices.cost(result.memory_mb, result.billed_ms, vcpus=function.tier.vcpus)
            + result.surcharge
        )
        record.max_memory_mb = result.max_memory_used_mb

    def _discard_outputs(
        self, run: RunRecord, component: Component, attempt: int, fault: str
    ) -> None:
        """Remove what an attempt that the platform failed may have written: its keys are its
        own and no result names them, so a retry neither duplicates nor mixes with them. (What
        a component that failed on its own wrote is kept, to debug it.)"""
        if fault not in ("lost", "memory", "timeout", "store"):
            return  # the component never ran, or failed by itself
        # Best effort: a leftover is never read, as no result names its keys.
        with contextlib.suppress(Exception):
            self.provider.store().delete(output_prefix(run.run_id, component.id, attempt))

    # -- policies' inputs -------------------------------------------------------------------

    def _start_costs(self, workflow: Workflow) -> dict[str, StartCosts]:
        init = self.profile.init_ms(workflow.name, self.provider.name)
        return {
            name: start_costs(
                tier,
                self.prices,
                init.get(name, DEFAULT_INIT_MS),
                time_value_per_s=self.time_value_per_s,
            )
            for name, tier in self.tiers.items()
        }

    def _timings(
        self, app: str, learned: Mapping[str, Mapping[str, float]] | None = None
    ) -> dict[str, dict[str, float]]:
        """What placement knows of each kind: the learned execution seconds per tier (the
        run's `learned`, else the profile's), and an infinite time on every tier with no more
        memory than the kind is known to run out of (it never finishes there)."""
        if learned is None:
            learned = self.profile.timings(app, self.provider.name)
        timings = {kind: dict(tiers) for kind, tiers in learned.items()}
        if app not in self._memory_floors:
            self._memory_floors[app] = self.profile.memory_floors(app, self.provider.name)
        for kind, floor in self._memory_floors[app].items():
            for name, tier in self.tiers.items():
                if tier.memory_mb <= floor:
                    timings.setdefault(kind, {})[name] = math.inf
        return timings

    def _as_they_end(
        self,
        run: RunRecord,
        pool: PoolManager,
        controller: Controller,
        futures: Sequence[Future[_Outcome]],
        probes: Probes,
        learning: RunLearning,
    ) -> list[_Outcome]:
        """The phase's outcomes (in dispatch order), taken as they end. Where a result is
        news (a kind's first sample on a tier, a probe's first ratio), the controller learns
        it at once and the next phase's hot starts are predicted again
        (`daydream_core.lessons`)."""
        index = len(run.phases)
        lessons = PhaseLessons(learning, controller.timings, controller.paired)
        ended: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        position = {future: i for i, future in enumerate(futures)}
        for future in [*futures, *probes.running()]:
            future.add_done_callback(ended.put)
        outcomes: dict[int, _Outcome] = {}
        mine: dict[str, InvocationRecord] = {}  # this phase's records so far, by component
        earlier: dict[int, dict[str, InvocationRecord]] = {}  # earlier phases', as needed
        while len(outcomes) < len(futures):
            batch = [ended.get()]
            with contextlib.suppress(queue.Empty):
                while True:  # whatever else has ended meanwhile: one lesson for them all
                    batch.append(ended.get_nowait())
            news = False
            for future in batch:
                if future not in position:
                    continue  # a probe's: looked at below
                outcome = outcomes[position[future]] = future.result()
                mine[outcome.record.component] = outcome.record
                pool.observe(outcome.record)
                self.events.invocation_done(run, outcome.record)
                news |= lessons.sample(outcome.record)
            for probe in probes.ended():
                if probe.phase == index:
                    originals = mine
                elif probe.phase in earlier:
                    originals = earlier[probe.phase]
                else:
                    originals = earlier[probe.phase] = _by_component(run, probe.phase)
                news |= lessons.probe(
                    probe, originals.get(probe.component.removesuffix(PROBE_SUFFIX))
                )
            if news and len(outcomes) < len(futures) and controller.splits_by_placement:
                timings, paired = lessons.now()
                controller.learned(self._timings(learning.app, timings), paired)
                pool.prewarm(index + 1, controller.predict(index + 1, alive=pool.alive()))
        return [outcomes[i] for i in range(len(futures))]

    def _learn(
        self, learning: RunLearning, run: RunRecord, phase: PhaseRecord, widths: PhaseWidths
    ) -> dict[str, dict[str, float]]:
        """What the phase taught: the timings now, and one profile-store transaction in the
        background (an out-of-memory lesson, rare, is written at once). A probe teaches a
        ratio against its original, not a sample of its kind (`daydream_core.policies.
        learned`)."""
        records = [*phase.invocations, *phase.probes]
        executions = _executions(phase.invocations)
        inits = [(r.tier, r.init_ms) for r in records if r.start is StartKind.COLD]
        inits += [(h.tier, h.init_ms) for h in phase.hot_starts]
        timings = learning.learn(
            executions, [i for i in inits if i[1] > 0], widths, _pairs(run, phase.probes)
        )
        self._learn_memory(learning.app, records)
        return self._timings(learning.app, timings)

    def _learn_memory(self, app: str, records: Sequence[InvocationRecord]) -> None:
        """Tiers the records' kinds ran out of memory on (written at once: rare, and placement
        must not send the kind there again)."""
        out_of_memory = {
            (r.kind, self.tiers[a.tier].memory_mb)
            for r in records
            for a in r.attempts
            if a.fault == "memory" and a.tier in self.tiers
        }
        if out_of_memory:
            self.profile.record_out_of_memory(app, self.provider.name, sorted(out_of_memory))
            self._memory_floors.pop(app, None)  # read again, with the lesson


def _observed(records: list[InvocationRecord], pool: PoolManager) -> list[InvocationRecord]:
    """Probes' records, their instances' lives updated."""
    for record in records:
        pool.observe(record)
    return records


def _executions(records: Sequence[InvocationRecord]) -> list[tuple[str, str, float]]:
    """What the records teach of their kinds' execution times: (kind, tier, ms)."""
    return [(r.kind, r.tier, r.execution_ms) for r in records if r.error is None]


def _pairs(run: RunRecord, probes: Sequence[InvocationRecord]) -> list[Pair]:
    """Each probe that ended well against its original: (kind, tier, base, ratio)."""
    records = {(p, r.component): r for p in {q.phase for q in probes} for r in _at(run, p)}
    pairs = []
    for probe in probes:
        original = records.get((probe.phase, probe.component.removesuffix(PROBE_SUFFIX)))
        if original is None or probe.error is not None or original.error is not None:
            continue
        if original.execution_ms > 0:
            pairs.append(
                (probe.kind, probe.tier, original.tier, probe.execution_ms / original.execution_ms)
            )
    return pairs


def _by_component(run: RunRecord, index: int) -> dict[str, InvocationRecord]:
    return {r.component: r for r in _at(run, index)}


def _at(run: RunRecord, index: int) -> list[InvocationRecord]:
    """The invocations of the run's phase `index` (none if it has no such phase)."""
    return next((p.invocations for p in run.phases if p.index == index), [])


def _replay(
    run: RunRecord,
    controller: Controller,
    resume: JournalState,
    advance: Callable[[list[Any] | None], list[Call]],
    calls: list[Call],
) -> list[Call]:
    """Drive the phase generator past the journal's completed phases with their recorded
    outputs, restoring the records and the controller's state of each; return the calls of
    the first phase to run live. `StopIteration` if the generator ends on the way."""
    for done in resume.completed:
        if calls_digest(calls) != done.calls:
            raise JournalError(
                f"cannot resume {resume.path.parent}: the workflow now plans phase "
                f"{done.record.index + 1} differently from its journal (other code, "
                "parameters or seed); valid: the interrupted run's workflow and options"
            )
        record = done.record
        placement = [record.placement[r.component] for r in record.invocations]
        controller.predicted[record.index] = dict(record.predicted)
        controller.phase_started(
            PhasePlan(record.index, placement, dict(record.predicted)),
            [r.kind for r in record.invocations],
            record.hint,
        )
        controller.phase_done(record.phase_time_s)
        run.phases.append(record)
        calls = advance(done.outputs)
    return calls


def _earlier_instances(directory: Path) -> list[dict[str, Any]]:
    """The instances an interrupted run's controller recorded, if it lived to write them."""
    try:
        recorded = json.loads((directory / "run.json").read_text()).get("instances", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [i for i in recorded if isinstance(i, dict)] if isinstance(recorded, list) else []


def _text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
