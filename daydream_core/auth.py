"""Payload authentication: an HMAC over each payload with a per-deployment key.

The adapter makes a key when it deploys a function (`new_key`), keeps it in the function's
configuration (never in a payload, a record or a log), signs every payload it sends
(`sign`), and the instance verifies it (`verify`) before it does anything the payload asks.
A signature covers the whole payload, canonical JSON, and an expiry: a payload captured and
replayed after its invocation's deadline is refused too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from daydream_core.errors import PayloadRejected

SIGNATURE = "__signature__"  # the payload key holding the signature
EXPIRES = "__expires__"  # Unix time after which the payload is refused (inside the signature)
KEY_BYTES = 32
DEFAULT_TTL_S = 3600.0  # a signed payload's life beyond its invocation's own timeout
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def new_key() -> str:
    """A fresh per-deployment key (hex)."""
    return secrets.token_hex(KEY_BYTES)


def _canonical(payload: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in payload.items() if k != SIGNATURE}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _mac(key: str, payload: Mapping[str, Any]) -> str:
    return hmac.new(key.encode(), _canonical(payload), hashlib.sha256).hexdigest()


def sign(payload: Mapping[str, Any], key: str, *, ttl_s: float = DEFAULT_TTL_S) -> dict[str, Any]:
    """`payload` with an expiry `ttl_s` from now and the signature over both."""
    signed = {k: v for k, v in payload.items() if k != SIGNATURE}
    signed[EXPIRES] = time.time() + ttl_s
    signed[SIGNATURE] = _mac(key, signed)
    return signed


def verify(payload: Mapping[str, Any], key: str) -> None:
    """Raise `PayloadRejected` unless `payload` carries a valid, unexpired signature."""
    signature = payload.get(SIGNATURE)
    if not isinstance(signature, str):
        raise PayloadRejected("payload is not signed")
    try:
        expected = _mac(key, payload)
    except (TypeError, ValueError):
        raise PayloadRejected("payload is not JSON") from None
    if not hmac.compare_digest(signature, expected):
        raise PayloadRejected("payload signature does not match this function's key")
    expires = payload.get(EXPIRES)
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise PayloadRejected("payload has no expiry")
    if time.time() > expires:
        raise PayloadRejected("payload has expired")


def check_id(value: object, what: str) -> str:
    """`value` if it is a safe id (letters, digits, '.', '_', '-'; no path separator, not
    '.' or '..'): run and component ids become store keys and file names."""
    if not isinstance(value, str) or not _ID.fullmatch(value) or value in (".", ".."):
        raise PayloadRejected(f"{what} {str(value)[:80]!r} is not a valid id")
    return value
