"""The provider contract, case by case, against any provider.

Collected only when asked for (``pytest --pyargs daydream_conformance --daydream-provider
NAME``). Cases run in the order written; `test_cleanup_leaves_nothing` comes last on purpose.
Fresh functions for the start-kind cases are deployed from variants of the suite's runtime
environment (an extra harmless preload changes the hashed name), so earlier cases' instances
cannot blur what is observed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from daydream_conformance.environment import ConformanceEnvironment
from daydream_conformance.support import TIMEOUT_S, Payload, variant
from daydream_conformance.workflow import FAILURE_MARKER
from daydream_core.errors import ComponentFailed, FunctionNotFound, FunctionTimeout
from daydream_core.model import HIGH, LOW, TIER_NAMES, StartKind, Tier
from daydream_core.pricing import PriceTable
from daydream_core.provider import NAME_PREFIX, FunctionHandle, Provider, function_name
from daydream_core.workflow import RuntimeEnvironment

CONCURRENCY = 20
SLEEP_S = 3.0  # the timeout case: a component that runs for this long ...
SHORT_TIMEOUT_S = 1.0  # ... under this timeout
LARGEST_PAYLOAD_TESTED = 64 * 1024 * 1024


# -- what the provider declares --------------------------------------------------------------


def test_tiers_offer_high_and_low(daydream_provider: Provider) -> None:
    tiers = daydream_provider.tiers()
    for name in TIER_NAMES:
        assert name in tiers, f"no {name!r} tier"
        tier = tiers[name]
        assert isinstance(tier, Tier)
        assert tier.name == name
        assert tier.memory_mb > 0
        assert tier.vcpus > 0
    assert tiers[HIGH].memory_mb >= tiers[LOW].memory_mb


def test_price_table_present_and_consistent(daydream_provider: Provider) -> None:
    prices = daydream_provider.prices()
    assert isinstance(prices, PriceTable)
    assert prices.name and prices.currency
    assert prices.per_gb_second > 0
    assert prices.per_request >= 0
    assert prices.billing_granularity_ms > 0
    step = prices.billing_granularity_ms
    for duration in (0.3, 1.0, 99.9, 1234.5):
        billed = prices.billed_ms(duration)
        assert billed >= duration
        assert billed - duration < step + 1e-9
    tiers = daydream_provider.tiers()
    for tier in tiers.values():
        one = prices.cost(tier.memory_mb, 1000.0)
        assert one > prices.per_request
        assert prices.cost(tier.memory_mb, 2000.0) > one
        if prices.init_billed:
            assert prices.cost(tier.memory_mb, 1000.0, init_ms=500.0) > one
    assert prices.cost(tiers[HIGH].memory_mb, 1000.0) >= prices.cost(tiers[LOW].memory_mb, 1000.0)


def test_capabilities_declared(daydream_provider: Provider) -> None:
    capabilities = daydream_provider.capabilities()
    assert capabilities.max_payload_bytes > 0
    assert capabilities.max_concurrency >= 1
    assert isinstance(capabilities.releases_instances, bool)


# -- deploy and invoke -----------------------------------------------------------------------


@pytest.mark.parametrize("tier_name", TIER_NAMES)
def test_deploy_each_tier_with_its_memory(
    tier_name: str,
    daydream_provider: Provider,
    daydream_runtime: RuntimeEnvironment,
    daydream_functions: dict[str, FunctionHandle],
    daydream_payload: Payload,
) -> None:
    tier = daydream_provider.tiers()[tier_name]
    function = daydream_functions[tier_name]
    assert function.tier == tier
    assert function.runtime == daydream_runtime
    assert function.name == function_name(daydream_runtime, tier), "names must be the hashed ones"
    again = daydream_provider.deploy(daydream_runtime, tier)
    assert again.name == function.name, "deploy must be idempotent"

    result = daydream_provider.invoke(function, daydream_payload("echo", {"value": 1}), TIMEOUT_S)
    assert result.memory_mb == tier.memory_mb, "the provider reports another memory size"
    assert result.output["tier"] == tier_name
    assert result.output["memory_mb"] == tier.memory_mb


def test_invoke_returns_the_component_result(
    daydream_provider: Provider,
    daydream_functions: dict[str, FunctionHandle],
    daydream_payload: Payload,
) -> None:
    value = {"numbers": [1, 2.5, -3], "text": "ünïcødé", "nothing": None, "flag": True}
    payload = daydream_payload("echo", {"value": value})
    result = daydream_provider.invoke(daydream_functions[LOW], payload, TIMEOUT_S)
    assert result.output["value"] == value
    assert result.output["component"] == payload["component"]
    assert isinstance(result.instance, str) and result.instance
    assert isinstance(result.start, StartKind)
    assert result.init_ms >= 0
    assert result.duration_ms >= 0
    assert result.billed_ms >= result.duration_ms
    assert 0 <= result.max_memory_used_mb <= result.memory_mb


def test_store_round_trip_and_component_outputs(
    daydream_provider: Provider,
    daydream_functions: dict[str, FunctionHandle],
    daydream_payload: Payload,
) -> None:
    store = daydream_provider.store()
    prefix = f"conformance-{uuid.uuid4().hex[:8]}"
    store.put(f"{prefix}/a.bin", b"\x00\x01")
    store.put_json(f"{prefix}/b.json", {"x": 1})
    assert store.get(f"{prefix}/a.bin") == b"\x00\x01"
    assert store.exists(f"{prefix}/b.json")
    assert store.list(prefix) == [f"{prefix}/a.bin", f"{prefix}/b.json"]
    with pytest.raises(KeyError):
        store.get(f"{prefix}/missing")

    payload = daydream_payload("echo", {"value": {"y": [1, 2]}, "key": "out.json"})
    payload["run_id"] = prefix
    result = daydream_provider.invoke(daydream_functions[LOW], payload, TIMEOUT_S)
    assert store.get_json(result.output["stored"]) == {"y": [1, 2]}
    assert store.delete(prefix) == 3
    assert store.list(prefix) == []


# -- start kinds: measured, not assumed ------------------------------------------------------


def test_cold_start_is_reported_cold(
    daydream_provider: Provider, daydream_runtime: RuntimeEnvironment, daydream_payload: Payload
) -> None:
    tier = daydream_provider.tiers()[LOW]
    function = daydream_provider.deploy(variant(daydream_runtime, "string"), tier)
    first = daydream_provider.invoke(function, daydream_payload("echo"), TIMEOUT_S)
    assert first.start is StartKind.COLD, "a brand-new function's first invocation is cold"
    assert first.init_ms >= 0
    second = daydream_provider.invoke(function, daydream_payload("echo"), TIMEOUT_S)
    assert second.start is StartKind.WARM, "an instance reused after a component is warm"
    assert second.instance == first.instance
    daydream_provider.delete(function)


def test_hot_started_instances_are_reported_hot(
    daydream_provider: Provider, daydream_runtime: RuntimeEnvironment, daydream_payload: Payload
) -> None:
    tier = daydream_provider.tiers()[LOW]
    function = daydream_provider.deploy(variant(daydream_runtime, "json"), tier)
    started = daydream_provider.warm(function, 2)
    ids = {warm.instance for warm in started}
    assert len(started) == 2 and len(ids) == 2, f"warm(2) started {sorted(ids)}"
    for warm in started:
        assert warm.init_ms >= 0 and warm.billed_ms >= 0

    # Three components one after the other on two hot instances: each instance is hot for
    # its first component, so at most two are hot and at least one is warm; none is cold.
    results = [
        daydream_provider.invoke(function, daydream_payload("echo"), TIMEOUT_S) for _ in range(3)
    ]
    starts = Counter(r.start for r in results)
    assert results[0].start is StartKind.HOT, "the first component on a hot instance is hot"
    assert {r.instance for r in results} <= ids, "components went past the idle hot instances"
    assert starts[StartKind.COLD] == 0
    assert 1 <= starts[StartKind.HOT] <= 2
    assert starts[StartKind.WARM] >= 1
    hot_instances = [r.instance for r in results if r.start is StartKind.HOT]
    assert len(hot_instances) == len(set(hot_instances)), "an instance was hot twice"
    daydream_provider.delete(function)


def test_instances_lists_what_is_alive(
    daydream_provider: Provider, daydream_runtime: RuntimeEnvironment, daydream_payload: Payload
) -> None:
    tier = daydream_provider.tiers()[HIGH]
    function = daydream_provider.deploy(variant(daydream_runtime, "base64"), tier)
    assert daydream_provider.instances(function) == [], "a new function has no instances"
    started = {warm.instance for warm in daydream_provider.warm(function, 2)}
    served = daydream_provider.invoke(function, daydream_payload("echo"), TIMEOUT_S).instance
    alive = set(daydream_provider.instances(function))
    assert started <= alive, "hot-started instances are alive"
    assert served in alive, "an instance that just served is alive"
    daydream_provider.delete(function)
    assert daydream_provider.instances(function) == [], "a deleted function has no instances"


# -- not found, delete, list -----------------------------------------------------------------


def test_invoking_a_missing_function_raises_not_found(
    daydream_provider: Provider, daydream_runtime: RuntimeEnvironment, daydream_payload: Payload
) -> None:
    tier = daydream_provider.tiers()[LOW]
    missing = FunctionHandle(
        daydream_provider.name,
        f"{NAME_PREFIX}conformance-missing-{uuid.uuid4().hex[:10]}",
        daydream_runtime,
        tier,
    )
    with pytest.raises(FunctionNotFound):
        daydream_provider.invoke(missing, daydream_payload("echo"), TIMEOUT_S)


def test_delete_is_idempotent(
    daydream_provider: Provider, daydream_runtime: RuntimeEnvironment, daydream_payload: Payload
) -> None:
    tier = daydream_provider.tiers()[LOW]
    function = daydream_provider.deploy(variant(daydream_runtime, "textwrap"), tier)
    daydream_provider.invoke(function, daydream_payload("echo"), TIMEOUT_S)
    assert function.name in daydream_provider.list()
    daydream_provider.delete(function)
    daydream_provider.delete(function)
    assert function.name not in daydream_provider.list()
    with pytest.raises(FunctionNotFound):
        daydream_provider.invoke(function, daydream_payload("echo"), TIMEOUT_S)


def test_list_by_prefix(
    daydream_provider: Provider, daydream_functions: dict[str, FunctionHandle]
) -> None:
    names = daydream_provider.list()
    assert all(name.startswith(NAME_PREFIX) for name in names)
    for function in daydream_functions.values():
        assert function.name in names
    high = daydream_functions[HIGH].name
    assert daydream_provider.list(high) == [high]
    assert daydream_provider.list(f"{NAME_PREFIX}no-such-{uuid.uuid4().hex[:8]}-") == []


# -- concurrency, errors, limits -------------------------------------------------------------


def test_concurrent_invocations(
    daydream_provider: Provider,
    daydream_functions: dict[str, FunctionHandle],
    daydream_payload: Payload,
) -> None:
    function = daydream_functions[LOW]
    payloads = [daydream_payload("echo", {"value": i}) for i in range(CONCURRENCY)]
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(
            pool.map(lambda p: daydream_provider.invoke(function, p, TIMEOUT_S), payloads)
        )
    assert [r.output["value"] for r in results] == list(range(CONCURRENCY))
    assert all(r.instance for r in results)
    # Stop the idle instances where the provider can, so later cases have room under its
    # concurrency limit.
    daydream_provider.release(function, 0)


def test_component_exception_surfaces_typed_with_remote_traceback(
    daydream_provider: Provider,
    daydream_functions: dict[str, FunctionHandle],
    daydream_payload: Payload,
) -> None:
    function = daydream_functions[LOW]
    with pytest.raises(ComponentFailed) as failure:
        daydream_provider.invoke(function, daydream_payload("fail", {"message": "m1"}), TIMEOUT_S)
    assert failure.value.kind == "fail"
    assert FAILURE_MARKER in failure.value.message and "m1" in failure.value.message
    remote = failure.value.remote_traceback
    assert "ValueError" in remote, "the remote traceback names the exception"
    assert "_raise_inner" in remote, "the remote traceback shows the component's frames"
    after = daydream_provider.invoke(function, daydream_payload("echo", {"value": 2}), TIMEOUT_S)
    assert after.output["value"] == 2


def test_payload_over_the_limit_goes_through_storage(
    daydream_provider: Provider,
    daydream_functions: dict[str, FunctionHandle],
    daydream_payload: Payload,
) -> None:
    limit = daydream_provider.capabilities().max_payload_bytes
    if limit >= LARGEST_PAYLOAD_TESTED:
        pytest.skip(f"payload limit {limit} B is beyond what the suite sends")
    function = daydream_functions[LOW]
    blob = "x" * (limit + 1)
    result = daydream_provider.invoke(function, daydream_payload("big", {"blob": blob}), TIMEOUT_S)
    assert result.output["received"] == len(blob)
    assert result.output["sha256"] == hashlib.sha256(blob.encode()).hexdigest()
    del blob
    payload = daydream_payload("big", {"size": limit + 1})
    result = daydream_provider.invoke(function, payload, TIMEOUT_S)
    assert len(result.output["blob"]) == limit + 1


def test_timeout_surfaces_typed(
    daydream_provider: Provider,
    daydream_functions: dict[str, FunctionHandle],
    daydream_payload: Payload,
) -> None:
    function = daydream_functions[HIGH]
    with pytest.raises(FunctionTimeout):
        daydream_provider.invoke(
            function, daydream_payload("sleep", {"seconds": SLEEP_S}), SHORT_TIMEOUT_S
        )
    after = daydream_provider.invoke(function, daydream_payload("echo", {"value": 3}), TIMEOUT_S)
    assert after.output["value"] == 3


# -- last: cleanup ---------------------------------------------------------------------------


def test_cleanup_leaves_nothing(
    daydream_provider: Provider,
    daydream_environment: ConformanceEnvironment,
    daydream_functions: dict[str, FunctionHandle],
) -> None:
    deployed = daydream_provider.list()
    assert deployed, "the suite's functions should still be deployed here"
    preview = daydream_provider.cleanup(dry_run=True)
    for name in deployed:
        assert any(name in entry for entry in preview), f"a dry run does not mention {name}"
    assert daydream_provider.list() == deployed, "a dry run removed something"

    removed = daydream_provider.cleanup()
    for name in deployed:
        assert any(name in entry for entry in removed), f"cleanup does not report {name}"
    assert daydream_provider.list() == []
    assert daydream_provider.cleanup(dry_run=True) == []
    if daydream_environment.leftovers is not None:
        assert daydream_environment.leftovers() == []
