"""Which optional dependencies a plugin needs, and the one line that says how to get them.

Apps and providers declare the modules they import and the extra that installs them; the CLI
checks before loading anything (``importlib.util.find_spec`` imports nothing but parents), so
a missing extra is one line naming it, never a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence


def missing_modules(modules: Sequence[str]) -> list[str]:
    """Those of `modules` that cannot be imported here."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package is missing, or broken
            found = False
        if not found:
            missing.append(name)
    return missing


def install_hint(what: str, missing: Sequence[str], extra: str | None) -> str:
    """``app 'ccl' needs pyccl, camb (not installed): pip install 'daydream[apps]'``."""
    how = f"pip install 'daydream[{extra}]'" if extra else f"pip install {' '.join(missing)}"
    return f"{what} needs {', '.join(missing)} (not installed): {how}"
