"""What the contract cases share: limits, payload shape, fresh functions, and reading the
platform's own view (skipping, with the reason, where there is none)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest

from daydream_conformance.view import BillingView, PlatformView
from daydream_core.workflow import RuntimeEnvironment

TIMEOUT_S = 120.0  # per invocation; generous, for cold starts on a busy machine
# Platforms report durations rounded (Lambda's REPORT: to 0.01 ms); sums of rounded figures
# may land this far from what the platform rounded up from.
REPORTED_PRECISION_MS = 0.05

NO_BILL = "the platform keeps no bill of its own"

Payload = Callable[..., dict[str, Any]]


def variant(runtime: RuntimeEnvironment, preload: str) -> RuntimeEnvironment:
    """The same runtime environment under another hashed name (one more stdlib preload)."""
    return replace(runtime, preload=(*runtime.preload, preload))


def billing(view: PlatformView, function: str) -> Sequence[BillingView]:
    """The platform's bill for `function`; the case is skipped where the platform keeps none."""
    records = view.billing(function)
    if records is None:
        pytest.skip(
            f"{NO_BILL}: its adapter does the billing, so there is nothing independent to "
            "compare the adapter's billed time with"
        )
    return records


def new_bills(view: PlatformView, function: str, before: int) -> Sequence[BillingView]:
    """The requests billed since the platform's bill for `function` had `before` records."""
    return billing(view, function)[before:]
