"""Invoking Lambda functions: synchronous invocations with the log tail, whose REPORT line
gives what was measured and billed; hot starts as concurrent warm-ups that hold their
instance (or provisioned concurrency where cheaper); throttling retried with backoff."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from daydream_aws import faults, wire
from daydream_aws import provisioned as provisioning
from daydream_aws.account import _code, _message, _status
from daydream_aws.facts import PROVISIONED_PRICES, SNAPSTART_PRICES
from daydream_aws.functions import AwsFunctions
from daydream_aws.report import Report, decode_log_result, parse_report
from daydream_core import auth
from daydream_core.errors import (
    ConfigurationError,
    FunctionNotFound,
    FunctionTimeout,
    ProviderError,
)
from daydream_core.model import StartKind
from daydream_core.provider import FunctionHandle, Invocation, WarmStart
from daydream_core.runtime import WARMUP, raise_for_envelope

WARM_ROUNDS = 3  # warm-up rounds before settling for fewer distinct instances than asked


@dataclass(frozen=True)
class _Answer:
    """A successful invocation, decoded."""

    envelope: dict[str, Any]
    report: Report | None


class AwsInvocation(AwsFunctions):
    """Invoke, warm, and the instances seen, of daydream's Lambda functions."""

    # -- invoke and warm -----------------------------------------------------------------------

    def invoke(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float
    ) -> Invocation:
        answer = self._call(function, payload, timeout, enforce=True)
        envelope = answer.envelope
        raise_for_envelope(envelope)
        report = answer.report
        start = StartKind(envelope.get("start", StartKind.COLD.value))
        if report is not None:
            init_ms, billed_ms, surcharge = self._startup(report)
            if report.restore_ms is not None and start is StartKind.COLD:
                start = StartKind.RESTORED
            return Invocation(
                output=envelope.get("output"),
                instance=str(envelope.get("instance", "")),
                start=start,
                init_ms=init_ms,
                duration_ms=report.duration_ms,
                billed_ms=billed_ms,
                memory_mb=report.memory_mb,
                max_memory_used_mb=report.max_memory_used_mb,
                surcharge=surcharge,
            )
        # A compatible endpoint without the log tail: the instance's own measurements.
        init_ms = float(envelope.get("init_ms", 0.0))
        duration_ms = float(envelope.get("execution_ms", 0.0))
        return Invocation(
            output=envelope.get("output"),
            instance=str(envelope.get("instance", "")),
            start=start,
            init_ms=init_ms,
            duration_ms=duration_ms,
            billed_ms=self.prices().billed_ms(duration_ms + init_ms),
            memory_mb=function.tier.memory_mb,
            max_memory_used_mb=float(envelope.get("max_memory_mb", 0.0)),
        )

    def _startup(self, report: Report) -> tuple[float, float, float]:
        """(init ms, billed ms, surcharge) of a report: a SnapStart restore counts as the
        environment's init, its hooks' time is billed as duration (daydream adds Billed
        Restore Duration to Billed Duration), and the restore is charged per GB restored."""
        if report.restore_ms is None:
            return report.init_ms or 0.0, report.billed_ms, 0.0
        billed = report.billed_ms + (report.billed_restore_ms or 0.0)
        restore = SNAPSTART_PRICES[self.options.architecture].restore_cost(report.memory_mb)
        return report.restore_ms, billed, restore

    def _hold_with_provisioned_concurrency(self, function: FunctionHandle, n: int) -> float:
        """Provision `n` more environments on the alias when that is cheaper than warm-ups
        over the horizon; the held capacity's cost per new environment (0: warm-ups)."""
        name, tier = function.name, function.tier
        horizon = self.options.provisioned_horizon_s
        now = time.monotonic()
        with self._lock:
            inits = [i for i in self._warm_inits.get(name, []) if i[0] > now - horizon]
            held, since = self._held.get(name, (0, now))
        if held and now - since > horizon:  # the horizon paid for has passed: start afresh
            self._aliases.unprovision(name)
            held = 0
        init_ms = max((ms for _, ms in inits), default=0.0) or provisioning.ASSUMED_INIT_MS
        choice = provisioning.choose(
            held + n,
            tier.memory_mb,
            init_ms=init_ms,
            hold_ms=float(self.options.warm_hold_ms),
            warm_ups_per_horizon=float(len(inits) + n),
            horizon_s=horizon,
            on_demand=self.prices(),
            provisioned=PROVISIONED_PRICES[self.options.architecture],
        )
        if not choice.provisioned:
            return 0.0
        self._aliases.provision(name, held + n)
        with self._lock:
            self._held[name] = (held + n, now)
        return choice.provisioned_cost / (held + n)

    def warm(self, function: FunctionHandle, n: int) -> list[WarmStart]:
        """n concurrent warm-ups that initialise and hold, so they occupy n distinct instances;
        a round whose warm-ups landed on fewer instances is repeated (at most WARM_ROUNDS)."""
        if n <= 0:
            return []
        payload = {"kind": WARMUP, "hold_ms": self.options.warm_hold_ms}
        timeout = float(self.options.function_timeout_s)
        held_cost = 0.0
        if self.options.provisioned_concurrency and function.name in self._qualified:
            held_cost = self._hold_with_provisioned_concurrency(function, n)
        started: dict[str, WarmStart] = {}
        failures: list[Exception] = []

        def one(_: int) -> _Answer | Exception:
            try:
                return self._call(function, payload, timeout, enforce=False)
            except FunctionNotFound:
                raise
            except ProviderError as exc:
                return exc

        workers = min(n, self.options.max_concurrency)
        for _ in range(WARM_ROUNDS):
            with ThreadPoolExecutor(workers, thread_name_prefix="daydream-aws-warm") as pool:
                outcomes = list(pool.map(one, range(n)))
            answers = [o for o in outcomes if isinstance(o, _Answer)]
            failures.extend(o for o in outcomes if isinstance(o, Exception))
            for answer in answers:
                envelope = answer.envelope
                if envelope.get("first") and envelope.get("instance") not in started:
                    started[str(envelope["instance"])] = self._warm_start(
                        function, answer, held_cost
                    )
            if not answers or len({a.envelope.get("instance") for a in answers}) >= n:
                break
        if not started and failures:
            raise failures[0]
        return list(started.values())

    def _warm_start(self, function: FunctionHandle, answer: _Answer, held_cost: float) -> WarmStart:
        """What one warm-up started: its init (or restore) and what it cost. An environment
        of provisioned concurrency ran its init when provisioned, paid by `held_cost`."""
        envelope, report = answer.envelope, answer.report
        surcharge = held_cost
        if report is not None:
            init_ms, billed, restore = self._startup(report)
            surcharge += restore
        else:
            init_ms = float(envelope.get("init_ms", 0.0))
            billed = self.prices().billed_ms(init_ms + float(envelope.get("execution_ms", 0.0)))
        if init_ms > 0:
            with self._lock:
                self._warm_inits.setdefault(function.name, []).append((time.monotonic(), init_ms))
        return WarmStart(str(envelope["instance"]), init_ms, billed, surcharge)

    def _call(
        self, function: FunctionHandle, payload: Mapping[str, Any], timeout: float, *, enforce: bool
    ) -> _Answer:
        """One synchronous invocation (retried when throttled), decoded; typed errors."""
        kind = str(payload.get("kind", ""))
        key = self._key(function.name)
        ttl = timeout + self.options.timeout_slack_s + auth.DEFAULT_TTL_S
        options: dict[str, Any] = {}
        if enforce:
            options[wire.OPT_TIMEOUT] = timeout
        body = json.dumps(auth.sign({**payload, wire.RESERVED: options}, key, ttl_s=ttl)).encode()
        transfer_key = None
        if len(body) > wire.MAX_SYNC_PAYLOAD_BYTES:
            store = self.store()
            transfer_key = f"_transfer/payload-{uuid.uuid4().hex}.json"
            store.put(transfer_key, json.dumps(auth.sign(payload, key, ttl_s=ttl)).encode())
            options.update({wire.OPT_TRANSFER: store.uri, wire.OPT_PAYLOAD_KEY: transfer_key})
            wrapper = {"kind": kind, wire.RESERVED: options}
            body = json.dumps(auth.sign(wrapper, key, ttl_s=ttl)).encode()
        try:
            response = self._backoff.call(
                lambda: self._invoke_once(function.name, body, timeout), faults.retryable
            )
        except faults.Transient as exc:
            raise ProviderError(str(exc)) from None
        finally:
            if transfer_key is not None:
                self.store().delete(transfer_key)
        raw = response["Payload"].read()
        report = parse_report(decode_log_result(response.get("LogResult")))
        if response.get("FunctionError"):
            raise faults.function_error(kind, str(response["FunctionError"]), raw, report)
        try:
            envelope = json.loads(raw)
        except ValueError:
            raise ProviderError(f"{function.name!r} answered with no JSON: {raw[:200]!r}") from None
        if not isinstance(envelope, dict) or "ok" not in envelope:
            raise ProviderError(f"{function.name!r} answered with no envelope: {raw[:200]!r}")
        if wire.RESULT_KEY in envelope:
            store = self.store()
            key = str(envelope.pop(wire.RESULT_KEY))
            try:
                stored = json.loads(store.get(key))
            finally:
                store.delete(key)
            envelope = {**stored, **envelope}
        if envelope.get("instance"):
            with self._lock:
                seen = self._seen.setdefault(function.name, {})
                seen[str(envelope["instance"])] = time.monotonic()
        return _Answer(envelope, report)

    def _invoke_once(self, name: str, body: bytes, timeout: float) -> dict[str, Any]:
        client = self._invoke_client(timeout)
        qualifier = {"Qualifier": self._qualified[name]} if name in self._qualified else {}
        try:
            response: dict[str, Any] = client.invoke(
                FunctionName=name,
                InvocationType="RequestResponse",
                LogType="Tail",
                Payload=body,
                **qualifier,
            )
        except ClientError as exc:
            raise faults.api_error(_code(exc), _message(exc), _status(exc), name) from None
        except ReadTimeoutError:
            wait = timeout + self.options.timeout_slack_s
            raise FunctionTimeout(
                f"no answer from {name!r} within {wait:g} s (the function may run on until "
                f"its own {self.options.function_timeout_s} s limit)"
            ) from None
        except EndpointConnectionError as exc:
            raise faults.Transient(f"cannot reach Lambda: {exc}") from None
        except (NoCredentialsError, NoRegionError) as exc:
            raise ConfigurationError(f"aws: {exc}") from None
        except BotoCoreError as exc:
            raise ProviderError(f"invoking {name!r} failed: {exc}") from None
        return response

    def instances(self, function: FunctionHandle) -> list[str]:
        """Environments seen within the time Lambda is expected to keep an idle one."""
        horizon = time.monotonic() - self.options.keep_alive_estimate_s
        with self._lock:
            seen = self._seen.get(function.name, {})
            for instance in [i for i, at in seen.items() if at < horizon]:
                del seen[instance]
            return sorted(seen)

    def release(self, function: FunctionHandle, keep: int) -> list[str]:
        return []  # Lambda reclaims idle environments on its own schedule, at no cost
