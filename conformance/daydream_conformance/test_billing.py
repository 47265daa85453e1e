"""Billing, measured: what a cold start, a hot start and an engine run cost, checked against
the price table's own rules and, where the platform keeps a bill (`PlatformView.billing`),
against what the platform billed rather than what the adapter assumed.

Each case deploys a fresh function (a variant of the suite's runtime environment), so the
requests it bills are its own.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from daydream_conformance.support import (
    REPORTED_PRECISION_MS,
    TIMEOUT_S,
    Payload,
    billing,
    new_bills,
    variant,
)
from daydream_conformance.view import PlatformView, by_environment
from daydream_core.model import HIGH, LOW, StartKind
from daydream_core.provider import FunctionHandle, Provider
from daydream_core.workflow import RuntimeEnvironment, Workflow


def test_cold_start_bills_its_init(
    daydream_provider: Provider, daydream_runtime: RuntimeEnvironment, daydream_payload: Payload
) -> None:
    prices = daydream_provider.prices()
    function = daydream_provider.deploy(
        variant(daydream_runtime, "colorsys"), daydream_provider.tiers()[LOW]
    )
    cold = daydream_provider.invoke(function, daydream_payload("echo"), TIMEOUT_S)
    assert cold.start is StartKind.COLD
    assert cold.init_ms > 0, "a cold start ran an init, and its time must be reported"
    billable = cold.duration_ms + (cold.init_ms if prices.init_billed else 0.0)
    floor = prices.billed_ms(billable - REPORTED_PRECISION_MS)
    assert cold.billed_ms >= floor, (
        f"a cold start of {cold.duration_ms:.2f} ms + init {cold.init_ms:.2f} ms is billed "
        f"{cold.billed_ms} ms; {prices.name} bills at least {floor} ms"
        + (" (its init is billed)" if prices.init_billed else "")
    )
    daydream_provider.delete(function)


def test_invocations_bill_what_the_platform_billed(
    daydream_provider: Provider,
    daydream_runtime: RuntimeEnvironment,
    daydream_payload: Payload,
    daydream_view: PlatformView,
) -> None:
    function = daydream_provider.deploy(
        variant(daydream_runtime, "fractions"), daydream_provider.tiers()[LOW]
    )
    for expected in (StartKind.COLD, StartKind.WARM):
        before = len(billing(daydream_view, function.name))
        result = daydream_provider.invoke(function, daydream_payload("echo"), TIMEOUT_S)
        bills = new_bills(daydream_view, function.name, before)
        assert len(bills) == 1, f"one invocation, but the platform billed {len(bills)} requests"
        bill = bills[0]
        assert result.start is expected
        assert bill.environment == result.instance, "the adapter names another instance"
        assert result.billed_ms == pytest.approx(bill.billed_ms), (
            f"the adapter reports {result.billed_ms} ms billed, the platform billed "
            f"{bill.billed_ms} ms"
        )
        assert result.init_ms == pytest.approx(bill.init_ms, abs=REPORTED_PRECISION_MS)
        assert result.duration_ms == pytest.approx(bill.duration_ms, abs=REPORTED_PRECISION_MS)
        assert result.memory_mb == bill.memory_mb, "the adapter reports another memory size"
        if expected is StartKind.COLD:
            assert bill.init_ms > 0, "the platform ran no init for a new function's request"
    daydream_provider.delete(function)


def test_price_table_matches_the_platform_bill(
    daydream_provider: Provider,
    daydream_runtime: RuntimeEnvironment,
    daydream_payload: Payload,
    daydream_view: PlatformView,
) -> None:
    """The adapter's price table describes how the platform really bills: its granularity,
    and whether a cold start's init is billed."""
    prices = daydream_provider.prices()
    function = daydream_provider.deploy(
        variant(daydream_runtime, "shlex"), daydream_provider.tiers()[LOW]
    )
    before = len(billing(daydream_view, function.name))
    for _ in range(2):  # a cold start, then a warm one
        daydream_provider.invoke(function, daydream_payload("echo"), TIMEOUT_S)
    bills = new_bills(daydream_view, function.name, before)
    assert [b.init_ms > 0 for b in bills] == [True, False], "a cold then a warm request"
    for bill in bills:
        billable = bill.duration_ms + (bill.init_ms if prices.init_billed else 0.0)
        low = prices.billed_ms(billable - REPORTED_PRECISION_MS)
        high = prices.billed_ms(billable + REPORTED_PRECISION_MS)
        assert low <= bill.billed_ms <= high, (
            f"the platform billed {bill.billed_ms} ms for {bill.duration_ms:.2f} ms + init "
            f"{bill.init_ms:.2f} ms; price table {prices.name!r} (granularity "
            f"{prices.billing_granularity_ms:g} ms, init billed: {prices.init_billed}) says "
            f"{low:g} ms"
        )
    daydream_provider.delete(function)


