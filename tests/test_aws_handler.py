"""The function side, run directly: start kinds measured per execution environment, the
timeout carried by the invocation, failures raised for Lambda to report, oversized results."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from daydream_aws import wire
from daydream_aws.handler import DaydreamComponentError, DaydreamTimeout, ExecutionEnvironment
from daydream_conformance.workflow import workflow

from daydream_core.model import Tier
from daydream_core.runtime import WARMUP

TIER = Tier("low", 5120, 2.98)


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {
        wire.RUNTIME_VAR: json.dumps(asdict(workflow.runtime)),
        wire.TIER_VAR: json.dumps(asdict(TIER)),
        wire.STORE_VAR: (tmp_path / "store").as_uri(),
        wire.THREADS_VAR: "3",
    }


def echo(value: object = None) -> dict[str, object]:
    return {"kind": "echo", "args": {"value": value}}


def test_first_component_is_cold_then_warm(environ: dict[str, str]) -> None:
    environment = ExecutionEnvironment(environ)
    first = environment(echo(1))
    second = environment(echo(2))
    assert (first["start"], first["first"], first["output"]["value"]) == ("cold", True, 1)
    assert first["init_ms"] > 0
    assert (second["start"], second["first"], second["init_ms"]) == ("warm", False, 0.0)
    assert first["instance"] == second["instance"]
    assert first["output"]["memory_mb"] == 5120 and first["output"]["tier"] == "low"


def test_an_environment_started_by_a_warm_up_is_hot_once(environ: dict[str, str]) -> None:
    environment = ExecutionEnvironment(environ)
    warm_up = environment({"kind": WARMUP, "hold_ms": 0})
    assert (warm_up["start"], warm_up["first"]) == ("hot", True)
    assert [environment(echo())["start"] for _ in range(2)] == ["hot", "warm"]


def test_a_warm_up_on_a_used_environment_makes_nothing_hot(environ: dict[str, str]) -> None:
    environment = ExecutionEnvironment(environ)
    environment(echo())
    assert environment({"kind": WARMUP, "hold_ms": 0})["first"] is False
    assert environment(echo())["start"] == "warm"


def test_environments_have_distinct_ids(environ: dict[str, str]) -> None:
    assert ExecutionEnvironment(environ).id != ExecutionEnvironment(environ).id


def test_component_failure_is_raised_with_the_envelope(environ: dict[str, str]) -> None:
    environment = ExecutionEnvironment(environ)
    with pytest.raises(DaydreamComponentError) as failure:
        environment({"kind": "fail", "args": {"message": "m"}})
    envelope = json.loads(str(failure.value))
    assert envelope["ok"] is False and envelope["start"] == "cold"
    assert envelope["error"]["kind"] == "fail"
    assert "_raise_inner" in envelope["error"]["traceback"]


def test_the_invocation_timeout_interrupts_the_component(environ: dict[str, str]) -> None:
    """On Lambda the handler runs on the main thread, as here: an alarm stops the component."""
    environment = ExecutionEnvironment(environ)
    payload = {"kind": "sleep", "args": {"seconds": 30}, wire.RESERVED: {wire.OPT_TIMEOUT: 0.2}}
    with pytest.raises(DaydreamTimeout, match=r"0\.2 s timeout"):
        environment(payload)
    assert environment(echo(5))["output"]["value"] == 5  # and the environment serves on


def test_oversized_result_goes_to_the_store(environ: dict[str, str], tmp_path: Path) -> None:
    environment = ExecutionEnvironment(environ)
    size = wire.MAX_SYNC_PAYLOAD_BYTES + 10
    answer = environment({"kind": "big", "args": {"size": size}})
    assert set(answer) == {"ok", wire.RESULT_KEY, "instance", "first", "start", "init_ms"}
    stored = json.loads((tmp_path / "store" / answer[wire.RESULT_KEY]).read_bytes())
    assert len(stored["output"]["blob"]) == size


def test_payload_read_from_the_store(environ: dict[str, str], tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "_transfer").mkdir(parents=True)
    (store / "_transfer" / "p.json").write_text(json.dumps(echo("from the store")))
    event = {"kind": "echo", wire.RESERVED: {wire.OPT_PAYLOAD_KEY: "_transfer/p.json"}}
    assert ExecutionEnvironment(environ)(event)["output"]["value"] == "from the store"
