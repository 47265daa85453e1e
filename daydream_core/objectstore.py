"""Object stores: inter-component data passed by key, never inside payloads."""

from __future__ import annotations

import io
import json
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np


class ObjectStore(ABC):
    """Bytes by key. Keys are ``/``-separated relative paths."""

    @property
    @abstractmethod
    def uri(self) -> str:
        """Where the store is, in a form `open_store` accepts inside an instance."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Raise `KeyError` naming the key when it is absent."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]: ...

    @abstractmethod
    def delete(self, prefix: str) -> int:
        """Delete every key under `prefix`; return how many were deleted."""

    def put_json(self, key: str, value: Any) -> None:
        self.put(key, json.dumps(value).encode())

    def get_json(self, key: str) -> Any:
        return json.loads(self.get(key))

    def put_array(self, key: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        self.put(key, buffer.getvalue())

    def get_array(self, key: str) -> np.ndarray:
        return np.load(io.BytesIO(self.get(key)), allow_pickle=False)  # type: ignore[no-any-return]


class LocalObjectStore(ObjectStore):
    """A directory on the local file system; writes are atomic (write, then rename)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, as its 0600 files

    @property
    def uri(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise ValueError(f"store key {key!r} escapes the store")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        _private_dirs(path.parent, self.root)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(f"no object {key!r} in {self.uri}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".put-")
        )

    def delete(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        return len(keys)


def _private_dirs(directory: Path, root: Path) -> None:
    """Create `directory` and its missing parents below `root`, each 0700 (``mkdir -p``
    would give the parents the default mode)."""
    missing = []
    while directory != root and not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def open_store(uri: str) -> ObjectStore:
    """Open a store from its URI; providers add schemes through the `daydream_open_store` hook."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return LocalObjectStore(unquote(parsed.path))
    from daydream_core.plugins import plugin_manager

    store = plugin_manager().hook.daydream_open_store(uri=uri)
    if store is None:
        raise ValueError(f"no installed plugin opens object store {uri!r}")
    return store  # type: ignore[no-any-return]
