"""Throttling and transient failures: bounded exponential backoff with jitter, no waiting here."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from daydream_aws import faults
from daydream_aws.testing import LambdaFake, fake_provider
from daydream_conformance.workflow import workflow
from hypothesis import given
from hypothesis import strategies as st

from daydream_core.backoff import Backoff
from daydream_core.errors import ProviderError, Throttled


class Flaky:
    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def test_retries_until_success_with_bounded_waits() -> None:
    waits: list[float] = []
    backoff = Backoff(5, 0.1, 0.3, rng=random.Random(1), sleep=waits.append)
    operation = Flaky(3, Throttled("slow down"))
    assert backoff.call(operation, faults.retryable) == "done"
    assert operation.calls == 4
    assert len(waits) == 3
    for attempt, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(0.3, 0.1 * 2 ** (attempt - 1))


def test_gives_up_after_max_attempts() -> None:
    waits: list[float] = []
    backoff = Backoff(max_attempts=3, base_s=0.1, sleep=waits.append)
    operation = Flaky(10, Throttled("slow down"))
    with pytest.raises(Throttled):
        backoff.call(operation, faults.retryable)
    assert operation.calls == 3
    assert len(waits) == 2


def test_does_not_retry_what_is_not_retryable() -> None:
    waits: list[float] = []
    operation = Flaky(1, ProviderError("bad request"))
    with pytest.raises(ProviderError):
        Backoff(sleep=waits.append).call(operation, faults.retryable)
    assert operation.calls == 1 and waits == []


@given(
    attempt=st.integers(min_value=1, max_value=60),
    base=st.floats(min_value=0.0, max_value=5.0),
    cap=st.floats(min_value=0.0, max_value=60.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_delay_never_exceeds_its_ceiling(attempt: int, base: float, cap: float, seed: int) -> None:
    backoff = Backoff(base_s=base, cap_s=cap, rng=random.Random(seed))
    ceiling = backoff.ceiling(attempt)
    assert ceiling <= cap
    assert 0.0 <= backoff.delay(attempt) <= ceiling


def test_ceiling_doubles_until_the_cap() -> None:
    backoff = Backoff(base_s=0.25, cap_s=3.0)
    assert [backoff.ceiling(k) for k in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]


# -- against the fake: 429 and 500 answers, parsed by botocore, retried by the adapter --------


@pytest.fixture
def fake() -> Iterator[LambdaFake]:
    with LambdaFake() as lambda_fake:
        yield lambda_fake


def test_throttled_invocations_are_retried(fake: LambdaFake, tmp_path: Path) -> None:
    provider = fake_provider(fake, tmp_path, max_attempts="4")
    function = provider.deploy(workflow.runtime, provider.tiers()["low"])
    fake.throttle(3)
    before = fake.invocations
    result = provider.invoke(function, {"kind": "echo", "args": {"value": 7}}, 30)
    assert result.output["value"] == 7
    assert fake.invocations - before == 4  # three 429s, then the answer


def test_throttling_past_the_attempts_raises_throttled(fake: LambdaFake, tmp_path: Path) -> None:
    provider = fake_provider(fake, tmp_path, max_attempts="3")
    function = provider.deploy(workflow.runtime, provider.tiers()["low"])
    fake.throttle(100)
    before = fake.invocations
    with pytest.raises(Throttled, match="TooManyRequestsException"):
        provider.invoke(function, {"kind": "echo"}, 30)
    assert fake.invocations - before == 3


def test_transient_failures_are_retried_then_reported(fake: LambdaFake, tmp_path: Path) -> None:
    provider = fake_provider(fake, tmp_path, max_attempts="3")
    function = provider.deploy(workflow.runtime, provider.tiers()["low"])
    fake.fail_transiently(2)
    result = provider.invoke(function, {"kind": "echo", "args": {"value": 1}}, 30)
    assert result.output["value"] == 1
    fake.fail_transiently(100)
    with pytest.raises(ProviderError, match="ServiceException") as failure:
        provider.invoke(function, {"kind": "echo"}, 30)
    assert not isinstance(failure.value, faults.Transient)
