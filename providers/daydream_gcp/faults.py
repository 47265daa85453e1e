"""What a function URL's answer means: a decoded envelope, or the shared typed errors.

Cloud Run answers 429 when no instance can take the request (max instances reached) and 503
when it cannot serve; both are retried with backoff, as are connection resets. A 503 saying
the connection to the instance failed mid-request is an instance lost (`InstanceLost`), left
to the engine's retry, which records the attempt. 504 is the function's own request timeout;
404 a function that is gone.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from daydream_core.errors import (
    ConfigurationError,
    FunctionNotFound,
    FunctionTimeout,
    InstanceLost,
    ProviderError,
    Throttled,
)

RETRIED_STATUSES = frozenset({429, 502, 503})
# How Cloud Run's 503 says the instance itself failed mid-request (crashed, killed).
_LOST = "connection to the instance had an error"


class Transient(ProviderError):
    """A failure worth retrying that is not throttling (503, a reset connection)."""


def retryable(exc: Exception) -> bool:
    return isinstance(exc, (Throttled, Transient))


def request_error(
    name: str, exc: requests.exceptions.RequestException, wait_s: float, limit_s: int
) -> ProviderError:
    """The typed error for a request that got no answer."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return FunctionTimeout(
            f"no answer from {name!r} within {wait_s:g} s (the function may run on until its "
            f"own {limit_s} s limit)"
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return Transient(f"cannot reach function {name!r}: {exc}")
    return ProviderError(f"calling function {name!r} failed: {exc}")


def decode(name: str, response: requests.Response) -> dict[str, Any]:
    """The handler's envelope from a 200, else the typed error for the status."""
    status = response.status_code
    text = response.text[:300]
    if status == 200:
        try:
            envelope = response.json()
        except ValueError:
            raise ProviderError(f"{name!r} answered with no JSON: {text!r}") from None
        if not isinstance(envelope, dict) or "ok" not in envelope:
            raise ProviderError(f"{name!r} answered with no envelope: {text!r}")
        return envelope
    if status == 404:
        raise FunctionNotFound(f"gcp: function {name!r} does not exist (404)")
    if status == 503 and _LOST in text:  # not retried here: the engine's retry re-runs it
        raise InstanceLost(f"gcp: function {name!r} lost its instance mid-request (503)")
    if status == 429:
        raise Throttled(f"gcp: function {name!r} has no instance free (429): {_reason(text)}")
    if status in RETRIED_STATUSES:
        raise Transient(f"gcp: function {name!r} answered {status}: {_reason(text)}")
    if status == 504:
        raise FunctionTimeout(f"gcp: function {name!r} ran past its own request timeout (504)")
    if status in (401, 403):
        raise ConfigurationError(
            f"gcp: function {name!r} refused the caller ({status}); grant the credentials "
            "roles/run.invoker on it (see docs/gcp.md)"
        )
    raise ProviderError(f"gcp: function {name!r} answered {status}: {_reason(text)}")


def _reason(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip() or "no details"
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message", error))
        return str(error)
    return text
