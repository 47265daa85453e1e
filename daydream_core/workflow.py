"""Defining a dynamic workflow: registered components plus a phase generator.

A workflow is a few lines of Python::

    workflow = Workflow("demo", presets={"small": Preset({"n": 4})})

    @workflow.component
    def square(ctx, x):
        return x * x

    @workflow.phases
    def plan(run):
        squares = yield [Call("square", {"x": i}) for i in range(run.params["n"])]
        # the next phase's width is known only now, from the results of this one
        more = yield [Call("square", {"x": s}) for s in squares if s % 2]
        return sum(more)

A phase may also be yielded as ``Phase(calls, WidthHint(...))``, a list of calls that also
says what the workflow knows of the next phase's width (an expected width, a bound, or both),
which the hot-start predictor weighs. A plain list of calls is a phase without a hint.

Instances receive the component to execute *by name*; component code never travels in a
payload, so any initialised instance of the runtime environment can serve any component.
"""

from __future__ import annotations

import importlib
import json
import re
import warnings
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daydream_core.errors import UsageError
from daydream_core.model import Call, Tier, WidthHint
from daydream_core.objectstore import ObjectStore
from daydream_core.params import Param, Parameters

__all__ = [
    "ComponentContext",
    "Phase",
    "PhaseGenerator",
    "Preset",
    "RunContext",
    "RuntimeEnvironment",
    "WidthHint",
    "Workflow",
    "hint_of",
    "load_workflow",
]


class Phase(list[Call]):
    """A phase as a phase generator may yield it: its calls (it is a list of them, so whatever
    reads a plain list reads it) and what the workflow knows of the next phase's width."""

    def __init__(self, calls: Iterable[Call] = (), hint: WidthHint | None = None) -> None:
        super().__init__(calls)
        if hint is not None and not isinstance(hint, WidthHint):
            raise TypeError(f"Phase hint must be a WidthHint, not {type(hint).__name__}")
        self.hint = hint

    def __repr__(self) -> str:
        return f"Phase({list.__repr__(self)}, hint={self.hint!r})"


def hint_of(calls: Sequence[Call]) -> WidthHint | None:
    """The next-width hint a yielded phase carries (a plain list carries none)."""
    return calls.hint if isinstance(calls, Phase) else None


PhaseGenerator = Generator[list[Call], list[Any], Any]
ComponentFn = Callable[..., Any]


@dataclass(frozen=True)
class Preset:
    """Named parameters of a workflow, and how many runs the preset makes by default."""

    params: Mapping[str, Any]
    runs: int = 1
    description: str = ""


@dataclass(frozen=True)
class RuntimeEnvironment:
    """Everything a component needs except its own code.

    `module` is imported by every instance at init, which registers the workflow; `preload`
    names heavy modules to import at init too, so that their cost is paid by cold or hot
    starts, not by components. `requirements` are what a cloud package must install.
    """

    name: str
    module: str
    preload: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()


@dataclass
class RunContext:
    """What the phase generator sees of its run (it runs on the controller)."""

    params: Mapping[str, Any]
    seed: int
    run_index: int
    store: ObjectStore
    run_id: str = "adhoc"  # prefix of the keys this run's components write (ctx.key)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, self.run_index])


@dataclass
class ComponentContext:
    """What a component sees of its invocation (it runs inside a function instance)."""

    store: ObjectStore
    tier: Tier
    threads: int
    run_id: str
    component_id: str
    phase: int
    # What the platform itself tells the instance about its limits, filled by the provider's
    # handler from the platform's own context (Lambda: ``{"memory_mb":
    # context.memory_limit_in_mb}``; Ray: the actor's assigned resources). Empty where the
    # platform says nothing; the instance can still look at RLIMIT_AS, cgroups and affinity.
    platform: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1  # which attempt of the component this is (retries count up from 1)

    def key(self, name: str) -> str:
        """A store key private to this run, component and attempt, for outputs: a retried
        component writes afresh, so it never overwrites or mixes with a failed attempt's."""
        return output_prefix(self.run_id, self.component_id, self.attempt) + name


def output_prefix(run_id: str, component_id: str, attempt: int) -> str:
    """The store prefix of the outputs one attempt of one component writes (`ctx.key`)."""
    return f"{run_id}/{component_id}/a{attempt}/"


