"""The Blob object store against Azurite: key semantics, URIs that name no secret, and a store
reopened from its URI inside an instance (connection string from the environment)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from daydream_azure.azurite import Azurite
from daydream_azure.store import BlobObjectStore, connection_account_url, service_client


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    emulator = Azurite()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def store(azurite: Azurite) -> Iterator[BlobObjectStore]:
    service = service_client(connection_string=azurite.connection_string)
    container = service.create_container("store-test")
    yield BlobObjectStore(service, "store-test", "daydream/runs")
    container.delete_container()
    service.close()


def test_round_trip_and_missing_keys(store: BlobObjectStore) -> None:
    store.put("a/b.bin", b"\x00\x01")
    store.put_json("a/c.json", {"x": [1, 2]})
    store.put_array("a/d.npy", np.arange(4.0))
    assert store.get("a/b.bin") == b"\x00\x01"
    assert store.get_json("a/c.json") == {"x": [1, 2]}
    assert store.get_array("a/d.npy").tolist() == [0.0, 1.0, 2.0, 3.0]
    assert store.exists("a/c.json") and not store.exists("a/none")
    with pytest.raises(KeyError, match="a/none"):
        store.get("a/none")


def test_list_and_delete_follow_the_local_store(store: BlobObjectStore) -> None:
    for key in ("a/b", "a/b/c", "a/bc", "z"):
        store.put(key, b"1")
    store.service.get_container_client("store-test").upload_blob("daydreamX/outside", b"1")
    assert store.list("a/b") == ["a/b", "a/b/c"]
    assert store.list() == ["a/b", "a/b/c", "a/bc", "z"], "nothing outside the prefix"
    assert store.delete("a/b") == 2
    assert store.list() == ["a/bc", "z"]
    assert store.delete("") == 2 and store.list() == []
    with pytest.raises(ValueError, match="escapes"):
        store.put("../x", b"")


def test_uri_names_no_secret_and_reopens_with_the_environment(
    store: BlobObjectStore, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = store.uri
    assert uri.startswith("azblob://store-test/daydream/runs?account=")
    assert (
        "AccountKey" not in uri and azurite.connection_string.split("AccountKey=")[1][:8] not in uri
    )
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("DAYDREAM_STORAGE_CONNECTION", azurite.connection_string)
    store.put("k", b"v")
    again = BlobObjectStore.from_uri(uri)
    assert again.get("k") == b"v" and again.uri == uri


def test_connection_strings_name_their_blob_endpoint() -> None:
    assert connection_account_url(
        "AccountName=acct;AccountKey=x;EndpointSuffix=core.windows.net"
    ) == ("https://acct.blob.core.windows.net")
    assert connection_account_url("BlobEndpoint=http://127.0.0.1:1/dev/;AccountName=dev") == (
        "http://127.0.0.1:1/dev"
    )
