"""A run's probes: exploration samples run beside their phase, not in it.

Where an exploration sample would lengthen its phase (a tier expected slower than the phase's
longest known time), the controller names a probe instead
(`daydream_core.policies.exploration.beside_the_phase`): the component runs with its kind's
bulk, and a duplicate runs on the sample's tier. The phase does not wait for the duplicate:
each probe that has ended by a phase's end is recorded in that phase and learned with it, as
a ratio against its original (`daydream_core.policies.learned`; provisionally as soon as it
and its original have ended, `daydream_core.lessons`);
the run waits for the rest after its last phase (so every probe is billed and learned within
the run that made it). A run that stops early (a failed component, an interrupt) records the
probes that have ended and waits for none. A probe is a component of its own
(`<component>-probe`), so its outputs have keys of their own; they are deleted once it ends,
and its result is never read.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any, Protocol

from daydream_core.model import Component, InvocationRecord
from daydream_core.objectstore import ObjectStore

PROBE_SUFFIX = "-probe"


class _Ended(Protocol):
    record: InvocationRecord


@dataclass
class _InFlight:
    component: Component
    future: Future[Any]  # of an outcome with a `record`


class Probes:
    """The probes one run has in flight."""

    def __init__(self, run_id: str, store: Callable[[], ObjectStore]) -> None:
        self.run_id = run_id
        self._store = store
        self._in_flight: list[_InFlight] = []

    def __len__(self) -> int:
        return len(self._in_flight)

    def dispatch(
        self,
        components: Sequence[Component],
        probes: Sequence[tuple[int, str]],
        submit: Callable[[str, Component], Future[Any]],
    ) -> None:
        """Dispatch a duplicate of `components[i]` on `tier` for each probe (i, tier)."""
        for i, tier in probes:
            original = components[i]
            probe = Component(original.id + PROBE_SUFFIX, original.phase, original.call)
            self._in_flight.append(_InFlight(probe, submit(tier, probe)))

    def running(self) -> list[Future[Any]]:
        """The futures of the probes still running."""
        return [p.future for p in self._in_flight if not p.future.done()]

    def ended(self) -> list[InvocationRecord]:
        """The records of the probes that have ended well and not been harvested yet (a
        look: `harvest` still takes them)."""
        return [p.future.result().record for p in self._in_flight if _ended_well(p.future)]

    def harvest(self, *, wait_all: bool = False) -> list[InvocationRecord]:
        """The records of the probes that have ended (all of them, waiting, with `wait_all`),
        in dispatch order; their outputs are deleted. A probe that raised has no record: the
        run never depends on a probe."""
        if wait_all:
            wait([p.future for p in self._in_flight])
        done = [p.future.done() for p in self._in_flight]  # once: a probe may end meanwhile
        ended = [p for p, d in zip(self._in_flight, done, strict=True) if d]
        self._in_flight = [p for p, d in zip(self._in_flight, done, strict=True) if not d]
        records = []
        for probe in ended:
            self._discard(probe.component)
            if _ended_well(probe.future):
                outcome: _Ended = probe.future.result()
                records.append(outcome.record)
        return records

    def abandon(self) -> list[InvocationRecord]:
        """For a run that stopped early: the records of the probes that have ended. Nothing
        waits for the rest; each deletes its outputs when it ends, unrecorded."""
        records = self.harvest()
        for probe in self._in_flight:
            probe.future.add_done_callback(functools.partial(self._discard, probe.component))
        self._in_flight = []
        return records

    def _discard(self, probe: Component, _ended: Future[Any] | None = None) -> None:
        # Best effort: a leftover is never read, as no result names its keys.
        with contextlib.suppress(Exception):
            self._store().delete(f"{self.run_id}/{probe.id}/")


def _ended_well(future: Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None
