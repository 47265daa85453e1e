"""The engine (controller): runs a workflow's phases on a provider, under a policy.

Per phase: place each component on a tier (placement policy), dispatch the phase in parallel,
and while it runs predict the next phase's concurrency and hot start for it (predictor policy,
pool manager). Everything observed becomes records, and what was learned goes to the profile
store. The engine never imports a cloud SDK: it speaks only the provider contract.
"""

from __future__ import annotations

import secrets
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daydream_core.controller import Controller
from daydream_core.deployments import Deployments
from daydream_core.errors import ComponentFailed, DaydreamError, UsageError
from daydream_core.model import (
    HIGH,
    LOW,
    Call,
    Component,
    InvocationRecord,
    PhaseRecord,
    RunRecord,
    StartKind,
    Tier,
)
from daydream_core.outputs import write_run
from daydream_core.policies.predictor import (
    DEFAULT_TIME_VALUE_PER_S,
    StartCosts,
    start_costs,
)
from daydream_core.policies.registry import PolicySpec
from daydream_core.pool import PoolManager
from daydream_core.profile import ProfileStore, workload
from daydream_core.provider import FunctionHandle, Provider
from daydream_core.workflow import RunContext, Workflow

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
    ) -> None:
        self.provider = provider
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

    def close(self) -> None:
        self._dispatch.shutdown(wait=True, cancel_futures=True)
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
        self, workflow: Workflow, history: Sequence[Sequence[Mapping[str, int]]]
    ) -> Controller:
        """A run's controller: the policy's decisions, with what the profile store knows."""
        return Controller(
            policy=self.policy,
            tiers=self.tiers,
            prices=self.prices,
            history=history,
            timings=self.profile.timings(workflow.name, self.provider.name),
            costs=self._start_costs(workflow),
            max_concurrency=self.provider.capabilities().max_concurrency,
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
    ) -> RunRecord:
        pool = self._pool(workflow)
        store = self.provider.store()
        run = RunRecord(
            run_id=f"{workflow.name}-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}",
            index=run_index,
            app=workflow.name,
            provider=self.provider.name,
            policy=self.policy.name,
            preset=preset,
            seed=seed,
            deployment=self.deployments.id,
        )
        pool.begin_run(run_index)
        key = workload(workflow.name, preset)
        controller = self.controller(workflow, self.profile.width_history(key))
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

        try:
            calls = advance(None)
            while True:
                phase, outputs, failure = self._run_phase(run, pool, controller, calls, store.uri)
                run.phases.append(phase)
                write_run(run, out_dir)  # first: the run's own files land whatever follows
                self._learn(run.app, phase)
                timings = self.profile.timings(run.app, self.provider.name)
                controller.phase_done(phase.phase_time_s, timings)
                if pool.releases:
                    pool.release(phase.index, controller.keep())
                self.profile.record_phase(
                    key, run.run_id, phase.index, phase.widths, phase.predicted
                )
                self.events.phase_done(run, phase)
                if failure is not None:
                    raise failure
                if self.policy.phase_pause_s:
                    time.sleep(self.policy.phase_pause_s)  # the artifact's controller does
                calls = advance(outputs)
        except StopIteration as finished:
            run.result = finished.value
        except RunStopped as failure:
            run.error = str(failure)
            failure.run = run
            raise
        except BaseException as stopped:  # interrupted, or a usage/profile/provider error
            run.error = (
                "interrupted" if isinstance(stopped, KeyboardInterrupt) else str(stopped)
            ) or type(stopped).__name__
            raise
        finally:
            phases.close()
            # Hot starts issued for a phase that never came are billed all the same: charge
            # them to the last phase, during which they were issued.
            unused = pool.hot_starts(len(run.phases))
            if run.phases:
                run.phases[-1].hot_starts.extend(unused)
            write_run(run, out_dir)  # before the profile, which may be what failed
            try:
                self.profile.record_run(run)
                if pool.releases:  # between runs: keep what the next run needs at its peak
                    pool.release(len(run.phases), controller.keep_between_runs())
            finally:
                run.instances = [life.to_json() for life in pool.lives_of_run(run_index)]
                write_run(run, out_dir)
        return run

    def _run_phase(
        self,
        run: RunRecord,
        pool: PoolManager,
        controller: Controller,
        calls: Sequence[Call],
        store_uri: str,
    ) -> tuple[PhaseRecord, list[Any], RunFailed | None]:
        index = len(run.phases)
        components = [Component(f"p{index + 1}-c{i + 1}", index, c) for i, c in enumerate(calls)]
        kinds = [c.kind for c in components]
        plan = controller.place(kinds)
        self.events.phase_started(run, index, plan.placement)
        started = time.perf_counter()
        futures: list[Future[_Outcome]] = []
        for component, tier in zip(components, plan.placement, strict=True):
            futures.append(
                self._dispatch.submit(self._invoke, pool.functions[tier], component, run, store_uri)
            )
            if self.policy.dispatch_pause_s:
                time.sleep(self.policy.dispatch_pause_s)  # the artifact's serial dispatch
        # While this phase runs: predict the next one and hot start for it.
        controller.phase_started(plan, kinds)
        pool.prewarm(index + 1, controller.predict(index + 1, alive=pool.alive()))

        outcomes: list[_Outcome] = []
        for future in futures:
            outcome = future.result()
            outcomes.append(outcome)
            pool.observe(outcome.record)
            self.events.invocation_done(run, outcome.record)
        phase = PhaseRecord(
            index=index,
            width=len(components),
            predicted=plan.predicted,
            placement={c.id: t for c, t in zip(components, plan.placement, strict=True)},
            phase_time_s=time.perf_counter() - started,
            invocations=[o.record for o in outcomes],
            hot_starts=pool.hot_starts(index),
        )
        outputs = [o.output for o in outcomes]
        failed = next((o for o in outcomes if o.error is not None), None)
        if failed is not None and failed.error is not None:
            return phase, outputs, RunFailed(failed.record, failed.error)
        return phase, outputs, None

    def _invoke(
        self, function: FunctionHandle, component: Component, run: RunRecord, store_uri: str
    ) -> _Outcome:
        payload = {
            "component": component.id,
            "kind": component.kind,
            "args": dict(component.call.args),
            "run_id": run.run_id,
            "phase": component.phase,
            "store": store_uri,
        }
        started = time.perf_counter()
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
        )
        try:
            result = self.provider.invoke(function, payload, self.timeout_s)
        except DaydreamError as exc:
            record.service_ms = (time.perf_counter() - started) * 1000.0
            record.error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ComponentFailed):
                record.error += "\n" + exc.remote_traceback
            return _Outcome(record, error=exc)
        record.service_ms = (time.perf_counter() - started) * 1000.0
        record.instance = result.instance
        record.start = result.start
        record.init_ms = result.init_ms
        record.execution_ms = result.duration_ms
        record.billed_ms = result.billed_ms
        record.cost = (
            self.prices.cost(result.memory_mb, result.billed_ms, vcpus=function.tier.vcpus)
            + result.surcharge
        )
        record.max_memory_mb = result.max_memory_used_mb
        return _Outcome(record, output=result.output)

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

    def _learn(self, app: str, phase: PhaseRecord) -> None:
        executions = [
            (r.kind, r.tier, r.execution_ms) for r in phase.invocations if r.error is None
        ]
        inits = [(r.tier, r.init_ms) for r in phase.invocations if r.start is StartKind.COLD]
        inits += [(h.tier, h.init_ms) for h in phase.hot_starts]
        if executions:
            self.profile.record_executions(app, self.provider.name, executions)
        if inits:
            self.profile.record_inits(app, self.provider.name, [i for i in inits if i[1] > 0])
