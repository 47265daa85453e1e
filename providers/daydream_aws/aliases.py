"""Published versions behind daydream's alias, and provisioned concurrency on that alias.

SnapStart applies to published versions only, and provisioned concurrency to a version or an
alias: so with either, each function gets a version published after every change (Lambda
publishes nothing new when nothing changed) and the alias `ALIAS` pointing at it; invocations
then name the alias. The version is ready once SnapStart's snapshot is taken (its state turns
``Active``); provisioned concurrency once its status is ``READY``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from daydream_aws.facts import PROVISIONED_READY_POLLS
from daydream_aws.plan import ALIAS
from daydream_core.errors import ProviderError

_NOT_CONFIGURED = ("ProvisionedConcurrencyConfigNotFoundException", "ResourceNotFoundException")
READY_POLLS = 300  # 1 s apart: taking a SnapStart snapshot takes a while on a real account


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Aliases:
    """Versions, the alias, and provisioned concurrency of daydream's functions."""

    def __init__(self, client: Any, sleep: Callable[[float], Any]) -> None:
        self._lambda = client
        self._sleep = sleep

    def publish(self, name: str) -> str:
        """Publish the function's current code and configuration (or find it published),
        wait for the version to be ready, point the alias at it; the version number."""
        version = str(self._lambda.publish_version(FunctionName=name)["Version"])
        for _ in range(READY_POLLS):
            config = self._lambda.get_function_configuration(FunctionName=name, Qualifier=version)
            state = config.get("State", "Active")
            if state == "Failed":
                raise ProviderError(
                    f"version {version} of {name!r} failed: {config.get('StateReason', '')}"
                )
            if state == "Active":
                break
            self._sleep(1.0)
        else:
            raise ProviderError(f"version {version} of {name!r} did not become ready")
        try:
            current = self._lambda.get_alias(FunctionName=name, Name=ALIAS)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise ProviderError(f"looking up alias {ALIAS} of {name!r} failed: {exc}") from None
            self._lambda.create_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
        else:
            if str(current.get("FunctionVersion")) != version:
                self._lambda.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
        return version

    def provisioned(self, name: str) -> int:
        """Environments provisioned on the alias now (0 when none are configured)."""
        try:
            config = self._lambda.get_provisioned_concurrency_config(
                FunctionName=name, Qualifier=ALIAS
            )
        except ClientError as exc:
            if _code(exc) in _NOT_CONFIGURED:
                return 0
            raise ProviderError(f"reading provisioned concurrency of {name!r}: {exc}") from None
        return int(config.get("RequestedProvisionedConcurrentExecutions", 0))

    def provision(self, name: str, instances: int) -> None:
        """Hold `instances` initialised environments on the alias; wait until they are."""
        self._lambda.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=ALIAS, ProvisionedConcurrentExecutions=instances
        )
        for _ in range(PROVISIONED_READY_POLLS):
            config = self._lambda.get_provisioned_concurrency_config(
                FunctionName=name, Qualifier=ALIAS
            )
            status = config.get("Status")
            if status == "READY":
                return
            if status == "FAILED":
                raise ProviderError(
                    f"provisioned concurrency on {name!r} failed: {config.get('StatusReason', '')}"
                )
            self._sleep(1.0)
        raise ProviderError(f"provisioned concurrency on {name!r} did not become ready")

    def unprovision(self, name: str) -> bool:
        """Stop holding environments on the alias; whether any were configured."""
        try:
            self._lambda.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=ALIAS)
        except ClientError as exc:
            if _code(exc) in _NOT_CONFIGURED:
                return False
            raise ProviderError(f"removing provisioned concurrency of {name!r}: {exc}") from None
        return True