_REGISTRY: dict[str, Workflow] = {}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class Workflow:
    """A dynamic workflow: named components and the generator of its phases."""

    def __init__(
        self,
        name: str,
        *,
        presets: Mapping[str, Preset],
        preload: tuple[str, ...] = (),
        requirements: tuple[str, ...] = (),
        description: str = "",
        module: str | None = None,
        params: Mapping[str, Param] | None = None,
    ) -> None:
        if not presets:
            raise ValueError(f"workflow {name!r} needs at least one preset")
        if not _ID.fullmatch(name):
            raise ValueError(f"workflow name {name!r} must be letters, digits, '-' or '_'")
        # Declared parameters; None keeps an undeclared workflow's old behaviour (anything
        # goes, its validator decides), so workflows written before declarations still run.
        self.parameters = Parameters(params) if params is not None else None
        if self.parameters is not None:
            for preset_name, preset in presets.items():
                unknown = self.parameters.unknown(preset.params)
                if unknown:
                    raise ValueError(
                        f"preset {preset_name!r} of workflow {name!r} sets undeclared "
                        f"parameter {unknown[0]!r}"
                    )
        self.name = name
        self.presets = dict(presets)
        self.description = description
        self._preload = tuple(preload)
        self._requirements = tuple(requirements)
        self._module = module
        self._components: dict[str, ComponentFn] = {}
        self._plan: Callable[[RunContext], PhaseGenerator] | None = None
        self._validate: Callable[[Mapping[str, Any]], None] | None = None
        self._headline: Callable[[Any], str] | None = None
        _REGISTRY[name] = self

    def component(self, fn: ComponentFn | None = None, *, name: str | None = None) -> Any:
        """Register a component function ``fn(ctx, **args) -> JSON-serialisable result``."""

        def register(f: ComponentFn) -> ComponentFn:
            self._components[name or f.__name__] = f
            if self._module is None:
                self._module = f.__module__
            return f

        return register(fn) if fn is not None else register

    def phases(self, fn: Callable[[RunContext], PhaseGenerator]) -> Callable[..., PhaseGenerator]:
        """Register the phase generator: yields each phase's calls (a list, or a `Phase`: a
        list with a hint of the next width), receives their results."""
        self._plan = fn
        if self._module is None:
            self._module = fn.__module__
        return fn

    def validator(
        self, fn: Callable[[Mapping[str, Any]], None]
    ) -> Callable[[Mapping[str, Any]], None]:
        """Register a check of run parameters, run before anything is deployed; it raises
        `UsageError` with one line naming what is wrong."""
        self._validate = fn
        return fn

    def headliner(self, fn: Callable[[Any], str]) -> Callable[[Any], str]:
        """Register how a run's result reads in one line (its scientific result: a best fit,
        a completeness), shown in the summary table."""
        self._headline = fn
        return fn

    def headline(self, result: Any) -> str:
        """The run's result in one line: the workflow's own words, else its first scalars."""
        if self._headline is not None:
            try:
                return " ".join(str(self._headline(result)).split())
            except Exception as exc:  # a bug in a summary line never costs the run
                warnings.warn(f"{self.name}: headline of the result failed: {exc}", stacklevel=2)
        return default_headline(result)

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The run parameters checked: parsed against the declared parameters (unknown keys
        and bad values are a one-line `UsageError`, defaults filled), then the validator."""
        try:
            parsed = dict(params) if self.parameters is None else self.parameters.parse(params)
        except UsageError as exc:
            raise UsageError(f"{self.name}: {exc}") from None
        if self._validate is not None:
            self._validate(parsed)
        return parsed

    def workload(self, preset: str, params: Mapping[str, Any]) -> str:
        """The key of this workload's concurrency history: app, preset and the values of the
        parameters declared to shape the DAG (`Param.shapes_dag`)."""
        from daydream_core.profile import workload

        shape = self.parameters.shape(params) if self.parameters is not None else None
        return workload(self.name, preset, shape)

    @property
    def components(self) -> Mapping[str, ComponentFn]:
        return dict(self._components)

    @property
    def runtime(self) -> RuntimeEnvironment:
        if self._module is None:
            raise ValueError(f"workflow {self.name!r} has no components")
        return RuntimeEnvironment(
            name=self.name,
            module=self._module,
            preload=self._preload,
            requirements=self._requirements,
        )

    def component_fn(self, kind: str) -> ComponentFn:
        try:
            return self._components[kind]
        except KeyError:
            valid = ", ".join(sorted(self._components))
            raise KeyError(
                f"workflow {self.name!r} has no component {kind!r} (has: {valid})"
            ) from None

    def preset(self, name: str) -> Preset:
        try:
            return self.presets[name]
        except KeyError:
            valid = ", ".join(sorted(self.presets))
            raise UsageError(
                f"unknown preset {name!r} for app {self.name!r}; valid presets: {valid}"
            ) from None

    def plan(self, run: RunContext) -> PhaseGenerator:
        if self._plan is None:
            raise ValueError(f"workflow {self.name!r} has no phase generator")
        return self._plan(run)


def _scalar(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value, default=str)


def default_headline(result: Any, most: int = 3, width: int = 80) -> str:
    """A result's first few scalar entries (``key=value``), or the result itself, cut short."""
    if isinstance(result, Mapping):
        scalars = [
            f"{key}={_scalar(value)}"
            for key, value in result.items()
            if isinstance(value, str | int | float | bool) or value is None
        ]
        text = " ".join(scalars[:most])
    else:
        text = "" if result is None else _scalar(result)
    return text if len(text) <= width else text[: width - 1] + "…"


def load_workflow(runtime: RuntimeEnvironment) -> Workflow:
    """Import a runtime environment inside an instance and return its workflow."""
    for module in runtime.preload:
        importlib.import_module(module)
    importlib.import_module(runtime.module)
    try:
        return _REGISTRY[runtime.name]
    except KeyError:
        raise LookupError(
            f"module {runtime.module!r} did not define workflow {runtime.name!r}"
        ) from None
