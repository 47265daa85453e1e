"""What a controller deployed, so that a failed run removes exactly that and nothing else.

Each `daydream run` is one **deployment**, with an id of its own (`new_deployment_id`) handed
to the provider when it is built (`ProviderSettings.deployment`). An adapter that honours it
(`Provider.deployment` set; every built-in cloud adapter and Ray) names what it creates under
the deployment's prefix (`daydream_core.provider.deployment_prefix`) and tags it with the id,
so no two deployments share a function, however many run the same workflow on one account,
and its `cleanup` reaches only that deployment's resources (functions, the layer versions it
published, instances). `daydream cleanup --deployment ID` uses the same confinement for what
a killed controller left.

`Provider.deploy` is idempotent: it returns a function whether it created it or found it. The
controller tells the two apart with the contract's own `list`: a function absent before the
deploy and present after it was created by this deploy. Removing only those, on failure,
never touches another run's functions, whatever the adapter (one that ignores the deployment
id keeps shared names and gets this protection all the same). A function found already
deployed is left alone: another controller (or an earlier command kept with ``--keep``) made
it and may be using it.
"""

from __future__ import annotations

import re
import secrets
import threading

from daydream_core.errors import UsageError
from daydream_core.model import Tier
from daydream_core.provider import FunctionHandle, Provider
from daydream_core.workflow import RuntimeEnvironment

# Short (names carry it within Lambda's 64 characters) and valid in every platform's names,
# labels and tags: lowercase letters and digits.
DEPLOYMENT_ID = re.compile(r"^[a-z0-9]{4,16}$")


def new_deployment_id() -> str:
    """A fresh deployment id: 8 hex digits, starting with a letter so it reads as a word."""
    return "d" + secrets.token_hex(4)[:7]


def check_deployment_id(value: str) -> str:
    """`value` if it is a valid deployment id, else a one-line `UsageError`."""
    if not DEPLOYMENT_ID.match(value):
        raise UsageError(
            f"{value!r} is not a deployment id (4-16 lowercase letters or digits, as "
            "recorded in a run's run.json)"
        )
    return value


class Deployments:
    """Deploys through a provider and remembers which functions it created."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._created: dict[str, FunctionHandle] = {}
        self._lock = threading.Lock()

    @property
    def id(self) -> str | None:
        """The deployment the provider names and tags for (None: shared names)."""
        return self.provider.deployment

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
        """Delete what this controller created; returns the functions' names, then what the
        provider's confined cleanup removed besides (``layer ARN``, ``actor NAME``, ...).
        Every deletion is tried; the first failure is raised after the others. A provider
        confined to this deployment then removes the rest of what the deployment made (layer
        versions no other function uses, instances); one with shared names has nothing more
        that is only ours."""
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
        if self.id is not None:
            try:
                rest = self.provider.cleanup()
            except Exception as exc:
                failure = failure or exc
            else:
                removed.extend(r for r in rest if r.split(" ", 1)[-1] not in removed)
        if failure is not None:
            raise failure
        return removed
