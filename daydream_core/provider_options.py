"""Provider options: ``-o KEY=VALUE`` over ``DAYDREAM_<PROVIDER>_*`` variables over defaults.

Every adapter declares its options as a dataclass (name, type, default) and reads them here,
so unknown keys, malformed numbers, non-finite floats and booleans are refused the same way,
in one line naming the option and what is valid, on every provider.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from daydream_core.errors import ConfigurationError

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def read_options(
    declared: type[Any],
    provider: str,
    options: Mapping[str, str],
    environ: Mapping[str, str],
    env_prefix: str,
    standard: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The options given (else set in ``env_prefix + NAME``, else in the platform's own
    variable `standard[name]`, e.g. ``AZURE_SUBSCRIPTION_ID``), converted to the dataclass
    `declared`'s field types; options left unset are absent (the dataclass defaults them)."""
    known = {f.name: f for f in fields(declared)}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigurationError(
            f"unknown {provider} option {unknown[0]!r}; valid options: {', '.join(known)}"
        )
    values: dict[str, Any] = {}
    for name, field in known.items():
        raw = options.get(name, environ.get(env_prefix + name.upper()))
        if (raw is None or raw == "") and standard and name in standard:
            raw = environ.get(standard[name])
        if raw is None or raw == "":
            continue
        values[name] = convert(provider, name, str(field.type), raw)
    return values


def convert(provider: str, name: str, kind: str, raw: str) -> Any:
    """`raw` as the annotation `kind` says (int, float, bool, else text)."""
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            number = float(raw)
            if not math.isfinite(number):
                raise ConfigurationError(f"{provider} option {name}={raw!r} is not a finite number")
            return number
        if kind.startswith("bool"):
            lowered = raw.strip().lower()
            if lowered in TRUE | FALSE:
                return lowered in TRUE
            raise ValueError(raw)
    except ValueError:
        expected = kind.split(" ")[0]
        raise ConfigurationError(
            f"{provider} option {name}={raw!r} is not a valid {expected}"
        ) from None
    return raw
