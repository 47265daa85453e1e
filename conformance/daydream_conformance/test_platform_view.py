"""Starts and instances, checked against the platform's own view (`PlatformView`): what `warm`
started, what `instances` lists, which environment served a component and whether that was
its cold, hot or warm start, and with how much memory environments really run.

Every case here needs the view; without one (a live service) each is skipped, saying so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from daydream_conformance.support import TIMEOUT_S, Payload, variant
from daydream_conformance.view import PlatformView, alive, by_environment
from daydream_core.model import HIGH, LOW, TIER_NAMES, StartKind
from daydream_core.provider import FunctionHandle, Invocation, Provider
from daydream_core.workflow import RuntimeEnvironment

OVERLAP_S = 0.3  # a component this long keeps its instance busy while the next arrives


def test_warm_starts_exactly_n_environments(
    daydream_provider: Provider, daydream_runtime: RuntimeEnvironment, daydream_view: PlatformView
) -> None:
    tier = daydream_provider.tiers()[LOW]
    function = daydream_provider.deploy(variant(daydream_runtime, "difflib"), tier)
    before = alive(daydream_view.environments(function.name))
    started = daydream_provider.warm(function, 2)
    after = alive(daydream_view.environments(function.name))
    new = set(after) - set(before)
    reported = [warm.instance for warm in started]
    assert len(new) == 2, f"warm(f, 2) left {len(new)} more live environments on the platform"
    assert sorted(reported) == sorted(new), (
        f"the platform started {sorted(new)}, the adapter reports {reported}"
    )
    daydream_provider.delete(function)


def test_instances_agree_with_the_platform(
    daydream_provider: Provider,
    daydream_runtime: RuntimeEnvironment,
    daydream_payload: Payload,
    daydream_view: PlatformView,
) -> None:
    function = daydream_provider.deploy(
        variant(daydream_runtime, "calendar"), daydream_provider.tiers()[HIGH]
    )

    def agree(when: str) -> None:
        platform = sorted(alive(daydream_view.environments(function.name)))
        listed = sorted(daydream_provider.instances(function))
        assert listed == platform, (
            f"{when}: instances() lists {listed}, the platform runs {platform}"
        )

    agree("a new function")
    daydream_provider.warm(function, 1)
    agree("after warm(f, 1)")
    _concurrently(daydream_provider, function, daydream_payload, 3)
    agree("after three overlapping components")
    daydream_provider.delete(function)
    assert alive(daydream_view.environments(function.name)) == {}, (
        "the platform still runs environments of the deleted function"
    )
    agree("after delete(f)")


def test_start_kinds_agree_with_the_platform(
    daydream_provider: Provider,
    daydream_runtime: RuntimeEnvironment,
    daydream_payload: Payload,
    daydream_view: PlatformView,
) -> None:
    """An environment's first request is a cold start unless it was started ahead (a hot
    start: then its first component is hot); every later component on it is warm."""
    function = daydream_provider.deploy(
        variant(daydream_runtime, "statistics"), daydream_provider.tiers()[LOW]
    )
    name = function.name
    daydream_provider.warm(function, 1)
    ahead = set(alive(daydream_view.environments(name)))
    assert len(ahead) == 1, f"warm(f, 1) on a new function started {sorted(ahead)}"
    served: Counter[str] = Counter()  # components per environment so far
    for width in (1, 1, 3):
        known = {e.id for e in daydream_view.environments(name)}
        bills = daydream_view.billing(name)
        before = len(bills) if bills is not None else 0
        results = _concurrently(daydream_provider, function, daydream_payload, width)
        on = by_instance(results)
        unknown = set(on) - {e.id for e in daydream_view.environments(name)}
        assert not unknown, f"the adapter names instances the platform never ran: {unknown}"
        bills = daydream_view.billing(name)
        if bills is not None:  # where the platform bills, it billed each component once there
            billed = {e: len(b) for e, b in by_environment(bills[before:]).items()}
            counts = {e: len(r) for e, r in on.items()}
            assert counts == billed, (
                f"the adapter reports components on {counts}, the platform billed {billed}"
            )
        for environment, kinds in on.items():
            if environment not in known:
                expected = [StartKind.COLD] + [StartKind.WARM] * (len(kinds) - 1)
            elif environment in ahead and served[environment] == 0:
                expected = [StartKind.HOT] + [StartKind.WARM] * (len(kinds) - 1)
            else:
                expected = [StartKind.WARM] * len(kinds)
            assert sorted(kinds) == sorted(expected), (
                f"on {environment} the adapter reports {[k.value for k in kinds]}, the "
                f"platform's view says {[k.value for k in expected]}"
            )
            served[environment] += len(kinds)
    daydream_provider.delete(function)


@pytest.mark.parametrize("tier_name", TIER_NAMES)
def test_environments_run_with_their_tier_memory(
    tier_name: str,
    daydream_provider: Provider,
    daydream_functions: dict[str, FunctionHandle],
    daydream_payload: Payload,
    daydream_view: PlatformView,
) -> None:
    tier = daydream_provider.tiers()[tier_name]
    function = daydream_functions[tier_name]
    daydream_provider.invoke(function, daydream_payload("echo"), TIMEOUT_S)
    environments = alive(daydream_view.environments(function.name))
    assert environments, "the function just served, yet the platform shows no live environment"
    for environment in environments.values():
        assert environment.memory_mb == tier.memory_mb, (
            f"environment {environment.id} runs with {environment.memory_mb} MB; its tier "
            f"{tier_name} has {tier.memory_mb} MB"
        )
        if environment.vcpus:
            assert environment.vcpus == pytest.approx(tier.vcpus, rel=0.01)


def by_instance(results: Sequence[Invocation]) -> Mapping[str, list[StartKind]]:
    """The start kinds the adapter reports, per instance."""
    grouped: dict[str, list[StartKind]] = {}
    for result in results:
        grouped.setdefault(result.instance, []).append(result.start)
    return grouped


def _concurrently(
    provider: Provider, function: FunctionHandle, payload: Payload, width: int
) -> list[Invocation]:
    """`width` components at once, each long enough to overlap the others."""
    payloads = [payload("sleep", {"seconds": OVERLAP_S}) for _ in range(width)]
    with ThreadPoolExecutor(max_workers=width) as pool:
        return list(pool.map(lambda p: provider.invoke(function, p, TIMEOUT_S), payloads))
