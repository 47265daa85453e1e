"""Fault injection and the retry policy, in process: the plan, what the runtime executes, what
is retried where, the lesson of an out-of-memory, and placement reading it."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from daydream_conformance.workflow import workflow as conformance_workflow

from daydream_core import auth
from daydream_core.backoff import Backoff, recording
from daydream_core.errors import (
    ComponentFailed,
    ConfigurationError,
    FunctionNotFound,
    FunctionTimeout,
    InstanceLost,
    OutOfMemory,
    PayloadRejected,
    StoreUnavailable,
    Throttled,
)
from daydream_core.faults import FaultPlan, FaultyStore, InstanceKill, from_environment
from daydream_core.model import HIGH, LOW, AttemptRecord, Tier
from daydream_core.objectstore import LocalObjectStore
from daydream_core.policies.placement import SlackPlacement
from daydream_core.pricing import AWS_LAMBDA_X86
from daydream_core.profile import ProfileStore
from daydream_core.retries import Retry, RetryPolicy, fault_of
from daydream_core.runtime import FunctionRuntime, envelope_error, raise_for_envelope

TIERS = {HIGH: Tier(HIGH, 10240, 6.0), LOW: Tier(LOW, 5120, 3.0)}
KEY = auth.new_key()

# -- the plan -----------------------------------------------------------------------------------


def test_a_spec_round_trips_through_its_canonical_form() -> None:
    plan = FaultPlan.parse(" seed=7, kill=0.1,oom=1, throttle=0.3 ,attempts=2,hang=5 ")
    assert plan.rates == {"kill": 0.1, "oom": 1.0, "throttle": 0.3}
    assert (plan.seed, plan.attempts, plan.hang_s) == (7, 2, 5.0)
    assert FaultPlan.parse(plan.spec) == plan


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("kill", "is not NAME=VALUE"),
        ("explode=0.5", "valid: kill, oom, timeout, throttle, store_fail, store_slow"),
        ("kill=1.5", "kill='1.5' must be a fraction in [0, 1]"),
        ("oom=nan", "must be a fraction"),
        ("seed=-1", "seed must be an integer"),
        ("seed=1.5", "seed must be an integer"),
        ("attempts=0", "attempts must be a whole number"),
        ("hang=inf", "hang must be seconds"),
        ("store_delay=-1", "store_delay must be seconds"),
    ],
)
def test_a_bad_spec_is_one_line_naming_what_is_valid(spec: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        FaultPlan.parse(spec)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("DAYDREAM_FAULTS: ")


def test_off_unless_the_variable_is_set() -> None:
    assert from_environment({}) is None
    assert from_environment({"DAYDREAM_FAULTS": "  "}) is None
    assert from_environment({"DAYDREAM_FAULTS": "kill=1"}) == FaultPlan({"kill": 1.0})


def test_decisions_are_seeded_hashes_at_the_given_rate() -> None:
    plan = FaultPlan({"kill": 0.3}, seed=3)
    subjects = [f"p1-c{i}" for i in range(4000)]
    struck = [s for s in subjects if plan.strikes("kill", s)]
    assert abs(len(struck) / len(subjects) - 0.3) < 0.03
    # The same plan strikes the same subjects, in any order; another seed others.
    assert struck == [s for s in reversed(subjects) if plan.strikes("kill", s)][::-1]
    other = FaultPlan({"kill": 0.3}, seed=4)
    assert struck != [s for s in subjects if other.strikes("kill", s)]
    assert not any(plan.strikes("oom", s) for s in subjects)  # a fault with no rate: never


def test_attempts_limits_which_attempts_are_struck() -> None:
    plan = FaultPlan({"kill": 1.0}, attempts=2)
    assert [plan.strikes("kill", "c", attempt) for attempt in (1, 2, 3, 4)] == [
        True,
        True,
        False,
        False,
    ]


# -- what the runtime executes ------------------------------------------------------------------


def _runtime(tmp_path: Path, plan: FaultPlan, tier: str = LOW) -> FunctionRuntime:
    store = LocalObjectStore(tmp_path / "store")
    return FunctionRuntime(
        conformance_workflow.runtime, TIERS[tier], 1, store_uri=store.uri, key=KEY, faults=plan
    )


def _store_payload(attempt: int = 1) -> dict[str, object]:
    payload = {
        "kind": "echo",
        "args": {"value": 1, "key": "out"},
        "run_id": "r1",
        "component": "p1-c1",
        "attempt": attempt,
    }
    return auth.sign(payload, KEY)


def test_outputs_are_under_the_attempts_own_keys(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, FaultPlan())
    for attempt in (1, 2):
        envelope = runtime.handle(_store_payload(attempt))
        assert envelope["ok"] and envelope["output"]["stored"] == f"r1/p1-c1/a{attempt}/out"
    assert LocalObjectStore(tmp_path / "store").list() == ["r1/p1-c1/a1/out", "r1/p1-c1/a2/out"]


def test_a_kill_ends_the_instance_after_the_component_wrote_its_outputs(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, FaultPlan({"kill": 1.0}, attempts=1))
    with pytest.raises(InstanceKill):
        runtime.handle(_store_payload(1))
    assert LocalObjectStore(tmp_path / "store").list() == ["r1/p1-c1/a1/out"]
    assert runtime.handle(_store_payload(2))["ok"]  # the next attempt is not struck


def test_out_of_memory_strikes_a_kind_below_the_high_tier_only(tmp_path: Path) -> None:
    plan = FaultPlan({"oom": 1.0})
    low = _runtime(tmp_path, plan, LOW).handle(_store_payload())
    assert not low["ok"] and low["error"]["type"] == "memory"
    assert isinstance(envelope_error(low["error"]), OutOfMemory)
    assert _runtime(tmp_path, plan, HIGH).handle(_store_payload())["ok"]
    assert LocalObjectStore(tmp_path / "store").list() == ["r1/p1-c1/a1/out"]  # high's only


def test_a_failing_store_is_a_retryable_store_error(tmp_path: Path) -> None:
    envelope = _runtime(tmp_path, FaultPlan({"store_fail": 1.0})).handle(_store_payload())
    assert not envelope["ok"] and envelope["error"]["type"] == "store"
    with pytest.raises(StoreUnavailable, match="injected fault"):
        raise_for_envelope(envelope)


def test_a_faulty_store_fails_the_operations_the_plan_strikes(tmp_path: Path) -> None:
    plan = FaultPlan({"store_fail": 0.5}, seed=1)
    store = FaultyStore(LocalObjectStore(tmp_path), plan, "p1-c1", 1)
    outcomes = []
    for i in range(40):
        try:
            store.put(f"k{i}", b"x")
            outcomes.append(True)
        except StoreUnavailable:
            outcomes.append(False)
    assert 10 < outcomes.count(False) < 30
    assert store.uri == LocalObjectStore(tmp_path).uri
    assert len(LocalObjectStore(tmp_path).list()) == outcomes.count(True)


def test_a_runtime_without_a_plan_injects_nothing(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    runtime = FunctionRuntime(
        conformance_workflow.runtime, TIERS[LOW], 1, store_uri=store.uri, key=KEY
    )
    assert runtime.handle(_store_payload())["ok"]
    bad = runtime.handle(auth.sign({**_store_payload(), "attempt": 0}, KEY))
    assert bad["error"]["type"] == "rejected" and "attempt" in bad["error"]["message"]


# -- the retry policy ---------------------------------------------------------------------------


def _failed(fault: str, tier: str = LOW, by: str = "engine") -> AttemptRecord:
    return AttemptRecord(1, tier, fault, "", by=by)


def _decide(
    error: Exception,
    tier: str = LOW,
    attempts: list[AttemptRecord] | None = None,
    timings: dict[str, dict[str, float]] | None = None,
    policy: RetryPolicy | None = None,
) -> Retry | None:
    policy = policy or RetryPolicy(Backoff(max_attempts=4, base_s=0.2, rng=random.Random(1)))
    return policy.decide(
        error,
        kind="fit",
        tier=tier,
        attempts=attempts if attempts is not None else [_failed(fault_of(error), tier)],
        tiers=TIERS,
        timings=timings or {},
        timeout_s=10.0,
    )


def test_throttling_gets_more_attempts_than_faults_that_reached_the_component() -> None:
    throttled = [_failed("throttled")]
    assert _decide(Throttled("429"), attempts=throttled * 7) is not None
    assert _decide(Throttled("429"), attempts=throttled * 8) is None
    assert _decide(InstanceLost("killed"), attempts=throttled * 5 + [_failed("lost")]) is not None


@pytest.mark.parametrize("error", [InstanceLost("killed", signal=9), StoreUnavailable("503")])
def test_faults_that_reached_the_component_are_retried_after_a_bounded_wait(
    error: Exception,
) -> None:
    retry = _decide(error, HIGH)
    assert retry is not None and retry.tier == HIGH and 0.0 <= retry.wait_s <= 0.2
    assert _decide(error, HIGH, attempts=[_failed(fault_of(error), HIGH)] * 4) is None


@pytest.mark.parametrize(
    "error", [Throttled("429"), InstanceLost("killed", signal=9), StoreUnavailable("503")]
)
def test_transient_faults_are_retried_on_the_same_tier_after_a_bounded_wait(
    error: Exception,
) -> None:
    retry = _decide(error, HIGH)
    assert retry is not None and retry.tier == HIGH and 0.0 <= retry.wait_s <= 0.2
    later = _decide(error, HIGH, attempts=[_failed(fault_of(error), HIGH)] * 3)
    assert later is not None and later.wait_s <= 0.8  # 0.2 * 2**2


def test_the_providers_own_retries_do_not_use_up_the_engines_attempts() -> None:
    attempts = [_failed("throttled", by="provider")] * 5 + [_failed("throttled")]
    assert _decide(Throttled("429"), attempts=attempts) is not None


def test_out_of_memory_on_low_is_retried_once_on_high_at_once() -> None:
    assert _decide(OutOfMemory("low")) == Retry(HIGH, 0.0)
    assert _decide(OutOfMemory("high"), HIGH) is None


def test_a_timeout_is_retried_only_when_the_kind_is_known_to_finish_well_within_it() -> None:
    error = FunctionTimeout("past 10 s")
    assert _decide(error) is None  # nothing known: it may simply need longer
    assert _decide(error, timings={"fit": {LOW: 8.0}}) is None  # it needs most of the timeout
    assert _decide(error, timings={"fit": {HIGH: 1.0}}) is None  # known elsewhere only
    assert _decide(error, timings={"fit": {LOW: 1.0}}) == Retry(LOW, 0.0)  # it hung
    twice = [_failed("timeout"), _failed("timeout")]
    assert _decide(error, attempts=twice, timings={"fit": {LOW: 1.0}}) is None


@pytest.mark.parametrize(
    "error",
    [ComponentFailed("fit", "ValueError: x"), PayloadRejected("unsigned"), FunctionNotFound("x")],
)
def test_what_would_fail_the_same_way_again_is_not_retried(error: Exception) -> None:
    assert _decide(error) is None


def test_the_backoff_notes_its_retries_where_a_log_is_open() -> None:
    failures = iter([Throttled("one"), Throttled("two")])

    def flaky() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "done"

    backoff = Backoff(max_attempts=5, base_s=0.1, sleep=lambda s: None)
    with recording() as log:
        assert backoff.call(flaky, lambda e: isinstance(e, Throttled)) == "done"
    assert [(r.attempt, str(r.error)) for r in log] == [(1, "one"), (2, "two")]
    assert all(0.0 <= r.wait_s <= backoff.ceiling(r.attempt) for r in log)
    assert backoff.call(lambda: "quiet", lambda e: True) == "quiet"  # no log open: no effect


# -- the lesson of an out-of-memory -------------------------------------------------------------


def test_the_profile_keeps_the_largest_memory_a_kind_ran_out_of(tmp_path: Path) -> None:
    profile = ProfileStore(tmp_path / "profile.sqlite")
    profile.record_out_of_memory("app", "local", [("fit", 2048), ("merge", 1024)])
    profile.record_out_of_memory("app", "local", [("fit", 5120), ("merge", 512)])
    assert profile.memory_floors("app", "local") == {"fit": 5120, "merge": 1024}
    assert profile.memory_floors("app", "aws") == {}
    assert profile.reset("app") >= 2 and profile.memory_floors("app", "local") == {}


def test_placement_sends_a_kind_that_never_finishes_on_low_to_high() -> None:
    timings = {
        "fit": {HIGH: 2.0, LOW: math.inf},  # ran out of memory on low
        "a": {HIGH: 1.0, LOW: 1.2},
        "b": {HIGH: 1.0, LOW: 1.3},
    }
    placement = SlackPlacement(slack=0.5)
    assert placement.place(["fit", "a", "b", "fit"], timings, TIERS, AWS_LAMBDA_X86) == [
        HIGH,
        LOW,
        LOW,
        HIGH,
    ]
