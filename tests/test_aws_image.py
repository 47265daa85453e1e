"""The image path without Docker: OCI assembly, the push to ECR's registry API, and exafel
deployed as an image and run end to end against the fake (moto's ECR + `RegistryFake`)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from daydream_aws import wire
from daydream_aws.image import OCI_MANIFEST, assemble, layer_from_zip, sha256_digest
from daydream_aws.packaging import build_layer
from daydream_aws.registry import RegistryClient, push
from daydream_aws.testing import LambdaFake, fake_provider
from daydream_aws.testing_registry import BASE_REPOSITORY
from daydream_conformance.workflow import workflow

from daydream_core import plugins
from daydream_core.cli import main


@pytest.fixture
def fake() -> Iterator[LambdaFake]:
    with LambdaFake() as lambda_fake:
        yield lambda_fake


def bundle(tmp_path: Path):  # type: ignore[no-untyped-def]
    return build_layer(
        workflow.runtime,
        architecture="x86_64",
        python_runtime="python3.11",
        install=False,
        cache_dir=tmp_path / "layers",
    )


def test_the_image_layer_holds_the_layer_in_the_task_root(tmp_path: Path) -> None:
    built = bundle(tmp_path)
    first = layer_from_zip(built.path, tmp_path / "a.tar.gz")
    again = layer_from_zip(built.path, tmp_path / "b.tar.gz")
    assert (first.digest, first.diff_id) == (again.digest, again.diff_id), "deterministic"
    plain = gzip.decompress(first.path.read_bytes())
    assert first.diff_id == sha256_digest(plain) and first.digest == sha256_digest(
        first.path.read_bytes()
    )
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        names = set(tar.getnames())
    assert "var/task/daydream_aws/handler.py" in names
    assert "var/task/daydream_core/__init__.py" in names

    base = {"layers": [{"mediaType": "x", "digest": "sha256:" + "1" * 64, "size": 3}]}
    config = {"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "2" * 64]}, "config": {}}
    image = assemble(base, config, OCI_MANIFEST, first)
    manifest = json.loads(image.manifest)
    assert [d["digest"] for d in manifest["layers"]] == ["sha256:" + "1" * 64, first.digest]
    assert manifest["config"]["digest"] == image.config_digest
    assembled = json.loads(image.config)
    assert assembled["rootfs"]["diff_ids"] == ["sha256:" + "2" * 64, first.diff_id]
    assert assembled["config"]["Cmd"] == [wire.HANDLER]


def test_push_mounts_the_base_and_reads_the_manifest_back(fake: LambdaFake, tmp_path: Path) -> None:
    ecr = boto3.client("ecr")
    ecr.create_repository(repositoryName="pushed")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    client = RegistryClient(fake.registry.url, token)
    base, media_type = client.image_manifest(BASE_REPOSITORY, "3.12", "x86_64")
    config = json.loads(client.blob(BASE_REPOSITORY, base["config"]["digest"]))
    layer = layer_from_zip(bundle(tmp_path).path, tmp_path / "layer.tar.gz")
    image = assemble(base, config, media_type, layer)

    digest = push(client, "pushed", "v1", image, BASE_REPOSITORY)
    assert digest == image.digest
    assert fake.registry.mounts == len(base["layers"]), "the base is mounted, not copied"
    assert fake.registry.uploads == 2, "our layer and the config"
    assert fake.registry.manifest("pushed", digest) == (image.manifest, OCI_MANIFEST)

    # Again: everything is there already, so nothing moves.
    push(client, "pushed", "v1", image, BASE_REPOSITORY)
    assert (fake.registry.mounts, fake.registry.uploads) == (len(base["layers"]), 2)

    refused = RegistryClient(fake.registry.url, "bm90LWF3czp4")  # "not-aws:x"
    with pytest.raises(Exception, match="refused the ECR authorisation token"):
        refused.manifest(BASE_REPOSITORY, "3.12")


def test_an_image_deployment_runs_and_cleanup_removes_the_repository(
    fake: LambdaFake, tmp_path: Path
) -> None:
    provider = fake_provider(fake, tmp_path, package="image", python_runtime="python3.12")
    try:
        tier = provider.tiers()["low"]
        function = provider.deploy(workflow.runtime, tier)
        configuration = boto3.client("lambda").get_function(FunctionName=function.name)
        assert configuration["Configuration"]["PackageType"] == "Image"
        uri = configuration["Code"]["ImageUri"]
        assert "/daydream-runtimes@sha256:" in uri, uri
        result = provider.invoke(function, {"kind": "echo", "args": {"value": 3}}, timeout=30)
        assert result.output["value"] == 3
        assert provider.deploy(workflow.runtime, tier) == function, "idempotent"
        assert provider.cleanup(dry_run=True)[-1].startswith("bucket ")
        removed = provider.cleanup()
        assert any(item.startswith("repository ") for item in removed)
    finally:
        provider.close()
    assert fake.leftovers() == []


def test_an_image_without_the_workflow_does_not_start(fake: LambdaFake, tmp_path: Path) -> None:
    provider = fake_provider(fake, tmp_path, package="image")
    try:
        function = provider.deploy(workflow.runtime, provider.tiers()["low"])
        # The image in the registry loses the workflow module: the instance cannot import it.
        uri = boto3.client("lambda").get_function(FunctionName=function.name)["Code"]["ImageUri"]
        repository, _, digest = uri.partition("/")[2].partition("@")
        held = fake.registry.manifests[repository]
        manifest = json.loads(held[digest][0])
        manifest["layers"] = manifest["layers"][:-1]
        held[digest] = (json.dumps(manifest).encode(), OCI_MANIFEST)
        with pytest.raises(Exception, match="Unable to import module"):
            provider.invoke(function, {"kind": "echo", "args": {"value": 3}}, timeout=30)
    finally:
        provider.cleanup()
        provider.close()


@pytest.mark.skipif("exafel" not in plugins.apps(), reason="the exafel app is not installed")
def test_run_exafel_through_the_image_path_then_cleanup(tmp_path: Path) -> None:
    """`daydream --provider aws -o package=image run exafel`, then `deploy --dry-run` and
    `cleanup`: nothing is left. Each environment is its own process (cctbx's native state)."""
    out = tmp_path / "out"
    with LambdaFake(server=True, isolation="process") as lambda_fake:
        options = [f"-o{k}={v}" for k, v in lambda_fake.options().items()]

        def daydream(*args: str) -> None:
            with pytest.raises(SystemExit) as done:
                main(
                    ["--provider", "aws", *options, "-opackage=image", "--concurrency", "4", *args]
                )
            assert done.value.code == 0

        daydream(
            "run", "exafel", "--preset", "small", "--runs", "1", "--out", str(out),
            "-p", "max_batches=1", "--timeout", "300", "--keep",  # to look at what it made
        )  # fmt: skip
        functions = boto3.client("lambda").list_functions()["Functions"]
        assert sorted(f["PackageType"] for f in functions) == ["Image", "Image"]
        assert any(
            item.startswith("repository daydream-runtimes") for item in lambda_fake.leftovers()
        )
        daydream("deploy", "exafel", "--dry-run")
        daydream("cleanup")
        assert lambda_fake.leftovers() == []
    record = json.loads((out / "run-1" / "run.json").read_text())
    assert record["error"] is None and len(record["phases"]) >= 2
    invocations = [i for phase in record["phases"] for i in phase["invocations"]]
    assert invocations and all(i["error"] is None and i["cost"] > 0 for i in invocations)
