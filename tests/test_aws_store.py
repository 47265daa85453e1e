"""The S3 object store and the ``s3://`` store hook, against moto in process."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import numpy as np
import pytest
from daydream_aws.plugin import daydream_open_store
from daydream_aws.store import S3ObjectStore
from daydream_aws.testing import LambdaFake

from daydream_core.objectstore import open_store


@pytest.fixture
def store() -> Iterator[S3ObjectStore]:
    with LambdaFake():
        boto3.client("s3").create_bucket(Bucket="bucket")
        yield S3ObjectStore("bucket", "daydream")


def test_round_trip(store: S3ObjectStore) -> None:
    store.put("run/a.bin", b"\x00\xff")
    store.put_json("run/b.json", {"x": [1, 2]})
    store.put_array("run/c.npy", np.arange(4.0))
    assert store.get("run/a.bin") == b"\x00\xff"
    assert store.get_json("run/b.json") == {"x": [1, 2]}
    assert np.array_equal(store.get_array("run/c.npy"), np.arange(4.0))
    assert store.exists("run/a.bin") and not store.exists("run/zzz")
    with pytest.raises(KeyError, match="run/zzz"):
        store.get("run/zzz")
    assert store.uri == "s3://bucket/daydream"


def test_list_and_delete_follow_folders_not_string_prefixes(store: S3ObjectStore) -> None:
    for key in ("a/b", "a/b/c", "a/b/d/e", "a/bc", "z"):
        store.put(key, b"1")
    boto3.client("s3").put_object(Bucket="bucket", Key="elsewhere/a/b/x", Body=b"1")
    assert store.list("a/b") == ["a/b", "a/b/c", "a/b/d/e"]
    assert store.list() == ["a/b", "a/b/c", "a/b/d/e", "a/bc", "z"]
    assert store.list("nothing") == []
    assert store.delete("a/b") == 3
    assert store.list() == ["a/bc", "z"]


def test_keys_cannot_escape_the_store(store: S3ObjectStore) -> None:
    for key in ("../x", "/abs", "a/../../x", ""):
        with pytest.raises(ValueError, match="escapes"):
            store.put(key, b"1")


def test_a_missing_bucket_lists_empty() -> None:
    with LambdaFake():
        assert S3ObjectStore("no-such-bucket", "p").list() == []


def test_the_hook_opens_s3_uris_only(store: S3ObjectStore) -> None:
    store.put("k", b"v")
    opened = daydream_open_store("s3://bucket/daydream")
    assert isinstance(opened, S3ObjectStore) and opened.get("k") == b"v"
    assert daydream_open_store("gs://bucket/x") is None
    via_core = open_store("s3://bucket/daydream")
    assert isinstance(via_core, S3ObjectStore) and via_core.list() == ["k"]
