"""The gcp adapter against `FunctionsFake`: deploys and updates through operations, retries
429/503 with backoff, survives killed instances, fails builds clearly, and the fake itself
insists on what Cloud Functions insists on (ID tokens, ``$alt``, valid sources)."""

from __future__ import annotations

import concurrent.futures
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from daydream_conformance.workflow import workflow
from daydream_gcp.functions import FunctionsApi
from daydream_gcp.packaging import build_source
from daydream_gcp.testing import FunctionsFake, fake_provider

from daydream_core.errors import FunctionNotFound, ProviderError, Throttled
from daydream_core.model import StartKind
from daydream_core.provider import FunctionHandle


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionsFake]:
    with FunctionsFake(tmp_path_factory.mktemp("gcp-fake")) as functions_fake:
        yield functions_fake


@pytest.fixture(scope="module")
def provider(fake: FunctionsFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    adapter = fake_provider(fake, tmp_path_factory.mktemp("gcp-state"))
    yield adapter
    adapter.cleanup()
    adapter.close()


@pytest.fixture(scope="module")
def function(provider: Any) -> FunctionHandle:
    return provider.deploy(workflow.runtime, provider.tiers()["low"])


def payload(provider: Any, value: int = 1) -> dict[str, Any]:
    return {"kind": "echo", "args": {"value": value}, "store": provider.store().uri}


def test_deploy_is_idempotent_and_updates_what_changed(
    fake: FunctionsFake, provider: Any, function: FunctionHandle, tmp_path: Path
) -> None:
    before = fake.get(function.name)
    assert before is not None and before["serviceConfig"]["maxInstanceRequestConcurrency"] == 1
    assert before["serviceConfig"]["availableMemory"] == "4096Mi"
    assert before["labels"]["daydream-managed"] == "true"
    provider.deploy(workflow.runtime, function.tier)
    assert fake.get(function.name) == before, "an unchanged deploy changes nothing"

    longer = fake_provider(fake, tmp_path, function_timeout_s="600")
    try:
        longer.deploy(workflow.runtime, function.tier)
        after = fake.get(function.name)
        assert after is not None and after["serviceConfig"]["timeoutSeconds"] == 600
        assert after["serviceConfig"]["revision"] != before["serviceConfig"]["revision"]
    finally:
        longer.close()
    provider.deploy(workflow.runtime, function.tier)  # back to the module's settings


def test_throttled_and_unavailable_requests_are_retried(
    fake: FunctionsFake, provider: Any, function: FunctionHandle
) -> None:
    provider.invoke(function, payload(provider), 60)
    fake.throttle(2)
    fake.fail_transiently(1)
    seen = fake.invocations
    result = provider.invoke(function, payload(provider, 7), 60)
    assert result.output["value"] == 7
    assert fake.invocations - seen == 4, "two 429s and one 503 were retried"


def test_throttling_past_the_attempts_raises_throttled(
    fake: FunctionsFake, provider: Any, function: FunctionHandle
) -> None:
    fake.throttle(provider.options.max_attempts)
    with pytest.raises(Throttled):
        provider.invoke(function, payload(provider), 60)
    fake.throttle(0)


def test_a_killed_instance_is_replaced_by_a_cold_start(
    fake: FunctionsFake, provider: Any, function: FunctionHandle
) -> None:
    first = provider.invoke(function, payload(provider), 60)
    assert fake.kill_instances(function.name) >= 1
    after = provider.invoke(function, payload(provider), 60)
    assert after.start is StartKind.COLD and after.instance != first.instance
    dead = {e.id for e in fake.environments(function.name) if not e.alive}
    assert first.instance in dead


def test_a_function_deleted_elsewhere_is_not_found(
    fake: FunctionsFake, provider: Any, tmp_path: Path
) -> None:
    tier = provider.tiers()["high"]
    function = provider.deploy(workflow.runtime, tier)
    other = fake_provider(fake, tmp_path)
    try:
        other.delete(function)
    finally:
        other.close()
    with pytest.raises(FunctionNotFound):
        provider.invoke(function, payload(provider), 60)


def test_a_source_without_main_py_fails_its_build_clearly(
    fake: FunctionsFake, provider: Any, function: FunctionHandle
) -> None:
    api: FunctionsApi = provider._api
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("requirements.txt", "numpy\n")
    storage = api.upload(buffer.getvalue())
    desired = api.get(function.name)
    assert desired is not None
    desired.name = api.path("daydream-broken-build")
    desired.build_config.source.storage_source = storage
    with pytest.raises(ProviderError, match=r"Build failed: main\.py is missing"):
        api.create("daydream-broken-build", desired)
    api.delete("daydream-broken-build")
    assert fake.get("daydream-broken-build") is None


def test_a_never_finishing_operation_fails_within_its_bound() -> None:
    def never(**_: Any) -> Any:
        raise concurrent.futures.TimeoutError

    api = FunctionsApi(None, "projects/p/locations/r", timeout_s=0.5, poll_s=0.1)
    operation = SimpleNamespace(result=never, operation=SimpleNamespace(name="operations/o-1"))
    with pytest.raises(ProviderError, match=r"did not finish within 0.5 s \(operation"):
        api._wait(operation, "creating", "daydream-x")


def test_the_fake_insists_on_id_tokens_and_alt(
    fake: FunctionsFake, function: FunctionHandle
) -> None:
    found = fake.get(function.name)
    assert found is not None
    uri = found["serviceConfig"]["uri"]
    assert requests.post(uri, json={"kind": "echo"}, timeout=10).status_code == 401
    bad = {"Authorization": "Bearer not-a-token-for-this-url"}
    assert requests.post(uri, json={}, headers=bad, timeout=10).status_code == 403
    admin = f"{fake.endpoint}/v2/{fake.parent()}/functions"
    answer = requests.get(admin, timeout=10)
    assert answer.status_code == 400 and "enum-encoding=int" in answer.text


def test_source_zip_is_deterministic_and_complete() -> None:
    first, second = build_source(workflow.runtime), build_source(workflow.runtime)
    assert first.sha256 == second.sha256 and first.data == second.data
    names = set(zipfile.ZipFile(io.BytesIO(first.data)).namelist())
    assert {"main.py", "requirements.txt", "daydream_gcp/handler.py"} <= names
    assert "daydream_conformance/workflow.py" in names and "daydream_core/runtime.py" in names
    assert not any("__pycache__" in name for name in names)


def test_cleanup_removes_only_what_daydream_created(
    fake: FunctionsFake, provider: Any, function: FunctionHandle, tmp_path: Path
) -> None:
    api: FunctionsApi = provider._api
    foreign = api.get(function.name)
    assert foreign is not None
    foreign.name = api.path("daydream-not-labelled")
    del foreign.labels["daydream-managed"]
    foreign.build_config.source.storage_source = api.upload(build_source(workflow.runtime).data)
    api.create("daydream-not-labelled", foreign)
    bucket = fake.storage_client().bucket(provider.bucket_name())
    bucket.blob("someone-else/data.txt").upload_from_string(b"not daydream's")

    other = fake_provider(fake, tmp_path)
    try:
        removed = other.cleanup()
    finally:
        other.close()
    assert f"function {function.name}" in removed
    assert not any("daydream-not-labelled" in entry for entry in removed)
    assert not any(entry.startswith("bucket ") for entry in removed), "the bucket is not empty"
    left = fake.leftovers()
    assert "function daydream-not-labelled" in left
    assert f"object gs://{provider.bucket_name()}/someone-else/data.txt" in left
    assert not any(f"gs://{provider.bucket_name()}/daydream/" in item for item in left)
    api.delete("daydream-not-labelled")
    bucket.blob("someone-else/data.txt").delete()
