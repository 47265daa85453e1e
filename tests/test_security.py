"""No payload trusted beyond its run: signatures, the store fixed at deploy, ids, registered
components only, an isolated sys.path, private file modes, and no secret in any output."""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daydream_conformance.workflow import workflow as conformance

from daydream_core import auth
from daydream_core.errors import PayloadRejected
from daydream_core.model import HIGH, Tier
from daydream_core.objectstore import LocalObjectStore
from daydream_core.runtime import WARMUP, FunctionRuntime, raise_for_envelope

TIER = Tier(HIGH, 1024, 1.0)
KEY = auth.new_key()


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


@pytest.fixture
def runtime(store: LocalObjectStore) -> FunctionRuntime:
    return FunctionRuntime(conformance.runtime, TIER, 1, store_uri=store.uri, key=KEY)


def _echo(**extra: Any) -> dict[str, Any]:
    return {"kind": "echo", "args": {"value": 1}, "run_id": "r1", "component": "c1", **extra}


def _refusal(envelope: dict[str, Any]) -> str:
    assert envelope["ok"] is False and envelope["error"]["type"] == "rejected", envelope
    with pytest.raises(PayloadRejected):
        raise_for_envelope(envelope)
    return str(envelope["error"]["message"])


def test_a_signed_payload_runs(runtime: FunctionRuntime) -> None:
    envelope = runtime.handle(auth.sign(_echo(), KEY))
    assert envelope["ok"], envelope
    assert envelope["output"]["value"] == 1


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (_echo(), "not signed"),
        (auth.sign(_echo(), auth.new_key()), "does not match"),
        ({**auth.sign(_echo(), KEY), "args": {"value": 2}}, "does not match"),
        (auth.sign(_echo(), KEY, ttl_s=-1), "expired"),
        (auth.sign({"kind": WARMUP, "hold_ms": 0}, "0" * 64), "does not match"),
        ({**_echo(), auth.SIGNATURE: 12}, "not signed"),
    ],
)
def test_unsigned_forged_tampered_or_expired_payloads_are_refused(
    runtime: FunctionRuntime, payload: dict[str, Any], why: str
) -> None:
    assert why in _refusal(runtime.handle(payload))


def test_the_store_is_fixed_at_deploy(
    runtime: FunctionRuntime, store: LocalObjectStore, tmp_path: Path
) -> None:
    """The probe of issue 9: a payload naming /etc as its store read /etc/passwd's checksum."""
    payload = auth.sign(_echo(args={"key": "passwd"}, store="file:///etc"), KEY)
    assert "another store" in _refusal(runtime.handle(payload))
    # The store named nowhere: the deployed one is used.
    envelope = runtime.handle(auth.sign({**_echo(), "args": {"key": "k"}}, KEY))
    assert envelope["ok"], envelope
    assert store.list() == ["r1/c1/a1/k"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("run_id", "../../etc"),
        ("run_id", "a/b"),
        ("run_id", ".."),
        ("run_id", ""),
        ("component", "c1/../../x"),
        ("component", "/abs"),
        ("component", 7),
        ("phase", -1),
        ("phase", "1"),
        ("args", ["not", "a", "mapping"]),
    ],
)
def test_ids_and_fields_are_checked(runtime: FunctionRuntime, field: str, value: Any) -> None:
    assert _refusal(runtime.handle(auth.sign(_echo(**{field: value}), KEY)))


@pytest.mark.parametrize("kind", ["__init__", "os.system", "plan", "", "echo "])
def test_only_registered_components_run(runtime: FunctionRuntime, kind: str) -> None:
    assert "has no component" in _refusal(runtime.handle(auth.sign(_echo(kind=kind), KEY)))


def test_a_warm_up_cannot_hold_an_instance_forever(runtime: FunctionRuntime) -> None:
    payload = auth.sign({"kind": WARMUP, "hold_ms": 10**12}, KEY)
    assert "hold_ms" in _refusal(runtime.handle(payload))


def test_a_runtime_built_without_key_or_store_keeps_the_old_contract(
    store: LocalObjectStore,
) -> None:
    legacy = FunctionRuntime(conformance.runtime, TIER, 1)
    envelope = legacy.handle({**_echo(), "store": store.uri})
    assert envelope["ok"], envelope


# -- the local platform -----------------------------------------------------------------------


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Any]:
    from daydream_local.provider import LocalProvider

    provider = LocalProvider(tmp_path / "state", concurrency=2, low_memory_mb=1024)
    yield provider
    provider.close()


def test_local_instances_refuse_unsigned_frames(platform: Any) -> None:
    """What reaches an instance's pipe unsigned (not through the adapter) is refused."""
    function = platform.deploy(conformance.runtime, platform.tiers()["low"])
    platform.invoke(function, _echo(), timeout=60)  # signed by the adapter: runs
    [instance] = platform._instances[function.name]
    assert "not signed" in _refusal(instance.call(_echo(), timeout=60))
    forged = auth.sign({**_echo(), "store": "file:///etc"}, auth.new_key())
    assert "does not match" in _refusal(instance.call(forged, timeout=60))


