"""The object store instances exchange data through: chosen by the ``store`` option.

Components read and write the store themselves and payloads carry only keys, so large data
goes from instance to store to instance and never through the driver. Where the store is:

- a local Ray instance: a directory under the run's state directory, by default;
- a cluster: a directory every node mounts at the same path (NFS, Lustre, a Kubernetes
  volume), or the URI of any installed object-store plugin (``s3://bucket/prefix`` with the
  aws extra, ...), which every instance opens through the same plugin.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import urlparse

from daydream_core.errors import ConfigurationError
from daydream_core.objectstore import LocalObjectStore, ObjectStore, open_store


def choose_store(option: str | None, state_dir: Path) -> ObjectStore:
    """The store the ``store`` option names (a path or a URI), else the local default."""
    if option is None:
        return LocalObjectStore(state_dir / "store")
    parsed = urlparse(option)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else option).expanduser()
        try:
            return LocalObjectStore(path)
        except OSError as exc:
            raise ConfigurationError(
                f"ray option store={option!r}: cannot use that directory ({exc.strerror})"
            ) from None
    try:
        return open_store(option)
    except ValueError:
        raise ConfigurationError(
            f"ray option store={option!r}: no installed plugin opens {parsed.scheme}:// "
            "stores; valid: a shared directory or a URI such as s3://BUCKET/PREFIX"
        ) from None


def warn_if_not_shared(store: ObjectStore, nodes: int, option: str | None) -> None:
    """A directory nobody named, on a cluster of several nodes, is seen by one node only."""
    if nodes > 1 and option is None and store.uri.startswith("file:"):
        warnings.warn(
            f"ray: the cluster has {nodes} nodes but the store is the local directory "
            f"{store.uri}; pass -o store=PATH of a shared directory (or an s3:// URI)",
            stacklevel=3,
        )
