"""The function app itself, in process: the v2 programming model's indexed HTTP function, fed
real ``azure.functions.HttpRequest`` objects, reporting the platform's instance id and the
start kind it observed."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from daydream_azure import handler, wire
from daydream_conformance.workflow import workflow

from daydream_core.model import Tier
from daydream_core.runtime import WARMUP

INSTANCE = "a" * 64
(FUNCTION,) = handler.app.get_functions()  # indexing runs once, as in the host


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> handler.ExecutionEnvironment:
    environ = {
        wire.RUNTIME_VAR: json.dumps(asdict(workflow.runtime)),
        wire.TIER_VAR: json.dumps(asdict(Tier("low", 2048, 1.0))),
        wire.STORE_VAR: tmp_path.as_uri(),
        wire.INSTANCE_ID_VAR: INSTANCE,
        wire.MEMORY_LIMIT_VAR: "2048",
    }
    built = handler.ExecutionEnvironment(environ)
    monkeypatch.setattr(handler, "_environment", built)
    return built


def request(body: Any) -> func.HttpRequest:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return func.HttpRequest("POST", f"https://app.azurewebsites.net{wire.ROUTE}", body=data)


def call(body: Any) -> tuple[int, Any]:
    response = FUNCTION.get_user_function()(request(body))
    return response.status_code, json.loads(response.get_body() or b"null")


def test_the_app_indexes_one_post_function_with_function_key_auth() -> None:
    trigger = FUNCTION.get_trigger()
    assert FUNCTION.get_function_name() == wire.FUNCTION and trigger.route == wire.FUNCTION
    assert [str(getattr(m, "value", m)) for m in trigger.methods] == ["POST"]
    assert str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower() == "function"


def test_start_kinds_are_observed_not_assumed(environment: handler.ExecutionEnvironment) -> None:
    status, warm = call({"kind": WARMUP, "hold_ms": 0})
    assert status == 200 and warm["start"] == "hot" and warm["first"] is True
    assert warm["instance"] == INSTANCE and warm["init_ms"] > 0
    _, first = call({"kind": "echo", "args": {"value": 1}})
    _, second = call({"kind": "echo", "args": {"value": 2}})
    assert (first["start"], second["start"]) == ("hot", "warm")
    assert first["output"]["value"] == 1 and first["init_ms"] == 0.0


def test_platform_context_reaches_the_component(environment: handler.ExecutionEnvironment) -> None:
    _, observed = call({"kind": "observe"})
    assert observed["start"] == "cold"
    assert observed["output"]["platform"] == {
        "instance": INSTANCE,
        "memory_mb": 2048,
        "sku": None,
    }


def test_a_failed_component_is_its_envelope(environment: handler.ExecutionEnvironment) -> None:
    status, failed = call({"kind": "fail", "args": {"message": "m"}})
    assert status == 200 and failed["ok"] is False
    assert "_raise_inner" in failed["error"]["traceback"]


def test_bad_bodies_are_400(environment: handler.ExecutionEnvironment) -> None:
    assert call(b"not json")[0] == 400
    assert call([1, 2])[0] == 400
