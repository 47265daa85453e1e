"""Typed errors shared by the engine and every provider."""

from __future__ import annotations


class DaydreamError(Exception):
    """Base of every error daydream raises on purpose."""


class UsageError(DaydreamError):
    """Bad input from the user: reported as one line, exit status 2."""


class ConfigurationError(UsageError):
    """Missing or invalid configuration or credentials, detected before anything is created."""


class ProfileError(DaydreamError):
    """The profile store failed during a run (it was checked when opened)."""


class ProviderError(DaydreamError):
    """An error reported by a provider while deploying or invoking."""


class FunctionNotFound(ProviderError):
    """The function to invoke or delete does not exist."""


class Throttled(ProviderError):
    """The provider refused the request for now; retryable."""


class FunctionTimeout(ProviderError):
    """The invocation ran past its timeout."""


class OutOfMemory(ProviderError):
    """The instance ran out of the tier's memory."""


class PayloadRejected(ProviderError):
    """An instance refused a payload: unsigned, badly signed, expired or malformed."""


class ComponentFailed(ProviderError):
    """The component's own code raised; carries the remote traceback."""

    def __init__(self, kind: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"component {kind!r} failed: {message}")
        self.kind = kind
        self.message = message
        self.remote_traceback = remote_traceback


class InstanceLost(ProviderError):
    """The instance died mid-component (killed by a signal, or crashed), not out of memory;
    retryable: another instance may serve the component."""

    def __init__(self, message: str, signal: int | None = None) -> None:
        super().__init__(message)
        self.signal = signal


class StoreUnavailable(ProviderError):
    """The object store failed transiently while a component used it; retryable."""


# What a new attempt of the same component may get past.
RETRYABLE: tuple[type[ProviderError], ...] = (Throttled, InstanceLost, StoreUnavailable)
