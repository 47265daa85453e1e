"""Lambda's errors, turned into daydream's typed errors (pure: no boto3 here).

Two kinds reach the adapter: API errors (``x-amzn-errortype`` with an HTTP status, parsed by
botocore into an error code), and function errors (HTTP 200 with ``X-Amz-Function-Error`` and a
JSON body ``{"errorType", "errorMessage", "stackTrace"}``).
"""

from __future__ import annotations

import json
from typing import Any

from daydream_aws import wire
from daydream_aws.report import Report
from daydream_core.errors import (
    ComponentFailed,
    ConfigurationError,
    DaydreamError,
    FunctionNotFound,
    FunctionTimeout,
    InstanceLost,
    OutOfMemory,
    ProviderError,
    Throttled,
)
from daydream_core.runtime import envelope_error

# Worth another attempt: the request was refused or failed before the function ran.
THROTTLING_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "EC2ThrottledException",
        "RequestLimitExceeded",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "ServiceException",  # 500
        "ServiceUnavailableException",
        "InternalFailure",
        "ResourceNotReadyException",  # the function is still being created
        "ResourceConflictException",  # the function is being updated
        "EFSMountConnectivityException",
        "EC2UnexpectedException",
        "ENILimitReachedException",
    }
)
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)


class Transient(ProviderError):
    """A transient API failure, retried with backoff; re-raised as `ProviderError` at the end."""


def api_error(code: str, message: str, status: int, function: str) -> DaydreamError:
    """The typed error for an API error of Invoke."""
    if code == "ResourceNotFoundException" or status == 404:
        return FunctionNotFound(f"no Lambda function {function!r}: {message}")
    if code in THROTTLING_CODES or status == 429:
        return Throttled(f"Lambda throttled {function!r} ({code}): {message}")
    if code in TRANSIENT_CODES or status >= 500:
        return Transient(f"Lambda failed transiently invoking {function!r} ({code}): {message}")
    if code in CREDENTIAL_CODES:
        return ConfigurationError(f"aws credentials were refused ({code}): {message}")
    return ProviderError(f"invoking {function!r} failed ({code}, HTTP {status}): {message}")


def retryable(exc: Exception) -> bool:
    return isinstance(exc, (Throttled, Transient))


def function_error(
    kind: str, function_error: str, body: bytes, report: Report | None = None
) -> ProviderError:
    """The typed error for a function error: the component's own, a timeout, or the runtime's
    (`report`: the invocation's REPORT line, where Lambda sent one)."""
    try:
        data: Any = json.loads(body or b"{}")
    except ValueError:
        data = {"errorMessage": body[:2000].decode("utf-8", errors="replace")}
    if not isinstance(data, dict):
        data = {"errorMessage": str(data)}
    error_type = str(data.get("errorType") or function_error or "Unhandled")
    message = str(data.get("errorMessage") or "")
    trace = _stack(data.get("stackTrace"))
    if error_type == wire.COMPONENT_ERROR:
        envelope = _envelope(message)
        if envelope is not None:
            return envelope_error({"kind": kind, **envelope["error"]})
    if error_type == wire.TIMEOUT_ERROR:
        return FunctionTimeout(f"component {kind!r}: {message}")
    if error_type in ("Sandbox.Timedout", "Function.TimedOut") or "Task timed out" in message:
        return FunctionTimeout(f"component {kind!r} reached the function's timeout: {message}")
    if error_type in ("Runtime.OutOfMemory", "MemoryError"):
        return OutOfMemory(f"component {kind!r} ran out of memory: {message}")
    if error_type == "Runtime.ExitError" and "signal: killed" in message:
        # Older runtimes report running out of memory so too; the REPORT line tells which.
        if report is not None and report.max_memory_used_mb >= report.memory_mb:
            return OutOfMemory(f"component {kind!r} ran out of memory: {message}")
        return InstanceLost(f"the environment running {kind!r} was killed: {message}", signal=9)
    return ComponentFailed(kind, f"{error_type}: {message}".rstrip(": "), trace)


def _envelope(message: str) -> dict[str, Any] | None:
    try:
        envelope = json.loads(message)
    except ValueError:
        return None
    if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
        return envelope
    return None


def _stack(stack: Any) -> str:
    """Lambda's ``stackTrace``: a list of formatted frames (older runtimes: lists of parts)."""
    if not stack:
        return ""
    if isinstance(stack, str):
        return stack
    lines = []
    for frame in stack:
        if isinstance(frame, (list, tuple)) and len(frame) >= 4:
            path, line, function, text = frame[:4]
            lines.append(f'  File "{path}", line {line}, in {function}\n    {text}\n')
        else:
            lines.append(str(frame))
    return "Traceback (most recent call last):\n" + "".join(lines)
