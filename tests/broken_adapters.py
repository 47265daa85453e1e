"""Deliberately broken aws adapters, each the real `AwsProvider` against the real fake, wrong in
exactly one way; a pytest plugin (``-p broken_adapters --broken NAME``) that plugs the chosen one
into the conformance suite through its own hook, as a third-party provider plugs in its fake.

Used by tests/test_broken_adapter.py; docs/conformance.md lists which case catches which.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from daydream_aws.provider import AwsProvider
from daydream_aws.testing import conformance_environment
from daydream_conformance.environment import ConformanceEnvironment

from daydream_core.model import StartKind, Tier
from daydream_core.pricing import PriceTable
from daydream_core.provider import FunctionHandle, Invocation, WarmStart
from daydream_core.workflow import RuntimeEnvironment


class IgnoresTierMemory(AwsProvider):
    """Deploys every function with Lambda's default 128 MB, whatever its tier says."""

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        handle = super().deploy(runtime, tier)
        self._lambda.update_function_configuration(FunctionName=handle.name, MemorySize=128)
        return handle


class ReportsTierMemoryRunsAnother(AwsProvider):
    """Runs functions with half their tier's memory, but reports the tier's in its results."""

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        handle = super().deploy(runtime, tier)
        self._lambda.update_function_configuration(
            FunctionName=handle.name, MemorySize=tier.memory_mb // 2
        )
        return handle

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        result = super().invoke(function, payload, timeout)
        return dataclasses.replace(result, memory_mb=function.tier.memory_mb)


class EveryStartHot(AwsProvider):
    """Assumes instead of measuring: reports every start as hot."""

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        result = super().invoke(function, payload, timeout)
        return dataclasses.replace(result, start=StartKind.HOT)


class HidesColdStarts(AwsProvider):
    """Reports a cold start as warm (its init folded into nothing)."""

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        result = super().invoke(function, payload, timeout)
        if result.start is StartKind.COLD:
            return dataclasses.replace(result, start=StartKind.WARM)
        return result


class RequestIdAsInstance(AwsProvider):
    """Names the instance after each request, not after the environment that served it."""

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        result = super().invoke(function, payload, timeout)
        return dataclasses.replace(result, instance=uuid.uuid4().hex)


class BillsColdDurationNotInit(AwsProvider):
    """Bills a cold start's duration but not its init (as Lambda did before August 2025)."""

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        result = super().invoke(function, payload, timeout)
        return dataclasses.replace(result, billed_ms=float(math.ceil(result.duration_ms)))


class BillsAnotherGranularity(AwsProvider):
    """Rounds billed time up to 100 ms (another platform's rule), not what Lambda billed."""

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        result = super().invoke(function, payload, timeout)
        billed = math.ceil((result.duration_ms + result.init_ms) / 100.0) * 100.0
        return dataclasses.replace(result, billed_ms=billed)


class PricesIgnoreInit(AwsProvider):
    """Declares a price table that does not bill init, while Lambda bills it."""

    def prices(self) -> PriceTable:
        return dataclasses.replace(super().prices(), init_billed=False)


class WarmUpsBilledFree(AwsProvider):
    """Takes a hot start's warm-up to cost nothing."""

    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        return [dataclasses.replace(w, billed_ms=0.0) for w in super().warm(function, n)]


class OverProvisionsWarm(AwsProvider):
    """Starts one environment more than asked, silently: it reports only n of them."""

    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        return super().warm(function, n + 1)[:n] if n > 0 else []


class ForgetsServedInstances(AwsProvider):
    """`instances()` lists only the instances it hot started, not those that served."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hot: dict[str, set[str]] = {}

    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        started = super().warm(function, n)
        self._hot.setdefault(function.name, set()).update(w.instance for w in started)
        return started

    def instances(self, function: FunctionHandle) -> list[str]:
        hot = self._hot.get(function.name, set())
        return [i for i in super().instances(function) if i in hot]


class DropsRemoteTraceback(AwsProvider):
    """Surfaces component failures typed, but without the remote traceback."""

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        try:
            return super().invoke(function, payload, timeout)
        except Exception as exc:
            if hasattr(exc, "remote_traceback"):
                exc.remote_traceback = ""
            raise


class CleanupForgetsLayers(AwsProvider):
    """Removes functions and objects but leaves its layers behind."""

    def cleanup(self, dry_run: bool = False) -> list[str]:
        removed = super().cleanup(dry_run=True)
        kept = [entry for entry in removed if not entry.startswith("layer ")]
        if not dry_run:
            for name in self.list():
                self._lambda.delete_function(FunctionName=name)
        return kept


BROKEN: dict[str, type[AwsProvider]] = {
    cls.__name__: cls
    for cls in (
        IgnoresTierMemory,
        ReportsTierMemoryRunsAnother,
        EveryStartHot,
        HidesColdStarts,
        RequestIdAsInstance,
        BillsColdDurationNotInit,
        BillsAnotherGranularity,
        PricesIgnoreInit,
        WarmUpsBilledFree,
        OverProvisionsWarm,
        ForgetsServedInstances,
        DropsRemoteTraceback,
        CleanupForgetsLayers,
    )
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--broken", required=True, choices=sorted(BROKEN))


@pytest.hookimpl
def pytest_daydream_conformance_environment(
    config: pytest.Config, provider: str, workdir: Path
) -> Any:
    broken = BROKEN[config.getoption("broken")]

    @contextmanager
    def environment() -> Iterator[ConformanceEnvironment]:
        with conformance_environment(workdir) as env:
            yield dataclasses.replace(env, factory=broken)

    return environment()