def test_hot_start_bills_its_warm_up(
    daydream_provider: Provider, daydream_runtime: RuntimeEnvironment
) -> None:
    prices = daydream_provider.prices()
    function = daydream_provider.deploy(
        variant(daydream_runtime, "heapq"), daydream_provider.tiers()[LOW]
    )
    started = daydream_provider.warm(function, 2)
    assert started, "warm(f, 2) on a new function started nothing"
    for warm in started:
        assert warm.init_ms > 0, f"hot start {warm.instance} ran an init; report its time"
        billable = warm.init_ms if prices.init_billed else 0.0
        floor = prices.billed_ms(billable - REPORTED_PRECISION_MS)
        assert warm.billed_ms > 0 and warm.billed_ms >= floor, (
            f"hot start {warm.instance} (init {warm.init_ms:.2f} ms) is billed "
            f"{warm.billed_ms} ms; its warm-up is billed more than 0 and at least {floor:g} ms"
        )
    daydream_provider.delete(function)


def test_hot_start_bills_what_the_platform_billed(
    daydream_provider: Provider, daydream_runtime: RuntimeEnvironment, daydream_view: PlatformView
) -> None:
    function = daydream_provider.deploy(
        variant(daydream_runtime, "bisect"), daydream_provider.tiers()[LOW]
    )
    before = len(billing(daydream_view, function.name))
    started = daydream_provider.warm(function, 2)
    bills = by_environment(new_bills(daydream_view, function.name, before))
    reported = {warm.instance for warm in started}
    assert reported == set(bills), (
        f"warm-ups were billed on {sorted(bills)}, the adapter reports hot starts "
        f"{sorted(reported)}"
    )
    for warm in started:
        first = bills[warm.instance][0]  # the request that ran the environment's init
        assert warm.billed_ms == pytest.approx(first.billed_ms), (
            f"hot start {warm.instance}: the adapter reports {warm.billed_ms} ms billed, the "
            f"platform billed {first.billed_ms} ms"
        )
        assert warm.init_ms == pytest.approx(first.init_ms, abs=REPORTED_PRECISION_MS)
    daydream_provider.delete(function)


def test_engine_cost_is_the_platform_bill(
    daydream_provider: Provider,
    daydream_workflow: Workflow,
    daydream_view: PlatformView,
    tmp_path: Path,
) -> None:
    """A run's records, costed by the engine, add up to the price table applied to what the
    platform billed for them (the `cold` policy: no hot starts, so every billed request is a
    component's, or a probe's)."""
    from daydream_core.engine import Engine
    from daydream_core.plugins import policies
    from daydream_core.profile import ProfileStore

    tiers = daydream_provider.tiers()
    names = {tier: f.name for tier, f in _deployed(daydream_provider, daydream_workflow).items()}
    before = {tier: len(billing(daydream_view, name)) for tier, name in names.items()}
    engine = Engine(
        daydream_provider,
        ProfileStore(tmp_path / "profile.sqlite"),
        policies()["cold"],
        timeout_s=TIMEOUT_S,
    )
    try:
        preset = "small"
        run = engine.run(
            daydream_workflow,
            preset=preset,
            params=daydream_workflow.preset(preset).params,
            seed=0,
            run_index=1,
            out_dir=tmp_path / "out",
        )
    finally:
        engine.close()
    records = [r for phase in run.phases for r in [*phase.invocations, *phase.probes]]
    assert records and all(r.error is None for r in records)

    prices = daydream_provider.prices()
    recorded: dict[str, list[float]] = defaultdict(list)
    billed: dict[str, list[float]] = defaultdict(list)
    for record in records:
        recorded[record.instance].append(record.cost)
    for tier, name in names.items():
        vcpus = {e.id: e.vcpus for e in daydream_view.environments(name)}
        for bill in new_bills(daydream_view, name, before[tier]):
            share = vcpus.get(bill.environment) or tiers[tier].vcpus
            cost = prices.cost(bill.memory_mb, bill.billed_ms, vcpus=share)
            billed[bill.environment].append(cost)
    assert set(recorded) == set(billed), (
        f"the run's records name instances {sorted(recorded)}, the platform billed requests "
        f"on {sorted(billed)}"
    )
    for instance in recorded:
        assert sorted(recorded[instance]) == pytest.approx(sorted(billed[instance])), (
            f"on {instance} the engine recorded costs {sorted(recorded[instance])}, the price "
            f"table applied to the platform's bill gives {sorted(billed[instance])}"
        )
    assert run.cost == pytest.approx(sum(sum(costs) for costs in billed.values()))


def _deployed(provider: Provider, workflow: Workflow) -> dict[str, FunctionHandle]:
    """The workflow's functions per tier, as the engine deploys them (idempotently)."""
    tiers = provider.tiers()
    return {tier: provider.deploy(workflow.runtime, tiers[tier]) for tier in (HIGH, LOW)}
