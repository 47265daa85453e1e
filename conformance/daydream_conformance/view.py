"""The fake contract: what a provider's fake must tell the suite, independently of the adapter.

The suite does not take an adapter's word for what happened on the platform. A provider's
fake (for AWS, the Lambda fake around moto; for a real engine such as Ray, the engine's own
state API) implements `PlatformView`, and the suite compares what the adapter reports with it:
how many execution environments `warm(f, n)` really started, which instance served an
invocation and whether that instance ran its init on the request, what the platform billed,
with how much memory an environment really runs, and what is left after cleanup.

Environment ids are the platform's names for its execution environments (Lambda: the log
stream name an environment writes to, which the handler reads from its context), so that the
ids an adapter reports in `Invocation.instance` and `WarmStart.instance` can be matched with
the view's. A view never asks the adapter anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class EnvironmentView:
    """One execution environment of a deployed function, as the platform sees it."""

    id: str  # the platform's name for it; what the adapter must report as the instance id
    function: str  # the deployed function's name
    memory_mb: int  # the memory the platform really runs it with
    vcpus: float  # the CPU share the platform really gives it (0 where it does not say)
    requests: int | None  # requests it has received, warm-ups included (None: not counted)
    alive: bool  # False once the platform (or a delete, or a release) ended it


@dataclass(frozen=True)
class BillingView:
    """One request as the platform billed it, in the order the requests finished."""

    function: str
    environment: str  # `EnvironmentView.id` of the environment that served it
    duration_ms: float  # the handler's own run time
    init_ms: float  # the environment's init, when this request ran it; else 0
    billed_ms: float  # what the platform bills (rounded as its price table says)
    memory_mb: int  # the memory billed


@runtime_checkable
class PlatformView(Protocol):
    """The independent view a provider's fake exposes to the conformance suite."""

    def environments(self, function: str) -> Sequence[EnvironmentView]:
        """Every environment `function` has had, alive or ended, in the order created."""
        ...

    def billing(self, function: str) -> Sequence[BillingView] | None:
        """Every billed request of `function`, in the order they finished (warm-ups, failed
        and timed-out requests included); None where the platform keeps no bill of its own."""
        ...

    def leftovers(self) -> list[str]:
        """Everything daydream could have created that is still on the platform (functions,
        layers or packages, buckets and objects, plans), one line each; [] when clean."""
        ...


def alive(environments: Iterable[EnvironmentView]) -> dict[str, EnvironmentView]:
    """The live environments among `environments`, by id."""
    return {e.id: e for e in environments if e.alive}


def by_environment(records: Iterable[BillingView]) -> dict[str, list[BillingView]]:
    """Billed requests grouped by the environment that served them, each group in order."""
    grouped: dict[str, list[BillingView]] = {}
    for record in records:
        grouped.setdefault(record.environment, []).append(record)
    return grouped
