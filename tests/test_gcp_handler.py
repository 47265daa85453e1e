"""The function side of the gcp provider, in process: the instance id comes from the metadata
server, start kinds are counted by the instance, bad requests and oversized results are
handled, and what the platform enforces is reported to components."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from daydream_conformance.workflow import workflow
from daydream_gcp import handler, wire

from daydream_core.model import Tier
from daydream_core.runtime import WARMUP


class _Metadata(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == wire.INSTANCE_ID_PATH and self.headers["Metadata-Flavor"] == "Google"
        body = b"instance-from-the-platform" if ok else b""
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def metadata() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def environ(metadata: str, store: Path) -> dict[str, str]:
    return {
        wire.METADATA_HOST_VAR: metadata,
        wire.RUNTIME_VAR: json.dumps(asdict(workflow.runtime)),
        wire.TIER_VAR: json.dumps(asdict(Tier("low", 4096, 1.0))),
        wire.STORE_VAR: store.as_uri(),
    }


def test_the_instance_id_comes_from_the_metadata_server(metadata: str, tmp_path: Path) -> None:
    instance = handler.ExecutionEnvironment(environ(metadata, tmp_path))
    assert instance.id == "instance-from-the-platform"
    assert instance.init_ms > 0


def test_no_metadata_server_is_a_clear_init_failure(tmp_path: Path) -> None:
    with pytest.raises(handler.PlatformError, match="did not give an instance id"):
        handler.ExecutionEnvironment(environ("127.0.0.1:9", tmp_path))


def test_start_kinds_are_counted_by_the_instance(metadata: str, tmp_path: Path) -> None:
    cold = handler.ExecutionEnvironment(environ(metadata, tmp_path))
    echo = {"kind": "echo", "args": {"value": 1}}
    first, second = cold(echo), cold(echo)
    assert (first["start"], first["first"], second["start"]) == ("cold", True, "warm")
    assert first["init_ms"] > 0 and second["init_ms"] == 0

    hot = handler.ExecutionEnvironment(environ(metadata, tmp_path))
    warmup = hot({"kind": WARMUP, "hold_ms": 1})
    assert warmup["first"] and warmup["ok"]
    assert [hot(echo)["start"], hot(echo)["start"]] == ["hot", "warm"]


def test_components_see_what_the_platform_enforces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K_SERVICE", raising=False)
    monkeypatch.delenv("K_REVISION", raising=False)
    cgroup = {"/sys/fs/cgroup/memory.max": "1073741824", "/sys/fs/cgroup/cpu.max": "50000 100000"}
    monkeypatch.setattr(handler, "_read", cgroup.get)
    assert handler.platform_limits() == {"memory_mb": 1024, "vcpus": 0.5}

    # No cgroup limits (the fake): the address-space limit, and no claim about the CPU share.
    monkeypatch.setattr(handler, "_read", lambda path: None)
    monkeypatch.setattr(handler.resource, "getrlimit", lambda _: (4096 * 2**20, 4096 * 2**20))
    monkeypatch.setenv("K_SERVICE", "daydream-x")
    assert handler.platform_limits() == {"memory_mb": 4096, "service": "daydream-x"}


def test_an_oversized_result_goes_through_the_store(
    metadata: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "MAX_INLINE_BYTES", 1000)
    instance = handler.ExecutionEnvironment(environ(metadata, tmp_path))
    answer = instance({"kind": "big", "args": {"size": 5000}})
    assert answer["ok"] and wire.RESULT_KEY in answer and "output" not in answer
    stored = json.loads((tmp_path / answer[wire.RESULT_KEY]).read_text())
    assert len(stored["output"]["blob"]) == 5000


class _Request:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_data(self) -> bytes:
        return self.data


def test_a_body_that_is_not_a_json_object_is_a_400() -> None:
    assert handler.entry(_Request(b"not json"))[1] == 400
    assert handler.entry(_Request(b"[1, 2]"))[1] == 400
