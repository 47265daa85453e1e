"""Lambda's API and function errors, mapped to daydream's typed errors."""

from __future__ import annotations

import json

import pytest
from daydream_aws import faults, wire

from daydream_core.errors import (
    ComponentFailed,
    ConfigurationError,
    FunctionNotFound,
    FunctionTimeout,
    OutOfMemory,
    ProviderError,
    Throttled,
)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ResourceNotFoundException", 404, FunctionNotFound),
        ("TooManyRequestsException", 429, Throttled),
        ("EC2ThrottledException", 502, Throttled),
        ("ServiceException", 500, faults.Transient),
        ("ResourceConflictException", 409, faults.Transient),
        ("UnrecognizedClientException", 403, ConfigurationError),
        ("InvalidRequestContentException", 400, ProviderError),
    ],
)
def test_api_errors(code: str, status: int, expected: type[Exception]) -> None:
    error = faults.api_error(code, "message", status, "daydream-x")
    assert type(error) is expected
    assert faults.retryable(error) == (expected in (Throttled, faults.Transient))


def component_error(error: dict[str, str]) -> bytes:
    return body(wire.COMPONENT_ERROR, json.dumps({"ok": False, "error": error}))


def body(error_type: str, message: str, stack: object = None) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": stack})


def test_component_error_carries_the_remote_traceback() -> None:
    envelope = {
        "ok": False,
        "error": {
            "type": "component",
            "kind": "fit",
            "message": "ValueError: x",
            "traceback": "TB",
        },
    }
    error = faults.function_error(
        "fit", "Unhandled", body(wire.COMPONENT_ERROR, json.dumps(envelope))
    )
    assert isinstance(error, ComponentFailed)
    assert (error.kind, error.message, error.remote_traceback) == ("fit", "ValueError: x", "TB")


def test_component_out_of_memory() -> None:
    envelope = {
        "ok": False,
        "error": {"type": "memory", "kind": "fit", "message": "", "traceback": ""},
    }
    error = faults.function_error(
        "fit", "Unhandled", body(wire.COMPONENT_ERROR, json.dumps(envelope))
    )
    assert isinstance(error, OutOfMemory)


@pytest.mark.parametrize(
    ("error_type", "message", "expected"),
    [
        (
            "Sandbox.Timedout",
            "RequestId: r Error: Task timed out after 3.00 seconds",
            FunctionTimeout,
        ),
        ("", "2025-01-01T00:00:00Z r Task timed out after 3.00 seconds", FunctionTimeout),
        (wire.TIMEOUT_ERROR, "component 'x' ran past its 1 s timeout", FunctionTimeout),
        ("Runtime.OutOfMemory", "Runtime exited with error: signal: killed", OutOfMemory),
        ("Runtime.ImportModuleError", "Unable to import module 'x'", ComponentFailed),
        ("Function.ResponseSizeTooLarge", "Response payload size exceeded", ComponentFailed),
    ],
)
def test_runtime_errors(error_type: str, message: str, expected: type[Exception]) -> None:
    assert type(faults.function_error("k", "Unhandled", body(error_type, message))) is expected


def test_unknown_error_keeps_lambdas_stack_trace() -> None:
    stack = ['  File "/var/task/x.py", line 3, in handler\n    boom()\n']
    error = faults.function_error("k", "Unhandled", body("KeyError", "'a'", stack))
    assert isinstance(error, ComponentFailed)
    assert error.message == "KeyError: 'a'"
    assert "x.py" in error.remote_traceback


def test_old_runtimes_stack_frames_as_lists() -> None:
    stack = [["/var/task/x.py", 3, "handler", "boom()"]]
    error = faults.function_error("k", "Unhandled", body("KeyError", "'a'", stack))
    assert isinstance(error, ComponentFailed)
    assert 'File "/var/task/x.py", line 3, in handler' in error.remote_traceback


def test_a_body_that_is_not_json() -> None:
    error = faults.function_error("k", "Unhandled", b"Internal crash")
    assert isinstance(error, ComponentFailed) and "Internal crash" in error.message
