"""What a controller deployed, so that a failed run removes exactly that and nothing else.

`Provider.deploy` is idempotent: it returns a function whether it created it or found it. The
controller tells the two apart with the contract's own `list`: a function absent before the
deploy and present after it was created by this deploy. Removing only those, on failure,
never touches the functions of another run in progress on the same account, whatever the
provider (every adapter gets this for free; `Provider.cleanup` stays the provider-wide tool
of `daydream cleanup`).

A function found already deployed is left alone even if this run fails: another controller
(or an earlier run kept with ``--keep``) made it and may be using it.
"""

from __future__ import annotations

import threading

from daydream_core.model import Tier
from daydream_core.provider import FunctionHandle, Provider
from daydream_core.workflow import RuntimeEnvironment


class Deployments:
    """Deploys through a provider and remembers which functions it created."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._created: dict[str, FunctionHandle] = {}
        self._lock = threading.Lock()

    def deploy(self, runtime: RuntimeEnvironment, tier: Tier) -> FunctionHandle:
        before = set(self.provider.list())
        handle = self.provider.deploy(runtime, tier)
        if handle.name not in before:
            with self._lock:
                self._created[handle.name] = handle
        return handle

    @property
    def created(self) -> list[FunctionHandle]:
        with self._lock:
            return list(self._created.values())

    def remove_created(self) -> list[str]:
        """Delete what this controller created; returns the names deleted. Every deletion is
        tried; the first failure is raised after the others."""
        with self._lock:
            doomed = list(self._created.values())
        removed: list[str] = []
        failure: Exception | None = None
        for handle in doomed:
            try:
                self.provider.delete(handle)
            except Exception as exc:  # an SDK's own errors too: try the rest first
                failure = failure or exc
                continue
            removed.append(handle.name)
            with self._lock:
                self._created.pop(handle.name, None)
        if failure is not None:
            raise failure
        return removed