def test_a_stdlib_named_file_in_the_working_directory_is_never_imported(
    platform: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9's probe: a `concurrent.py` beside the user was run by every instance."""
    planted = tmp_path / "cwd"
    planted.mkdir()
    marker = tmp_path / "imported"
    for name in ("concurrent", "json", "struct", "select", "numpy", "daydream_local"):
        (planted / f"{name}.py").write_text(
            f"open({str(marker)!r}, 'a').write({name!r} + '\\n')\nraise SystemExit(3)\n"
        )
    monkeypatch.chdir(planted)
    function = platform.deploy(conformance.runtime, platform.tiers()["low"])
    result = platform.invoke(function, _echo(), timeout=60)
    assert result.output["value"] == 1
    assert not marker.exists(), marker.read_text()


def test_files_are_private(platform: Any, tmp_path: Path) -> None:
    function = platform.deploy(conformance.runtime, platform.tiers()["low"])
    platform.invoke(function, _echo(args={"key": "k"}), timeout=60)
    for path in [tmp_path / "state", *(tmp_path / "state").rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


# -- secrets ------------------------------------------------------------------------------------

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "planted-aws-secret-3f9a",
    "AWS_SESSION_TOKEN": "planted-session-token-77c1",
    "GITHUB_TOKEN": "planted-github-token-0b2e",
    "DAYDREAM_AWS_ROLE": "planted-role-5d4c",
}


def test_no_planted_secret_or_payload_key_reaches_any_output(
    demo_app: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A successful and a failed run, then every byte they wrote and printed is searched."""
    from daydream_core.cli import main

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    keys: list[str] = []
    from daydream_local.provider import LocalProvider

    original = LocalProvider.deploy

    def deploy(self: LocalProvider, runtime: Any, tier: Tier) -> Any:
        handle = original(self, runtime, tier)
        keys.append(self._keys[handle.name])
        return handle

    monkeypatch.setattr(LocalProvider, "deploy", deploy)
    out = tmp_path / "out"
    for preset in ("small", "failing", "buggy"):
        with pytest.raises(SystemExit):
            main(["run", "demo", "--preset", preset, "--out", str(out), "--verbose"])
    printed = capsys.readouterr()
    assert keys, "the demo deployed functions"
    written = [p for p in [*out.rglob("*"), *tmp_path.glob("profile.sqlite*")] if p.is_file()]
    assert any(p.name == "error.log" for p in written) and any(
        p.suffix == ".log" and p.parent.name == "instances" for p in written
    )
    for needle in [*SECRETS.values(), *keys]:
        assert needle not in printed.out + printed.err
        for path in written:
            assert needle.encode() not in path.read_bytes(), f"{needle[:12]}... in {path}"
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_signatures_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = auth.sign({"kind": "echo"}, KEY, ttl_s=60)
    auth.verify(payload, KEY)
    later = time.time() + 61
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(PayloadRejected, match="expired"):
        auth.verify(payload, KEY)


def test_a_payload_key_is_never_in_an_instance_command_line(platform: Any) -> None:
    function = platform.deploy(conformance.runtime, platform.tiers()["low"])
    platform.invoke(function, _echo(), timeout=60)
    key = platform._keys[function.name]
    for pid in platform.instance_pids().values():
        assert key.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert key.encode() not in Path(f"/proc/{pid}/environ").read_bytes()


def test_dataclass_handles_carry_no_key(platform: Any) -> None:
    function = platform.deploy(conformance.runtime, platform.tiers()["low"])
    assert platform._keys[function.name] not in repr(dataclasses.asdict(function))
    assert os.environ.get("DAYDREAM_PAYLOAD_KEY") is None


def test_aws_functions_refuse_unsigned_invocations(tmp_path: Path) -> None:
    """Anyone allowed to call Invoke still cannot make a daydream function run a payload it
    did not sign: not a component, not a foreign store."""
    import json

    import boto3
    from daydream_aws.testing import LambdaFake, fake_provider

    with LambdaFake() as fake:
        aws = fake_provider(fake, tmp_path)
        try:
            function = aws.deploy(conformance.runtime, aws.tiers()["low"])
            assert aws.invoke(function, _echo(), timeout=60).output["value"] == 1
            forged = {**_echo(), "store": "file:///etc", "__daydream__": {"transfer": "x"}}
            response = boto3.client("lambda").invoke(
                FunctionName=function.name, Payload=json.dumps(forged).encode()
            )
            assert response.get("FunctionError")
            answer = json.loads(response["Payload"].read())
            assert "payload is not signed" in answer["errorMessage"]
        finally:
            aws.close()
